"""One run, one folder: a run folder given by hand is refused when another run's record is
already in it, and locked while a run writes to it.

Without this, a second run with the same ``hydra.run.dir`` replaced the first one's
config.yaml and result.json next to checkpoints they no longer described, and two concurrent
runs tested each other's checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path

from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf

from mnistlab.errors import ConfigError
from mnistlab.processes import alive

LOCK = ".mnistlab.lock"
RECORD = ("result.json", ".hydra/config.yaml", "checkpoints")


def run_dir(resume: str | None, new: str) -> str:
    """The folder of a run (``hydra.run.dir``): the resumed run's own, or a new one."""
    return str(resume) if resume else new


def config_subdir(resume: str | None) -> str:
    """Where Hydra keeps a run's config: .hydra/, or a subfolder of it for a resumed run."""
    if not resume:
        return ".hydra"
    return f".hydra/resumed-{datetime.now():%Y-%m-%d_%H-%M-%S}"


def explicit_run_dir(config: DictConfig) -> Path | None:
    """``hydra.run.dir`` when the user fixed it, or the folder of resume=<folder>.

    The default folder holds the time, so it is new.
    """
    if config.get("resume"):
        return Path(to_absolute_path(str(config.resume)))
    raw = OmegaConf.to_container(config.hydra.run, resolve=False).get("dir", "")
    return None if "${" in str(raw) else Path(str(raw)).resolve()


def check_can_make(folder: str | os.PathLike[str], key: str) -> None:
    """Refuse a run or sweep folder that cannot be made, before Hydra tries: its own error is a
    traceback, after it may have made part of the path.

    The nearest existing folder above it must be a folder in which one can be made (tried:
    permissions, read-only file systems and root alike), and each name must fit the file
    system.
    """
    path = Path(to_absolute_path(str(folder)))
    existing = path
    while not _exists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{key}={folder} is invalid: {existing} is a file, so no folder can be "
                          f"made under it. Fix: choose another folder with {key}=<folder>.")
    limit = os.pathconf(existing, "PC_NAME_MAX")
    long = next((part for part in path.parts if len(os.fsencode(part)) > limit), None)
    if long is not None:
        raise ConfigError(f"{key}={folder} is invalid: the name {long[:24]}... is "
                          f"{len(os.fsencode(long))} bytes, and this file system allows {limit}. "
                          f"Fix: a shorter name, e.g. {key}=outputs/my_run.")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=existing))
    except OSError as err:
        raise ConfigError(f"{key}={folder} is invalid: no folder can be made in {existing} "
                          f"({err.strerror}). Fix: run from a folder you can write to, or choose "
                          f"one with {key}=<folder>.") from None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system
        return False


def claim(folder: Path, ckpt_path: str | None) -> None:
    """Refuse a folder holding another run (unless resuming it), then lock it for this run."""
    resuming = ckpt_path is not None and folder in Path(ckpt_path).resolve().parents
    found = [name for name in RECORD if _present(folder / name)]
    if found and not resuming:
        last = folder / "checkpoints" / "last.ckpt"
        resume = f", or resume that run with ckpt_path={last}" if last.is_file() else ""
        raise ConfigError(
            f"hydra.run.dir={folder} already holds another run ({', '.join(found)}); a new run "
            "there would overwrite its record. Fix: leave hydra.run.dir out for a fresh folder"
            f"{resume}.")
    folder.mkdir(parents=True, exist_ok=True)
    _lock(folder, "hydra.run.dir", "run")


# The command a sweep folder's sweep was run with, written at its start by ``claim_sweep``
# (Hydra's multirun.yaml is written by some launchers only, and only once jobs start).
SWEEP_COMMAND = "sweep-command.yaml"


def claim_sweep(folder: Path, overrides: list[str], hydra_overrides: list[str] = ()) -> bool:
    """Refuse a sweep folder that holds a sweep of another command or that a running sweep
    uses, then lock it and record the command. True: the folder holds an earlier run of this
    same sweep, which goes on (``job_left_off`` says, per job, what is kept and what goes on).

    Without this, a second sweep into the folder ran beside the first, its jobs took the same
    numbers and the summary mixed both.
    """
    saved = folder / SWEEP_COMMAND
    resuming = saved.is_file()
    if resuming:
        before = list(OmegaConf.load(saved).task)
        if sorted(before) != sorted(overrides):
            differs = "; ".join(part for part in (
                "it adds " + " ".join(o for o in overrides if o not in before),
                "it drops " + " ".join(o for o in before if o not in overrides))
                if not part.endswith(("adds ", "drops ")))
            raise ConfigError(
                f"hydra.sweep.dir={folder} holds a sweep of another command (its overrides: "
                f"{' '.join(before) or 'none'}); {differs}. Fix: run that command again to "
                "resume it, or choose another folder with hydra.sweep.dir=<folder>.")
    folder.mkdir(parents=True, exist_ok=True)
    _lock(folder, "hydra.sweep.dir", "sweep")
    if not resuming:
        OmegaConf.save({"task": list(overrides), "hydra": list(hydra_overrides)}, saved)
    return resuming


def job_left_off(folder: Path) -> tuple[str, Path | None]:
    """How an earlier run of a sweep left a job's folder: ``("completed", None)`` (kept as it
    is), ``("interrupted", last.ckpt)`` (goes on from there, also after SIGKILL) or
    ``("new", None)``."""
    result = folder / "result.json"
    with contextlib.suppress(OSError, ValueError):
        if json.loads(result.read_text()).get("status") == "completed":
            return "completed", None
    last = folder / "checkpoints" / "last.ckpt"
    return ("interrupted", last) if last.is_file() else ("new", None)


def _lock(folder: Path, key: str, what: str) -> None:
    """Take ``folder``'s lock for this process; a lock whose process has ended is taken over."""
    lock = folder / LOCK
    for _ in range(2):
        try:
            descriptor = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            owner = _owner(lock)
            if owner is not None and owner != os.getpid() and alive(owner):
                raise ConfigError(
                    f"{key}={folder} is in use by another {what} (process {owner}). Fix: "
                    "wait for it to finish, or choose another folder.") from None
            lock.unlink(missing_ok=True)  # left by a run that was killed
            continue
        with os.fdopen(descriptor, "w") as f:
            f.write(str(os.getpid()))
        return
    raise ConfigError(f"{key}={folder}: could not lock it ({lock}); remove that file")


def release(folder: Path) -> None:
    lock = folder / LOCK
    if _owner(lock) == os.getpid():
        lock.unlink(missing_ok=True)


def _present(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def _owner(lock: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(lock.read_text().strip())
    return None
