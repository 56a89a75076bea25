"""Sweep job folders named for what differs: `3_model=cnn,optimizer=sgd`, not `3`.

The folder name is also the run's name in TensorBoard. Hydra knows a job's own overrides but not
which of them vary across the sweep, so ``NameSweepJobs`` reads the sweep's command line when
the multirun starts and passes the varying keys on in an environment variable, which launchers
that run jobs in other processes pass on too. ``job_name`` (an OmegaConf resolver used by
``hydra.sweep.subdir``) then keeps those keys of each job's overrides.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shlex
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mnistlab.overrides import parse_overrides
from mnistlab.processes import descendants
from mnistlab.run_folder import SWEEP_COMMAND

SWEEP_KEYS_ENV = "MNISTLAB_SWEEP_KEYS"
# Where job folder numbers start: a resumed search numbers its jobs after the earlier ones.
JOB_OFFSET_ENV = "MNISTLAB_JOB_OFFSET"
MAX_LENGTH = 60
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


class NameSweepJobs(Callback):
    """Records which overrides of a multirun's command line are swept."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        parsed = parse_overrides(list(config.hydra.overrides.task))
        keys = [o.key_or_group for o in parsed if o.is_sweep_override()]
        # A search's parameters (hparams_search=optuna) are set in its config.
        params = OmegaConf.select(config, "hydra.sweeper.params") or {}
        keys += [key for key in params if key not in keys]
        os.environ[SWEEP_KEYS_ENV] = ",".join(keys)
        os.environ.pop(JOB_OFFSET_ENV, None)  # mnistlab.search sets it for a resumed search


def job_name(num: int, overrides: Sequence[str]) -> str:
    """``<num>_<key=value,...>`` of the swept keys, filesystem-safe and at most ~60 characters."""
    swept = os.environ.get(SWEEP_KEYS_ENV)
    pairs = [item.split("=", 1) for item in overrides if "=" in item]
    pairs = [(key.lstrip("+~"), value) for key, value in pairs
             if not key.lstrip("+~").startswith("hydra")]
    if swept is not None:
        keys = set(swept.split(",")) if swept else set()
        pairs = [(key, value) for key, value in pairs if key in keys]
    num += int(os.environ.get(JOB_OFFSET_ENV, 0))
    if not pairs:
        return str(num)
    pairs = [(key, short_value(value)) for key, value in pairs]
    name = ",".join(f"{key}={value}" for key, value in pairs)
    if len(name) > MAX_LENGTH:  # keep the last part of each key: optimizer.lr -> lr
        name = ",".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in pairs)
    name = _UNSAFE.sub("_", name)
    if len(name) > MAX_LENGTH:
        digest = hashlib.sha1(name.encode()).hexdigest()[:6]
        name = f"{name[:MAX_LENGTH - 7]}~{digest}"
    return f"{num}_{name}"


def short_value(value: str) -> str:
    """A sampled float such as 0.0018785426399210619 as 0.001879, for names and tables."""
    if len(value) <= 8:
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    short = f"{number:.4g}"
    return short if len(short) < len(value) else value


def job_threads() -> int | None:
    """Torch threads for a job that runs beside others (``hydra/launcher=joblib``).

    Each of n parallel jobs gets cores // n threads, so that jobs do not oversubscribe the CPU
    (two jobs of two threads each on two cores run slower than one at a time). None outside
    a parallel sweep: torch's own default then applies.
    """
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    launcher = HydraConfig.get().launcher
    if "JoblibLauncher" not in str(launcher.get("_target_", "")):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    n_jobs = int(launcher.get("n_jobs") or 1)
    if n_jobs < 0:  # joblib's convention: -1 is one job per core, -2 all cores but one, ...
        n_jobs = max(1, cores + 1 + n_jobs)
    return max(1, cores // n_jobs)


def resume_command(script: str, sweep_dir: Path) -> str:
    """The command that runs the sweep in ``sweep_dir`` again, to resume it: its overrides
    (as mnistlab.run_folder.claim_sweep saved them) and its folder."""
    saved = OmegaConf.load(sweep_dir / SWEEP_COMMAND)
    hydra = [o for o in saved.hydra if not o.startswith(("hydra.sweep.dir=", "hydra.mode="))]
    words = [*saved.task, *hydra, f"hydra.sweep.dir={sweep_dir}"]
    return f"python {script} -m " + " ".join(shlex.quote(word) for word in words)


# Written into the sweep folder by the sweep's process when a signal stops the sweep: jobs that
# have not started see it and do not start; the sweep's end reads the signal from it.
STOPPED = ".stopped"
# The sweep's own process id, passed on to launchers' worker processes.
SWEEP_PID_ENV = "MNISTLAB_SWEEP_PID"


def pass_signals_to_jobs(sweep_dir: Path) -> None:
    """SIGINT and SIGTERM to the sweep's process reach every process it started.

    Launchers that run jobs in worker processes (joblib) leave them running, unsupervised,
    when the sweep's process is signalled; here each running job gets the signal and stops as
    a single run does (last.ckpt, ``interrupted``), the jobs not started yet are skipped, and
    the sweep ends with its summary (``stopped_by``). The default launcher runs jobs in the
    sweep's own process, where the job's own handler takes the signal while it trains.
    """
    os.environ[SWEEP_PID_ENV] = str(os.getpid())

    def forward(signum: int, frame: Any) -> None:
        (sweep_dir / STOPPED).write_text(str(signum))
        for pid in descendants(os.getpid()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)


def in_worker_process() -> bool:
    """True in a launcher's worker process, where a job's end must not end the sweep."""
    sweep_pid = os.environ.get(SWEEP_PID_ENV)
    return sweep_pid is not None and sweep_pid != str(os.getpid())


def stopped_by(sweep_dir: Path) -> int | None:
    """The signal that stopped the sweep in ``sweep_dir``, if one did."""
    with contextlib.suppress(OSError, ValueError):
        return int((sweep_dir / STOPPED).read_text())
    return None
