"""On a real single-node SLURM cluster with accounting (`make cluster-up`): sweeps through the
scheduler, DDP as SLURM tasks, and a preempted job requeued. Run by `make test-cluster`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from mnistlab.evaluation import evaluate
from tests import zygote
from tests.helpers import ROOT, run_cli, wait_for_file
from tests.test_checkpoints import eval_config
from tests.test_sweeps import SHORT, results, table


def _slurm_idle() -> bool:
    if shutil.which("sinfo") is None:
        return False
    done = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return done.returncode == 0 and bool({"idle", "mix"} & set(done.stdout.split()))


pytestmark = [pytest.mark.slow, pytest.mark.cluster,
              pytest.mark.skipif(not _slurm_idle(),
                                 reason="needs the local SLURM cluster: make cluster-up")]

# SLURM's jobs run in the sweep's environment: the tests' own callbacks must be importable.
ENV = {"PYTHONPATH": str(ROOT)}


def untimed(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if not k.startswith("time/")}


def sacct(*job_ids: str) -> dict[str, str]:
    """SLURM's accounting: each job's state, as `sacct` reports it."""
    done = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j",
                           ",".join(job_ids)], capture_output=True, text=True, check=True)
    return dict(line.split("|") for line in done.stdout.split())


def test_a_sweep_through_slurm_equals_the_same_sweep_run_here(tmp_path, data_dir) -> None:
    """Each job is a SLURM job listed by sacct; the summary and metrics are the local sweep's,
    a bad value fails its job and the sweep, and each job's stdout is under .submitit/."""
    sweep = [*SHORT, "threads=1", "optimizer.lr=0.01,-1"]
    env = os.environ | ENV | {"MNISTLAB_DATA_DIR": str(data_dir)}
    slurm = zygote.run("train.py", ["-m", *sweep, "hydra/launcher=slurm",
                                    "hydra.sweep.dir=slurm"], tmp_path, env)
    local = run_cli("train.py", "-m", *sweep, "hydra.sweep.dir=local", cwd=tmp_path,
                    data_dir=data_dir)
    assert slurm.returncode == local.returncode == 1, slurm.stderr[-3000:]
    assert "Traceback" not in slurm.stdout + slurm.stderr
    assert "Error: 1 of 2 jobs failed: 1_optimizer.lr=-1" in slurm.stderr
    on_slurm, here = results(tmp_path / "slurm"), results(tmp_path / "local")
    assert sorted(on_slurm) == sorted(here) == ["0_optimizer.lr=0.01", "1_optimizer.lr=-1"]
    for name, run in on_slurm.items():
        assert run["status"] == here[name]["status"], name
        assert untimed(run.get("metrics") or {}) == untimed(here[name].get("metrics") or {})
    assert [row["status"] for row in table(tmp_path / "slurm")] == [
        row["status"] for row in table(tmp_path / "local")]
    jobs = sorted(path.parent.name for path in
                  (tmp_path / "slurm" / ".submitit").glob("*/*_log.out"))
    assert len(jobs) == 2 and set(sacct(*jobs).values()) == {"COMPLETED"}
    logs = {job: (tmp_path / "slurm" / ".submitit" / job / f"{job}_0_log.out").read_text()
            for job in jobs}
    assert sum("test acc" in log for log in logs.values()) == 1
    assert sum("optimizer.lr=-1 is invalid" in log for log in logs.values()) == 1


def test_a_launcher_asking_for_what_the_partition_lacks_is_one_line(tmp_path,
                                                                     data_dir) -> None:
    refused = run_cli("train.py", "-m", *SHORT, "hydra/launcher=slurm_gpu",
                      "hydra.sweep.dir=gpu", cwd=tmp_path, data_dir=data_dir)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.splitlines()[-1] == (
        "Error: SLURM refused the sweep's jobs: Invalid generic resource (gres) specification. "
        "Fix: change hydra.launcher.gpus_per_node (null asks for none; hydra/launcher=slurm "
        "leaves GPUs, CPUs and memory to the partition).")


def test_ddp_as_two_slurm_tasks_writes_one_run_that_eval_reproduces(tmp_path,
                                                                    data_dir) -> None:
    """Lightning takes the ranks and the master address from SLURM's environment."""
    run = tmp_path / "ddp"
    command = " ".join([sys.executable, str(ROOT / "train.py"), "trainer=ddp",
                        "trainer.accelerator=cpu",
                        "trainer.devices=2", "model=mlp_bn", *SHORT[1:-1],
                        "trainer.limit_train_batches=10", "trainer.limit_val_batches=null",
                        "trainer.limit_test_batches=null", "data.val_size=4999",
                        "data.eval_batch_size=700", f"hydra.run.dir={run}"])
    job = subprocess.run(["sbatch", "--wait", "--parsable", "--nodes=1", "--ntasks-per-node=2",
                          f"--output={tmp_path / 'slurm-%j.out'}", f"--wrap=srun {command}"],
                         cwd=tmp_path, capture_output=True, text=True,
                         env=os.environ | {"MNISTLAB_DATA_DIR": str(data_dir)})
    said = "".join(path.read_text() for path in tmp_path.glob("slurm-*.out"))
    assert job.returncode == 0, job.stderr + said[-3000:]
    assert sacct(job.stdout.strip()) == {job.stdout.strip(): "COMPLETED"}
    assert said.count("test acc       ") == 1 and "[rank: 1]" in said  # two ranks, one summary
    assert (run / "train_slurm_task_1.log").is_file()
    record = json.loads((run / "result.json").read_text())
    evaluated = evaluate(eval_config(tmp_path, data_dir, record["best_checkpoint"]))
    validated = evaluate(eval_config(tmp_path, data_dir, record["best_checkpoint"],
                                     "split=val"))
    assert evaluated.images == 10000 and validated.images == 4999
    assert evaluated.metrics["test/acc"] == record["metrics"]["test/acc"]
    assert validated.metrics["val/acc"] == record["metrics"]["val/acc"]


def test_a_preempted_job_is_requeued_and_ends_as_if_never_stopped(tmp_path, data_dir) -> None:
    """SIGUSR2 (scancel --signal, as preemption or a coming time limit sends it): the job saves
    last.ckpt, submitit requeues it, and it goes on in its folder to the same weights."""
    sweep = [*SHORT[:-1], "model=mlp_bn", "threads=1", "trainer.limit_train_batches=40",
             "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
             "callbacks.step_checkpoint.every_n_steps=5",
             "+callbacks.slow._target_=tests.helpers.SlowSteps", "+callbacks.slow.seconds=0.1"]
    env = os.environ | ENV | {"MNISTLAB_DATA_DIR": str(data_dir)}
    slurm = zygote.start("train.py", ["-m", *sweep, "hydra/launcher=slurm",
                                      "hydra.sweep.dir=slurm"], tmp_path, env,
                         tmp_path / "slurm.log")
    job_folder = tmp_path / "slurm" / "0"
    wait_for_file(slurm, job_folder, "checkpoints/last.ckpt")  # it is training
    deadline = time.monotonic() + 300
    [job] = [path.name for path in (tmp_path / "slurm" / ".submitit").iterdir()
             if path.is_dir()]
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    while not {"Restarts=1", "JobState=PENDING"} <= set(_job(job).split()):  # requeued
        assert time.monotonic() < deadline, _job(job)
        time.sleep(0.2)
    # SLURM holds a requeued job for two minutes before it may start again; start it now.
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    assert slurm.wait(timeout=300) == 0, (tmp_path / "slurm.log").read_text()[-3000:]
    local = run_cli("train.py", "-m", *sweep, "hydra.sweep.dir=local", cwd=tmp_path,
                    data_dir=data_dir)
    assert local.returncode == 0, local.stderr[-3000:]

    requeued = json.loads((job_folder / "result.json").read_text())
    assert requeued["resumed_from"] == str(job_folder / "checkpoints" / "last.ckpt")
    assert "SIGUSR2 received: saved" in (job_folder / "train.log").read_text()
    here = json.loads((tmp_path / "local" / "0" / "result.json").read_text())
    assert requeued["status"] == here["status"] == "completed"
    assert untimed(requeued["metrics"]) == untimed(here["metrics"])
    weights = [torch.load(record["best_checkpoint"], weights_only=True)["state_dict"]
               for record in (requeued, here)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[1])
    assert len(table(tmp_path / "slurm")) == 1  # one job, not two


def _job(job: str) -> str:
    return subprocess.run(["scontrol", "show", "job", job], capture_output=True,
                          text=True).stdout
