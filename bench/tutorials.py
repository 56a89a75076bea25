"""The tutorials' own networks and training loops in plain PyTorch: the benchmark's baseline.

Each network is written the way its tutorial wrote it, and ``tutorial_epoch`` is their loop:
torchvision's MNIST with ToTensor, a shuffling DataLoader, zero_grad / forward / backward / step,
and the per-step bookkeeping each tutorial did (a running cost tensor, or ``loss.item()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader


def _xavier(*layers: nn.Linear) -> None:
    for layer in layers:
        nn.init.xavier_uniform_(layer.weight)


def net_000() -> nn.Module:
    """784-32-32-10, Linear -> BatchNorm1d -> ReLU twice, Xavier uniform weights."""
    linear1, linear2, linear3 = nn.Linear(784, 32), nn.Linear(32, 32), nn.Linear(32, 10)
    _xavier(linear1, linear2, linear3)
    return nn.Sequential(linear1, nn.BatchNorm1d(32), nn.ReLU(), linear2, nn.BatchNorm1d(32),
                         nn.ReLU(), linear3)


def net_001() -> nn.Module:
    """784-512-512-512-512-10, Linear -> ReLU -> Dropout(0.3) four times, Xavier uniform."""
    linears = [nn.Linear(784, 512), *(nn.Linear(512, 512) for _ in range(3)), nn.Linear(512, 10)]
    _xavier(*linears)
    layers: list[nn.Module] = []
    for linear in linears[:-1]:
        layers += [linear, nn.ReLU(), nn.Dropout(p=0.3)]
    return nn.Sequential(*layers, linears[-1])


def net_002() -> nn.Module:
    """784-20-10 with a sigmoid hidden layer, PyTorch's default initialisation."""
    return nn.Sequential(nn.Linear(784, 20), nn.Sigmoid(), nn.Linear(20, 10))


class Net003(nn.Module):
    """Tutorial 003's CNN; ``deep`` adds the third conv block and the 625-unit layer."""

    def __init__(self, deep: bool = False) -> None:
        super().__init__()
        self.deep = deep
        self.layer1 = nn.Sequential(nn.Conv2d(1, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.layer2 = nn.Sequential(nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2, 2))
        if deep:
            self.layer3 = nn.Sequential(nn.Conv2d(64, 128, 3, 1, 1), nn.ReLU(),
                                        nn.MaxPool2d(2, 2, padding=1))
            self.fc1 = nn.Linear(4 * 4 * 128, 625)
            _xavier(self.fc1)
            self.layer4 = nn.Sequential(self.fc1, nn.ReLU(), nn.Dropout(p=0.5))
            self.fc2 = nn.Linear(625, 10)
            _xavier(self.fc2)
        else:
            self.fc = nn.Linear(7 * 7 * 64, 10)
            _xavier(self.fc)

    def forward(self, x: Tensor) -> Tensor:
        out = self.layer2(self.layer1(x))
        if self.deep:
            out = self.layer3(out)
            return self.fc2(self.layer4(out.view(out.size(0), -1)))
        return self.fc(out.view(out.size(0), -1))


class Net004(nn.Module):
    """784-512-256-10, Linear -> BatchNorm -> ReLU -> dropout(0.5) twice, log_softmax, He init."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 512), nn.Linear(512, 256), nn.Linear(256, 10)
        self.batch_norm1, self.batch_norm2 = nn.BatchNorm1d(512), nn.BatchNorm1d(256)
        for fc in (self.fc1, self.fc2, self.fc3):
            nn.init.kaiming_uniform_(fc.weight.data)

    def forward(self, x: Tensor) -> Tensor:
        x = x.view(-1, 28 * 28)
        x = F.dropout(F.relu(self.batch_norm1(self.fc1(x))), training=self.training, p=0.5)
        x = F.dropout(F.relu(self.batch_norm2(self.fc2(x))), training=self.training, p=0.5)
        return F.log_softmax(self.fc3(x), dim=1)


@dataclass(frozen=True)
class Tutorial:
    """What one tutorial fixed: its network, optimizer and how its loop kept score."""

    network: Callable[[], nn.Module]
    optimizer: Callable[..., torch.optim.Optimizer]
    lr: float
    flatten: bool  # the MLP tutorials reshaped the batch to (N, 784) in the loop
    item_every: int  # call loss.item() every n steps (0: sum the cost tensors instead)


# Keyed by the preset (conf/experiment/) that pins the same run in mnistlab.
TUTORIALS = {
    "tutorial000_mlp_bn": Tutorial(net_000, torch.optim.Adam, 0.01, flatten=True, item_every=0),
    "tutorial001_mlp_dropout": Tutorial(net_001, torch.optim.Adam, 0.001, flatten=True,
                                        item_every=0),
    "tutorial002_mlp_sigmoid": Tutorial(net_002, torch.optim.SGD, 0.1, flatten=True,
                                        item_every=1),
    "tutorial003_cnn": Tutorial(Net003, torch.optim.Adam, 0.001, flatten=False, item_every=0),
    "tutorial003_cnn_deep": Tutorial(lambda: Net003(deep=True), torch.optim.Adam, 0.001,
                                     flatten=False, item_every=0),
    "tutorial004_mlp_bn_dropout": Tutorial(Net004, torch.optim.Adam, 0.01, flatten=False,
                                           item_every=200),
}


def tutorial_epoch(tutorial: Tutorial, model: nn.Module, optimizer: torch.optim.Optimizer,
                   loader: DataLoader) -> float:
    """One training epoch the tutorial's way; returns its seconds."""
    criterion = nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    avg_cost: Tensor | float = 0.0
    for step, (images, labels) in enumerate(loader):
        x = images.view(-1, 28 * 28) if tutorial.flatten else images
        optimizer.zero_grad()
        cost = criterion(model(x), labels)
        cost.backward()
        optimizer.step()
        if tutorial.item_every == 0:
            avg_cost = avg_cost + cost / len(loader)
        elif step % tutorial.item_every == 0:
            avg_cost = cost.item()
    return time.perf_counter() - start


def floor_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, images: Tensor,
                labels: Tensor, batch_size: int) -> float:
    """Forward, backward and step on batches already in memory: no data path, no framework."""
    criterion = nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    for first in range(0, len(images) - batch_size + 1, batch_size):
        optimizer.zero_grad(set_to_none=True)
        criterion(model(images[first:first + batch_size]),
                  labels[first:first + batch_size]).backward()
        optimizer.step()
    return time.perf_counter() - start


@torch.no_grad()
def test_accuracy(model: nn.Module, images: Tensor, labels: Tensor, flatten: bool) -> float:
    """Share of test images right, with the inputs scaled as in training (ToTensor)."""
    model.eval()
    x = images.view(-1, 28 * 28) if flatten else images
    return (model(x).argmax(dim=1) == labels).float().mean().item()
