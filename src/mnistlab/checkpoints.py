"""Checkpoints that stand alone: plain data that rebuilds and uses the model without its run.

Lightning's checkpoint gains a ``"mnistlab"`` entry: the run's resolved config as plain data,
the dataset's class names and the normalisation the network expects. Nothing in a checkpoint
is a pickled object, so it loads with ``torch.load(weights_only=True)``, which runs no code
from the file (``mnistlab.checkpoint_files`` reads it). ``mnistlab.loading.load_model`` rebuilds
the network from the file alone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.fabric.plugins import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from mnistlab.data import MNISTDataModule


def checkpoint_info(cfg: DictConfig, datamodule: MNISTDataModule) -> dict[str, Any]:
    """What a checkpoint of this run must carry to be used on its own, as plain data."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    return {
        "model": choices.get("model"),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "classes": list(datamodule.classes),
        "normalize": bool(datamodule.hparams.normalize),
        "mean": datamodule.mean,
        "std": datamodule.std,
    }


def last_checkpoint_path(trainer: L.Trainer) -> Path | None:
    """Where the run's ModelCheckpoint keeps last.ckpt (None without one)."""
    callback = trainer.checkpoint_callback
    folder = getattr(callback, "dirpath", None)
    return Path(folder) / "last.ckpt" if folder else None


class LastCheckpointWithinEpochs(L.Callback):
    """Save last.ckpt at every epoch's end, and within epochs every ``minutes`` or ``n`` steps.

    ModelCheckpoint writes last.ckpt only when it also saves a best checkpoint; this one keeps
    it current, so that a killed run resumes from a recent step, exactly (see
    ``mnistlab.data.resumable``).
    """

    def __init__(self, minutes: float | None = 10, every_n_steps: int | None = None) -> None:
        self.seconds = None if minutes is None else 60 * minutes
        self.every_n_steps = every_n_steps
        self._last = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        # Runs after every step: the cheap tests first, the path only when a save is due.
        due = bool(self.every_n_steps) and trainer.global_step % self.every_n_steps == 0
        due |= self.seconds is not None and time.monotonic() - self._last >= self.seconds
        path = last_checkpoint_path(trainer) if due else None
        if path is not None:
            trainer.save_checkpoint(path, weights_only=False)
            self._last = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        path = last_checkpoint_path(trainer)
        if path is not None and not trainer.sanity_checking:
            trainer.save_checkpoint(path, weights_only=False)
            self._last = time.monotonic()


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint under a temporary name, then rename it into place.

    A run killed or out of disk space mid-write leaves the previous checkpoint whole, never a
    truncated file under the real name.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike[str],
                        storage_options: Any | None = None) -> None:
        path = Path(path)
        partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
        try:
            super().save_checkpoint(checkpoint, partial, storage_options)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
