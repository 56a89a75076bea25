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


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("loader", ["memory", "torchvision"])
def test_batches_equal_torchvision_totensor_and_normalize(data_dir, loader: str,
                                                          normalize: bool) -> None:
    steps = [transforms.ToTensor()] + [transforms.Normalize((0.1307,), (0.3081,))] * normalize
    reference = datasets.MNIST(data_dir, train=False, transform=transforms.Compose(steps))
    dm = MNISTDataModule(data_dir=data_dir, normalize=normalize, loader=loader,
                         eval_batch_size=2000)
    dm.setup()
    images, labels = next(iter(dm.test_dataloader()))
    images = dm.batch_transform(images)
    expected = torch.stack([reference[i][0] for i in range(2000)])
    assert images.dtype == torch.float32 and images.shape == (2000, 1, 28, 28)
    assert torch.equal(images, expected)  # bit for bit, not just close
    assert torch.equal(labels, reference.targets[:2000])


def test_memory_loader_serves_the_split_images(datamodule, data_dir) -> None:
    raw = datasets.MNIST(data_dir, train=True)
    index = datamodule.train_set.indices[:5]
    images, labels = datamodule.train_set.__getitems__([0, 1, 2, 3, 4])
    assert images.dtype == torch.uint8 and images.shape == (5, 1, 28, 28)
    assert torch.equal(images[:, 0], raw.data[index]) and torch.equal(labels, raw.targets[index])


def test_unknown_loader_names_the_choices(data_dir) -> None:
    with pytest.raises(ValueError, match=r"data.loader='pil'.*data.loader=memory.*torchvision"):
        MNISTDataModule(data_dir=data_dir, loader="pil")


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
