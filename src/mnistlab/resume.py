"""What a resumed run may change: the length of training, not what is being trained.

Resuming with another model, optimizer, learning rate, init, schedule, augmentation, data or
seed would record settings the checkpoint's weights were not trained with, so those are
refused; the rest (epochs, batch limits, logging) may change and are recorded in result.json.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

# Subtrees that define what the checkpoint trained, and data keys that only say where and how
# fast the files are read.
FIXED = ("model", "optimizer", "init", "scheduler", "augment", "data", "seed", "replicate")
DATA_LOCAL = ("data_dir", "num_workers", "pin_memory", "eval_batch_size", "loader")


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
