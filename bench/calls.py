"""Python function calls per training step: the bench's per-step overhead without the noise.

An epoch's seconds on a shared 2-core machine move by more than a millisecond per step between
rounds, which is more than the overhead being measured. The number of Python calls a step makes
does not move: it is what a framework's per-step cost is made of on small networks, and it is
the same on any machine. A run of ``low`` steps and one of ``high`` steps are profiled whole
(set-up, validation and test included); their difference, divided by ``high - low``, leaves the
calls of one training step alone.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import pstats
from collections.abc import Callable


def profiled_calls(run: Callable[[], object]) -> int:
    """All Python function calls (primitive or not) made while ``run`` runs."""
    profile = cProfile.Profile()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        profile.runcall(run)
    return pstats.Stats(profile).total_calls


def calls_per_step(run: Callable[[int], object], low: int = 64, high: int = 192) -> float:
    """Python calls of one step: ``run(steps)`` trains that many steps, and everything it does
    besides (set-up, evaluation) must not depend on ``steps``. The defaults are multiples of 64,
    the steps between two flushes of mnistlab's training sums, so each run flushes whole."""
    if not 0 < low < high:
        raise ValueError(f"calls_per_step needs 0 < low < high, got low={low}, high={high}")
    run(low)  # first-use work (lazy imports, caches) would otherwise land in one run only
    return (profiled_calls(lambda: run(high)) - profiled_calls(lambda: run(low))) / (high - low)
