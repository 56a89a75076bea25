"""The HPARAMS entry of a run, so TensorBoard can rank a sweep's runs by their results.

Lightning writes the hyperparameters only to hparams.yaml unless it is also given metrics, and
then it logs placeholder values for them at step 0. Here the entry declares the metric tags
(``METRICS``) without logging any value; the run logs those scalars itself, and TensorBoard's
HPARAMS table, parallel-coordinates and scatter views read their last values. TensorBoard lists
the hyperparameters marked ``differs`` first and shows the first five: those are the ones this
run's command line set (in a sweep, the swept ones).
"""

from __future__ import annotations

import os
from typing import Any

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig
from tensorboard.plugins.hparams import plugin_data_pb2
from torch.utils.tensorboard.summary import hparams

from mnistlab.internals import file_writer
from mnistlab.overrides import parse_overrides
from mnistlab.sweeps import SWEEP_KEYS_ENV

METRICS = ("val/acc_best", "test/acc", "test/loss")
GROUPS = ("model", "optimizer", "init", "scheduler", "augment", "data")
# Each entry's name, and the config keys whose override on the command line it shows.
SOURCES = {"preset": ("experiment",), "lr": ("optimizer.lr",),
           "weight_decay": ("optimizer.weight_decay",), "batch_size": ("data.batch_size",),
           "max_epochs": ("trainer.max_epochs",), "seed": ("seed", "replicate"),
           "dropout": ("model.dropout",), "label_smoothing": ("model.label_smoothing",),
           "hidden": ("model.hidden",)} | {group: (group,) for group in GROUPS}


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


def varied_keys() -> set[str]:
    """Config keys this run set on the command line: the swept ones in a sweep."""
    swept = os.environ.get(SWEEP_KEYS_ENV)
    if swept:
        return set(swept.split(","))
    if not HydraConfig.initialized():
        return set()
    overrides = parse_overrides(list(HydraConfig.get().overrides.task))
    return {override.key_or_group for override in overrides}


@rank_zero_only
def write_hparams(logger: TensorBoardLogger, entry: dict[str, Any],
                  metrics: tuple[str, ...] = METRICS, varied: set[str] | None = None) -> None:
    """Write the HPARAMS entry into the logger's event file, declaring ``metrics`` as its tags.

    Entries whose config keys are in ``varied`` (default: ``varied_keys()``) are marked as
    differing, so TensorBoard shows them first.
    """
    varied = varied_keys() if varied is None else varied
    experiment, start, end = hparams(entry, dict.fromkeys(metrics, 0.0))
    value = experiment.value[0]
    data = plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content)
    for info in data.experiment.hparam_infos:
        info.differs = any(key in varied for key in SOURCES.get(info.name, ()))
    value.metadata.plugin_data.content = data.SerializeToString()
    writer = file_writer(logger)
    for summary in (experiment, start, end):
        writer.add_summary(summary)
    writer.flush()
