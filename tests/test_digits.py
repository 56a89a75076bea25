"""Pictures of digits as files hold them: high-depth grayscale is scaled, never clipped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets.mnist import read_image_file

from mnistlab.digits import open_image, prepare_digit


@pytest.mark.parametrize(("mode", "levels"), [("I;16", (1000, 60000)), ("I;16", (0, 65535)),
                                              ("I", (300, 50000)), ("F", (0.05, 0.9))])
def test_a_high_depth_grayscale_png_reads_like_its_8_bit_copy(data_dir: Path, tmp_path: Path,
                                                             mode: str, levels) -> None:
    digit = read_image_file(str(data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte"))[0]
    ink = digit.numpy().astype(np.float64) / 255
    low, high = levels
    values = low + ink * (high - low)
    dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
    deep = Image.fromarray(values.astype(dtype))
    assert deep.mode == mode
    scale = 1.0 if mode == "F" else 65535.0
    eight = Image.fromarray(np.round(255 * values / scale).astype(np.uint8))
    path = tmp_path / ("deep.png" if mode == "I;16" else "deep.tiff")
    deep.save(path)
    reread = open_image(path)
    assert reread.mode in ("I", "I;16", "F")  # still high-depth when read back
    seen, expected = prepare_digit(reread), prepare_digit(eight)
    assert np.abs(np.asarray(seen) - np.asarray(expected)).max() < 0.02
