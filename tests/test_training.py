"""Whole runs in one process on the tiny set: fit, test the best checkpoint, log, resume."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from mnistlab.checkpoint_files import trained_so_far
from mnistlab.models import MLPBatchNorm
from mnistlab.training import run, train
from tests.helpers import TINY_TEST


def scalars(log_dir: str | os.PathLike[str]) -> dict[str, list[tuple[int, float]]]:
    """Every scalar the run wrote to TensorBoard, read back from its event files."""
    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}


def test_run_tests_the_best_checkpoint_and_logs_to_tensorboard(make_cfg) -> None:
    cfg = make_cfg("model=mlp_bn", "trainer.max_epochs=2", "trainer.limit_test_batches=null")
    result = train(cfg)
    out = Path(cfg.paths.output_dir)
    assert 0.1 < result.metrics["test/acc"] <= 1
    # Accuracy is the share of the 1,000 test images right, not a mean over classes.
    assert result.metrics["test/acc"] * TINY_TEST == pytest.approx(
        round(result.metrics["test/acc"] * TINY_TEST), abs=1e-3)
    best = Path(result.best_checkpoint)
    assert best.parent == out / "checkpoints" and (out / "checkpoints" / "last.ckpt").is_file()
    checkpoint = torch.load(best, weights_only=True)
    # The best checkpoint is the epoch with the highest validation accuracy, and it is tested.
    logged = scalars(out / "tensorboard")
    val_acc = [value for _, value in logged["val/acc"]]
    assert checkpoint["epoch"] == val_acc.index(max(val_acc))
    assert logged["test/acc"][0][1] == pytest.approx(result.metrics["test/acc"])
    assert logged["val/acc_best"][-1][1] == pytest.approx(max(val_acc))
    assert set(logged) == {"train/loss", "train/acc", "train/loss_step", "val/loss", "val/acc",
                           "val/acc_best", "test/loss", "test/acc", "time/epoch_s", "epoch",
                           *(f"test/acc_class/{digit}" for digit in range(10))}
    assert result.tensorboard_dirs == [str(out / "tensorboard") + os.sep]
    assert checkpoint["hyper_parameters"]["hidden"] == [32, 32]
    assert isinstance(MLPBatchNorm.load_from_checkpoint(best, weights_only=True), MLPBatchNorm)
    assert result.metric("val/acc_best") == result.metrics["val/acc_best"]
    with pytest.raises(KeyError, match="optimized_metric='val/f1' was never logged"):
        result.metric("val/f1")


def test_step_loss_is_logged_every_log_every_n_steps(make_cfg) -> None:
    cfg = make_cfg("model=mlp_sigmoid", "trainer.max_epochs=2", "trainer.limit_train_batches=6",
                   "trainer.log_every_n_steps=4")
    train(cfg)
    logged = scalars(Path(cfg.paths.output_dir) / "tensorboard")
    # 12 optimizer steps; the loss of steps 4, 8 and 12 (TensorBoard counts from 0).
    assert [step for step, _ in logged["train/loss_step"]] == [3, 7, 11]
    assert [step for step, _ in logged["train/loss"]] == [5, 11]  # once per epoch
    never = make_cfg("model=mlp_sigmoid", "trainer.log_every_n_steps=0")
    train(never)
    assert "train/loss_step" not in scalars(Path(never.paths.output_dir) / "tensorboard")


@pytest.mark.slow
def test_same_seed_gives_identical_metrics(make_cfg) -> None:
    def learned(seed: int) -> dict[str, float]:
        metrics = train(make_cfg("model=cnn_deep", f"seed={seed}", "logger=csv")).metrics
        return {k: v for k, v in metrics.items() if not k.startswith("time/")}  # wall clock

    runs = [learned(3) for _ in range(2)]
    assert runs[0] == runs[1]
    assert learned(4) != runs[0]


def test_debug_trainer_runs_without_checkpoints(make_cfg) -> None:
    result = train(make_cfg("trainer=debug", "model=mlp_sigmoid", "optimizer=sgd"))
    assert result.best_checkpoint is None
    assert "test/acc" in result.metrics


def test_resumed_run_keeps_its_best_validation_accuracy(make_cfg) -> None:
    first_cfg = make_cfg("model=mlp_bn", "logger=csv")
    first = train(first_cfg)
    last = Path(first_cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)["state_dict"]
    assert state["val_acc_best.max_value"].item() == pytest.approx(first.metrics["val/acc_best"])
    resumed = train(make_cfg("model=mlp_bn", "logger=csv", "trainer.max_epochs=2",
                             f"ckpt_path={last}"))
    assert resumed.metrics["val/acc_best"] >= first.metrics["val/acc_best"]


def test_threads_apply_to_one_run_only(make_cfg, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr("mnistlab.training._train",
                        lambda cfg: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    train(make_cfg("threads=1"))
    assert seen == [1] and torch.get_num_threads() == before


@pytest.mark.slow
@pytest.mark.parametrize("loader", ["memory", "torchvision"])
def test_both_loaders_train_with_augmentation_and_a_schedule(make_cfg, loader: str) -> None:
    result = train(make_cfg(f"data.loader={loader}", "augment=affine", "scheduler=onecycle",
                            "model=cnn", "model.label_smoothing=0.1", "trainer.max_epochs=2"))
    assert 0 < result.metrics["test/acc"] <= 1 and result.parameters == 50186


@pytest.mark.parametrize(("overrides", "message"), [
    (["optimizer=sgd", "optimizer.lr=1e9"], "training diverged: the loss is"),
    (["optimizer=adam", "optimizer.lr=1e-12"], "training is not learning: accuracy"),
])
def test_a_diverging_run_ends_with_status_3_and_records_why(make_cfg, overrides,
                                                            message) -> None:
    cfg = make_cfg("model=mlp_bn", "trainer.limit_train_batches=null", "data.batch_size=32",
                   "callbacks.divergence.chance_after_steps=20", *overrides)
    with pytest.raises(SystemExit) as ended:
        run(cfg)
    assert ended.value.code == 3
    record = json.loads((Path(cfg.paths.output_dir) / "result.json").read_text())
    assert record["status"] == "failed" and record["error"].startswith(message)
    assert "lower the learning rate, e.g. optimizer.lr=" in record["error"]
    assert record["best_checkpoint"] is None


@pytest.mark.slow
def test_max_time_stops_within_the_first_epoch_and_says_so_once(make_cfg) -> None:
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    timer_log = logging.getLogger("lightning.pytorch.utilities.rank_zero")  # Lightning's info
    timer_log.addHandler(handler)
    try:
        cfg = make_cfg("+trainer.max_time=00:00:00:01", "trainer.limit_train_batches=40",
                       "+callbacks.slow._target_=tests.helpers.SlowSteps",
                       "+callbacks.slow.seconds=0.1")
        train(cfg)
    finally:
        timer_log.removeHandler(handler)
    _, steps = trained_so_far(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt")
    assert 0 < steps < 40  # stopped within the epoch (1 s: about 10 steps), not at its end
    assert sum("Time limit reached" in message for message in said) == 1, said
