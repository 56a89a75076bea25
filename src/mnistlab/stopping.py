"""Ending a run early on purpose: a diverged loss, or a signal from the user or a scheduler.

Both stop training from a callback by raising an exception that ``mnistlab.training.train``
turns into an honest record: ``result.json`` with status ``failed`` or ``interrupted``, a
message that says what happened and what to do, and a non-zero exit status.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import re
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from mnistlab.checkpoints import last_checkpoint_path

log = logging.getLogger(__name__)


class RunStopped(Exception):
    """Training ended early; ``status`` goes into result.json, ``exit_code`` to the shell."""

    status = "failed"
    exit_code = 1
    # Recorded in result.json also when no metrics came with it (the run did not get that far).
    recorded_without_result = False


class DivergedError(RunStopped):
    """The loss became NaN or infinite, or accuracy stayed at chance: training cannot recover."""

    status = "failed"
    exit_code = 3


class RunInterrupted(RunStopped):
    """SIGINT (Ctrl-C) or SIGTERM (what schedulers send) arrived; a checkpoint was saved."""

    status = "interrupted"

    def __init__(self, signum: int, checkpoint: str | None) -> None:
        self.signum, self.checkpoint = signum, checkpoint
        name = signal.Signals(signum).name
        super().__init__(f"{name} received; stopped after the current step"
                         + (f", saved {checkpoint}" if checkpoint else ""))

    @property
    def exit_code(self) -> int:  # the shell's convention: 128 + the signal number
        return 128 + self.signum


class OutOfMemory(RunStopped):
    """A batch did not fit in memory (the CPU's or the GPU's): reported with the batch sizes
    and a smaller one to try, instead of a traceback of the allocator."""

    recorded_without_result = True

    @classmethod
    def from_error(cls, err: BaseException, cfg: Any) -> OutOfMemory | None:
        """The error as OutOfMemory when it is torch's out-of-memory error, else None."""
        said = str(err)
        if not (isinstance(err, torch.OutOfMemoryError) or (
                isinstance(err, RuntimeError) and ("can't allocate memory" in said
                                                   or "out of memory" in said.lower()))):
            return None
        batch = int(cfg.data.batch_size)
        evaluation = cfg.data.get("eval_batch_size")
        smaller = max(1, batch // 4)
        also = (f", and data.eval_batch_size={max(1, int(evaluation) // 4)} for validation and "
                "testing" if evaluation and int(evaluation) > smaller else "")
        asked = re.search(r"tried to allocate ([0-9.]+) ?(bytes|[KMG]i?B)", said)
        if asked and asked.group(2) == "bytes":
            detail = f"a tensor of {int(asked.group(1)) / 1e9:.2f} GB did not fit"
        elif asked:
            detail = f"{asked.group(1)} {asked.group(2)} more did not fit"
        else:
            detail = (said.strip().splitlines() or [type(err).__name__])[0][:120]
        return cls(f"out of memory with data.batch_size={batch}: {detail}. Fix: a smaller "
                   f"batch, e.g. data.batch_size={smaller}{also}.")


class DiskFull(RunStopped):
    """A file of the run could not be written for want of space: one line naming the file and
    the fix; the files already written (the previous last.ckpt among them) are kept."""

    recorded_without_result = True

    @classmethod
    def from_error(cls, err: BaseException) -> DiskFull | None:
        """The error as DiskFull when it is the file system's "no space" (or quota) error."""
        if not isinstance(err, OSError) or err.errno not in (errno.ENOSPC, errno.EDQUOT):
            return None
        where = err.filename2 or err.filename
        if where:  # a checkpoint is written under a temporary name first (AtomicCheckpointIO)
            where = re.sub(r"/\.([^/]+)\.partial-\d+$", r"/\1", str(where))
        written = f" while writing {where}" if where else ""
        return cls(f"no space left on the disk{written} ({err.strerror}). Fix: free some space "
                   "there, or give the run a folder on another disk with hydra.run.dir=<folder>;"
                   " the files already written are kept.")


class DivergenceGuard(Callback):
    """Stop at the first non-finite training loss, or when accuracy is still at chance.

    ``chance_after_steps``: after this many optimizer steps, a training accuracy (this epoch so
    far) below ``chance_margin`` times chance level (1 / classes) stops the run; null: never.
    Reading the loss waits for the device, so on a GPU ``every_n_steps`` can space the checks.
    """

    def __init__(self, chance_after_steps: int | None = 1000, chance_margin: float = 1.5,
                 every_n_steps: int = 1) -> None:
        self.chance_after_steps = chance_after_steps
        self.chance_margin = chance_margin
        self.every_n_steps = max(1, every_n_steps)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step % self.every_n_steps and step != self.chance_after_steps:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        value = float(loss.detach())
        if not math.isfinite(value):
            raise DivergedError(f"training diverged: the loss is {value} at step {step}; "
                                f"{_hint(trainer)}")
        if self.chance_after_steps and step == self.chance_after_steps:
            accuracy = float(pl_module.train_totals.compute()["acc"])
            chance = 1 / pl_module.hparams.num_classes
            if accuracy < self.chance_margin * chance:
                raise DivergedError(
                    f"training is not learning: accuracy {100 * accuracy:.1f}% after {step} "
                    f"steps, chance is {100 * chance:.0f}%; {_hint(trainer)}")


def _hint(trainer: L.Trainer) -> str:
    # The configured rate (optimizer.lr), not where a schedule has taken it: one-cycle keeps it
    # as max_lr, other schedules as initial_lr.
    group = trainer.optimizers[0].param_groups[0] if trainer.optimizers else {}
    lr = group.get("max_lr") or group.get("initial_lr") or group.get("lr")
    return f"lower the learning rate, e.g. optimizer.lr={lr / 10:g}" if lr else "lower optimizer.lr"


class SignalCheckpoint(Callback):
    """On SIGINT or SIGTERM, finish the current step, save last.ckpt, then stop the run.

    On a SLURM job of hydra/launcher=slurm, SIGUSR2 (preemption, or the job's time limit
    coming) also finishes the step and saves last.ckpt, then goes to submitit's own handler,
    which requeues the job and exits; the requeued job goes on from last.ckpt in its folder
    (mnistlab.run_folder.job_left_off).
    """

    def __init__(self, stop_file: Path | None = None) -> None:
        self.received: int | None = None
        self.scheduler_handler: Callable[[int, Any], Any] | None = None
        # A sweep's flag (mnistlab.sweeps.STOPPED): a signal passed on to this job while it
        # was still being set up, when it could not be caught, stops it at its first step.
        self.stop_file = stop_file

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.received is None and self.stop_file is not None and self.stop_file.is_file():
            with contextlib.suppress(OSError, ValueError):
                self.received = int(self.stop_file.read_text())

    @contextmanager
    def catching(self) -> Iterator[None]:
        """Route SIGINT and SIGTERM to this callback while the block runs."""
        def handler(signum: int, frame: Any) -> None:
            if self.received is not None:  # a second signal: stop at once
                raise KeyboardInterrupt
            self.received = signum

        if threading.current_thread() is not threading.main_thread():
            yield  # only the main thread may set signal handlers; leave them to the caller
            return
        signals = [signal.SIGINT, signal.SIGTERM]
        if callable(signal.getsignal(signal.SIGUSR2)):  # a scheduler's (submitit's) handler
            self.scheduler_handler = signal.getsignal(signal.SIGUSR2)
            signals.append(signal.SIGUSR2)
        previous = {s: signal.signal(s, handler) for s in signals}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if self.received is None:
            return
        path = last_checkpoint_path(trainer)
        if path is not None:
            trainer.save_checkpoint(path, weights_only=False)  # all: weights and state
        if self.received == signal.SIGUSR2 and self.scheduler_handler is not None:
            log.warning("SIGUSR2 received: saved %s; the job is handed to SLURM to be requeued",
                        path)
            received, self.received = self.received, None
            self.scheduler_handler(received, None)  # requeues and exits (rank 0 only)
            return
        raise RunInterrupted(self.received, None if path is None else str(path))
