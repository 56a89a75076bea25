"""One training run from a composed config: fit, test the best checkpoint, report."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from mnistlab.build import build
from mnistlab.callbacks import EpochTimer
from mnistlab.config import check_config

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced: every logged metric, the best checkpoint and the TensorBoard logs.

    ``epoch_seconds`` holds each training epoch's seconds without validation (empty when the
    config has no EpochTimer callback).
    """

    metrics: dict[str, float]
    best_checkpoint: str | None
    tensorboard_dirs: list[str]
    seconds: float
    epoch_seconds: list[float]
    parameters: int

    def metric(self, name: str) -> float:
        """The value a sweep optimises; a missing name is a config mistake, so fail loudly."""
        if name not in self.metrics:
            raise KeyError(f"optimized_metric={name!r} was never logged; logged metrics are "
                           f"{', '.join(sorted(self.metrics))}")
        return self.metrics[name]


def train(cfg: DictConfig) -> RunResult:
    """Seed, build, fit, then test with the best checkpoint (or the last weights if none)."""
    check_config(cfg)
    threads = torch.get_num_threads()
    try:  # the thread count is process-wide: later runs of a sweep get the default back
        torch.set_num_threads(cfg.get("threads") or threads)
        return _train(cfg)
    finally:
        torch.set_num_threads(threads)


def _train(cfg: DictConfig) -> RunResult:
    start = time.perf_counter()
    L.seed_everything(cfg.seed + cfg.get("replicate", 0), workers=True)
    datamodule, model, trainer = build(cfg)
    for logger in trainer.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    # Checkpoints hold the optimizer factory and init scheme, so they are full pickles, not
    # weights only; they are this project's own files.
    trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"),
                weights_only=False)
    fit_metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}

    best = _best_checkpoint(trainer)
    if best is None:
        log.warning("no checkpoint was saved (fast_dev_run or no ModelCheckpoint); testing the "
                    "weights from the end of training")
    trainer.test(model=model, datamodule=datamodule, ckpt_path=best, weights_only=False)
    metrics = fit_metrics | {k: float(v) for k, v in trainer.callback_metrics.items()}
    tensorboard_dirs = [lg.log_dir for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
    timers = [cb for cb in trainer.callbacks if isinstance(cb, EpochTimer)]
    return RunResult(metrics=metrics, best_checkpoint=best, tensorboard_dirs=tensorboard_dirs,
                     seconds=time.perf_counter() - start,
                     epoch_seconds=timers[0].seconds if timers else [],
                     parameters=sum(p.numel() for p in model.parameters()))


def save_result(result: RunResult, path: str | os.PathLike[str], **extra: object) -> None:
    """Write the run's numbers as JSON beside its checkpoints, for tables across runs."""
    Path(path).write_text(json.dumps(asdict(result) | extra, indent=2) + "\n")


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    callback = trainer.checkpoint_callback
    if isinstance(callback, ModelCheckpoint) and callback.best_model_path:
        return callback.best_model_path
    return None


@rank_zero_only  # under DDP every process runs train.py; one report is enough
def report(result: RunResult) -> None:
    """Tell the user the test accuracy, the checkpoint and how to look at the curves."""
    if "test/acc" in result.metrics:
        log.info("test accuracy: %.2f%% (%.0f s for training and testing)",
                 100 * result.metrics["test/acc"], result.seconds)
    if result.best_checkpoint:
        log.info("best checkpoint: %s", result.best_checkpoint)
    for log_dir in result.tensorboard_dirs:
        log.info("view the curves: tensorboard --logdir %s", os.path.normpath(log_dir))
