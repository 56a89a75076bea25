"""Keep CUDA builds of torch from re-probing for a GPU driver that is not installed.

Importing Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1``. torch then answers every
``torch.cuda.is_available()`` by first loading the NVIDIA management library
(``libnvidia-ml.so.1``) and, when that load fails, falls back to the CUDA runtime's
``cudaGetDeviceCount``. Adam and AdamW ask on every optimizer step, so on a machine with pip's
default (CUDA) torch and no NVIDIA driver each step pays for a failing library load (about 40
microseconds). Where the library cannot be loaded, switching to the runtime check skips only
that failing load: the answer comes from ``cudaGetDeviceCount`` either way.
"""

from __future__ import annotations

import ctypes
import os

import torch

NVML_LIBRARY = "libnvidia-ml.so.1"


def skip_failing_nvml_check() -> bool:
    """Use torch's runtime CUDA check when NVML cannot be loaded; return True if switched.

    Call once at start-up, after Lightning is imported (its import sets the variable).
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1" or not torch.version.cuda:
        return False
    try:
        ctypes.CDLL(NVML_LIBRARY)
    except OSError:
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "0"
        return True
    return False
