"""Figures for TensorBoard, drawn with matplotlib's Agg renderer (no display) into RGB arrays.

Each figure is drawn once and the same image goes to every TensorBoard logger. The digit grid is
one image with its titles as text: 32 small axes, each titled and laid out by ``tight_layout``,
took about 0.6 s a grid, 30 times as long.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

SIDE, GAP, TITLE = 28, 2, 12  # a digit's pixels; pixels between digits and above each for its title
PIXELS_PER_INCH = 27  # at matplotlib's 100 dpi: each digit pixel drawn about 3.7 pixels wide


def digit_grid(images: Tensor, titles: Sequence[str], columns: int = 8) -> Figure:
    """Images (N, 1, H, W) with pixels in [0, 1], light on dark as the network sees them, on a
    white page, each under its title."""
    side = images.shape[-1]
    rows = max(1, math.ceil(len(images) / columns))
    cell_w, cell_h = side + GAP, side + TITLE
    page = torch.ones(rows * cell_h, columns * cell_w)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = row * cell_h + TITLE, column * cell_w
        page[top:top + side, left:left + side] = image[0].float().cpu()
    figure = Figure(figsize=(page.shape[1] / PIXELS_PER_INCH, page.shape[0] / PIXELS_PER_INCH))
    axis = figure.add_axes((0, 0, 1, 1))
    axis.set_axis_off()
    axis.imshow(page.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest",
                aspect="auto")
    for index, title in enumerate(titles[:len(images)]):
        row, column = divmod(index, columns)
        axis.text(column * cell_w + side / 2, row * cell_h + TITLE - 2, title, fontsize=8,
                  ha="center", va="bottom")
    return figure


def rendered(figure: Figure) -> np.ndarray:
    """The figure drawn as an (H, W, 3) uint8 array, for TensorBoard's ``add_image``."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
