"""Train an MNIST classifier: `python train.py model=cnn_deep optimizer=adam`.

`python train.py --help` lists every config group and its choices; `-m` runs a sweep.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from mnistlab.checkpoints import inspect_checkpoint
from mnistlab.cuda_check import skip_failing_nvml_check
from mnistlab.data import DataNotFoundError
from mnistlab.resume import allowed_changes, resumed_config
from mnistlab.stopping import RunInterrupted, RunStopped
from mnistlab.training import report, save_result, train

log = logging.getLogger("train")


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    if cfg.get("resume"):  # go on with the run's own config, in its own folder
        cfg = resumed_config(cfg, HydraConfig.get().overrides.task)
    resumed = _resumed(cfg)
    try:
        result = train(cfg)
    except DataNotFoundError as err:
        print(f"Error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except RunStopped as err:
        if rank_zero_only.rank == 0 and getattr(err, "result", None) is not None:
            _save(cfg, err.result, status=err.status, error=str(err), **resumed)
        log.error("%s", err)
        if isinstance(err, RunInterrupted) and err.checkpoint:
            log.error("resume with: python %s resume=%s", sys.argv[0],
                      Path(cfg.paths.output_dir).resolve())
        raise SystemExit(err.exit_code) from None
    report(result)
    if rank_zero_only.rank == 0:
        _save(cfg, result, status="completed", **resumed)
    return result.metric(cfg.optimized_metric)


def _resumed(cfg: DictConfig) -> dict[str, object]:
    """Where a resumed run came from and what it changed (read before last.ckpt is rewritten)."""
    if not cfg.get("ckpt_path"):
        return {}
    saved = inspect_checkpoint(cfg.ckpt_path).get("config") or {}
    return {"resumed_from": str(cfg.ckpt_path), "changed": allowed_changes(saved, cfg)}


def _save(cfg: DictConfig, result: object, **extra: object) -> None:
    tutorial = cfg.get("tutorial")
    save_result(result, Path(cfg.paths.output_dir) / "result.json",
                experiment=HydraConfig.get().runtime.choices.get("experiment"),
                tutorial=OmegaConf.to_container(tutorial) if tutorial else None,
                seed=cfg.seed + cfg.replicate, **extra)


if __name__ == "__main__":
    skip_failing_nvml_check()
    main()
