"""The LightningModule every network shares: loss, metrics, logging and optimizer set-up."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from mnistlab.internals import DirectHookName
from mnistlab.models.init import WeightInit
from mnistlab.models.totals import TrainingTotals

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
# Called as factory(optimizer, total_steps=...); the schedule is stepped after every batch.
SchedulerFactory = Callable[..., torch.optim.lr_scheduler.LRScheduler]


class MNISTClassifier(DirectHookName, L.LightningModule):
    """Training, validation and test logic written once for every architecture.

    A subclass builds its layers in ``__init__``, ends it with ``self.init_weights()`` (the
    layers must exist before they can be initialised) and defines ``forward``. ``optimizer`` is a
    partially applied ``torch.optim`` class, completed with the parameters in
    ``configure_optimizers``, so the optimizer config group stays independent of the model.
    Optimizer, init and schedule are not hyperparameters of the saved network: checkpoints keep
    the network's own arguments, plus ``checkpoint_info`` (the run's config as plain data, the
    normalisation and class names; see ``mnistlab.checkpoints``), so they load as plain data.
    ``scheduler`` likewise gets the optimizer and the run's number of optimizer steps, so a
    schedule follows the epochs, the batch size and ``limit_train_batches`` (through Lightning's
    ``estimated_stepping_batches``) without being configured twice.
    ``label_smoothing`` applies to the training loss only; validation and test report plain
    cross-entropy so that runs with and without it compare.
    """

    def __init__(self, optimizer: OptimizerFactory | None = None,
                 weight_init: WeightInit | None = None, num_classes: int = 10,
                 scheduler: SchedulerFactory | None = None,
                 label_smoothing: float = 0.0) -> None:
        super().__init__()
        # Keeps the network's constructor arguments (also the subclass's) in the checkpoint, so
        # load_from_checkpoint rebuilds the same network without the Hydra config.
        self.save_hyperparameters(logger=False, ignore=["optimizer", "weight_init", "scheduler"])
        self.optimizer_factory, self.weight_init, self.scheduler_factory = (optimizer, weight_init,
                                                                            scheduler)
        # Written into every checkpoint under "mnistlab" (build() sets it for a training run).
        self.checkpoint_info: dict[str, Any] | None = None
        # The stage name test metrics are logged under; evaluation of the validation split
        # sets "val" so its numbers are not mistaken for test numbers.
        self.test_prefix = "test"
        self.train_criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        # Validation and test losses are means over images, not over batches, so they do not
        # depend on the batch size (a short last batch, DDP's shards). MeanMetric's ``weight``
        # cannot do this: with nan_strategy="disable" torchmetrics ignores it.
        self.per_image_loss = nn.CrossEntropyLoss(reduction="none")
        # Metrics are only updated per step and computed once per epoch: a metric's forward()
        # or a self.log() on every step costs more than a small MLP's whole step on a CPU.
        # Training steps only add to three sums (TrainingTotals, saved in checkpoints so an
        # epoch resumed midway reports the same numbers); evaluation batches are large, so
        # they keep torchmetrics' own metrics, without per-batch input checks.
        self.train_totals = TrainingTotals()
        self.val_loss, self.test_loss = (MeanMetric(nan_strategy="disable") for _ in range(2))
        # "micro": the share of images classified right, as the tutorials report it
        # (torchmetrics defaults to the per-class mean, "macro").
        self.val_acc, self.test_acc = (
            MulticlassAccuracy(num_classes, average="micro", validate_args=False)
            for _ in range(2))
        # Saved in checkpoints, so a resumed run remembers the best accuracy before the resume.
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)

    def init_weights(self) -> None:
        """Apply the configured initialisation scheme to this network's layers."""
        if self.weight_init is not None:
            self.weight_init(self)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, labels = batch
        logits = self(images)
        loss = self.train_criterion(logits, labels)
        self.train_totals.update(loss, logits, labels)
        # Only on the steps the loggers write (every trainer.log_every_n_steps; 0 for never).
        every = self.trainer.log_every_n_steps
        if every and (self.global_step + 1) % every == 0:
            self.log("train/loss_step", loss.detach())
        return loss

    def on_train_epoch_end(self) -> None:
        # Values, not metric objects: compute() has already summed the processes' totals, and
        # sync_dist only averages equal numbers (it keeps Lightning's DDP hint away).
        totals = self.train_totals.compute()
        self.log_dict({"train/loss": totals["loss"], "train/acc": totals["acc"]}, prog_bar=True,
                      sync_dist=True)
        self.train_totals.reset()

    def _evaluate(self, batch: tuple[Tensor, Tensor], loss: MeanMetric,
                  accuracy: MulticlassAccuracy) -> Tensor:
        """Update an evaluation stage's metrics with one batch; return its logits."""
        images, labels = batch
        logits = self(images)
        loss.update(self.per_image_loss(logits, labels))
        accuracy.update(logits.argmax(dim=1), labels)
        return logits

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_loss, self.val_acc)

    def on_validation_epoch_end(self) -> None:
        accuracy = self._log_epoch("val", self.val_loss, self.val_acc)
        if self.trainer.sanity_checking:  # a couple of batches before training must not count
            return
        self.val_acc_best(accuracy)
        # The same value on every process (val_acc is synced); max keeps it exact, and a
        # MaxMetric logged as an object would be reset by Lightning after each epoch.
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True, reduce_fx="max",
                 prog_bar=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """Returns the logits, for callbacks that report on the predictions (figures, images)."""
        return {"logits": self._evaluate(batch, self.test_loss, self.test_acc)}

    def on_test_epoch_end(self) -> None:
        self._log_epoch(self.test_prefix, self.test_loss, self.test_acc)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.checkpoint_info is not None:
            checkpoint["mnistlab"] = self.checkpoint_info

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.checkpoint_info = checkpoint.get("mnistlab", self.checkpoint_info)

    def _log_epoch(self, stage: str, loss: MeanMetric, accuracy: MulticlassAccuracy) -> Tensor:
        """Log the epoch's mean loss and accuracy; return the accuracy.

        The metric objects are logged, not their values: torchmetrics sums their states over
        DDP processes once, in ``compute``, and Lightning resets them after the epoch. (A value
        logged without ``sync_dist`` draws Lightning's "use sync_dist=True" hint under DDP,
        and with it would be averaged again although it is already the total's.)
        """
        prog_bar = stage == "train" or not self.trainer.testing
        self.log(f"{stage}/loss", loss, prog_bar=prog_bar)
        self.log(f"{stage}/acc", accuracy, prog_bar=prog_bar)
        return accuracy.compute()

    def configure_optimizers(self) -> Any:
        if self.optimizer_factory is None:
            raise ValueError(f"{type(self).__name__} was built without an optimizer; pass "
                             "optimizer=functools.partial(torch.optim.Adam, lr=1e-3) or pick "
                             "one with optimizer=<name> on the command line")
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        try:
            scheduler = self.scheduler_factory(optimizer, total_steps=total_steps)
        except (ZeroDivisionError, ValueError) as err:  # e.g. one-cycle phases of zero steps
            if isinstance(err, ValueError) and "total_steps" not in str(err):
                raise
            raise ValueError(f"the learning-rate schedule cannot span a run of {total_steps} "
                             f"optimizer steps ({type(err).__name__}: {err}); train for more "
                             "steps (trainer.max_epochs, trainer.limit_train_batches) or drop "
                             "the schedule with ~scheduler") from err
        # "name" is the tag Lightning's LearningRateMonitor logs the rate under.
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "train/lr"}}
