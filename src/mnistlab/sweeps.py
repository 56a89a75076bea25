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
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

SWEEP_KEYS_ENV = "MNISTLAB_SWEEP_KEYS"
MAX_LENGTH = 60
_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


class NameSweepJobs(Callback):
    """Records which overrides of a multirun's command line are swept."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        keys = [o.key_or_group for o in parsed if o.is_sweep_override()]
        os.environ[SWEEP_KEYS_ENV] = ",".join(keys)


def job_name(num: int, overrides: Sequence[str]) -> str:
    """``<num>_<key=value,...>`` of the swept keys, filesystem-safe and at most ~60 characters."""
    swept = os.environ.get(SWEEP_KEYS_ENV)
    pairs = [item.split("=", 1) for item in overrides if "=" in item]
    pairs = [(key.lstrip("+~"), value) for key, value in pairs
             if not key.lstrip("+~").startswith("hydra")]
    if swept is not None:
        keys = set(swept.split(",")) if swept else set()
        pairs = [(key, value) for key, value in pairs if key in keys]
    if not pairs:
        return str(num)
    name = ",".join(f"{key}={value}" for key, value in pairs)
    if len(name) > MAX_LENGTH:  # keep the last part of each key: optimizer.lr -> lr
        name = ",".join(f"{key.rsplit('.', 1)[-1]}={value}" for key, value in pairs)
    name = _UNSAFE.sub("_", name)
    if len(name) > MAX_LENGTH:
        digest = hashlib.sha1(name.encode()).hexdigest()[:6]
        name = f"{name[:MAX_LENGTH - 7]}~{digest}"
    return f"{num}_{name}"


def run_dir(resume: str | None, new: str) -> str:
    """The folder of a run: the resumed run's own, or a new one."""
    return str(resume) if resume else new


def config_subdir(resume: str | None) -> str:
    """Where Hydra keeps a run's config: .hydra/, or a subfolder of it for a resumed run."""
    if not resume:
        return ".hydra"
    return f".hydra/resumed-{datetime.now():%Y-%m-%d_%H-%M-%S}"


if not OmegaConf.has_resolver("job_name"):
    OmegaConf.register_new_resolver("job_name", job_name)
if not OmegaConf.has_resolver("run_dir"):
    OmegaConf.register_new_resolver("run_dir", run_dir)
if not OmegaConf.has_resolver("config_subdir"):
    OmegaConf.register_new_resolver("config_subdir", config_subdir)
