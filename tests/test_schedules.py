"""Learning-rate schedules follow the run's length; label smoothing touches training only."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from mnistlab.build import build
from mnistlab.models.schedules import cosine
from mnistlab.training import train
from tests.helpers import CONF_DIR, compose


def lrs(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int) -> list[float]:
    values = []
    for _ in range(steps):
        values.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return values


def sgd(lr: float = 0.1) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_cosine_decays_to_eta_min_after_a_linear_warmup() -> None:
    values = lrs(cosine(sgd(), total_steps=10, warmup_steps=2, eta_min=0.01), 11)
    assert values[0] == pytest.approx(0.05) and values[2] == pytest.approx(0.1)
    assert values[2:] == sorted(values[2:], reverse=True)
    assert values[-1] == pytest.approx(0.01)
    plain = lrs(cosine(sgd(), total_steps=4), 5)
    assert plain[0] == pytest.approx(0.1) and plain[-1] == pytest.approx(0.0, abs=1e-12)


class LearningRates(L.Callback):
    """The learning rate each training step ran with."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, *args) -> None:
        self.values.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.mark.parametrize("name", ["onecycle", "cosine"])
def test_schedule_spans_exactly_the_runs_optimizer_steps(name: str, make_cfg) -> None:
    cfg = make_cfg(f"scheduler={name}", "model=mlp_sigmoid", "optimizer=sgd",
                   "optimizer.lr=0.1", "trainer.max_epochs=2")
    datamodule, model, trainer = build(cfg)
    recorder = LearningRates()
    trainer.callbacks.append(recorder)
    trainer.fit(model, datamodule=datamodule)
    # 2 epochs x 4 batches: the schedule, sized for exactly 8 steps, ran to its end.
    expected = lrs(instantiate(cfg.scheduler)(sgd(0.1), total_steps=8), 8)
    assert recorder.values == pytest.approx(expected)
    assert max(recorder.values) == pytest.approx(0.1)


def test_onecycle_peaks_at_the_optimizer_lr() -> None:
    cfg = compose("scheduler=onecycle", "optimizer.lr=0.003")
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.003)
    values = lrs(instantiate(cfg.scheduler)(optimizer, total_steps=100), 100)
    assert max(values) == pytest.approx(0.003)
    assert values.index(max(values)) == pytest.approx(25, abs=1)


class Losses(L.Callback):
    """Each step's loss beside the cross-entropy of the same logits, with and without smoothing.

    The logits are computed before the step changes any weight (mlp_sigmoid has no dropout, so
    training and evaluation mode give the same logits).
    """

    def __init__(self, smoothing: float) -> None:
        self.smoothing = smoothing
        self.train: list[tuple[float, float, float]] = []
        self._expected = (0.0, 0.0)

    def _logits_losses(self, pl_module, batch) -> tuple[float, float]:
        images, labels = batch
        with torch.no_grad():
            logits = pl_module(images)
        return (F.cross_entropy(logits, labels).item(),
                F.cross_entropy(logits, labels, label_smoothing=self.smoothing).item())

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._expected = self._logits_losses(pl_module, batch)

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        self.train.append((loss.item(), *self._expected))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args) -> None:
        self.val = self._logits_losses(pl_module, batch)


def test_label_smoothing_changes_the_training_loss_only(make_cfg) -> None:
    # Float32: the recorder recomputes each loss from float32 logits.
    cfg = make_cfg("model=mlp_sigmoid", "model.label_smoothing=0.3", "trainer.limit_val_batches=1",
                   "trainer.num_sanity_val_steps=0", "trainer.precision=32-true")
    datamodule, model, trainer = build(cfg)
    recorder = Losses(smoothing=0.3)
    trainer.callbacks.append(recorder)
    trainer.fit(model, datamodule=datamodule)
    for loss, plain, smoothed in recorder.train:
        assert loss == pytest.approx(smoothed, rel=1e-5) and loss != pytest.approx(plain)
    # Validation reports the plain cross-entropy, so runs with and without smoothing compare.
    assert trainer.callback_metrics["val/loss"].item() == pytest.approx(recorder.val[0], rel=1e-5)


def test_a_run_too_short_for_the_schedule_says_how_to_fix_it(make_cfg) -> None:
    # 4 steps: the one-cycle warm-up (a quarter of the run) would last 0 steps.
    cfg = make_cfg("scheduler=onecycle", "model=mlp_sigmoid", "optimizer=sgd")
    with pytest.raises(ValueError, match=r"run of 4 optimizer steps.*~scheduler"):
        train(cfg)


@pytest.mark.parametrize("choice", sorted(p.stem for p in (CONF_DIR / "optimizer").glob("*.yaml")))
def test_one_cycle_takes_every_optimizer_and_adds_no_momentum(choice: str) -> None:
    """Adagrad and Adadelta have no momentum to cycle (torch's OneCycleLR refuses them); plain
    SGD and RMSprop keep momentum 0; Adam's beta1 and SGD's momentum cycle."""
    cfg = compose(f"optimizer={choice}", "scheduler=onecycle")
    optimizer = instantiate(cfg.optimizer)([torch.nn.Parameter(torch.zeros(1))])
    before = dict(optimizer.param_groups[0])
    schedule = instantiate(cfg.scheduler)(optimizer, total_steps=100)
    for _ in range(50):
        optimizer.step()
        schedule.step()
    group = optimizer.param_groups[0]
    assert group["max_lr"] == pytest.approx(cfg.optimizer.lr)
    if before.get("momentum", 0) == 0 and "betas" not in before:
        assert group.get("momentum", 0) == before.get("momentum", 0)
    else:
        cycled = group["betas"][0] if "betas" in group else group["momentum"]
        assert 0.85 <= cycled <= 0.95
