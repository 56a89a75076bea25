"""Figures for TensorBoard, drawn with matplotlib (headless: the Agg backend)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # no display needed; TensorBoard gets the rendered image

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from torch import Tensor


def digit_grid(images: Tensor, titles: Sequence[str], columns: int = 8) -> Figure:
    """Images (N, 1, H, W) with pixels in [0, 1], light on dark as the network sees them."""
    rows = max(1, math.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.3),
                                squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.axis("off")
        if index < len(images):
            axis.imshow(images[index, 0].float().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            axis.set_title(titles[index], fontsize=8)
    figure.tight_layout()
    return figure
