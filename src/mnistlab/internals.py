"""Every use of a private or undocumented part of Lightning, torch or TensorBoard, in one
place.

Each can change in any minor release, so each says what it is for and which test fails (not
passes) when the library stops behaving as assumed; ``pyproject.toml`` bounds Lightning above at
the newest minor version the suite passed on. The speed patches (``SPEED_PATCHES`` and the NVML
switch) are kept only while one saves at least 3% of an epoch on some preset:
``make bench-patches`` measures each against the same run without it and writes the table into
docs/performance.md.
"""

from __future__ import annotations

import ctypes
import gc
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.profilers import PassThroughProfiler
from torch import nn

# The patches that only save time; bench/patches.py switches each off in turn (``disabled``).
SPEED_PATCHES = ("step_hooks", "hook_name", "profiler", "gc_freeze")
disabled: set[str] = set()

# --- Speed: step hooks Lightning may skip -------------------------------------------------
# Lightning calls six hooks of every callback and of the module at every step, each through a
# profiler context and a name lookup; it skips a hook that is not callable (its
# ``_call_callback_hooks`` checks ``callable(fn)``). A hook still at the base class's empty
# default is set to None on the instance. Test: tests/test_internals.py
# (test_lightning_skips_hooks_set_to_none_and_runs_the_others,
# test_a_step_interval_checkpoint_keeps_its_batch_hook).
STEP_HOOKS = ("on_train_batch_start", "on_train_batch_end", "on_before_backward",
              "on_after_backward", "on_before_optimizer_step", "on_before_zero_grad")

Hooked = TypeVar("Hooked", Callback, L.LightningModule)


def skip_empty_step_hooks(hooked: Hooked) -> Hooked:
    """Let Lightning skip the per-step hooks that a callback or LightningModule leaves empty.

    ModelCheckpoint's batch hook only ever saves on a step or time interval (its private
    ``_every_n_train_steps`` and ``_train_time_interval``); without one it is skipped too.
    """
    if "step_hooks" in disabled:
        return hooked
    base = L.LightningModule if isinstance(hooked, L.LightningModule) else Callback
    for name in STEP_HOOKS:
        if getattr(type(hooked), name) is getattr(base, name):
            setattr(hooked, name, None)
    if (isinstance(hooked, ModelCheckpoint) and hooked._every_n_train_steps < 1
            and hooked._train_time_interval is None):
        hooked.on_train_batch_end = None
    return hooked


def skip_hook_from_now_on(callback: Callback, name: str) -> None:
    """A callback whose hook has done its work (a first batch drawn) is skipped from now on."""
    if "step_hooks" not in disabled:
        setattr(callback, name, None)


# --- Speed: the running hook's name -------------------------------------------------------
class DirectHookName(nn.Module):
    """Writes Lightning's ``_current_fx_name`` straight into the instance.

    Lightning records which hook is running in the module's private ``_current_fx_name`` around
    every hook call, about 30 times a training step. ``nn.Module.__setattr__`` first looks for a
    parameter, submodule or buffer of that name (ten times a plain write). Test:
    tests/test_internals.py (test_lightning_skips_hooks_set_to_none_and_runs_the_others counts
    the writes).
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name" and "hook_name" not in disabled:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)


# --- Speed: a free profiler ----------------------------------------------------------------
_NOTHING = nullcontext()


class NoProfiler(PassThroughProfiler):
    """Records nothing, like Lightning's default, at no cost per hook.

    Lightning wraps every hook call in ``profiler.profile`` (about 150 a training step); its
    default builds a generator-based context manager each time. One shared empty context does
    the same nothing. Test: tests/test_internals.py (test_lightning_skips_hooks_set_to_none_and_
    runs_the_others counts the profiled calls).
    """

    def profile(self, action_name: str) -> AbstractContextManager:
        return _NOTHING


def no_profiler() -> NoProfiler | None:
    """The profiler for a run that asks for none (None: Lightning's own default)."""
    return None if "profiler" in disabled else NoProfiler()


# --- Speed: garbage collection -------------------------------------------------------------
@contextmanager
def frozen_garbage() -> Iterator[None]:
    """Set aside (gc.freeze) every object that exists now while the block runs.

    Python's full collections walk every object of the process: 600,000 once torch, Lightning
    and Hydra are loaded and the run is built. Frozen objects are not walked. Public API; kept
    here with the other speed patches so that one bench measures them all.
    """
    if "gc_freeze" in disabled:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# --- Correctness: exact resume -------------------------------------------------------------
def batches_done(trainer: L.Trainer) -> int:
    """Training batches finished in this epoch, as the fit loop counts them.

    Reads the fit loop's progress tracker, which Lightning documents nowhere. Tests:
    tests/test_internals.py (counted at every step), tests/test_resumable.py (an interrupted run
    resumes bit-identical).
    """
    return trainer.fit_loop.epoch_loop.batch_progress.current.processed


def saved_loader_state(checkpoint: dict[str, Any]) -> dict[str, Any] | None:
    """The training loader's state in a Lightning checkpoint (Lightning's own layout).

    Lightning gives a stateful loader its saved state only when it resumes partway through an
    epoch; resuming at an epoch's end must still restore the generators, so the state is read
    from the file. Test: tests/test_internals.py
    (test_a_step_interval_checkpoint_keeps_its_batch_hook reads it from a checkpoint).
    """
    fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
    states = fit_loop.get("state_dict", {}).get("combined_loader") or []
    return states[0] if states else None


# --- TensorBoard: the HPARAMS entry ---------------------------------------------------------
def file_writer(logger: TensorBoardLogger) -> Any:
    """The event-file writer behind Lightning's TensorBoard logger (torch's private
    ``SummaryWriter._get_file_writer``), to write the HPARAMS summaries without Lightning's
    placeholder metrics. Test: tests/test_dashboards.py reads the entry back."""
    return logger.experiment._get_file_writer()


# --- Export: tracing a LightningModule outside a Trainer ---------------------------------------
@contextmanager
def tracing(model: L.LightningModule) -> Iterator[None]:
    """Lightning's own ``to_torchscript`` flag (``_jit_is_scripting``): without it a
    LightningModule outside a Trainer refuses attribute lookups that tracing makes. Test:
    tests/test_export.py (a TorchScript export runs)."""
    model._jit_is_scripting = True
    try:
        yield
    finally:
        model._jit_is_scripting = False


# --- Start-up: torch's CUDA check ------------------------------------------------------------
NVML_LIBRARY = "libnvidia-ml.so.1"


def skip_failing_nvml_check() -> bool:
    """Use torch's runtime CUDA check where the NVIDIA management library cannot be loaded.

    Importing Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1``; torch then answers every
    ``torch.cuda.is_available()`` by trying to load ``libnvidia-ml.so.1`` first, which fails on
    a machine with a CUDA build of torch and no driver, before it falls back to the runtime
    check. The answer is the same either way. Returns True if switched. Test:
    tests/test_internals.py
    (test_torch_asks_nvml_on_every_check_only_while_lightnings_variable_is_set).
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1" or not torch.version.cuda:
        return False
    try:
        ctypes.CDLL(NVML_LIBRARY)
    except OSError:
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"
        return True
    return False


# --- Speed: bfloat16 on CPUs that compute it ------------------------------------------------
def cpu_computes_bfloat16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (x86's AVX512-BF16, also on AMX chips).

    torch's own check (``torch.cpu._is_avx512_bf16_supported``, private), as oneDNN sees the
    CPU. Where it says no, bfloat16 is emulated: the default CNN's epoch took 8 times as long
    (mnistlab.precision). Test: tests/test_internals.py
    (test_torch_finds_native_bfloat16_where_the_cpu_flags_say_so).
    """
    return bool(torch.cpu._is_avx512_bf16_supported())
