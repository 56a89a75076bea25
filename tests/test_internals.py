"""Each use of a private or undocumented part of Lightning or torch (mnistlab.internals): the
patch does its job, and a test fails when the library stops behaving as the patch assumes."""

from __future__ import annotations

import ctypes
import gc
import os
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.profilers import SimpleProfiler
from torch import nn

from mnistlab.build import build_datamodule, build_model, build_trainer
from mnistlab.callbacks import ProgressBar
from mnistlab.checkpoint_files import read_checkpoint
from mnistlab.internals import (
    NVML_LIBRARY,
    STEP_HOOKS,
    NoProfiler,
    batches_done,
    cpu_computes_bfloat16,
    saved_loader_state,
    skip_empty_step_hooks,
    skip_failing_nvml_check,
)
from mnistlab.models import CNN
from mnistlab.training import train
from tests.helpers import compose

FIVE_STEPS = ("trainer.max_epochs=1", "trainer.limit_train_batches=5",
              "trainer.limit_val_batches=1", "trainer.limit_test_batches=1")


class CountingCallback(Callback):
    """Implements one step hook; the others stay Callback's empty defaults. Also checks, at
    every step, that ``batches_done`` counts the finished batches as the loop does."""

    def __init__(self) -> None:
        self.ends = 0
        self.counted: list[tuple[int, int]] = []

    def on_train_batch_end(self, trainer: L.Trainer, module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.ends += 1
        self.counted.append((batches_done(trainer), batch_idx + 1))


class CountingCNN(CNN):
    """Implements one step hook of the LightningModule, and counts Lightning's writes of the
    running hook's name."""

    backwards = 0
    hook_names = 0

    def on_after_backward(self) -> None:
        CountingCNN.backwards += 1

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_current_fx_name":
            CountingCNN.hook_names += 1
        super().__setattr__(name, value)


class CountingProfiler(NoProfiler):
    calls = 0

    def profile(self, action_name: str) -> Any:
        CountingProfiler.calls += 1
        return super().profile(action_name)


def test_lightning_skips_hooks_set_to_none_and_runs_the_others(make_cfg) -> None:
    """A hook left empty is None on the instance and Lightning skips it (were it called, None
    would raise); a hook that is implemented runs at every step. Lightning also writes the
    running hook's name through the module's __setattr__ and profiles every hook call, many
    times a step: the two costs the other patches remove."""
    cfg = make_cfg(*FIVE_STEPS)
    counting = CountingCallback()
    trainer = build_trainer(cfg, profiler=CountingProfiler())
    trainer.callbacks.append(skip_empty_step_hooks(counting))
    assert [h for h in STEP_HOOKS if getattr(counting, h) is None] == [
        h for h in STEP_HOOKS if h != "on_train_batch_end"]
    # Without a step or time interval, ModelCheckpoint's batch hook never saves: skipped.
    checkpoint = trainer.checkpoint_callback
    assert checkpoint.on_train_batch_end is None and checkpoint.on_before_backward is None
    built = build_model(cfg)
    model = skip_empty_step_hooks(CountingCNN(**built.hparams, optimizer=built.optimizer_factory))
    assert [h for h in STEP_HOOKS if getattr(model, h) is None] == [
        h for h in STEP_HOOKS if h != "on_after_backward"]
    CountingCNN.hook_names = CountingProfiler.calls = 0
    trainer.fit(model, datamodule=build_datamodule(cfg))
    assert counting.ends == 5 and CountingCNN.backwards == 5
    assert counting.counted == [(n, n) for n in range(1, 6)]
    assert CountingCNN.hook_names >= 5 * 10 and CountingProfiler.calls >= 5 * 20


def test_a_step_interval_checkpoint_keeps_its_batch_hook(make_cfg, tmp_path) -> None:
    cfg = make_cfg("trainer.max_epochs=1", "trainer.limit_train_batches=4",
                   "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                   "+callbacks.step_saver._target_=lightning.pytorch.callbacks.ModelCheckpoint",
                   f"+callbacks.step_saver.dirpath={tmp_path}",
                   "+callbacks.step_saver.every_n_train_steps=2",
                   "+callbacks.step_saver.save_top_k=-1")
    trainer = build_trainer(cfg)
    saver = next(c for c in trainer.checkpoint_callbacks if c.dirpath == str(tmp_path))
    assert callable(saver.on_train_batch_end)
    trainer.fit(build_model(cfg), datamodule=build_datamodule(cfg))
    # Lightning's default names: epoch=0-step=2.ckpt (the saves at steps 2 and 4).
    assert {"epoch=0-step=2.ckpt", "epoch=0-step=4.ckpt"} <= {p.name for p in tmp_path.iterdir()}
    # The training loader's state is where saved_loader_state reads it in Lightning's layout.
    state = saved_loader_state(read_checkpoint(tmp_path / "epoch=0-step=4.ckpt"))
    assert state is not None and state["samples"] == 4 * cfg.data.batch_size


def test_the_running_hooks_name_skips_module_bookkeeping_and_nothing_else_does() -> None:
    model = CNN()
    model._current_fx_name = "training_step"
    assert vars(model)["_current_fx_name"] == "training_step"
    assert "_current_fx_name" not in dict(model.named_buffers())
    model.probe = nn.Linear(2, 2)  # other attributes still go through nn.Module
    model.scale = nn.Parameter(torch.ones(()))
    assert "probe" in dict(model.named_children()) and "scale" in dict(model.named_parameters())


def test_no_profiler_by_default_and_lightnings_on_request(tmp_path) -> None:
    default = build_trainer(compose("trainer=cpu", f"paths.output_dir={tmp_path}"))
    assert isinstance(default.profiler, NoProfiler)
    with default.profiler.profile("anything") as entered:
        assert entered is None
    simple = build_trainer(compose("trainer=cpu", "trainer.profiler=simple",
                                   f"paths.output_dir={tmp_path}"))
    assert isinstance(simple.profiler, SimpleProfiler)


def test_objects_are_frozen_while_training_and_thawed_after(make_cfg, monkeypatch) -> None:
    frozen: list[int] = []
    monkeypatch.setattr(ProgressBar, "on_train_start",
                        lambda self, *args: frozen.append(gc.get_freeze_count()))
    train(make_cfg("trainer.enable_progress_bar=true"))
    assert frozen and frozen[0] > 100_000 and gc.get_freeze_count() == 0


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Record every library load; NVML fails to load, as on a machine without the driver."""
    seen: list[str] = []

    def cdll(name: str, *args, **kwargs):
        seen.append(name)
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    return seen


@pytest.mark.skipif(not torch.version.cuda, reason="a CPU build of torch never asks NVML")
def test_torch_asks_nvml_on_every_check_only_while_lightnings_variable_is_set(
        loads, monkeypatch) -> None:
    """What the switch relies on: with the variable at 1, each is_available() tries to load the
    NVIDIA library first; at 0 it does not (the runtime check alone)."""
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    torch.cuda.is_available()
    torch.cuda.is_available()
    assert loads.count(NVML_LIBRARY) == 2
    assert skip_failing_nvml_check() is True
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "0"
    loads.clear()
    torch.cuda.is_available()
    assert loads == []


def test_with_the_driver_library_nothing_changes(monkeypatch) -> None:
    monkeypatch.setattr(ctypes, "CDLL", lambda name, *a, **k: object())
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    assert skip_failing_nvml_check() is False
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"


@pytest.mark.parametrize(("setting", "cuda"), [(None, "12.8"), ("0", "12.8"), ("1", None)])
def test_left_alone_unless_lightning_asked_for_nvml_on_a_cuda_build(loads, monkeypatch, setting,
                                                                    cuda) -> None:
    if setting is None:
        monkeypatch.delenv("PYTORCH_NVML_BASED_CUDA_CHECK", raising=False)
    else:
        monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", setting)
    monkeypatch.setattr(torch.version, "cuda", cuda)
    assert skip_failing_nvml_check() is False
    assert loads == []


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo") or os.uname().machine != "x86_64",
                    reason="reads the CPU's flags from Linux's /proc/cpuinfo on x86")
def test_torch_finds_native_bfloat16_where_the_cpu_flags_say_so() -> None:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    flags = next(line for line in lines if line.startswith("flags")).split()
    assert cpu_computes_bfloat16() == ("avx512_bf16" in flags)
