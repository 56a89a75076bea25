"""Sweeps as users run them: summaries, failing jobs, parallel jobs, a search, submitit, DDP.

Each test starts real processes on the real MNIST files, so they are marked slow.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import time
from pathlib import Path

import optuna
import pytest
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

from mnistlab.evaluation import evaluate
from tests import zygote
from tests.helpers import ROOT, run_cli, wait_for_file
from tests.test_checkpoints import eval_config

pytestmark = pytest.mark.slow

SHORT = ["trainer=cpu", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
         "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
         "trainer.enable_progress_bar=false", "callbacks.input_images=null",
         "callbacks.test_report=null", "model=mlp_sigmoid"]


def table(sweep: Path) -> list[dict[str, str]]:
    """summary.md's rows as dicts, as a reader sees them."""
    lines = [line for line in (sweep / "summary.md").read_text().splitlines()
             if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
            for line in lines[2:]]


def results(sweep: Path) -> dict[str, dict]:
    return {path.parent.name: json.loads(path.read_text())
            for path in sweep.glob("*/result.json")}


def test_failing_jobs_are_recorded_and_the_sweep_goes_on(tmp_path, data_dir) -> None:
    """A bad value stops its job before it trains; a diverging job stops with its reason; the
    other jobs run, the table lists the failed ones last, and the sweep exits 1."""
    sweep = tmp_path / "sweep"
    result = run_cli("train.py", "-m", *SHORT, "model=mlp_bn", "optimizer=sgd",
                     "optimizer.lr=0.1,-1,1e9", "callbacks.divergence.chance_after_steps=20",
                     "trainer.limit_train_batches=40", f"hydra.sweep.dir={sweep}",
                     cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 1, result.stderr
    assert ("Error: 2 of 3 jobs failed: 1_optimizer.lr=-1, 2_optimizer.lr=1e+09 (each folder "
            "keeps its log and result.json)") in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    runs = results(sweep)
    good, bad = sweep / "0_optimizer.lr=0.1", sweep / "1_optimizer.lr=-1"
    assert runs[good.name]["status"] == "completed" and list(good.rglob("events.out.tfevents.*"))
    assert runs[bad.name]["status"] == "failed"
    assert runs[bad.name]["error"].startswith("optimizer.lr=-1 is invalid: it must be a finite "
                                              "number")
    assert "optimizer.lr=-1 is invalid" in (bad / "train.log").read_text()
    assert not list(bad.rglob("events.out.tfevents.*"))  # stopped before it trained
    diverged = runs["2_optimizer.lr=1e+09"]  # Hydra writes the swept float so; it ran after
    assert diverged["status"] == "failed"
    assert diverged["error"].startswith("training diverged: the loss is")
    rows = table(sweep)
    assert rows[0]["run folder"] == good.name
    assert rows[0]["best val acc"] == f"{100 * runs[good.name]['metrics']['val/acc_best']:.2f}%"
    assert rows[0]["test acc"] == f"{100 * runs[good.name]['metrics']['test/acc']:.2f}%"
    assert {row["status"] for row in rows[1:]} == {f"failed: {runs[bad.name]['error']}",
                                                   f"failed: {diverged['error']}"}
    assert (sweep / "summary.md").read_text().splitlines()[-1] in result.stdout  # printed too


def test_joblib_runs_jobs_side_by_side_with_the_sequential_sweeps_results(tmp_path,
                                                                          data_dir) -> None:
    args = [*SHORT, "optimizer.lr=0.01,0.02", "seed=1,2", "trainer.limit_train_batches=10"]
    sequential = run_cli("train.py", "-m", *args, "threads=1", "hydra.sweep.dir=seq",
                         cwd=tmp_path, data_dir=data_dir)
    assert sequential.returncode == 0, sequential.stderr
    parallel = run_cli("train.py", "-m", *args, "hydra/launcher=joblib",
                       "hydra.launcher.n_jobs=2", "hydra.sweep.dir=par",
                       cwd=tmp_path, data_dir=data_dir)
    assert parallel.returncode == 0, parallel.stderr
    assert "Joblib.Parallel(n_jobs=2" in parallel.stdout + parallel.stderr
    seq, par = results(tmp_path / "seq"), results(tmp_path / "par")
    assert sorted(seq) == sorted(par) and len(par) == 4
    cores = len(os.sched_getaffinity(0))
    for name, run in par.items():
        # Each of the two parallel jobs gets half the cores; the sequential run asked for 1.
        assert run["threads"] == max(1, cores // 2), name
        assert seq[name]["threads"] == 1
        if run["threads"] == 1:  # the same arithmetic, so the same numbers
            untimed = {k: v for k, v in run["metrics"].items() if not k.startswith("time/")}
            assert untimed == {k: seq[name]["metrics"][k] for k in untimed}, name
    assert len(table(tmp_path / "par")) == 4


def test_an_optuna_search_killed_midway_resumes_from_its_sqlite_study(tmp_path,
                                                                      data_dir) -> None:
    sweep = tmp_path / "search"
    command = ["hparams_search=optuna", *SHORT[:-1], "hydra.sweeper.n_trials=3",
               f"hydra.sweep.dir={sweep}", "trainer.limit_train_batches=20",
               "trainer.limit_val_batches=2", "callbacks.step_checkpoint.every_n_steps=1"]
    env = os.environ | {"MNISTLAB_DATA_DIR": str(data_dir)}
    first = zygote.start("train.py", command, tmp_path, env, tmp_path / "first.log")
    # Kill the search (no cleanup: SIGKILL) once its second trial is training.
    wait_for_file(first, sweep, "1_*/checkpoints/last.ckpt")
    first.send_signal(signal.SIGKILL)
    first.wait()
    study = optuna.load_study(study_name="mnistlab", storage=f"sqlite:///{sweep}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "RUNNING"]

    second = zygote.run("train.py", command, tmp_path, env)
    assert second.returncode == 0, second.stderr[-3000:]
    output = second.stdout + second.stderr
    assert "1 of 3 trials finished, 0 running elsewhere; running 2 more" in output
    study = optuna.load_study(study_name="mnistlab", storage=f"sqlite:///{sweep}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    jobs = sorted(p.name for p in sweep.iterdir() if (p / ".hydra").is_dir())
    assert [job.split("_")[0] for job in jobs] == ["0", "1", "2", "3"]  # nothing overwritten
    assert all("optimizer=" in job and "lr=" in job for job in jobs)
    rows = table(sweep)
    assert sorted(row["status"] for row in rows) == ["completed"] * 3 + ["no result"]
    best = max(t.value for t in study.trials if t.value is not None)
    assert rows[0]["best val acc"] == f"{100 * best:.2f}%"


def test_submitit_local_runs_a_sweep_as_the_slurm_launcher_would(tmp_path, data_dir) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli("train.py", "-m", *SHORT, "optimizer=adam,sgd",
                     "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = results(sweep)
    assert sorted(runs) == ["0_optimizer=adam", "1_optimizer=sgd"]
    assert all(run["status"] == "completed" for run in runs.values())
    # submitit's own record of each job: its stdout, where the job logged its summary.
    logs = list((sweep / ".submitit").glob("*/*_log.out"))
    assert len(logs) == 2 and all("test acc" in log.read_text() for log in logs)
    assert [row["optimizer"] for row in table(sweep)] != []


def test_ddp_trains_once_and_its_metrics_equal_a_single_process_evaluation(tmp_path,
                                                                          data_dir) -> None:
    """Two DDP processes write one run and one summary, with no sync_dist hint; eval.py of its
    checkpoint in one process reproduces its test and validation numbers, prints them, and
    writes its own TensorBoard pictures."""
    # 4,999 validation images do not split evenly over 2 processes, nor into batches of 700.
    data = ["data.val_size=4999", "data.eval_batch_size=700"]
    trained = run_cli("train.py", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                      "model=mlp_bn", *SHORT[1:-1], "trainer.limit_train_batches=10",
                      "trainer.limit_val_batches=null", "trainer.limit_test_batches=null",
                      *data, "hydra.run.dir=ddp", cwd=tmp_path, data_dir=data_dir)
    assert trained.returncode == 0, trained.stderr[-3000:]
    output = trained.stdout + trained.stderr
    assert output.count("test acc       ") == 1  # one summary
    assert f"run folder     {tmp_path / 'ddp'}" in output
    assert (tmp_path / "ddp" / "train_ddp_process_1.log").is_file()  # rank 1, same folder
    for log in (tmp_path / "ddp").glob("*.log"):
        output += log.read_text()
    assert "sync_dist" not in output and "PossibleUserWarning" not in output
    ddp = json.loads((tmp_path / "ddp" / "result.json").read_text())["metrics"]
    checkpoint = json.loads((tmp_path / "ddp" / "result.json").read_text())["best_checkpoint"]
    single = run_cli("eval.py", f"ckpt_path={checkpoint}", "trainer=cpu",
                     "hydra.run.dir=eval_test", cwd=tmp_path, data_dir=data_dir)
    assert single.returncode == 0, single.stderr[-3000:]
    evaluated = json.loads((tmp_path / "eval_test" / "result.json").read_text())
    assert (f"test accuracy: {100 * ddp['test/acc']:.2f}% on 10000 images"
            in single.stdout + single.stderr)
    # The validation split in this process, as eval.py split=val evaluates it.
    validated = evaluate(eval_config(tmp_path, data_dir, checkpoint, "split=val"))
    for split, images, result in (("test", 10000, evaluated["metrics"]),
                                  ("val", 4999, validated.metrics)):
        assert (evaluated["images"] if split == "test" else validated.images) == images
        assert result[f"{split}/acc"] == ddp[f"{split}/acc"]
        assert result[f"{split}/loss"] == pytest.approx(ddp[f"{split}/loss"], rel=1e-6)
    tags = EventMultiplexer().AddRunsFromDirectory(str(tmp_path / "eval_test"))
    tags.Reload()
    [(_, run)] = tags.Runs().items()
    assert {"figures/test_confusion_matrix", "images/test_misclassified"} <= set(run["images"])


def test_a_signalled_sweep_summarises_and_its_command_resumes_it_to_every_job(
        tmp_path, data_dir) -> None:
    """Ctrl-C (SIGINT) in job 1 of 3: job 0 is kept, job 1 saved last.ckpt; the printed command
    runs the sweep again in its folder, which keeps job 0 as it is, resumes job 1 and runs job
    2. (SIGTERM: the joblib test below.)"""
    sweep = tmp_path / "sweep"
    kill = ["+callbacks.kill._target_=tests.helpers.KillAtStep", "+callbacks.kill.step=3",
            f"+callbacks.kill.signum={int(signal.SIGINT)}", "+callbacks.kill.job=1"]
    command = [*SHORT, "trainer.limit_train_batches=6", "optimizer.lr=0.01,0.02,0.03", *kill]
    stopped = run_cli("train.py", "-m", *command, f"hydra.sweep.dir={sweep}", cwd=tmp_path,
                      data_dir=data_dir)
    assert stopped.returncode == 130, stopped.stderr
    said = stopped.stdout + stopped.stderr
    assert "Traceback" not in said
    rows = {row["job"]: row for row in table(sweep)}
    assert rows["0"]["status"] == "completed" and rows["1"]["status"].startswith("interrupted")
    assert (sweep / "summary.md").read_text().splitlines()[-1] in stopped.stdout
    hint = next(line for line in said.splitlines() if "resume the sweep with: " in line)
    resume = shlex.split(hint.split("resume the sweep with: ", 1)[1])
    assert resume[:3] == ["python", str(ROOT / "train.py"), "-m"]
    assert resume[-1] == f"hydra.sweep.dir={sweep}"
    kept = (sweep / "0_optimizer.lr=0.01" / "result.json").read_bytes()

    # (A different command into the folder, or a second sweep while one holds it, is refused:
    # tests/test_run_folder.py.)
    resumed = run_cli(*resume[1:], cwd=tmp_path, data_dir=data_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert (sweep / "0_optimizer.lr=0.01" / "result.json").read_bytes() == kept
    runs = results(sweep)
    assert {run["status"] for run in runs.values()} == {"completed"} and len(runs) == 3
    again = runs["1_optimizer.lr=0.02"]
    assert again["resumed_from"] == str(sweep / "1_optimizer.lr=0.02" / "checkpoints" /
                                        "last.ckpt")
    assert 0 < again["epoch_seconds"][0] < again["seconds"]
    assert [row["status"] for row in table(sweep)] == ["completed"] * 3
    assert not (sweep / ".mnistlab.lock").exists()


def test_a_sigkilled_sweep_resumes_when_its_command_runs_again(tmp_path, data_dir) -> None:
    """SIGKILL (no cleanup, its lock left behind) while job 1 of 3 trains: the same command
    keeps job 0, goes on from job 1's last step checkpoint and runs job 2."""
    sweep = tmp_path / "sweep"
    command = ["-m", *SHORT, "trainer.limit_train_batches=6", "optimizer.lr=0.01,0.02,0.03",
               "callbacks.step_checkpoint.every_n_steps=1",
               "+callbacks.slow._target_=tests.helpers.SlowSteps", "+callbacks.slow.seconds=0.2",
               f"hydra.sweep.dir={sweep}"]
    env = os.environ | {"MNISTLAB_DATA_DIR": str(data_dir)}
    killed = zygote.start("train.py", command, tmp_path, env, tmp_path / "killed.log")
    wait_for_file(killed, sweep, "1_*/checkpoints/last.ckpt")
    killed.send_signal(signal.SIGKILL)
    assert killed.wait() == -signal.SIGKILL
    assert (sweep / ".mnistlab.lock").is_file()
    kept = (sweep / "0_optimizer.lr=0.01" / "result.json").read_bytes()

    again = zygote.run("train.py", command, tmp_path, env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (sweep / "0_optimizer.lr=0.01" / "result.json").read_bytes() == kept
    runs = results(sweep)
    assert len(runs) == 3 and {run["status"] for run in runs.values()} == {"completed"}
    assert runs["1_optimizer.lr=0.02"]["resumed_from"] == str(
        sweep / "1_optimizer.lr=0.02" / "checkpoints" / "last.ckpt")
    assert "resumed_from" not in runs["2_optimizer.lr=0.03"]
    assert [row["status"] for row in table(sweep)] == ["completed"] * 3


def test_a_signal_to_a_joblib_sweep_reaches_its_jobs_and_leaves_no_process(tmp_path,
                                                                            data_dir) -> None:
    """SIGTERM to the sweep's process while two jobs run in joblib's workers: both save
    last.ckpt, the two not started are skipped, the sweep prints its table and the command to
    resume, and no process of the sweep is left; that command then finishes all four."""
    sweep = tmp_path / "sweep"
    kill = ["+callbacks.kill._target_=tests.helpers.KillAtStep", "+callbacks.kill.step=20",
            f"+callbacks.kill.signum={int(signal.SIGTERM)}", "+callbacks.kill.job=1",
            "+callbacks.kill.parent=true", "+callbacks.slow._target_=tests.helpers.SlowSteps",
            "+callbacks.slow.seconds=0.05"]
    command = ["-m", *SHORT, "model=mlp_bn", "trainer.limit_train_batches=60",
               "optimizer.lr=0.01,0.02,0.03,0.04", *kill, "hydra/launcher=joblib",
               "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={sweep}"]
    env = os.environ | {"MNISTLAB_DATA_DIR": str(data_dir)}
    sweep_process = zygote.start("train.py", command, tmp_path, env, tmp_path / "sweep.log")
    sweep_process.wait()
    said = (tmp_path / "sweep.log").read_text()
    assert sweep_process.returncode == 143, said[-3000:]
    assert "Traceback" not in said
    # joblib's helper processes (its workers, its resource tracker) end once they see the
    # sweep's process gone: a moment, not the minutes of training they went on with before.
    deadline = time.monotonic() + 10
    while left := [entry.parent.name for entry in Path("/proc").glob("[0-9]*/environ")
                   if f"MNISTLAB_SWEEP_PID={sweep_process.pid}\0".encode() in _read(entry)]:
        assert time.monotonic() < deadline, f"processes of the sweep still running: {left}"
        time.sleep(0.1)
    statuses = {row["job"]: row["status"] for row in table(sweep)}
    assert statuses["0"].startswith("interrupted") and statuses["1"].startswith("interrupted")
    assert statuses["2"] == statuses["3"] == "no result"  # never started
    hint = next(line for line in said.splitlines() if "resume the sweep with: " in line)
    resume = shlex.split(hint.split("resume the sweep with: ", 1)[1])
    resumed = zygote.run(resume[1], resume[2:], tmp_path, env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    runs = results(sweep)
    assert len(runs) == 4 and {run["status"] for run in runs.values()} == {"completed"}
    assert {name for name, run in runs.items() if "resumed_from" in run} == {
        "0_optimizer.lr=0.01", "1_optimizer.lr=0.02"}


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # a process that ended meanwhile, or another user's
        return b""


def test_a_signalled_search_summarises_and_its_command_finishes_the_study(tmp_path,
                                                                          data_dir) -> None:
    """SIGTERM in trial 1 of 3 of an Optuna search: it exits 143 with its table and the
    command to go on; that command marks the stopped trial failed and runs the two missing."""
    sweep = tmp_path / "search"
    kill = ["+callbacks.kill._target_=tests.helpers.KillAtStep", "+callbacks.kill.step=3",
            f"+callbacks.kill.signum={int(signal.SIGTERM)}", "+callbacks.kill.job=1"]
    stopped = run_cli("train.py", "hparams_search=optuna", *SHORT[:-1], *kill,
                      "hydra.sweeper.n_trials=3", "trainer.limit_train_batches=6",
                      f"hydra.sweep.dir={sweep}", cwd=tmp_path, data_dir=data_dir)
    said = stopped.stdout + stopped.stderr
    assert stopped.returncode == 143 and "Traceback" not in said, said[-3000:]
    rows = {row["job"]: row["status"] for row in table(sweep)}
    assert rows["0"] == "completed" and rows["1"].startswith("interrupted"), rows
    hint = next(line for line in said.splitlines() if "resume the sweep with: " in line)
    resume = shlex.split(hint.split("resume the sweep with: ", 1)[1])
    resumed = run_cli(*resume[1:], cwd=tmp_path, data_dir=data_dir)
    said = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, said[-3000:]
    assert "1 of 3 trials finished, 0 running elsewhere; running 2 more" in said
    study = optuna.load_study(study_name="mnistlab", storage=f"sqlite:///{sweep}/optuna.db")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    rows = table(sweep)
    assert [row["status"] for row in rows].count("completed") == 3, rows
