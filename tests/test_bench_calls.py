"""bench/calls.py: Python calls per training step, the bench's noise-free overhead figure."""

from __future__ import annotations

import functools

import pytest
import torch
from torchvision import datasets

from bench.calls import calls_per_step
from bench.lightning_loop import lightning_epoch
from bench.tutorials import TUTORIALS, floor_epoch


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


def test_lightnings_loop_adds_the_same_calls_to_any_network(data_dir) -> None:
    """What the README says of column d: Lightning's calls per step do not depend on the
    network, so its per-step time is a fixed Python cost, not work that grows with the model."""
    test = datasets.MNIST(data_dir, train=False)
    images, labels = test.data[:640].view(-1, 784).float() / 255, test.targets[:640]
    added = []
    for preset in ("tutorial000_mlp_bn", "tutorial002_mlp_sigmoid"):
        tutorial = TUTORIALS[preset]
        counts = []
        for epoch in (floor_epoch, lightning_epoch):
            def run(steps: int, epoch=epoch, tutorial=tutorial) -> float:
                torch.manual_seed(0)
                model = tutorial.network()
                optimizer = tutorial.optimizer(model.parameters(), lr=tutorial.lr)
                return epoch(model, optimizer, images[:steps * 32], labels[:steps * 32], 32)
            counts.append(calls_per_step(run, low=4, high=20))
        floor, lightning = counts
        assert floor == int(floor)  # the floor's loop makes exactly the same calls every step
        added.append(lightning - floor)
    assert added[0] > 1000  # Lightning's automatic loop: hundreds of hook and closure calls
    assert added[0] == pytest.approx(added[1], rel=0.02)
