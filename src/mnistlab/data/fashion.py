"""Fashion-MNIST: Zalando's ten clothing classes in MNIST's layout, a harder drop-in dataset.

Only the name, the files, their checksums, the pixel statistics and the class names differ from
MNIST, so the datamodule is MNIST's with those attributes replaced.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

from torchvision import datasets

from mnistlab.data.datamodule import MNISTDataModule, torchvision_source
from mnistlab.data.files import RawFiles, Source

FASHION_MNIST_FILES = RawFiles(
    folder="FashionMNIST",
    files={
        "train-images-idx3-ubyte": (47040016, "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        "train-labels-idx1-ubyte": (60008, "9018921c3c673c538a1fc5bad174d6f9"),
        "t10k-images-idx3-ubyte": (7840016, "8181f5470baa50b63fa0f6fddb340f0a"),
        "t10k-labels-idx1-ubyte": (10008, "15d484375f8d13e6eb1aabb0c3f46965"),
    },
)

# Debian's package dataset-fashion-mnist installs the official gzip files here.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def fetch_from_debian(staging: Path, debian_dir: Path = DEBIAN_DIR) -> Path:
    """Decompress the Debian package's files into ``staging`` (they are checked afterwards)."""
    for name in FASHION_MNIST_FILES.files:
        packed = debian_dir / f"{name}.gz"
        if not packed.is_file():
            raise FileNotFoundError(f"{packed} does not exist")
        with gzip.open(packed) as src, (staging / name).open("wb") as dst:
            shutil.copyfileobj(src, dst)
    return staging


FASHION_MNIST_SOURCES = (
    Source(
        name=f"Debian package dataset-fashion-mnist ({DEBIAN_DIR})",
        fetch=fetch_from_debian,
        how_to_enable="install Debian's package: apt-get install dataset-fashion-mnist, and run "
                      "again;",
    ),
    torchvision_source(datasets.FashionMNIST),
)


class FashionMNISTDataModule(MNISTDataModule):
    """Fashion-MNIST with the same split, loaders and batch transform as MNIST."""

    files = FASHION_MNIST_FILES
    dataset_cls = datasets.FashionMNIST
    sources = FASHION_MNIST_SOURCES
    # Pixel mean and std of the 60,000 official training images, after ToTensor.
    mean = 0.2860
    std = 0.3530
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
