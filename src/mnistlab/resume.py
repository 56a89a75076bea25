"""What a resumed run may change: the length of training, not what is being trained.

Resuming with another model, optimizer, learning rate, init, schedule, augmentation, data or
seed would record settings the checkpoint's weights were not trained with, so those are
refused; the rest (epochs, batch limits, logging) may change and are recorded in result.json.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from mnistlab.errors import ConfigError
from mnistlab.overrides import parse_overrides

# Subtrees that define what the checkpoint trained, and data keys that only say where and how
# fast the files are read.
FIXED = ("model", "optimizer", "init", "scheduler", "augment", "data", "seed", "replicate")
DATA_LOCAL = ("data_dir", "num_workers", "pin_memory", "eval_batch_size", "loader", "on_device")


def _flat(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items()
                for k, v in _flat(item, f"{prefix}.{key}").items()}
    return {prefix: value}


def differences(saved: dict[str, Any], cfg: DictConfig,
                keys: tuple[str, ...]) -> dict[str, tuple[Any, Any]]:
    """``key: (in the checkpoint, now)`` for every leaf under ``keys`` that differs."""
    changed = {}
    for key in keys:
        node = OmegaConf.select(cfg, key, default=None)
        now = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
        before, after = _flat(saved.get(key), key), _flat(now, key)
        for leaf in sorted(set(before) | set(after)):
            if leaf.split(".")[0] == "data" and leaf.split(".")[-1] in DATA_LOCAL:
                continue
            if before.get(leaf) != after.get(leaf):
                changed[leaf] = (before.get(leaf), after.get(leaf))
    return changed


def fixed_changes(saved: dict[str, Any], cfg: DictConfig) -> dict[str, tuple[Any, Any]]:
    """Settings a resumed run may not change."""
    return differences(saved, cfg, FIXED)


def allowed_changes(saved: dict[str, Any], cfg: DictConfig) -> dict[str, list[Any]]:
    """Trainer settings that differ from the checkpoint's run, for the record."""
    return {key: list(pair) for key, pair in differences(saved, cfg, ("trainer",)).items()
            if not key.endswith("default_root_dir")}


# What resume=<folder> may take from the command line besides the run's own config.
MAY_CHANGE = ("trainer.", "threads", "hydra.", "resume", "logger", "callbacks.")


def resumed_config(cfg: DictConfig, overrides: Sequence[str]) -> DictConfig:
    """The config of the run in ``cfg.resume``, with this command line's trainer settings.

    Raises ConfigError when the folder holds no run to resume or the command line would change
    what the run trains. Composed once per process (the run-start check and the run itself
    both ask); each caller gets its own copy.
    """
    folder = Path(to_absolute_path(str(cfg.resume)))
    return _resumed(str(cfg.resume), folder, tuple(overrides)).copy()


@functools.cache
def _resumed(resume: str, folder: Path, overrides: tuple[str, ...]) -> DictConfig:
    saved, last = folder / ".hydra" / "config.yaml", folder / "checkpoints" / "last.ckpt"
    if not saved.is_file():
        raise ConfigError(f"resume={resume} is invalid: {folder} holds no run "
                          "(no .hydra/config.yaml). Fix: pass a run folder, e.g. "
                          "resume=outputs/runs/<date>/<time>.")
    if not last.is_file():
        raise ConfigError(f"resume={resume} is invalid: the run saved no checkpoints/last.ckpt"
                          " to go on from. Fix: start it again without resume.")
    parsed = parse_overrides(list(overrides))
    refused = [o.input_line for o in parsed
               if not o.key_or_group.lstrip("+~").startswith(MAY_CHANGE)]
    if refused:
        raise ConfigError(f"resume={resume} goes on with the run's own config, but "
                          f"{', '.join(refused)} would change what it trains. Fix: drop them; "
                          "trainer settings such as trainer.max_epochs may change.")
    resumed = OmegaConf.load(saved)
    for override in parsed:
        key = override.key_or_group.lstrip("+~")
        if key.startswith(("trainer.", "threads")):
            OmegaConf.update(resumed, key, override.value(), force_add=True)
    resumed.ckpt_path, resumed.resume = str(last), str(folder)
    return resumed
