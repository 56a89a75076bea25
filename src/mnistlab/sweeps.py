"""Sweep job folders named for what differs: `3_model=cnn,optimizer=sgd`, not `3`.

The folder name is also the run's name in TensorBoard. Hydra knows a job's own overrides but not
which of them vary across the sweep, so ``NameSweepJobs`` reads the sweep's command line when
the multirun starts and passes the varying keys on in an environment variable, which launchers
that run jobs in other processes pass on too. ``job_name`` (an OmegaConf resolver used by
``hydra.sweep.subdir``) then keeps those keys of each job's overrides.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mnistlab.overrides import parse_overrides

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
    (``multirun.yaml``, as Hydra saved them) and its folder."""
    saved = OmegaConf.load(sweep_dir / "multirun.yaml").hydra.overrides
    hydra = [o for o in saved.hydra if not o.startswith(("hydra.sweep.dir=", "hydra.mode="))]
    words = [*saved.task, *hydra, f"hydra.sweep.dir={sweep_dir}"]
    return f"python {script} -m " + " ".join(shlex.quote(word) for word in words)
