"""The two convolutional networks of tutorial 003.

Each takes a (N, 1, 28, 28) batch and returns one score per class. Layer names follow the
tutorial. With ``channels_last`` (the default) the convolution weights are stored channels-last,
which oneDNN runs about 1.3x faster on x86 CPUs (the convolutions then produce channels-last
output too); the numbers computed are the same up to float rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mnistlab.models.base import MNISTClassifier
from mnistlab.models.layers import conv_block, dense_stack


class CNN(MNISTClassifier):
    """Tutorial 003, first network: two conv blocks (32, 64 channels) and Linear(3136 -> 10)."""

    def __init__(self, channels_last: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer1 = conv_block(1, 32)  # 28x28 -> 14x14
        self.layer2 = conv_block(32, 64)  # 14x14 -> 7x7
        self.fc = nn.Linear(7 * 7 * 64, self.hparams.num_classes)
        self.init_weights()
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.layer2(self.layer1(x)).flatten(1))


class CNNDeep(MNISTClassifier):
    """Tutorial 003, deeper network: three conv blocks, then 2048 -> 625 -> Dropout -> 10.

    The third pool pads by one so 7x7 becomes 4x4, as in the tutorial. ``hidden`` lists the
    widths of the fully connected layers between the convolutions and the output.
    """

    def __init__(self, hidden: Sequence[int] = (625,), dropout: float = 0.5,
                 channels_last: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.layer1 = conv_block(1, 32)  # 28x28 -> 14x14
        self.layer2 = conv_block(32, 64)  # 14x14 -> 7x7
        self.layer3 = conv_block(64, 128, pool_padding=1)  # 7x7 -> 4x4
        self.layer4 = dense_stack(4 * 4 * 128, hidden, lambda n: [nn.ReLU(), nn.Dropout(dropout)])
        self.fc2 = nn.Linear(hidden[-1], self.hparams.num_classes)
        self.init_weights()
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        out = self.layer3(self.layer2(self.layer1(x)))
        return self.fc2(self.layer4(out.flatten(1)))
