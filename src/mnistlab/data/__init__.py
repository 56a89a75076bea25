"""Datasets: where the files come from, how they are checked, and how batches are served."""

from mnistlab.data.augment import RandomAffine
from mnistlab.data.datamodule import MNISTDataModule
from mnistlab.data.fashion import FashionMNISTDataModule
from mnistlab.data.files import DataNotFoundError

__all__ = ["DataNotFoundError", "FashionMNISTDataModule", "MNISTDataModule", "RandomAffine"]
