"""Checkpoints that stand alone: plain data that rebuilds and uses the model without its run.

Lightning's checkpoint gains a ``"mnistlab"`` entry: the run's resolved config as plain data,
the dataset's class names and the normalisation the network expects. Nothing in a checkpoint
is a pickled object, so it loads with ``torch.load(weights_only=True)``, which runs no code
from the file. ``load_model`` rebuilds the network from the config in the file alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from mnistlab.data import MNISTDataModule
from mnistlab.models import MNISTClassifier

FORMAT = 1


def checkpoint_info(cfg: DictConfig, datamodule: MNISTDataModule) -> dict[str, Any]:
    """What a checkpoint of this run must carry to be used on its own, as plain data."""
    return {
        "format": FORMAT,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "classes": list(datamodule.classes),
        "normalize": bool(datamodule.hparams.normalize),
        "mean": datamodule.mean,
        "std": datamodule.std,
    }


@dataclass(frozen=True)
class LoadedModel:
    """A network rebuilt from a checkpoint, in eval mode, and what the file says about it."""

    model: MNISTClassifier
    config: DictConfig
    classes: list[str]
    normalize: bool
    mean: float
    std: float
    path: Path

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1] (N, 1, 28, 28) -> the network's input, normalised as in training."""
        if not self.normalize:
            return images
        return (images - self.mean) / self.std


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's contents, loaded as plain data (no code from the file runs)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Rebuild the network of a training checkpoint from the config stored in it."""
    from mnistlab.build import build_model  # build imports this module's users

    checkpoint = read_checkpoint(path)
    info = checkpoint.get("mnistlab")
    if not info:
        raise ValueError(f"{path} holds no 'mnistlab' entry (config, classes, normalisation): it "
                         "was not written by this version of train.py")
    config = OmegaConf.create(info["config"])
    model = build_model(config)
    model.load_state_dict(checkpoint["state_dict"])
    model.checkpoint_info = info
    return LoadedModel(model=model.eval(), config=config, classes=list(info["classes"]),
                       normalize=bool(info["normalize"]), mean=float(info["mean"]),
                       std=float(info["std"]), path=Path(path))
