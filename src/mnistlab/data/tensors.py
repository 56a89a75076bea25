"""The in-memory data path: whole batches gathered from one uint8 tensor.

torchvision's MNIST turns every image into a PIL image and back into a tensor, one sample at a
time; on a small CPU that costs more than training a small MLP. Here the decoded images stay in
memory as uint8 (47 MB for MNIST's training images) and each batch is one indexing operation.
Scaling and normalisation then run on the whole batch, on the device it trains on (see
``MNISTDataModule.on_after_batch_transfer``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset


class ImageTensors(Dataset):
    """uint8 images (N, 1, H, W) and int64 labels (N,), served a batch at a time.

    The DataLoader calls ``__getitems__`` with the sampler's indices for one batch, so shuffling,
    ``drop_last`` and the DistributedSampler Lightning puts in under DDP all work as usual; pair
    it with ``collate=keep_batch`` because the batch is already assembled.
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"expected uint8 images shaped (N, C, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        # Built where the images are: on a GPU the batch is gathered there, with no copy of
        # image data from the host.
        # index_select, not images[index]: the same rows, without advanced indexing's set-up
        # (on a CPU about 5 us against 20-50 us a batch, a large share of a small MLP's step).
        index = torch.as_tensor(indices, device=self.images.device)
        return self.images.index_select(0, index), self.labels.index_select(0, index)

    def to(self, device: torch.device | str) -> ImageTensors:
        """The same images and labels on ``device`` (the training set on a GPU: 47 MB)."""
        return ImageTensors(self.images.to(device), self.labels.to(device))


def keep_batch(batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """Collate function for ``ImageTensors``: the batch arrives whole, so pass it through."""
    return batch
