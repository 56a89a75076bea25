"""Reading a checkpoint file as plain data, or one line saying what the file is instead.

Apart from mnistlab.checkpoints (which writes them, with Lightning) so that the run-start
checks can read a ``ckpt_path=`` before torch and Lightning are loaded for training; torch is
imported when a file is read.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mnistlab.errors import CheckpointError


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's contents, loaded as plain data (no code from the file runs)."""
    import torch  # 2 s: the run-start checks import this module before anything needs torch

    return torch.load(Path(path), map_location="cpu", weights_only=True)


def inspect_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's ``mnistlab`` entry, or a CheckpointError saying what the file is.

    A run checks its checkpoint before Hydra makes its folder, again before it trains, and
    records what a resume changed; the file is read once for all of them (the cache is keyed
    by the file's size and modification time, so a rewritten file is read again).
    """
    return _summary(Path(path))[0]


def trained_so_far(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(epochs, optimizer steps)`` the checkpoint's run had completed when it was saved.

    An epoch counts once its training batches are done: last.ckpt saved at an epoch's end
    counts it, one saved within an epoch does not. Read from Lightning's loop state.
    """
    return _summary(Path(path))[1:]


def _summary(path: Path) -> tuple[dict[str, Any], int, int]:
    if path.is_file() and path.stat().st_size:
        stat = path.stat()
        return _read_summary(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return _summarise(verified_checkpoint(path))


@functools.lru_cache(maxsize=4)
def _read_summary(path: str, size: int, mtime_ns: int) -> tuple[dict[str, Any], int, int]:
    return _summarise(verified_checkpoint(Path(path)))


def _summarise(checkpoint: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
    epochs = (checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {})
              .get("current", {}).get("processed", 0))
    return checkpoint["mnistlab"], int(epochs), int(checkpoint.get("global_step", 0))


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


def member_paths(ckpt_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
                 ) -> list[Path]:
    """The checkpoints that ``ckpt_path`` names: a checkpoint, a list of them, a run folder
    (its best checkpoint) or a sweep folder (every completed job's best checkpoint)."""
    if not isinstance(ckpt_path, str | os.PathLike):
        return [Path(path) for path in ckpt_path]
    path = Path(ckpt_path)
    if not path.is_dir():
        return [path]
    records = [path / "result.json"] if (path / "result.json").is_file() else sorted(
        path.glob("*/result.json"), key=lambda p: (len(p.parent.name), p.parent.name))
    found = []
    for record in records:
        try:
            result = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if result.get("status") == "completed" and result.get("best_checkpoint"):
            found.append(Path(result["best_checkpoint"]))
    if not found:
        raise CheckpointError(f"{ckpt_path} holds no completed run with a best checkpoint "
                              "(result.json): give a checkpoint, a run folder or a sweep folder")
    return found
