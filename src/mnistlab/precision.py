"""``trainer.precision=auto`` (the default): bfloat16 mixed precision where training runs on a
CPU that computes bfloat16 natively, full float32 everywhere else.

On such a CPU (x86 with AVX512-BF16: AMD since Zen 4, Intel since Cooper Lake) oneDNN runs the
convolutions in bfloat16 about twice as fast as in float32; the weights, the optimizer and the
loss stay float32 (Lightning's ``bf16-mixed``). Without native bfloat16 (most laptops: AVX2
only) the same autocast is emulated and an epoch of the default CNN took 8 times as long, so
there ``auto`` keeps float32. On GPUs ``auto`` keeps float32 too: ``bf16-mixed`` there is a
choice to make with a measurement (bench/gpu.py), not a default.
"""

from __future__ import annotations

import logging

from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator, XLAAccelerator
from omegaconf import DictConfig

from mnistlab.internals import cpu_computes_bfloat16

log = logging.getLogger(__name__)

AUTO = "auto"
FAST_CPU = "bf16-mixed"
FULL = "32-true"


def trains_on_cpu(accelerator: str) -> bool:
    """Whether Lightning's accelerator choice ends on the CPU (``auto`` takes a TPU, an Apple
    GPU or an NVIDIA GPU when one is there)."""
    if accelerator == "cpu":
        return True
    if accelerator != "auto":
        return False
    return not any(kind.is_available() for kind in (CUDAAccelerator, MPSAccelerator,
                                                     XLAAccelerator))


def chosen_precision(trainer: DictConfig) -> str | int:
    """``trainer.precision`` as Lightning takes it: ``auto`` decided here, any other as given."""
    precision = trainer.get("precision", FULL)
    if precision != AUTO:
        return precision
    if trains_on_cpu(str(trainer.get("accelerator", "auto"))) and cpu_computes_bfloat16():
        log.info("precision: %s (trainer.precision=auto: this CPU computes bfloat16 natively; "
                 "trainer.precision=%s for float32 throughout)", FAST_CPU, FULL)
        return FAST_CPU
    return FULL
