"""Train an MNIST classifier: `python train.py model=cnn_deep optimizer=adam`.

`python train.py --help` lists every config group and its choices; `-m` runs a sweep.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from mnistlab.checkpoints import inspect_checkpoint
from mnistlab.config import ConfigError
from mnistlab.cuda_check import skip_failing_nvml_check
from mnistlab.data import DataNotFoundError
from mnistlab.resume import allowed_changes, resumed_config
from mnistlab.stopping import RunInterrupted, RunStopped
from mnistlab.training import RunResult, report, save_result, train

log = logging.getLogger("train")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    if cfg.get("resume"):  # go on with the run's own config, in its own folder
        cfg = resumed_config(cfg, HydraConfig.get().overrides.task)
    resumed = _resumed(cfg)
    try:
        result = train(cfg)
    except Exception as err:
        if isinstance(err, RunInterrupted) or HydraConfig.get().mode != RunMode.MULTIRUN:
            _end_run(cfg, err, resumed)  # a signal ends a sweep too: resume its job later
        return _record_failed_job(cfg, err, resumed)
    report(result)
    if rank_zero_only.rank == 0:
        _save(cfg, result, status="completed", **resumed)
    return result.metric(cfg.optimized_metric)


def _end_run(cfg: DictConfig, err: Exception, resumed: dict[str, object]) -> NoReturn:
    """End the program with one line and an exit status that says why."""
    if isinstance(err, DataNotFoundError):
        print(f"Error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    if not isinstance(err, RunStopped):
        raise err
    if rank_zero_only.rank == 0 and getattr(err, "result", None) is not None:
        _save(cfg, err.result, status=err.status, error=str(err), **resumed)
    log.error("%s", err)
    if isinstance(err, RunInterrupted) and err.checkpoint:
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


if __name__ == "__main__":
    skip_failing_nvml_check()
    main()
