"""The Hydra callback that checks a run's config and claims its folder before Hydra writes.

Hydra turns exceptions raised in callbacks into warnings and carries on, so a bad value ends
the program here, with one line and exit status 2 (the usual status for a bad command line),
before any run or sweep folder exists.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from hydra.utils import to_absolute_path
from omegaconf import DictConfig, open_dict, read_write

from mnistlab.checks import check_config
from mnistlab.errors import ConfigError, exit_with
from mnistlab.resume import resumed_config
from mnistlab.run_folder import check_can_make, claim, claim_sweep, explicit_run_dir, release
from mnistlab.sweeps import STOPPED, pass_signals_to_jobs, resume_command, stopped_by

log = logging.getLogger(__name__)


def slurm_tasks() -> int:
    """How many processes ``srun`` started for this run (SLURM's tasks: one per DDP rank)."""
    return int(os.environ.get("SLURM_NTASKS", "1")) if "SLURM_PROCID" in os.environ else 1


def process_rank() -> int:
    """This process's rank among a run's processes: Lightning's own DDP children have
    LOCAL_RANK; the tasks of a SLURM job step, SLURM_PROCID."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return local or (int(os.environ["SLURM_PROCID"]) if slurm_tasks() > 1 else 0)


def _one_folder_for_slurm_tasks(config: DictConfig, folder: Path | None) -> None:
    """The tasks of one SLURM job step write one run: into the folder given with
    ``hydra.run.dir`` (a default folder's time could differ between them), each rank but the
    first with its own log and Hydra record, as Lightning names them for its own DDP ranks."""
    if folder is None:
        raise ConfigError(
            f"the {slurm_tasks()} SLURM tasks of this run need one folder, but hydra.run.dir "
            "holds the time, which may differ between them. Fix: give it, e.g. "
            "hydra.run.dir=outputs/ddp_$SLURM_JOB_ID (in the job script).")
    rank = process_rank()
    if rank > 0:
        with open_dict(config), read_write(config):
            config.hydra.job.name = f"{config.hydra.job.name}_slurm_task_{rank}"
            config.hydra.output_subdir = f".hydra/slurm_task_{rank}"


class CheckConfigAndClaimFolder(Callback):
    """Runs ``check_config`` before Hydra creates any run or sweep folder.

    A run folder fixed with ``hydra.run.dir`` (or resume=<folder>) is also claimed here
    (``mnistlab.run_folder``), before Hydra writes its config into it, and released when the run
    ends. In a sweep only the values shared by all jobs are known at this point; each job's own
    values are checked again when it starts, before it trains, and earlier jobs keep their
    results.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            if config.get("resume"):  # checked as the run's own config, with its last.ckpt
                resumed = resumed_config(config, config.hydra.overrides.task)
                resumed.hydra = config.hydra
                config = resumed
            check_config(config)
            check_can_make(config.hydra.run.dir, "hydra.run.dir")
            folder = explicit_run_dir(config)
            if slurm_tasks() > 1:
                _one_folder_for_slurm_tasks(config, folder)
            # The other ranks write into rank 0's folder, which rank 0 claims.
            if folder is not None and process_rank() == 0:
                claim(folder, config.get("ckpt_path"))
        except ConfigError as err:
            exit_with(err)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = explicit_run_dir(config)
        if folder is not None and process_rank() == 0:
            release(folder)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_config(config)
            check_can_make(config.hydra.sweep.dir, "hydra.sweep.dir")
            folder = Path(to_absolute_path(config.hydra.sweep.dir))
            if claim_sweep(folder, list(config.hydra.overrides.task),
                           list(config.hydra.overrides.hydra)):
                log.info("resuming the sweep in %s: completed jobs are kept, interrupted ones go "
                         "on from their last.ckpt, the others start", folder)
        except ConfigError as err:
            exit_with(err)
        (folder / STOPPED).unlink(missing_ok=True)  # left by the run that was resumed
        pass_signals_to_jobs(folder)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Runs after the summary was printed (Hydra calls the end hooks in reverse)."""
        folder = Path(to_absolute_path(config.hydra.sweep.dir))
        release(folder)
        signum = stopped_by(folder)
        if signum is not None:
            log.error("stopped by %s; resume the sweep with: %s", signal.Signals(signum).name,
                      resume_command(sys.argv[0], folder))
            raise SystemExit(128 + signum)
