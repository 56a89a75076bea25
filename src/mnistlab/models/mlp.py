"""The fully connected networks of tutorials 000, 001, 002 and 004.

Each takes a (N, 1, 28, 28) batch, flattens it to 784 pixels and returns (N, 10) scores.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from mnistlab.models.base import MNISTClassifier

PIXELS = 28 * 28


def hidden_stack(sizes: Sequence[int], block: Callable[[int], list[nn.Module]]) -> nn.Sequential:
    """Linear(previous width -> n) followed by ``block(n)`` for each hidden width n."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip([PIXELS, *sizes], sizes, strict=False):
        layers += [nn.Linear(n_in, n_out), *block(n_out)]
    return nn.Sequential(*layers)


class MLPSigmoid(MNISTClassifier):
    """Tutorial 002: 784-20-10 with one sigmoid hidden layer, 15,910 parameters."""

    def __init__(self, hidden: int = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_linear = nn.Linear(PIXELS, hidden)
        self.hidden_activation = nn.Sigmoid()
        self.output_linear = nn.Linear(hidden, 10)
        self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        return self.output_linear(self.hidden_activation(self.hidden_linear(x.flatten(1))))


class MLPBatchNorm(MNISTClassifier):
    """Tutorial 000: 784-32-32-10, each hidden layer Linear -> BatchNorm1d -> ReLU.

    The tutorial defined a Dropout(0.3) but never used it, so there is none here.
    """

    def __init__(self, hidden: Sequence[int] = (32, 32), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_layers = hidden_stack(hidden, lambda n: [nn.BatchNorm1d(n), nn.ReLU()])
        self.output = nn.Linear(hidden[-1], 10)
        self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.hidden_layers(x.flatten(1)))


class MLPDropout(MNISTClassifier):
    """Tutorial 001: 784-512-512-512-512-10, each hidden layer Linear -> ReLU -> Dropout(0.3)."""

    def __init__(self, hidden: Sequence[int] = (512, 512, 512, 512), dropout: float = 0.3,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_layers = hidden_stack(hidden, lambda n: [nn.ReLU(), nn.Dropout(dropout)])
        self.output = nn.Linear(hidden[-1], 10)
        self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.hidden_layers(x.flatten(1)))


class MLPBatchNormDropout(MNISTClassifier):
    """Tutorial 004: 784-512-256-10, Linear -> BatchNorm1d -> ReLU -> Dropout(0.5) twice.

    The tutorial returns log_softmax; cross-entropy on log-probabilities gives the same loss, so
    the output is kept as the tutorial wrote it.
    """

    def __init__(self, hidden: Sequence[int] = (512, 256), dropout: float = 0.5,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_layers = hidden_stack(
            hidden, lambda n: [nn.BatchNorm1d(n), nn.ReLU(), nn.Dropout(dropout)]
        )
        self.output = nn.Linear(hidden[-1], 10)
        self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(self.output(self.hidden_layers(x.flatten(1))), dim=1)
