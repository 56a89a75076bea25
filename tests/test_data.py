"""The datamodule: split, pixel values, and loaders, all on the real MNIST files."""

from __future__ import annotations

import pytest
import torch
from torchvision import datasets, transforms

from mnistlab.data import DataNotFoundError, MNISTDataModule


@pytest.fixture(scope="module")
def datamodule(data_dir) -> MNISTDataModule:
    dm = MNISTDataModule(data_dir=data_dir, batch_size=32, eval_batch_size=500)
    dm.prepare_data()
    dm.setup()
    return dm


def test_split_sizes_follow_the_official_sets(datamodule) -> None:
    assert (len(datamodule.train_set), len(datamodule.val_set), len(datamodule.test_set)) == (
        55000, 5000, 10000)


def test_split_is_disjoint_and_reproducible(datamodule, data_dir) -> None:
    train, val = set(datamodule.train_set.indices), set(datamodule.val_set.indices)
    assert not train & val
    assert train | val == set(range(60000))
    again = MNISTDataModule(data_dir=data_dir)
    again.setup()
    assert again.val_set.indices == datamodule.val_set.indices
    other = MNISTDataModule(data_dir=data_dir, split_seed=7)
    other.setup()
    assert other.val_set.indices != datamodule.val_set.indices


def test_val_size_is_configurable(data_dir) -> None:
    dm = MNISTDataModule(data_dir=data_dir, val_size=1000)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set)) == (59000, 1000)


def test_pixels_are_totensor_values_and_normalised_on_request(datamodule, data_dir) -> None:
    raw = datasets.MNIST(data_dir, train=False, transform=transforms.ToTensor())
    plain = MNISTDataModule(data_dir=data_dir, normalize=False)
    plain.setup()
    image, label = plain.test_set[0]
    assert torch.equal(image, raw[0][0]) and label == raw[0][1]
    assert image.shape == (1, 28, 28) and image.min() >= 0 and image.max() <= 1
    normalised, _ = datamodule.test_set[0]
    assert torch.allclose(normalised, (image - 0.1307) / 0.3081)


def test_loaders_batch_shuffle_and_drop_last(datamodule, data_dir) -> None:
    images, labels = next(iter(datamodule.train_dataloader()))
    assert images.shape == (32, 1, 28, 28) and labels.dtype == torch.int64
    assert len(datamodule.test_dataloader()) == 20  # 10,000 / eval_batch_size 500
    odd = MNISTDataModule(data_dir=data_dir, batch_size=1000, drop_last=True)
    odd.setup()
    assert len(odd.train_dataloader()) == 55  # 55,000 / 1,000, nothing left over
    kept = MNISTDataModule(data_dir=data_dir, batch_size=999, drop_last=False)
    kept.setup()
    assert len(kept.train_dataloader()) == 56
    torch.manual_seed(0)
    first = next(iter(datamodule.train_dataloader()))[1]
    torch.manual_seed(0)
    assert torch.equal(first, next(iter(datamodule.train_dataloader()))[1])


def test_setup_without_files_names_the_folder(tmp_path) -> None:
    with pytest.raises(DataNotFoundError, match=r"MNIST/raw.*train-images-idx3-ubyte missing"):
        MNISTDataModule(data_dir=tmp_path).setup()
