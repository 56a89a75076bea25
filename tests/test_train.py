"""Whole runs: fit, test the best checkpoint, log, reproduce, sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mnistlab.models import MLPBatchNorm
from mnistlab.training import train
from tests.conftest import ROOT


def test_run_tests_the_best_checkpoint_and_logs_to_tensorboard(make_cfg) -> None:
    cfg = make_cfg("model=mlp_bn", "trainer.max_epochs=2")
    result = train(cfg)
    out = Path(cfg.paths.output_dir)
    assert set(result.metrics) >= {"train/loss", "train/acc", "val/loss", "val/acc",
                                   "val/acc_best", "test/loss", "test/acc"}
    assert 0.1 < result.metrics["test/acc"] <= 1
    # Accuracy is the share of images right (2 test batches of 1,000 here), not a class mean.
    assert (result.metrics["test/acc"] * 2000) == pytest.approx(
        round(result.metrics["test/acc"] * 2000), abs=1e-3)
    best = Path(result.best_checkpoint)
    assert best.parent == out / "checkpoints" and best.is_file()
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert result.tensorboard_dirs == [str(out / "tensorboard") + os.sep]
    checkpoint = torch.load(best, weights_only=False)
    assert checkpoint["hyper_parameters"]["hidden"] == [32, 32]
    assert isinstance(MLPBatchNorm.load_from_checkpoint(best, weights_only=False),
                      MLPBatchNorm)
    assert result.metric("val/acc_best") == result.metrics["val/acc_best"]
    with pytest.raises(KeyError, match="optimized_metric='val/f1' was never logged"):
        result.metric("val/f1")


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


def run_cli(*args: str, cwd: Path, data_dir: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"MNISTLAB_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)


def test_command_line_sweep_writes_one_folder_per_job(tmp_path, data_dir) -> None:
    result = run_cli("-m", "model=mlp_sigmoid,mlp_bn", "trainer=debug", "optimizer=adam,sgd",
                     cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    [sweep] = (tmp_path / "outputs" / "multirun").glob("*/*")
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0", "1", "2", "3"]
    assert "model=mlp_bn" in (sweep / "3" / ".hydra" / "overrides.yaml").read_text()


def test_preset_sweep_with_replicates_makes_the_reproduce_table(tmp_path, data_dir) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli("-m", "experiment=seed002_mlp_sigmoid,seed000_mlp_bn", "replicate=0,1",
                     "trainer=cpu", "trainer.max_epochs=1", "+trainer.limit_train_batches=3",
                     "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1",
                     "threads=1", f"hydra.sweep.dir={sweep}", cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    saved = json.loads((sweep / "1" / "result.json").read_text())
    assert (saved["experiment"], saved["seed"]) == ("seed002_mlp_sigmoid", 43)
    assert saved["parameters"] == 15910 and len(saved["epoch_seconds"]) == 1
    out = tmp_path / "table"
    subprocess.run([sys.executable, "-m", "mnistlab.reproduce", str(sweep), "--out", str(out)],
                   check=True, capture_output=True)
    table = (out / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| seed")]
    # In the tutorials' order, each with both seeds and a mean ± std.
    assert [row.split(" | ")[0] for row in rows] == ["| seed000_mlp_bn", "| seed002_mlp_sigmoid"]
    assert "| 1, 2 |" in rows[0] and "| 42, 43 |" in rows[1] and "±" in rows[1]
    assert "83.04%" in rows[0]
    assert (out / "results.csv").read_text().startswith("preset,tutorial reported,test acc")


def test_bad_value_inside_a_sweep_stops_that_job_before_training(tmp_path, data_dir) -> None:
    result = run_cli("-m", "trainer=cpu", "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
                     "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1",
                     "model=mlp_sigmoid", "data.batch_size=16,0", cwd=tmp_path, data_dir=data_dir)
    assert result.returncode != 0
    assert "data.batch_size=0 is invalid" in result.stderr
    [sweep] = (tmp_path / "outputs" / "multirun").glob("*/*")
    assert list((sweep / "0").rglob("events.out.tfevents.*"))  # the good job kept its logs
    assert not list((sweep / "1").rglob("events.out.tfevents.*"))


def test_resumed_run_keeps_its_best_validation_accuracy(make_cfg) -> None:
    first_cfg = make_cfg("model=mlp_bn", "logger=csv")
    first = train(first_cfg)
    last = Path(first_cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=False)["state_dict"]
    assert state["val_acc_best.max_value"].item() == pytest.approx(first.metrics["val/acc_best"])
    resumed = train(make_cfg("model=mlp_bn", "logger=csv", "trainer.max_epochs=2",
                             f"ckpt_path={last}"))
    assert resumed.metrics["val/acc_best"] >= first.metrics["val/acc_best"]


def test_ddp_on_two_cpu_processes_trains_and_reports_once(tmp_path, data_dir) -> None:
    result = run_cli("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                     "model=mlp_bn", "trainer.max_epochs=1", "+trainer.limit_train_batches=4",
                     "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1",
                     cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("test accuracy:") + result.stdout.count("test accuracy:") == 1
    [run] = (tmp_path / "outputs" / "runs").glob("*/*")
    assert (run / "train_ddp_process_1.log").is_file()  # the second rank wrote into the same run
    assert list((run / "checkpoints").glob("epoch_*.ckpt"))


def test_threads_apply_to_one_run_only(make_cfg, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr("mnistlab.training._train",
                        lambda cfg: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    train(make_cfg("threads=1"))
    assert seen == [1] and torch.get_num_threads() == before


@pytest.mark.parametrize("loader", ["memory", "torchvision"])
def test_both_loaders_train_with_augmentation_and_a_schedule(make_cfg, loader: str) -> None:
    result = train(make_cfg(f"data.loader={loader}", "augment=affine", "scheduler=onecycle",
                            "model=cnn", "model.label_smoothing=0.1", "trainer.max_epochs=2"))
    assert 0 < result.metrics["test/acc"] <= 1 and result.parameters == 50186
