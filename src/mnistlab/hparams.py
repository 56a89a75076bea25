"""The HPARAMS entry of a run, so TensorBoard can rank a sweep's runs by their results.

Lightning writes the hyperparameters only to hparams.yaml unless it is also given metrics, and
then it logs placeholder values for them at step 0. Here the entry declares the metric tags
(``METRICS``) without logging any value; the run logs those scalars itself, and TensorBoard's
HPARAMS table, parallel-coordinates and scatter views read their last values.
"""

from __future__ import annotations

from typing import Any

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig
from torch.utils.tensorboard.summary import hparams

METRICS = ("val/acc_best", "test/acc", "test/loss")
GROUPS = ("model", "optimizer", "init", "scheduler", "augment", "data")


def hparams_entry(cfg: DictConfig) -> dict[str, Any]:
    """The choices and values that tell a sweep's runs apart, as flat scalars and strings."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    entry: dict[str, Any] = {group: str(choices.get(group) or "none") for group in GROUPS}
    entry["preset"] = str(choices.get("experiment") or "none")
    entry |= {
        "lr": float(cfg.optimizer.lr),
        "weight_decay": float(cfg.optimizer.get("weight_decay", 0.0)),
        "batch_size": int(cfg.data.batch_size),
        "max_epochs": int(cfg.trainer.max_epochs),
        "seed": int(cfg.seed + cfg.get("replicate", 0)),
    }
    for key in ("dropout", "label_smoothing"):
        if key in cfg.model:
            entry[key] = float(cfg.model[key])
    if "hidden" in cfg.model:
        entry["hidden"] = "-".join(str(width) for width in cfg.model.hidden)
    return entry


@rank_zero_only
def write_hparams(logger: TensorBoardLogger, entry: dict[str, Any],
                  metrics: tuple[str, ...] = METRICS) -> None:
    """Write the HPARAMS entry into the logger's event file, declaring ``metrics`` as its tags."""
    writer = logger.experiment._get_file_writer()
    for summary in hparams(entry, dict.fromkeys(metrics, 0.0)):
        writer.add_summary(summary)
    writer.flush()
