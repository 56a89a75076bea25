"""The benchmark's baseline is the tutorials' computation: same networks, same initial weights."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets

from bench.run import PRESETS
from bench.tutorials import TUTORIALS, floor_epoch, tutorial_epoch
from tests.conftest import compose_config


def weighted_layers(network: nn.Module) -> list[nn.Module]:
    return [m for m in network.modules() if isinstance(m, nn.Linear | nn.Conv2d)]


def preset_network(name: str) -> nn.Module:
    cfg = compose_config([f"experiment={PRESETS[name]}"])
    return instantiate(cfg.model, weight_init=instantiate(cfg.init))


@pytest.mark.parametrize("name", sorted(TUTORIALS))
def test_preset_builds_the_tutorials_network(name: str) -> None:
    tutorial, ours = TUTORIALS[name].network(), preset_network(name)
    assert sum(p.numel() for p in tutorial.parameters()) == sum(
        p.numel() for p in ours.parameters())
    assert [tuple(m.weight.shape) for m in weighted_layers(tutorial)] == [
        tuple(m.weight.shape) for m in weighted_layers(ours)]


# The deep CNN's tutorial initialises fc1 before it creates fc2, so the random numbers are
# drawn in another order there; the others draw them exactly as their tutorial did.
@pytest.mark.parametrize("name", sorted(set(TUTORIALS) - {"003_deep"}))
def test_same_seed_gives_the_tutorials_initial_weights(name: str) -> None:
    torch.manual_seed(0)
    tutorial = TUTORIALS[name].network()
    torch.manual_seed(0)
    ours = preset_network(name)
    for theirs, mine in zip(weighted_layers(tutorial), weighted_layers(ours), strict=True):
        assert torch.equal(theirs.weight, mine.weight)
        assert torch.equal(theirs.bias, mine.bias)


@pytest.mark.parametrize("name", ["000", "003"])
def test_baseline_loops_train(name: str, data_dir) -> None:
    test = datasets.MNIST(data_dir, train=False)
    images, labels = test.data[:320].unsqueeze(1).float() / 255, test.targets[:320]
    tutorial = TUTORIALS[name]
    for run in ("tutorial", "floor"):
        model = tutorial.network()
        optimizer = tutorial.optimizer(model.parameters(), lr=tutorial.lr)
        before = [p.detach().clone() for p in model.parameters()]
        if run == "tutorial":
            loader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)
            seconds = tutorial_epoch(tutorial, model, optimizer, loader)
        else:
            flat = images.view(-1, 28 * 28) if tutorial.flatten else images
            seconds = floor_epoch(model, optimizer, flat, labels, batch_size=32)
        assert seconds > 0
        assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(),
                                                        strict=True))
