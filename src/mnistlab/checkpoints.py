"""Checkpoints that stand alone: plain data that rebuilds and uses the model without its run.

Lightning's checkpoint gains a ``"mnistlab"`` entry: the run's resolved config as plain data,
the dataset's class names and the normalisation the network expects. Nothing in a checkpoint
is a pickled object, so it loads with ``torch.load(weights_only=True)``, which runs no code
from the file. ``mnistlab.loading.load_model`` rebuilds the network from the file alone.
"""

from __future__ import annotations

import functools
import os
import pickle
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.fabric.plugins import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from mnistlab.data import MNISTDataModule
from mnistlab.errors import CheckpointError


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


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's contents, loaded as plain data (no code from the file runs)."""
    return torch.load(Path(path), map_location="cpu", weights_only=True)


def inspect_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's ``mnistlab`` entry, or a CheckpointError saying what the file is.

    A run checks its checkpoint before Hydra makes its folder, again before it trains, and
    records what a resume changed; the file is read once for all of them (the cache is keyed
    by the file's size and modification time, so a rewritten file is read again).
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size:
        stat = path.stat()
        return _inspect_file(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return verified_checkpoint(path)["mnistlab"]


@functools.lru_cache(maxsize=4)
def _inspect_file(path: str, size: int, mtime_ns: int) -> dict[str, Any]:
    return verified_checkpoint(Path(path))["mnistlab"]


def verified_checkpoint(path: Path) -> dict[str, Any]:
    """The whole checkpoint, loaded as plain data, or a CheckpointError saying what it is."""
    if path.is_dir():
        raise CheckpointError(f"is a folder; pass a checkpoint file in it, e.g. "
                              f"{path / 'checkpoints' / 'last.ckpt'}")
    if not path.exists():
        raise CheckpointError("no such file")
    if path.stat().st_size == 0:
        raise CheckpointError("is empty (0 bytes), not a checkpoint")
    try:
        checkpoint = read_checkpoint(path)
    except pickle.UnpicklingError as err:
        if "global" in str(err).lower():  # a class or function to import: code to run
            raise CheckpointError(
                "holds pickled Python objects, so it was not loaded (loading could run code "
                "from it); only checkpoints written by this version of train.py load") from None
        raise CheckpointError("is not a readable checkpoint (truncated, or not a PyTorch file: "
                              "not a pickle of plain data)") from None
    except Exception as err:  # the unpickler fails in many ways on bytes that are not one
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CheckpointError(f"is not a readable checkpoint (truncated, or not a PyTorch "
                              f"file: {first[:120]})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError("is a PyTorch file but not a training checkpoint (no state_dict)")
    if "mnistlab" not in checkpoint:
        raise CheckpointError("was not written by this version of train.py (no 'mnistlab' "
                              "entry with its config, classes and normalisation)")
    return checkpoint


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
