"""The training loss and accuracy of the epoch so far, kept as three running sums."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric


class TrainingTotals(Metric):
    """Sum of losses, images right and images seen over the training epoch so far.

    torchmetrics' MeanMetric and MulticlassAccuracy check and reshape their inputs and keep
    per-class counts on every update; on a small MLP at batch 32 that is a large share of a
    step's framework cost. Here a step only keeps its (detached) loss, logits and labels; every
    ``fold_every`` steps, and before the sums are read, synced or saved, they are added to the
    three sums at once (nothing waits for the device in between). ``compute`` sums them over
    DDP processes, and the sums are saved in checkpoints, so an epoch resumed midway reports
    what an uninterrupted one would.
    """

    full_state_update = False

    def __init__(self, fold_every: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # float32, not float64: Apple's MPS has no float64 (an epoch's sum loses < 1e-5).
        self.add_state("loss_sum", torch.zeros(()), dist_reduce_fx="sum", persistent=True)
        self.add_state("correct", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum",
                       persistent=True)
        self.add_state("count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum",
                       persistent=True)
        self.fold_every = fold_every
        self._pending: list[tuple[Tensor, Tensor, Tensor]] = []

    def update(self, loss: Tensor, logits: Tensor, labels: Tensor) -> None:
        """Keep one batch: its mean loss, its logits and its labels."""
        self._pending.append((loss.detach(), logits.detach(), labels))
        if len(self._pending) >= self.fold_every:
            self._fold()

    def _fold(self) -> None:
        """Add the kept batches to the sums, each loss weighted by its batch's size."""
        if not self._pending:
            return
        losses, logits, labels = zip(*self._pending, strict=True)
        self._pending = []
        sizes = [len(batch) for batch in labels]
        weights = torch.tensor(sizes, dtype=losses[0].dtype, device=losses[0].device)
        self.loss_sum.add_(torch.dot(torch.stack(losses).to(weights.dtype), weights))
        self.correct.add_((torch.cat(logits).argmax(dim=1) == torch.cat(labels)).sum())
        self.count.add_(sum(sizes))

    def compute(self) -> dict[str, Tensor]:
        self._fold()
        count = self.count.clamp(min=1)
        return {"loss": self.loss_sum / count, "acc": self.correct / count}

    def sync(self, *args: Any, **kwargs: Any) -> None:
        self._fold()  # before the sums are gathered from the other processes
        super().sync(*args, **kwargs)

    def reset(self) -> None:
        self._pending = []
        super().reset()

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._fold()  # a checkpoint holds every finished step
        return super().state_dict(*args, **kwargs)
