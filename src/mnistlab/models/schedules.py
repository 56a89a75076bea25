"""Learning-rate schedules sized by the run's number of optimizer steps.

The base model calls ``factory(optimizer, total_steps=...)``. OneCycleLR takes ``total_steps``
as it is; ``cosine`` adapts CosineAnnealingLR, whose period is called ``T_max``.
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR


def cosine(optimizer: Optimizer, total_steps: int, warmup_steps: int = 0,
           eta_min: float = 0.0) -> SequentialLR | CosineAnnealingLR:
    """Cosine decay from the optimizer's lr to ``eta_min``, after an optional linear warm-up."""
    decay = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps),
                              eta_min=eta_min)
    if warmup_steps <= 0:
        return decay
    warmup = LinearLR(optimizer, start_factor=1 / warmup_steps, total_iters=warmup_steps)
    return SequentialLR(optimizer, [warmup, decay], milestones=[warmup_steps])
