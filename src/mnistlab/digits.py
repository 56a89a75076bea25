"""Turn an ordinary picture of a digit into an MNIST-style 28x28 image.

MNIST digits are light on dark, cropped to the ink, scaled so the longer side of the ink is 20
pixels (keeping the aspect ratio) and placed in a 28x28 image so that their centre of mass is
at the centre. A photo or drawing fed in as it is (dark on light, large, off-centre) looks
nothing like that, and a network trained on MNIST then guesses the same digit for everything.
``prepare_digit`` makes any image look like an MNIST digit; predict.py and the demo page use it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

SIDE, BOX = 28, 20
# Larger images are refused before they are decoded (a 10000x10000 photo is 100 million).
MAX_PIXELS = 40_000_000
# Ink is what stands out from the background by more than this share of the full range.
INK_THRESHOLD = 0.15


class DigitImageError(ValueError):
    """A file that cannot be read as a picture of a digit; the message says why, in one line."""


def open_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open an image file, refusing empty, non-image and oversized files with a clear reason."""
    path = Path(path)
    if not path.is_file():
        raise DigitImageError("not a file" if path.exists() else "no such file")
    if path.stat().st_size == 0:
        raise DigitImageError("empty file")
    try:
        image = Image.open(path)
        width, height = image.size
        if width * height > max_pixels:
            raise DigitImageError(f"too large: {width}x{height} pixels, more than {max_pixels:,}")
        image = ImageOps.exif_transpose(image)  # phone photos: the orientation the camera meant
        image.load()
    except UnidentifiedImageError:
        raise DigitImageError("not an image (no image format recognised)") from None
    except (OSError, Image.DecompressionBombError) as err:
        raise DigitImageError(f"unreadable image: {err}") from None
    return image


# Grayscale modes with more than 8 bits (16-bit PNGs and TIFFs, 32-bit integer or float
# images): Pillow's conversion to RGBA clips their values at 255 instead of scaling them.
HIGH_DEPTH = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _high_depth_gray(image: Image.Image) -> np.ndarray:
    """Gray in [0, 1], scaled by the range the values were written in (8, 16 bits, or 0..1)."""
    values = np.asarray(image, dtype=np.float64)
    top = float(values.max(initial=0))
    if image.mode.startswith("I;16"):
        scale = 65535.0
    else:  # "I" or "F": the smallest usual range that holds every value
        scale = next((r for r in (1.0, 255.0, 65535.0) if top <= r), top)
    return np.clip(values / scale, 0.0, 1.0)


def ink_map(image: Image.Image) -> np.ndarray:
    """Float ink intensity in [0, 1] (1: full ink) for any mode, either polarity, any alpha."""
    if image.mode in HIGH_DEPTH:
        gray, alpha = _high_depth_gray(image), np.ones(image.size[::-1])
    else:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64) / 255
        gray = rgba[..., :3] @ np.array([0.299, 0.587, 0.114])
        alpha = rgba[..., 3]
    if alpha.min() < 0.99:
        # Transparent parts are background: put them behind in the colour that contrasts with
        # what is drawn, so dark strokes on a transparent canvas stay dark strokes.
        opaque = gray[alpha > 0.5]
        backdrop = 1.0 if opaque.size == 0 or np.median(opaque) < 0.5 else 0.0
        if (alpha > 0.5).mean() > 0.5:  # mostly opaque: the opaque part holds the background
            backdrop = float(np.median(opaque))
        gray = gray * alpha + backdrop * (1 - alpha)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 0.5:  # dark ink on light paper: MNIST is light on dark
        gray, background = 1 - gray, 1 - background
    span = float(np.percentile(gray, 99.9)) - background
    if span < INK_THRESHOLD:
        raise DigitImageError("no ink: the image is blank or has too little contrast")
    return np.clip((gray - background) / span, 0, 1)


def prepare_digit(image: Image.Image) -> torch.Tensor:
    """An MNIST-style (1, 28, 28) float tensor with pixels in [0, 1], light on dark."""
    ink = ink_map(image)
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    ink = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    boxed = np.asarray(Image.fromarray(ink.astype(np.float32), mode="F").resize(
        size, Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR))
    boxed = np.clip(boxed, 0, 1)
    # Place the centre of mass at the image centre, as in MNIST (pixel index 14, 14 there).
    total = boxed.sum()
    ys, xs = np.indices(boxed.shape)
    centre_y, centre_x = (ys * boxed).sum() / total, (xs * boxed).sum() / total
    top = round(float(SIDE / 2 - centre_y))
    left = round(float(SIDE / 2 - centre_x))
    top = min(max(top, 0), SIDE - boxed.shape[0])
    left = min(max(left, 0), SIDE - boxed.shape[1])
    digit = np.zeros((SIDE, SIDE), dtype=np.float32)
    digit[top:top + boxed.shape[0], left:left + boxed.shape[1]] = boxed
    return torch.from_numpy(digit).unsqueeze(0)
