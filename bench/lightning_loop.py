"""Column d of ``make bench``: the floor's step run by Lightning's own loop, nothing added.

Kept apart from bench/tutorials.py, whose tutorial loops run in processes that must never
import Lightning.
"""

from __future__ import annotations

import time

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from mnistlab.internals import NoProfiler


class BareStep(L.LightningModule):
    """The floor's step in Lightning's automatic loop: forward, loss, backward, step, no more."""

    def __init__(self, network: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        super().__init__()
        self.network, self.optimizer = network, optimizer
        self.criterion = nn.CrossEntropyLoss()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self.criterion(self.network(batch[0]), batch[1])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.optimizer


class _EpochClock(L.Callback):
    seconds = 0.0

    def on_train_epoch_start(self, *args: object) -> None:
        self.seconds = time.perf_counter()

    def on_train_epoch_end(self, *args: object) -> None:
        self.seconds = time.perf_counter() - self.seconds


def lightning_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: Tensor,
                    labels: Tensor, batch_size: int) -> float:
    """The floor's batches and step run by a bare Lightning Trainer (no logger, checkpoints,
    progress bar or metrics): what Lightning's own loop costs before mnistlab adds anything."""
    batches = [(images[first:first + batch_size], labels[first:first + batch_size])
               for first in range(0, len(images) - batch_size + 1, batch_size)]
    clock = _EpochClock()
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0,
                        profiler=NoProfiler(), callbacks=[clock])
    trainer.fit(BareStep(model, optimizer), DataLoader(batches, batch_size=None))
    return clock.seconds
