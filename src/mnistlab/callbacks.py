"""Callbacks the default config adds to every run."""

from __future__ import annotations

import time

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class EpochTimer(Callback):
    """Log ``time/epoch_s``: seconds of training per epoch, not counting validation.

    Validation runs inside Lightning's training epoch; leaving it out makes the figure compare
    with a plain training loop. ``seconds`` keeps every epoch's figure for benchmarks.
    """

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = self._validation_start = self._validation = 0.0

    @staticmethod
    def _now(pl_module: L.LightningModule) -> float:
        if pl_module.device.type == "cuda":  # kernels run asynchronously; wait for them
            torch.cuda.synchronize(pl_module.device)
        return time.perf_counter()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation = 0.0
        self._start = self._now(pl_module)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation_start = self._now(pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation += self._now(pl_module) - self._validation_start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = self._now(pl_module) - self._start - self._validation
        self.seconds.append(seconds)
        pl_module.log("time/epoch_s", seconds, on_epoch=True)
