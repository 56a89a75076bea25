"""bench/calls.py: Python calls per training step, the bench's noise-free overhead figure."""

from __future__ import annotations

import functools

import pytest

from bench.calls import calls_per_step


def test_set_up_and_first_use_drop_out_of_the_count() -> None:
    def helper() -> None:
        pass

    @functools.cache
    def first_use() -> int:  # work that happens once per process, like a lazy import
        for _ in range(50):
            helper()
        return 0

    def run(steps: int) -> None:
        first_use()
        for _ in range(7):  # set-up, the same for any number of steps
            helper()
        for _ in range(steps):
            helper()
            helper()

    assert calls_per_step(run) == 2.0  # two helpers a step; range() and the loop are not calls


@pytest.mark.parametrize(("low", "high"), [(0, 10), (10, 10), (20, 10)])
def test_calls_per_step_needs_two_different_positive_step_counts(low: int, high: int) -> None:
    with pytest.raises(ValueError, match=f"low={low}, high={high}"):
        calls_per_step(lambda steps: None, low, high)
