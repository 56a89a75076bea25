"""A training loader that a checkpoint can stop partway through an epoch and resume exactly.

Lightning resumes a mid-epoch checkpoint at the right step count but restarts the data from a
new shuffle, so a run killed and resumed trains on other batches than one never stopped. Here
the loader saves, in every checkpoint, the epoch's shuffle seed, how many samples the finished
steps used, and the random number generators' states; on resume it replays the same order from
that point and puts the generators back, so augmentation and dropout draw the same numbers.

Each epoch's seed is drawn from torch's global generator when the epoch starts, exactly as
``RandomSampler`` draws it, so a run shuffles the same as with ``shuffle=True``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch import Tensor
from torch.utils.data import DataLoader, Sampler, Subset

from mnistlab.data.tensors import ImageTensors
from mnistlab.internals import saved_loader_state


def rng_states() -> dict[str, Any]:
    """The global generators' states, as plain data (tensors, lists and numbers)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), position, has_gauss, gauss],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _draw_seed() -> int:
    return int(torch.empty((), dtype=torch.int64).random_().item())


class ResumableBatchSampler(Sampler[Tensor]):
    """RandomSampler's shuffle (no replacement) in batches of indices, resumable from a position.

    Each batch is one slice of the epoch's permutation, an index tensor: the dataset gathers
    it in one operation, with no Python loop over the batch's indices. ``indices`` maps the
    permutation's positions to the dataset's (a ``Subset``'s indices), so a loader can index
    the images behind a Subset directly; the batches are the same as a ``BatchSampler`` over
    a ``RandomSampler`` of the Subset would draw. The epoch's order is moved to ``device`` once
    (where the images are: a GPU keeps them there), so no step copies indices to it.
    """

    def __init__(self, size: int, batch_size: int, drop_last: bool = False,
                 indices: Tensor | None = None, device: torch.device | None = None) -> None:
        self.size, self.batch_size, self.drop_last = size, batch_size, drop_last
        self.indices, self.device = indices, device
        self.seed: int | None = None
        self._resume: dict[str, Any] | None = None

    def __len__(self) -> int:
        if self.drop_last:
            return self.size // self.batch_size
        return -(-self.size // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        resume, self._resume = self._resume, None
        skip = 0
        if resume is None:
            self.seed = _draw_seed()
        else:
            set_rng_states(resume["rng"])  # as they were when the checkpoint was saved
            if resume["epoch_done"]:  # saved at an epoch's end: this is the next epoch
                # The uninterrupted run drew the new iterator's base seed, then this seed.
                _draw_seed()
                self.seed = _draw_seed()
            else:
                self.seed, skip = resume["seed"], resume["samples"]
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        order = torch.randperm(self.size, generator=generator)[skip:]
        if self.indices is not None:
            order = self.indices[order]
        if self.device is not None:
            order = order.to(self.device)
        # skip is a whole number of batches, so the last batch is the same short one.
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for first in range(0, stop, self.batch_size):
            yield order[first:first + self.batch_size]


class ResumableLoader(DataLoader):
    """A shuffling DataLoader whose position Lightning saves and restores with checkpoints.

    ``progress`` returns (training batches finished in this epoch, batches in an epoch), as the
    trainer counts them; the loader itself runs ahead by the batches it prefetches. A Subset
    of ``ImageTensors`` is read through its images directly (see ResumableBatchSampler).
    """

    def __init__(self, dataset: Any, *, batch_size: int, drop_last: bool = False,
                 progress: Callable[[], tuple[int, int]], **kwargs: Any) -> None:
        size, indices = len(dataset), None
        if isinstance(dataset, Subset) and isinstance(dataset.dataset, ImageTensors):
            dataset, indices = dataset.dataset, torch.as_tensor(dataset.indices)
        device = dataset.images.device if isinstance(dataset, ImageTensors) else None
        sampler = ResumableBatchSampler(size, batch_size, drop_last, indices, device)
        super().__init__(dataset, batch_sampler=sampler, **kwargs)
        self.progress = progress

    def state_dict(self) -> dict[str, Any]:
        done, per_epoch = self.progress()
        return {"seed": self.batch_sampler.seed,
                "samples": done * self.batch_sampler.batch_size,
                "epoch_done": done >= per_epoch, "rng": rng_states()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_sampler._resume = state


class RestoreLoaderState(Callback):
    """Hand the checkpoint's loader state to the datamodule, also for end-of-epoch checkpoints.

    Lightning gives a stateful loader its saved state only when it resumes partway through an
    epoch; resuming at an epoch's end must still put the random number generators back.
    """

    def on_load_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]
                           ) -> None:
        state = saved_loader_state(checkpoint)
        if state is not None and trainer.datamodule is not None:
            trainer.datamodule.resume_state = state
