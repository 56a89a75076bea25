"""Augmentation that runs on a whole batch at once, with its own random draw for every image.

torchvision's ``v2.RandomAffine`` and ``v2.ElasticTransform`` draw one set of parameters per
call, so applied to a batch they would move every image the same way. ``affine_grid`` +
``grid_sample`` take one matrix (and here one displacement field) per image, in one resampling.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RandomAffine(nn.Module):
    """Shift each image by up to ``shift`` pixels, rotate by up to ``degrees``, scale in ``scale``.

    ``elastic`` > 0 adds Simard et al.'s (2003) elastic distortion on top: a random displacement
    field per image, smoothed by a Gaussian of ``elastic_sigma`` pixels and scaled by
    ``elastic`` pixels (34 and 4 in that paper). It bends strokes the way handwriting varies,
    which shifts and rotations cannot. Expects pixels in [0, 1] with a black (0) background,
    i.e. before normalisation, so the area moved in from outside the image is background.
    """

    def __init__(self, shift: float = 2.0, degrees: float = 0.0,
                 scale: tuple[float, float] = (1.0, 1.0), elastic: float = 0.0,
                 elastic_sigma: float = 4.0) -> None:
        super().__init__()
        low, high = scale
        if shift < 0 or degrees < 0 or not 0 < low <= high:
            raise ValueError(f"augment needs shift >= 0, degrees >= 0 and 0 < scale[0] <= "
                             f"scale[1]; got shift={shift}, degrees={degrees}, scale={scale}")
        if elastic < 0 or elastic_sigma <= 0:
            raise ValueError(f"augment needs elastic >= 0 and elastic_sigma > 0; got "
                             f"elastic={elastic}, elastic_sigma={elastic_sigma}")
        self.shift, self.degrees, self.scale = shift, degrees, (low, high)
        self.elastic, self.elastic_sigma = elastic, elastic_sigma

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
        if self.elastic:
            grid = (grid + self._displacement(n, height, width, device, dtype) * pixel).contiguous()
        return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)

    def _displacement(self, n: int, height: int, width: int, device: torch.device,
                      dtype: torch.dtype) -> Tensor:
        """Smoothed random displacements in pixels, (n, height, width, 2) as (x, y) pairs."""
        field = torch.rand(n, 2, height, width, device=device, dtype=dtype) * 2 - 1
        # The Gaussian is separable: blur the columns, then the rows, as products with banded
        # matrices (zeros beyond the edge); far faster here than a convolution's kernels.
        field = self._blur(height, device, dtype) @ field @ self._blur(width, device, dtype).T
        return (self.elastic * field).permute(0, 2, 3, 1)

    def _blur(self, size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
        """(size, size) matrix whose product with a vector is that vector's Gaussian blur."""
        positions = torch.arange(size, device=device, dtype=dtype)
        offsets = positions.view(-1, 1) - positions.view(1, -1)
        radius = math.ceil(3 * self.elastic_sigma)
        weights = torch.exp(-0.5 * (offsets / self.elastic_sigma) ** 2) * (offsets.abs() <= radius)
        # Normalised by the whole kernel's sum, as a convolution with zero padding would be.
        steps = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
        return weights / torch.exp(-0.5 * (steps / self.elastic_sigma) ** 2).sum()

    def extra_repr(self) -> str:
        text = f"shift={self.shift}, degrees={self.degrees}, scale={self.scale}"
        if self.elastic:
            text += f", elastic={self.elastic}, elastic_sigma={self.elastic_sigma}"
        return text
