"""The LightningModule every network shares: loss, metrics, logging and optimizer set-up."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mnistlab.models.init import WeightInit

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class MNISTClassifier(L.LightningModule):
    """Training, validation and test logic written once for every architecture.

    A subclass builds its layers in ``__init__``, ends it with ``self.init_weights()`` (the
    layers must exist before they can be initialised) and defines ``forward``. ``optimizer`` is a
    partially applied ``torch.optim`` class, completed with the parameters in
    ``configure_optimizers``, so the optimizer config group stays independent of the model.
    """

    def __init__(self, optimizer: OptimizerFactory | None = None,
                 weight_init: WeightInit | None = None, num_classes: int = 10) -> None:
        super().__init__()
        # Keeps every constructor argument (also the subclass's) in the checkpoint, so
        # load_from_checkpoint rebuilds the same network without the Hydra config.
        self.save_hyperparameters(logger=False)
        self.criterion = nn.CrossEntropyLoss()
        self.train_loss, self.val_loss, self.test_loss = MeanMetric(), MeanMetric(), MeanMetric()
        # "micro": the share of images classified right, as the tutorials report it
        # (torchmetrics defaults to the per-class mean, "macro").
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        # Saved in checkpoints, so a resumed run remembers the best accuracy before the resume.
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)

    def init_weights(self) -> None:
        """Apply the configured initialisation scheme to this network's layers."""
        if self.hparams.weight_init is not None:
            self.hparams.weight_init(self)

    def _shared_step(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        images, labels = batch
        logits = self(images)
        return self.criterion(logits, labels), logits.argmax(dim=1), labels

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss, preds, labels = self._shared_step(batch)
        self.train_loss(loss)
        self.train_acc(preds, labels)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, preds, labels = self._shared_step(batch)
        self.val_loss(loss)
        self.val_acc(preds, labels)
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("val/acc", self.val_acc, on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # a couple of batches before training must not count
            return
        self.val_acc_best(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True, prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        loss, preds, labels = self._shared_step(batch)
        self.test_loss(loss)
        self.test_acc(preds, labels)
        self.log("test/loss", self.test_loss, on_step=False, on_epoch=True)
        self.log("test/acc", self.test_acc, on_step=False, on_epoch=True)

    def configure_optimizers(self) -> Any:
        if self.hparams.optimizer is None:
            raise ValueError(f"{type(self).__name__} was built without an optimizer; pass "
                             "optimizer=functools.partial(torch.optim.Adam, lr=1e-3) or pick "
                             "one with optimizer=<name> on the command line")
        return self.hparams.optimizer(params=self.parameters())
