"""Learning-rate schedules sized by the run's number of optimizer steps.

The base model calls ``factory(optimizer, total_steps=...)``; ``one_cycle`` and ``cosine``
adapt torch's OneCycleLR and CosineAnnealingLR to that call.
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, OneCycleLR, SequentialLR


def cosine(optimizer: Optimizer, total_steps: int, warmup_steps: int = 0,
           eta_min: float = 0.0) -> SequentialLR | CosineAnnealingLR:
    """Cosine decay from the optimizer's lr to ``eta_min``, after an optional linear warm-up."""
    decay = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps),
                              eta_min=eta_min)
    if warmup_steps <= 0:
        return decay
    warmup = LinearLR(optimizer, start_factor=1 / warmup_steps, total_iters=warmup_steps)
    return SequentialLR(optimizer, [warmup, decay], milestones=[warmup_steps])


def one_cycle(optimizer: Optimizer, total_steps: int, max_lr: float,
              pct_start: float = 0.25) -> OneCycleLR:
    """torch's one-cycle policy, cycling momentum only in an optimizer that uses some.

    OneCycleLR cycles momentum (0.95 down to 0.85 and back) by default: it refuses Adagrad and
    Adadelta, which have none, and would turn plain SGD and RMSprop (momentum 0) into momentum
    methods. Adam's beta1 and SGD's own momentum are cycled as torch does.
    """
    defaults = optimizer.defaults
    uses_momentum = "betas" in defaults or defaults.get("momentum", 0) > 0
    return OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=pct_start,
                      cycle_momentum=uses_momentum)
