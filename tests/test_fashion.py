"""Fashion-MNIST: the same datamodule with other files, obtained from Debian's package."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision import datasets, transforms

from mnistlab.data import DataNotFoundError, FashionMNISTDataModule, MNISTDataModule
from mnistlab.data.fashion import DEBIAN_DIR, FASHION_MNIST_FILES, fetch_from_debian
from mnistlab.data.files import Source, ensure_raw_files, find_problems

pytestmark = pytest.mark.skipif(
    not (DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"needs Debian's dataset-fashion-mnist in {DEBIAN_DIR} "
           "(apt-get install dataset-fashion-mnist; .ci/run installs it)")


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory) -> Path:
    """A data folder filled from the Debian package the way a run fills it."""
    path = tmp_path_factory.mktemp("fashion-data")
    FashionMNISTDataModule(data_dir=path).prepare_data()
    return path


def test_debian_files_pass_the_official_checksums(fashion_dir) -> None:
    raw = FASHION_MNIST_FILES.raw_dir(fashion_dir)
    assert raw == fashion_dir / "FashionMNIST" / "raw"
    assert find_problems(raw, FASHION_MNIST_FILES) == {}


def test_split_pixels_and_classes(fashion_dir) -> None:
    dm = FashionMNISTDataModule(data_dir=fashion_dir, eval_batch_size=500)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (55000, 5000, 10000)
    images, labels = next(iter(dm.test_dataloader()))
    reference = datasets.FashionMNIST(fashion_dir, train=False, transform=transforms.Compose(
        [transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))]))
    assert torch.equal(dm.batch_transform(images), torch.stack([reference[i][0]
                                                                for i in range(500)]))
    assert dm.classes[int(labels[0])] == reference.classes[int(labels[0])] == "Ankle boot"
    assert MNISTDataModule.classes[0] == "0"


def test_debian_source_reports_a_missing_package(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere/train-images-idx3-ubyte\.gz"):
        fetch_from_debian(tmp_path, debian_dir=tmp_path / "nowhere")


def test_without_the_package_the_error_says_how_to_install_it(tmp_path) -> None:
    debian = FashionMNISTDataModule.sources[0]
    missing = Source(name=debian.name, how_to_enable=debian.how_to_enable,
                     fetch=lambda staging: fetch_from_debian(staging, tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        ensure_raw_files(tmp_path / "data", FASHION_MNIST_FILES, [missing])
    assert not list((tmp_path / "data").rglob("*-ubyte"))  # nothing half-written is left
