"""Evaluation under DDP over every image exactly once, with the same number of batches per process.

Lightning's default DistributedSampler pads a split that does not divide by the number of
processes with repeated images (10,000 test images on 3 processes: 3,334 each, two counted
twice), so the accuracy is not the test set's. Lightning's UnrepeatedDistributedSampler does not
repeat, but then processes can run different numbers of batches, and under DDP every forward
pass of a network with buffers (BatchNorm's running statistics) broadcasts them to all processes:
a process with one batch more waits for the others forever.

``EvenShards`` gives process r the images r, r + n, r + 2n, ... and cuts that shard into the
same number of batches on every process (sizes differ by at most one image); the metrics, which
torchmetrics sums over processes, then count each image once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from torch.utils.data import Dataset, DistributedSampler, default_collate


class EvenShards(DistributedSampler):
    """Yields this process's batches of indices; a DistributedSampler, so Lightning keeps it."""

    def __init__(self, dataset: Dataset, batch_size: int, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        size = len(dataset)  # type: ignore[arg-type]
        self.indices = list(range(rank, size, num_replicas))
        self.num_samples = len(self.indices)
        self.total_size = size
        largest = math.ceil(size / num_replicas)
        self.batches = max(1, math.ceil(largest / batch_size))
        if size // num_replicas < self.batches:
            raise ValueError(f"{size} images cannot be split into {self.batches} batches on each "
                             f"of {num_replicas} processes; use fewer processes")

    def __iter__(self) -> Iterator[list[int]]:
        count, extra = divmod(len(self.indices), self.batches)
        start = 0
        for batch in range(self.batches):
            stop = start + count + (batch < extra)
            yield self.indices[start:stop]
            start = stop

    def __len__(self) -> int:
        return self.batches


class Batches(Dataset):
    """A dataset indexed by whole batches of indices, as ``EvenShards`` yields them."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, indices: Sequence[int]) -> Any:
        items = getattr(self.dataset, "__getitems__", None)
        batch = items(list(indices)) if items else [self.dataset[i] for i in indices]
        # ImageTensors (and a Subset of it) return the batch assembled; others a list of samples.
        return default_collate(batch) if isinstance(batch, list) else batch
