"""Callbacks the default config adds to every run: timing, and what TensorBoard shows."""

from __future__ import annotations

import re
import time
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, RichProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from matplotlib.figure import Figure
from torch import Tensor
from torchmetrics.classification import MulticlassConfusionMatrix

from mnistlab.figures import digit_grid, rendered
from mnistlab.internals import skip_hook_from_now_on


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

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run resumed within an epoch starts there, without on_train_epoch_start: its first
        # figure is the time of the rest of that epoch.
        self._validation = 0.0
        self._start = self._now(pl_module)

    on_train_epoch_start = on_train_start

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation_start = self._now(pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation += self._now(pl_module) - self._validation_start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = self._now(pl_module) - self._start - self._validation
        self.seconds.append(seconds)
        # Under DDP: the mean over processes.
        pl_module.log("time/epoch_s", seconds, on_epoch=True, sync_dist=True)


class ProgressBar(RichProgressBar):
    """Lightning's Rich progress bar, updated at most ``refresh_per_second`` times a second.

    Lightning's bar updates its task and re-reads every logged metric after each batch, and
    its drawing thread wakes 100 times a second; for a small MLP at batch 32 (1,700 steps in a
    few seconds) that is a large share of each step. The screen cannot show more than a few
    updates a second anyway; the last batch of an epoch is always shown.
    """

    def __init__(self, refresh_per_second: int = 10, leave: bool = False) -> None:
        super().__init__(refresh_rate=refresh_per_second, leave=leave)
        self._interval = 1 / refresh_per_second if refresh_per_second > 0 else 0.0
        self._next_update = 0.0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        now = time.monotonic()
        if now < self._next_update and batch_idx + 1 < self.total_train_batches:
            return
        self._next_update = now + self._interval
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


def _tensorboards(trainer: L.Trainer) -> list[TensorBoardLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]


class InputImages(Callback):
    """A labelled grid of the first training batch, as the network sees it (augmented).

    Shows at a glance whether augmentation and scaling do what was meant. Normalisation is
    undone for display only. The batch is kept at the first step and drawn when the epoch ends,
    after the epoch timer has stopped, so drawing does not count as training time.
    """

    def __init__(self, count: int = 32) -> None:
        self.count = count
        self._batch: tuple[Tensor, Tensor] | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        # Only a run's first batch can be drawn (a resumed run starts later).
        skip_hook_from_now_on(self, "on_train_batch_start")
        if trainer.current_epoch or batch_idx or not self.count or trainer.global_rank != 0:
            return
        if _tensorboards(trainer):
            images, labels = batch
            self._batch = (images[:self.count].detach().clone(), labels[:self.count].clone())

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._batch is None:
            return
        images, labels = self._batch
        self._batch = None
        datamodule = trainer.datamodule
        titles = [datamodule.classes[int(label)] for label in labels]
        grid = rendered(digit_grid(datamodule.to_pixels(images), titles))
        for logger in _tensorboards(trainer):
            logger.experiment.add_image("images/train_inputs", grid, 0, dataformats="HWC")


class EvaluationReport(Callback):
    """After testing: misclassified digits, the confusion matrix and per-class accuracy.

    Misclassified images are titled true -> predicted; the confusion matrix is torchmetrics'
    own (synced across processes) and its plot; per-class accuracies are logged as scalars
    ``<stage>/acc_class/<class>``. Each part can be switched off.
    """

    def __init__(self, misclassified: int = 32, confusion_matrix: bool = True,
                 per_class: bool = True) -> None:
        self.misclassified = misclassified
        self.confusion_matrix = confusion_matrix
        self.per_class = per_class
        self._matrix: MulticlassConfusionMatrix | None = None
        self._wrong: list[tuple[Tensor, int, int]] = []

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        classes = len(trainer.datamodule.classes)
        self._matrix = MulticlassConfusionMatrix(classes, validate_args=False).to(
            pl_module.device)
        self._wrong = []

    def on_test_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                          batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        images, labels = batch
        predicted = outputs["logits"].argmax(dim=1)
        self._matrix.update(predicted, labels)
        missing = self.misclassified - len(self._wrong)
        if missing > 0:
            wrong = (predicted != labels).nonzero().flatten()[:missing]
            self._wrong += [(images[i].detach().cpu(), int(labels[i]), int(predicted[i]))
                            for i in wrong]

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        matrix = self._matrix.compute()
        classes = list(trainer.datamodule.classes)
        stage = getattr(pl_module, "test_prefix", "test")
        if self.per_class:
            correct = matrix.diag().float() / matrix.sum(dim=1).clamp(min=1)
            # The same on every DDP process (compute() synced the matrix); max keeps it exact.
            pl_module.log_dict({f"{stage}/acc_class/{_tag(name)}": value
                                for name, value in zip(classes, correct, strict=True)},
                               sync_dist=True, reduce_fx="max")
        if trainer.global_rank != 0 or not _tensorboards(trainer):
            return
        figures: dict[str, np.ndarray] = {}  # drawn once, whatever the number of loggers
        if self.confusion_matrix:
            figure = Figure(figsize=(7, 7), layout="constrained")  # not pyplot's: kept by none
            self._matrix.plot(val=matrix.cpu(), labels=classes, ax=figure.add_subplot())
            figures[f"figures/{stage}_confusion_matrix"] = rendered(figure)
        if self._wrong:
            images = trainer.datamodule.to_pixels(torch.stack([w[0] for w in self._wrong]))
            titles = [f"{classes[true]} -> {classes[guess]}" for _, true, guess in self._wrong]
            figures[f"images/{stage}_misclassified"] = rendered(digit_grid(images, titles))
        for logger in _tensorboards(trainer):
            for tag, image in figures.items():
                logger.experiment.add_image(tag, image, trainer.global_step, dataformats="HWC")


def _tag(name: str) -> str:
    """A class name as a TensorBoard tag part ("T-shirt/top" -> "T-shirt_top")."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)
