"""Augmentation that runs on a whole batch at once, with its own random draw for every image.

torchvision's ``v2.RandomAffine`` draws one set of parameters per call, so applied to a batch it
would move every image the same way. ``affine_grid`` + ``grid_sample`` take one matrix per image.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RandomAffine(nn.Module):
    """Shift each image by up to ``shift`` pixels, rotate by up to ``degrees``, scale in ``scale``.

    Expects pixels in [0, 1] with a black (0) background, i.e. before normalisation, so the
    area moved in from outside the image is background.
    """

    def __init__(self, shift: float = 2.0, degrees: float = 0.0,
                 scale: tuple[float, float] = (1.0, 1.0)) -> None:
        super().__init__()
        low, high = scale
        if shift < 0 or degrees < 0 or not 0 < low <= high:
            raise ValueError(f"augment needs shift >= 0, degrees >= 0 and 0 < scale[0] <= "
                             f"scale[1]; got shift={shift}, degrees={degrees}, scale={scale}")
        self.shift, self.degrees, self.scale = shift, degrees, (low, high)

    def forward(self, images: Tensor) -> Tensor:
        n, _, height, width = images.shape
        device, dtype = images.device, images.dtype

        def uniform(low: float, high: float, *shape: int) -> Tensor:
            return torch.rand(n, *shape, device=device, dtype=dtype) * (high - low) + low

        angle = uniform(-math.radians(self.degrees), math.radians(self.degrees))
        zoom = uniform(*self.scale)
        # affine_grid measures positions from -1 to 1 across the image: a pixel is 2 / size.
        pixel = torch.tensor([2 / width, 2 / height], device=device, dtype=dtype)
        offset = uniform(-self.shift, self.shift, 2) * pixel
        # The matrix maps output positions to input positions, hence the inverse zoom.
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, offset[:, 0]], dim=1),
                             torch.stack([sin, cos, offset[:, 1]], dim=1)], dim=1)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)

    def extra_repr(self) -> str:
        return f"shift={self.shift}, degrees={self.degrees}, scale={self.scale}"
