"""Learning-rate schedules follow the run's length; label smoothing touches training only."""

from __future__ import annotations

import functools

import pytest
import torch
from hydra.utils import instantiate

from mnistlab.models import CNN
from mnistlab.models.schedules import cosine
from mnistlab.training import train
from tests.conftest import compose_config


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


@pytest.mark.parametrize("name", ["onecycle", "cosine"])
def test_scheduler_configs_instantiate_and_size_from_the_trainer(name: str, make_cfg) -> None:
    cfg = make_cfg(f"scheduler={name}", "model=mlp_sigmoid", "optimizer=sgd",
                   "trainer.max_epochs=2")
    factory = instantiate(cfg.scheduler)
    assert isinstance(factory, functools.partial)
    result = train(cfg)  # 2 epochs x 4 batches: the schedule spans 8 steps
    assert result.metrics["test/acc"] > 0


def test_onecycle_peaks_at_the_optimizer_lr() -> None:
    cfg = compose_config(["scheduler=onecycle", "optimizer.lr=0.003"])
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.003)
    values = lrs(instantiate(cfg.scheduler)(optimizer, total_steps=100), 100)
    assert max(values) == pytest.approx(0.003)
    assert values.index(max(values)) == pytest.approx(25, abs=1)


def test_label_smoothing_changes_the_training_loss_only() -> None:
    torch.manual_seed(0)
    model = CNN(label_smoothing=0.2)
    assert model.train_criterion.label_smoothing == 0.2
    assert model.criterion.label_smoothing == 0.0


def test_a_run_too_short_for_the_schedule_says_how_to_fix_it(make_cfg) -> None:
    # 4 steps: the one-cycle warm-up (a quarter of the run) would last 0 steps.
    cfg = make_cfg("scheduler=onecycle", "model=mlp_sigmoid", "optimizer=sgd")
    with pytest.raises(ValueError, match=r"run of 4 optimizer steps.*scheduler=null"):
        train(cfg)
