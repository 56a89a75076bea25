"""One training run from a composed config: fit, test the best checkpoint, report, and record
the outcome (completed, failed or interrupted) in the run folder's result.json."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NoReturn

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from mnistlab.build import build
from mnistlab.callbacks import EpochTimer
from mnistlab.checkpoint_files import inspect_checkpoint
from mnistlab.checks import check_config
from mnistlab.data import DataNotFoundError
from mnistlab.errors import ConfigError, exit_with
from mnistlab.hparams import hparams_entry, write_hparams
from mnistlab.internals import frozen_garbage, skip_empty_step_hooks
from mnistlab.processes import free_threads
from mnistlab.resume import allowed_changes, resumed_config
from mnistlab.run_folder import job_left_off
from mnistlab.stopping import (
    DiskFull,
    OutOfMemory,
    RunInterrupted,
    RunStopped,
    SignalCheckpoint,
)
from mnistlab.summary import print_summary
from mnistlab.sweeps import (
    STOPPED,
    in_worker_process,
    job_threads,
    resume_command,
    stopped_by,
)

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced: every logged metric, the best checkpoint and the TensorBoard logs.

    ``epoch_seconds`` holds each training epoch's seconds without validation (empty when the
    config has no EpochTimer callback); ``threads`` and ``precision`` are what the run used
    (``auto`` decided).
    """

    metrics: dict[str, float]
    best_checkpoint: str | None
    tensorboard_dirs: list[str]
    seconds: float
    epoch_seconds: list[float]
    parameters: int
    epochs: int
    run_dir: str
    threads: int
    precision: str

    def metric(self, name: str) -> float:
        """The value a sweep optimises; a missing name is a config mistake, so fail loudly."""
        if name not in self.metrics:
            raise KeyError(f"optimized_metric={name!r} was never logged; logged metrics are "
                           f"{', '.join(sorted(self.metrics))}")
        return self.metrics[name]


def _stop_file() -> Path | None:
    """The sweep's flag that a signal stopped it (in a launcher's worker process), else None."""
    if not in_worker_process():
        return None
    return Path(HydraConfig.get().sweep.dir).resolve() / STOPPED


def train(cfg: DictConfig) -> RunResult:
    """Seed, build, fit, then test with the best checkpoint (or the last weights if none)."""
    check_config(cfg)
    threads = torch.get_num_threads()
    try:  # the thread count is process-wide: later runs of a sweep get the default back
        torch.set_num_threads(_threads(cfg, threads))
        return _train(cfg)
    finally:
        torch.set_num_threads(threads)


def _threads(cfg: DictConfig, default: int) -> int:
    """``threads``: a number as given; in a parallel sweep, the job's share of the cores;
    ``auto``, torch's default or fewer when other programs keep cores busy; null, the
    default."""
    chosen = cfg.get("threads")
    if chosen not in (None, "auto"):
        return chosen
    shared = job_threads()
    if shared is not None:
        return shared
    if chosen is None:
        return default
    picked = free_threads(default)
    if picked < default:
        log.info("threads: %d, as %d of %d cores are busy with other programs (threads=auto; "
                 "threads=%d uses them all)", picked, default - picked, default, default)
    return picked


def _train(cfg: DictConfig) -> RunResult:
    start = time.perf_counter()
    L.seed_everything(cfg.seed + cfg.get("replicate", 0), workers=True)
    datamodule, model, trainer = build(cfg)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))  # hparams.yaml
        if isinstance(logger, TensorBoardLogger):
            write_hparams(logger, hparams_entry(cfg))

    # SIGINT and SIGTERM end the run after the current step, with a checkpoint to resume from.
    stopper = SignalCheckpoint(_stop_file())
    trainer.callbacks.append(skip_empty_step_hooks(stopper))
    with frozen_garbage():  # what exists now is never garbage (mnistlab.internals)
        try:
            with stopper.catching():
                # Checkpoints are plain data (mnistlab.checkpoints): loading them runs no code.
                trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"),
                            weights_only=True)
        except RunStopped as err:
            err.result = _result(cfg, trainer, model, start, _best_checkpoint(trainer))
            raise
        fit_metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}

        best = _best_checkpoint(trainer)
        if best is None:
            log.warning("no checkpoint was saved (fast_dev_run or no ModelCheckpoint); testing "
                        "the weights from the end of training")
        trainer.test(model=model, datamodule=datamodule, ckpt_path=best, weights_only=True)
    return _result(cfg, trainer, model, start, best, fit_metrics)


def _result(cfg: DictConfig, trainer: L.Trainer, model: L.LightningModule, start: float,
            best: str | None, earlier: dict[str, float] | None = None) -> RunResult:
    metrics = (earlier or {}) | {k: float(v) for k, v in trainer.callback_metrics.items()}
    tensorboard_dirs = [lg.log_dir for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
    timers = [cb for cb in trainer.callbacks if isinstance(cb, EpochTimer)]
    return RunResult(metrics=metrics, best_checkpoint=best, tensorboard_dirs=tensorboard_dirs,
                     seconds=time.perf_counter() - start,
                     epoch_seconds=timers[0].seconds if timers else [],
                     parameters=sum(p.numel() for p in model.parameters()),
                     epochs=trainer.current_epoch, run_dir=str(cfg.paths.output_dir),
                     threads=torch.get_num_threads(), precision=str(trainer.precision))


def save_result(result: RunResult | None, path: str | os.PathLike[str], **extra: object) -> None:
    """Write the run's numbers as JSON beside its checkpoints, for tables across runs.

    ``result`` is None for a run that failed before training (the record then holds ``extra``:
    status and error). A value that is not finite (a diverged loss) is written as null: JSON
    has no NaN.
    """
    record = (asdict(result) if result else {"metrics": {}}) | extra
    record["metrics"] = {k: v if math.isfinite(v) else None for k, v in record["metrics"].items()}
    Path(path).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
        return callback.best_model_path
    return None


@rank_zero_only  # under DDP every process runs train.py; one report is enough
def report(result: RunResult) -> None:
    """Tell the user what the run achieved, where it is, and how to look at it."""
    metrics = result.metrics

    def percent(key: str) -> str:
        return f"{100 * metrics[key]:.2f}%" if key in metrics else "-"

    minutes, seconds = divmod(round(result.seconds), 60)
    lines = [
        f"best val acc   {percent('val/acc_best')}",
        f"test acc       {percent('test/acc')} (the best checkpoint on the test set)",
        f"epochs         {result.epochs}",
        f"time           {minutes} min {seconds} s (training and testing)",
        f"checkpoint     {result.best_checkpoint or '- (none saved)'}",
        f"run folder     {os.path.normpath(result.run_dir)}",
    ]
    lines += [f"curves         tensorboard --logdir {os.path.normpath(log_dir)}"
              for log_dir in result.tensorboard_dirs]
    log.info("summary\n  %s", "\n  ".join(lines))


def run(cfg: DictConfig) -> float:
    """train.py's whole job: train, report, and record the outcome in result.json.

    Returns the value a sweeper optimises. A bad value, missing data, divergence or a signal
    ends a single run with one line and its exit status; a failed sweep job is recorded and the
    sweep goes on (a signal ends the sweep too, so that its jobs can be resumed later).
    """
    if cfg.get("resume"):  # go on with the run's own config, in its own folder
        cfg = resumed_config(cfg, HydraConfig.get().overrides.task)
    if in_worker_process():  # until training catches them, the sweep's signals wait (STOPPED)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.SIG_IGN)
    if HydraConfig.get().mode == RunMode.MULTIRUN:  # a sweep run again in its folder
        if stopped_by(Path(HydraConfig.get().sweep.dir)) is not None:
            log.warning("not started: a signal stopped the sweep")
            return float("nan")
        state, last = job_left_off(Path(cfg.paths.output_dir))
        if state == "completed":
            log.info("kept: this job completed in an earlier run of the sweep (result.json)")
            result = json.loads((Path(cfg.paths.output_dir) / "result.json").read_text())
            value = (result.get("metrics") or {}).get(cfg.optimized_metric)
            return float("nan") if value is None else float(value)
        if state == "interrupted" and cfg.get("ckpt_path") is None:
            log.info("going on from %s, where an earlier run of the sweep stopped", last)
            with open_dict(cfg):
                cfg.ckpt_path = str(last)
    resumed = _resumed(cfg)
    try:
        result = train(cfg)
    except Exception as caught:
        err = OutOfMemory.from_error(caught, cfg) or DiskFull.from_error(caught) or caught
        if isinstance(err, RunInterrupted) and in_worker_process():  # the sweep ends it
            return _record_failed_job(cfg, err, resumed)
        if isinstance(err, RunInterrupted) or HydraConfig.get().mode != RunMode.MULTIRUN:
            _end_run(cfg, err, resumed)
        return _record_failed_job(cfg, err, resumed)
    report(result)
    if rank_zero_only.rank == 0:
        _save(cfg, result, status="completed", **resumed)
    return result.metric(cfg.optimized_metric)


def _end_run(cfg: DictConfig, err: Exception, resumed: dict[str, object]) -> NoReturn:
    """End the program with one line and an exit status that says why."""
    if isinstance(err, DataNotFoundError):
        exit_with(err, status=1)
    if not isinstance(err, RunStopped):
        raise err
    if rank_zero_only.rank == 0 and (getattr(err, "result", None) is not None
                                     or err.recorded_without_result):
        with contextlib.suppress(OSError):  # a full disk may not take even the record
            _save(cfg, getattr(err, "result", None), status=err.status, error=str(err),
                  **resumed)
    log.error("%s", err)
    if isinstance(err, RunInterrupted) and HydraConfig.get().mode == RunMode.MULTIRUN:
        sweep_dir = Path(HydraConfig.get().sweep.dir).resolve()
        with contextlib.suppress(FileNotFoundError):
            print_summary(sweep_dir, cfg.get("optimized_metric"))
        log.error("resume the sweep with: %s", resume_command(sys.argv[0], sweep_dir))
    elif isinstance(err, RunInterrupted) and err.checkpoint:
        log.error("resume with: python %s resume=%s", sys.argv[0],
                  Path(cfg.paths.output_dir).resolve())
    raise SystemExit(err.exit_code) from None


def _record_failed_job(cfg: DictConfig, err: Exception, resumed: dict[str, object]) -> float:
    """A failed sweep job is recorded, and the sweep goes on with its next job.

    The job's folder keeps its log (with the traceback of an unexpected error) and a result.json
    with status ``failed`` and the error's first line, which the sweep's summary lists; the
    sweep exits 1 at its end (mnistlab.summary). NaN tells Optuna's sweeper the trial failed.
    """
    expected = isinstance(err, RunStopped | DataNotFoundError | ConfigError)
    if expected:
        log.error("job failed: %s", err)
    else:
        log.exception("job failed")
    if rank_zero_only.rank == 0:
        first_line = (str(err).strip().splitlines() or [""])[0]
        _save(cfg, getattr(err, "result", None), status=getattr(err, "status", "failed"),
              error=first_line if expected else f"{type(err).__name__}: {first_line}",
              **resumed)
    return float("nan")


def _resumed(cfg: DictConfig) -> dict[str, object]:
    """Where a resumed run came from and what it changed (read before last.ckpt is rewritten)."""
    if not cfg.get("ckpt_path"):
        return {}
    saved = inspect_checkpoint(cfg.ckpt_path).get("config") or {}
    return {"resumed_from": str(cfg.ckpt_path), "changed": allowed_changes(saved, cfg)}


def _save(cfg: DictConfig, result: RunResult | None, **extra: object) -> None:
    tutorial = cfg.get("tutorial")
    save_result(result, Path(cfg.paths.output_dir) / "result.json",
                experiment=HydraConfig.get().runtime.choices.get("experiment"),
                tutorial=OmegaConf.to_container(tutorial) if tutorial else None,
                seed=cfg.seed + cfg.replicate, **extra)
