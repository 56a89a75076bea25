"""The OmegaConf resolvers that conf/hydra/default.yaml uses for run and sweep folder names.

Hydra resolves ``hydra.run.dir`` and ``hydra.sweep.subdir`` before any of our code runs in the
job, so every entry point calls ``register_resolvers`` before ``@hydra.main`` composes (and
``compose_config`` does for code outside the entry points).
"""

from __future__ import annotations

from omegaconf import OmegaConf

from mnistlab.run_folder import config_subdir, run_dir
from mnistlab.sweeps import job_name

RESOLVERS = {"job_name": job_name, "run_dir": run_dir, "config_subdir": config_subdir}


def register_resolvers() -> None:
    """Register every resolver once; calling it again changes nothing."""
    for name, function in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function)
