"""The command line as users type it, on the real MNIST files: sweeps, presets, DDP, errors.

Each test starts real processes, so they are marked slow (`make test-fast` leaves them out).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

from tests.helpers import CONF_DIR, ROOT, run_cli

pytestmark = pytest.mark.slow

# A few real batches per stage: enough to exercise every part of a run (the figures, which
# take a second each, are tested in test_dashboards.py).
SHORT = ["trainer=cpu", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
         "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
         "trainer.enable_progress_bar=false", "callbacks.input_images=null",
         "callbacks.test_report=null"]


def test_help_lists_groups_and_choices(tmp_path, data_dir) -> None:
    result = run_cli("train.py", "--help", cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    for group in ("model", "optimizer", "init", "experiment"):
        line = next(x for x in result.stdout.splitlines() if x.startswith(f"{group}:"))
        assert all(path.stem in line for path in (CONF_DIR / group).glob("*.yaml"))


def test_sweep_jobs_are_named_by_what_differs_in_folders_and_tensorboard(tmp_path,
                                                                         data_dir) -> None:
    result = run_cli("train.py", "-m", "model=mlp_sigmoid,mlp_bn", *SHORT, "optimizer=adam,sgd",
                     cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    [sweep] = (tmp_path / "outputs" / "multirun").glob("*/*")
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_model=mlp_sigmoid,optimizer=adam", "1_model=mlp_sigmoid,optimizer=sgd",
                    "2_model=mlp_bn,optimizer=adam", "3_model=mlp_bn,optimizer=sgd"]
    assert "model=mlp_bn" in (sweep / jobs[3] / ".hydra" / "overrides.yaml").read_text()
    # The sweep's summary: one row per job, its own numbers, best validation accuracy first.
    lines = [line.split(" | ") for line in (sweep / "summary.md").read_text().splitlines()
             if line.startswith("| ")]
    header, rows = [cell.strip("| ") for cell in lines[0]], lines[2:]
    assert header == ["job", "model", "optimizer", "status", "best val acc", "test acc", "epochs",
                      "s/epoch", "total s", "run folder"]
    rows = [dict(zip(header, (cell.strip("| ") for cell in row), strict=True)) for row in rows]
    assert sorted(row["run folder"] for row in rows) == jobs
    for row in rows:
        run = json.loads((sweep / row["run folder"] / "result.json").read_text())
        name = f"{row['job']}_model={row['model']},optimizer={row['optimizer']}"
        assert row["run folder"] == name
        assert row["best val acc"] == f"{100 * run['metrics']['val/acc_best']:.2f}%"
        assert row["test acc"] == f"{100 * run['metrics']['test/acc']:.2f}%"
        assert row["status"] == "completed" and row["epochs"] == "1"
    best = [float(row["best val acc"].rstrip("%")) for row in rows]
    assert best == sorted(best, reverse=True)
    # `tensorboard --logdir <sweep>` lists each run by its folder, with an HPARAMS entry.
    runs = EventMultiplexer().AddRunsFromDirectory(str(sweep))
    runs.Reload()
    assert sorted(runs.Runs()) == [f"{job}/tensorboard" for job in jobs]
    for name, tags in runs.Runs().items():
        assert "_hparams_/session_start_info" in runs.GetAccumulator(name).PluginTagToContent(
            "hparams"), name
        assert "test/acc" in tags["scalars"]


def test_preset_sweep_with_replicates_makes_the_reproduce_table(tmp_path, data_dir) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli("train.py", "-m", "experiment=tutorial002_mlp_sigmoid,tutorial000_mlp_bn",
                     "replicate=0,1", *SHORT, "threads=1", f"hydra.sweep.dir={sweep}",
                     cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_experiment=tutorial002_mlp_sigmoid,replicate=0",
                    "1_experiment=tutorial002_mlp_sigmoid,replicate=1",
                    "2_experiment=tutorial000_mlp_bn,replicate=0",
                    "3_experiment=tutorial000_mlp_bn,replicate=1"]
    saved = json.loads((sweep / jobs[1] / "result.json").read_text())
    assert (saved["experiment"], saved["seed"]) == ("tutorial002_mlp_sigmoid", 43)
    assert saved["tutorial"] == {"id": "002", "reported": "none (train loss 0.198)",
                                 "as_run": True}
    assert saved["parameters"] == 15910 and len(saved["epoch_seconds"]) == 1
    # The sweep's summary: one row per preset, its two seeds as mean ± std, best first.
    table = (sweep / "summary.md").read_text()
    header, _, *rows = [line.split(" | ") for line in table.splitlines()
                        if line.startswith("| ")]
    assert header[:4] == ["| job", "experiment", "status", "n"]
    by_preset = {row[1]: dict(zip(header, row, strict=True)) for row in rows}
    assert sorted(by_preset) == ["tutorial000_mlp_bn", "tutorial002_mlp_sigmoid"]
    for preset, jobs_of_preset in [("tutorial002_mlp_sigmoid", jobs[:2]),
                                   ("tutorial000_mlp_bn", jobs[2:])]:
        row = by_preset[preset]
        accuracies = [json.loads((sweep / job / "result.json").read_text())["metrics"]["test/acc"]
                      for job in jobs_of_preset]
        assert row["n"] == "2" and row["status"] == "2 completed"
        assert row["test acc"] == (f"{100 * statistics.mean(accuracies):.2f} ± "
                                   f"{100 * statistics.stdev(accuracies):.2f}%")
    assert by_preset["tutorial000_mlp_bn"]["tutorial reported"] == "83.04% (unscaled test pixels)"
    assert (sweep / "summary.csv").read_text().startswith("job,experiment,status,n,")


def test_a_new_preset_file_joins_make_reproduce_and_its_table(tmp_path, data_dir) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("train.py", "Makefile"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(CONF_DIR, project / "conf")
    (project / "conf" / "experiment" / "zz_wide_sigmoid.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - override /model: mlp_sigmoid\n"
        "tutorial:\n  id: '002'\n  reported: 12.34%\n  as_run: false\n"
        "model:\n  hidden: [40]\n")
    out = tmp_path / "reproduce"
    args = " ".join([*SHORT, "trainer.limit_train_batches=8"])
    result = subprocess.run(
        ["make", "-o", "install", "reproduce", f"BIN={Path(sys.executable).parent}",
         f"REPRO_OUT={out}", f"ARGS={args}"],
        cwd=project, capture_output=True, text=True, check=False,
        env=os.environ | {"MNISTLAB_DATA_DIR": str(data_dir)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    presets = sorted(p.stem for p in (project / "conf" / "experiment").glob("*.yaml"))
    table = (out / "summary.md").read_text()
    assert f"Command: `make reproduce REPRO_SEEDS=1 REPRO_PRESETS=glob(*) ARGS='{args}'`" in table
    header, _, *rows = [line.split(" | ") for line in table.splitlines()
                        if line.startswith("| ")]
    rows = {row[1]: dict(zip(header, row, strict=True)) for row in rows}
    assert sorted(rows) == presets
    assert rows["zz_wide_sigmoid"]["tutorial reported"] == "12.34% (002, same network)"
    assert rows["tutorial003_cnn"]["tutorial reported"] == "98.74%"
    assert all(row["status"] == "completed" for row in rows.values())


def test_command_line_error_leaves_no_run_folder(tmp_path, data_dir) -> None:
    (tmp_path / "outputs").mkdir()
    earlier = tmp_path / "outputs" / "earlier-result.txt"
    earlier.write_text("kept")
    # Each value's message is tested in test_checks.py; here one, as the command line gives it.
    result = run_cli("train.py", "optimizer.lr=-1", cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: optimizer.lr=-1 is invalid: it must be a finite "
                                    "number > 0")
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["earlier-result.txt"]
    assert earlier.read_text() == "kept"
