"""The fully connected networks of tutorials 000, 001, 002 and 004.

Each takes a (N, 1, 28, 28) batch, flattens it to 784 pixels and returns one score per class.
``hidden`` lists the hidden layers' widths, so `model.hidden=[256,128,64]` deepens any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from mnistlab.models.base import MNISTClassifier
from mnistlab.models.layers import dense_stack

PIXELS = 28 * 28


class MLPSigmoid(MNISTClassifier):
    """Tutorial 002: 784-20-10 with one sigmoid hidden layer, 15,910 parameters."""

    def __init__(self, hidden: Sequence[int] = (20,), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_layers = dense_stack(PIXELS, hidden, lambda n: [nn.Sigmoid()])
        self.output = nn.Linear(hidden[-1], self.hparams.num_classes)
        self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.hidden_layers(x.flatten(1)))


class MLPBatchNorm(MNISTClassifier):
    """Tutorial 000: 784-32-32-10, each hidden layer Linear -> BatchNorm1d -> ReLU.

    The tutorial defined a Dropout(0.3) but never used it, so there is none here.
    """

    def __init__(self, hidden: Sequence[int] = (32, 32), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_layers = dense_stack(PIXELS, hidden,
                                         lambda n: [nn.BatchNorm1d(n), nn.ReLU()])
        self.output = nn.Linear(hidden[-1], self.hparams.num_classes)
        self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.hidden_layers(x.flatten(1)))


class MLPDropout(MNISTClassifier):
    """Tutorial 001: 784-512-512-512-512-10, each hidden layer Linear -> ReLU -> Dropout(0.3)."""

    def __init__(self, hidden: Sequence[int] = (512, 512, 512, 512), dropout: float = 0.3,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hidden_layers = dense_stack(PIXELS, hidden,
                                         lambda n: [nn.ReLU(), nn.Dropout(dropout)])
        self.output = nn.Linear(hidden[-1], self.hparams.num_classes)
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
        self.hidden_layers = dense_stack(
            PIXELS, hidden, lambda n: [nn.BatchNorm1d(n), nn.ReLU(), nn.Dropout(dropout)]
        )
        self.output = nn.Linear(hidden[-1], self.hparams.num_classes)
        self.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(self.output(self.hidden_layers(x.flatten(1))), dim=1)
