"""A training checkpoint back into a network, for eval.py, predict.py, demo.py and export.py.

It sits above both ``build`` (which makes the network from the config) and ``checkpoints``
(which reads the file), so neither needs the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from mnistlab.build import build_datamodule, build_model
from mnistlab.checkpoint_files import verified_checkpoint
from mnistlab.errors import CheckpointError, exit_with
from mnistlab.models import MNISTClassifier


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

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities for MNIST-style images (N, 1, 28, 28) with pixels in [0, 1]."""
        device = next(self.model.parameters()).device
        return self.model(self.prepare(images.to(device))).softmax(dim=1).cpu()


def load_model(path: str | os.PathLike[str]) -> LoadedModel:
    """Rebuild the network of a training checkpoint from the config stored in it."""
    try:
        checkpoint = verified_checkpoint(Path(path))
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from None
    info = checkpoint["mnistlab"]
    config = OmegaConf.create(info["config"])
    model = build_model(config)
    model.load_state_dict(checkpoint["state_dict"])
    model.checkpoint_info = info
    return LoadedModel(model=model.eval(), config=config, classes=list(info["classes"]),
                       normalize=bool(info["normalize"]), mean=float(info["mean"]),
                       std=float(info["std"]), path=Path(path))


def load_or_exit(path: str | os.PathLike[str]) -> LoadedModel:
    """``load_model``, or the reason the file is not a usable checkpoint and exit status 2."""
    try:
        return load_model(path)
    except CheckpointError as err:
        exit_with(f"ckpt_path={err}")


def held_out_pixels(loaded: LoadedModel, data_dir: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The checkpoint's dataset's test images as [0, 1] pixels, and their labels."""
    config = loaded.config.copy()
    with open_dict(config):
        config.data.data_dir = data_dir
        config.data.loader = "memory"
    datamodule = build_datamodule(config)
    datamodule.prepare_data()
    datamodule.setup()
    test = datamodule.test_set
    return test.images.float() / 255, test.labels
