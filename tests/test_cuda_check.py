"""The start-up switch away from a failing NVML load, with the library load mocked."""

from __future__ import annotations

import ctypes
import os

import pytest
import torch

from mnistlab.cuda_check import NVML_LIBRARY, skip_failing_nvml_check


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Record every library load; NVML fails to load, as on a machine without the driver."""
    seen: list[str] = []

    def cdll(name: str, *args, **kwargs):
        seen.append(name)
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", cdll)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    return seen


def test_without_the_driver_library_the_runtime_check_is_used(loads, monkeypatch) -> None:
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    assert skip_failing_nvml_check() is True
    assert loads == [NVML_LIBRARY]
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "0"


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


def test_the_answer_to_is_available_does_not_change(loads, monkeypatch) -> None:
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    before = torch.cuda.is_available()
    skip_failing_nvml_check()
    assert torch.cuda.is_available() == before
