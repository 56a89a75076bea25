"""Faults at run time, with real processes: used run folders, divergence, signals, resume,
data folders. Each is recorded honestly and says what to do."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
import torch

from tests import zygote
from tests.helpers import ROOT, run_cli
from tests.test_checks import snapshot

pytestmark = pytest.mark.slow

def test_divergence_stops_the_run_and_records_it(tmp_path, data_dir) -> None:
    """As the command line meets it; the other kinds of divergence: test_training.py."""
    message = "training diverged: the loss is nan at step"
    # A constant lr: the one-cycle schedule would start 25x lower and might not diverge. Float32:
    # in bfloat16 BatchNorm keeps this loss finite (about 1e25) instead of NaN.
    result = run_cli("train.py", "model=mlp_bn", "~scheduler", "trainer=cpu",
                     "trainer.precision=32-true", "trainer.max_epochs=1",
                     "trainer.enable_progress_bar=false", "hydra.run.dir=run", "optimizer=sgd",
                     "optimizer.lr=1e6", cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 3, result.stderr
    assert message in result.stdout + result.stderr
    record = json.loads((tmp_path / "run" / "result.json").read_text())  # valid JSON
    assert record["status"] == "failed" and record["error"].startswith(message)
    assert "lower the learning rate, e.g. optimizer.lr=" in record["error"]
    assert record["best_checkpoint"] is None


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_a_checkpoint_and_says_how_to_resume(signum, code, tmp_path,
                                                            data_dir) -> None:
    # The run signals itself after step 7: a real signal, at a known point of training.
    result = run_cli("train.py", "model=mlp_bn", "trainer=cpu", "trainer.max_epochs=50",
                     "trainer.enable_progress_bar=false", "hydra.run.dir=run",
                     "+callbacks.signal._target_=tests.helpers.KillAtStep",
                     "+callbacks.signal.step=7", f"+callbacks.signal.signum={int(signum)}",
                     cwd=tmp_path, data_dir=data_dir)
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["status"] == "interrupted"
    assert record["error"] == (f"{signal.Signals(signum).name} received; stopped after the "
                               f"current step, saved {last}")
    assert f"resume with: python {ROOT / 'train.py'} resume={tmp_path / 'run'}" in output
    assert torch.load(last, weights_only=True)["global_step"] == 7  # the step it arrived in


def test_runs_that_change_folder_share_one_data_copy(tmp_path, data_dir) -> None:
    (tmp_path / "data").symlink_to(data_dir)  # a relative data folder, as users have it
    result = zygote.run("train.py", ["trainer=debug", "model=mlp_sigmoid",
                                     "hydra.job.chdir=true", "hydra.run.dir=run"],
                        tmp_path, os.environ | {"MNISTLAB_DATA_DIR": "data"})
    assert result.returncode == 0, result.stderr
    assert "need fetching" not in result.stdout + result.stderr
    assert not (tmp_path / "run" / "data").exists()


def test_a_data_folder_that_is_a_file_is_one_line_not_a_traceback(tmp_path) -> None:
    (tmp_path / "datafile").write_text("not a folder")
    result = run_cli("train.py", "trainer=debug", cwd=tmp_path, data_dir=tmp_path / "datafile")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"Error: {tmp_path / 'datafile'} is a file, so MNIST data cannot be kept in")
    assert "Traceback" not in result.stderr


def test_a_used_folder_is_refused_and_a_run_goes_on_in_its_own_folder(tmp_path,
                                                                      data_dir) -> None:
    """A second run into a folder that holds one is refused and changes nothing; resume=<folder>
    goes on with the run's own config in its folder; ckpt_path=<its last.ckpt> too."""
    # ~scheduler: a constant lr, so that the run can be lengthened on resume.
    short = ["model=mlp_bn", "~scheduler", "trainer=cpu", "trainer.max_epochs=1",
             "trainer.limit_train_batches=5", "trainer.limit_val_batches=1",
             "trainer.limit_test_batches=1", "callbacks.input_images=null",
             "callbacks.test_report=null", "hydra.run.dir=run"]
    first = run_cli("train.py", *short, cwd=tmp_path, data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    config = (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
    before = snapshot(tmp_path / "run")
    again = run_cli("train.py", *short, cwd=tmp_path, data_dir=data_dir)
    assert again.returncode == 2
    assert again.stderr.startswith(f"Error: hydra.run.dir={tmp_path / 'run'} already holds "
                                   "another run (result.json, .hydra/config.yaml, checkpoints)")
    # Each resume refusal is tested in test_resume.py; here one, as the command line gives it.
    refused = run_cli("train.py", "resume=run", "model=cnn", cwd=tmp_path, data_dir=data_dir)
    assert refused.returncode == 2 and refused.stderr.startswith(
        "Error: resume=run goes on with the run's own config, but model=cnn would change what "
        "it trains."), refused.stderr
    assert snapshot(tmp_path / "run") == before
    # A finished run is never rewritten: resume= or ckpt_path= with nothing left to train.
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    elsewhere = [*short[:-1], f"ckpt_path={last}", "hydra.run.dir=elsewhere"]
    for going_on in (["resume=run"], elsewhere):
        refused = run_cli("train.py", *going_on, cwd=tmp_path, data_dir=data_dir)
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
        assert "has nothing left to train: its run already trained 1 epoch(s) (5 steps), as " \
               "far as trainer.max_epochs=1 goes, so nothing was changed. Fix: add " \
               f"trainer.max_epochs=2 (or more) to train on, or test it with `python eval.py " \
               f"ckpt_path={last}`." in refused.stderr, refused.stderr
        assert snapshot(tmp_path / "run") == before and not (tmp_path / "elsewhere").exists()
    # The hint followed: the run trains on in its own folder.
    resumed = run_cli("train.py", "resume=run", "trainer.max_epochs=2", cwd=tmp_path,
                      data_dir=data_dir)
    assert resumed.returncode == 0, resumed.stderr
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert (record["epochs"], record["status"]) == (2, "completed")
    assert record["changed"] == {"trainer.max_epochs": [1, 2]}
    # The run's own config (mlp_bn, 5 batches an epoch) trained on; its record stays.
    assert record["parameters"] == 26634
    assert (tmp_path / "run" / ".hydra" / "config.yaml").read_text() == config
    assert len(list((tmp_path / "run" / ".hydra").glob("resumed-*/config.yaml"))) == 1
    assert not (tmp_path / "outputs").exists()  # no new run folder
    again = run_cli("train.py", *short, "trainer.max_epochs=3", f"ckpt_path={last}",
                    cwd=tmp_path, data_dir=data_dir)
    assert again.returncode == 0, again.stderr
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["epochs"] == 3 and record["status"] == "completed"
    assert record["resumed_from"] == str(last)
    assert list(record["changed"]) == ["trainer.max_epochs"]
    assert record["changed"]["trainer.max_epochs"][1] == 3


# The CUDA build of torch that `make install` pins maps about 4 GiB once imported; with the
# address space capped at 4.3 GiB a CNN batch of 4,000 does not fit and one of 1,000 does.
MEMORY_CAP = int(4.3 * 2**30)


@pytest.mark.slow
def test_a_batch_that_does_not_fit_in_memory_is_one_line_and_its_hint_leads_to_a_run(
        tmp_path, data_dir) -> None:
    short = ["model=cnn", "trainer=cpu", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
             "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
             "trainer.enable_progress_bar=false", "callbacks.input_images=null",
             "callbacks.test_report=null", "data.eval_batch_size=100"]
    batch, tries = "data.batch_size=4000", 0
    env = os.environ | {"MNISTLAB_DATA_DIR": str(data_dir)}
    while True:  # follow the hint, as a user would, until the run fits
        folder = tmp_path / f"run{tries}"
        done = zygote.run("train.py", [*short, batch, f"hydra.run.dir={folder}"], tmp_path, env,
                          address_space=MEMORY_CAP)
        said = done.stdout + done.stderr
        if done.returncode == 0:
            break
        assert done.returncode == 1 and "Traceback" not in said, said[-3000:]
        record = json.loads((folder / "result.json").read_text())
        assert record["status"] == "failed"
        assert record["error"].startswith(f"out of memory with {batch}: a tensor of ")
        assert record["error"] in said
        batch = record["error"].rsplit("e.g. ", 1)[1].rstrip(".").split(",")[0]
        tries += 1
        assert tries < 4, record["error"]
    assert tries >= 1 and json.loads((folder / "result.json").read_text())["status"] == \
        "completed"


@pytest.mark.slow
def test_a_full_disk_is_one_line_with_failed_recorded_and_another_folder_works(
        tmp_path, data_dir) -> None:
    small = tmp_path / "small-disk"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"needs to mount a 3 MB tmpfs (root): {mounted.stderr.strip()}")
    try:
        run = ["model=cnn_deep", "trainer=cpu", "trainer.max_epochs=1",
               "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
               "trainer.limit_test_batches=1", "trainer.enable_progress_bar=false",
               "callbacks.input_images=null", "callbacks.test_report=null"]
        full = run_cli("train.py", *run, f"hydra.run.dir={small / 'run'}", cwd=tmp_path,
                       data_dir=data_dir)
        said = full.stdout + full.stderr
        assert full.returncode == 1 and "Traceback" not in said, said[-3000:]
        record = json.loads((small / "run" / "result.json").read_text())
        assert record["status"] == "failed" and record["error"] == (
            f"no space left on the disk while writing {small}/run/checkpoints/last.ckpt (No "
            "space left on device). Fix: free some space there, or give the run a folder on "
            "another disk with hydra.run.dir=<folder>; the files already written are kept.")
        assert record["error"] in said
        assert not list((small / "run" / "checkpoints").glob("*partial*"))
    finally:
        subprocess.run(["umount", str(small)], check=False)
    # The fix: a folder on another disk.
    elsewhere = run_cli("train.py", *run, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                        data_dir=data_dir)
    assert elsewhere.returncode == 0, elsewhere.stderr[-3000:]
