"""TensorBoard's figures (mnistlab.figures): the digit grid shows each digit, as given, under
its title."""

from __future__ import annotations

import numpy as np
import torch

from mnistlab.figures import GAP, PIXELS_PER_INCH, TITLE, digit_grid, rendered


def test_digit_grid_shows_each_digit_as_given_under_its_title() -> None:
    count, columns = 11, 4  # two full rows and a part-filled one
    shades = torch.linspace(0.1, 0.9, count)
    images = shades.view(-1, 1, 1, 1).expand(count, 1, 28, 28).clone()
    image = rendered(digit_grid(images, [f"{n} -> {n + 1}" for n in range(count)], columns))
    assert image.dtype == np.uint8 and image.shape[2] == 3
    scale = 100 / PIXELS_PER_INCH  # drawn pixels per digit pixel, at matplotlib's 100 dpi
    assert image.shape[:2] == (round(3 * (28 + TITLE) * scale), round(4 * (28 + GAP) * scale))
    gray = image.mean(axis=2)
    for index, shade in enumerate(shades):
        row, column = divmod(index, columns)
        middle_y = int((row * (28 + TITLE) + TITLE + 14) * scale)
        middle_x = int((column * (28 + GAP) + 14) * scale)
        assert abs(gray[middle_y, middle_x] - 255 * float(shade)) <= 2, index
        # The title band above the digit holds dark text on the white page.
        band = gray[int(row * (28 + TITLE) * scale):int((row * (28 + TITLE) + TITLE) * scale),
                    int(column * (28 + GAP) * scale):int((column * (28 + GAP) + 28) * scale)]
        assert band.max() == 255 and band.min() < 128, index
    # The empty cells of the last row stay white page.
    assert gray[int((2 * (28 + TITLE) + TITLE + 14) * scale), int((3 * 30 + 14) * scale)] == 255
