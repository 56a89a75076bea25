"""Batched augmentation: a random draw per image, applied to training batches only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from mnistlab.data import MNISTDataModule, RandomAffine


@pytest.fixture(scope="module")
def digits(data_dir) -> torch.Tensor:
    dm = MNISTDataModule(data_dir=data_dir, normalize=False, eval_batch_size=64)
    dm.setup()
    images, _ = next(iter(dm.test_dataloader()))
    return dm.batch_transform(images)


def test_no_movement_leaves_images_unchanged(digits) -> None:
    still = RandomAffine(shift=0.0, degrees=0.0, scale=(1.0, 1.0))
    assert torch.allclose(still(digits), digits, atol=1e-5)


def test_whole_pixel_shift_moves_the_digit(digits, monkeypatch) -> None:
    # Every uniform draw forced to its maximum: each image moves by exactly one pixel.
    monkeypatch.setattr(torch, "rand", lambda *shape, **kw: torch.ones(*shape, **kw))
    out = RandomAffine(shift=1.0)(digits)
    # The grid reads one pixel right of and below each output pixel: content moves up-left.
    assert torch.allclose(out[:, :, :-1, :-1], digits[:, :, 1:, 1:], atol=1e-5)
    # The last row and column come from outside the image: background.
    assert out[:, :, -1, :].abs().max() < 1e-5 and out[:, :, :, -1].abs().max() < 1e-5


def test_each_image_gets_its_own_draw_and_seeds_repeat(digits) -> None:
    same = digits[:1].expand(8, -1, -1, -1)
    augment = RandomAffine(shift=2.0, degrees=10.0, scale=(0.9, 1.1))
    torch.manual_seed(1)
    first = augment(same)
    assert len({tuple(img.flatten().tolist()) for img in first}) == 8
    torch.manual_seed(1)
    assert torch.equal(first, augment(same))
    assert first.min() >= 0 and first.max() <= 1 and first.shape == same.shape


def test_bad_ranges_are_named() -> None:
    with pytest.raises(ValueError, match=r"shift=-1"):
        RandomAffine(shift=-1)
    with pytest.raises(ValueError, match=r"scale=\(1.2, 0.8\)"):
        RandomAffine(scale=(1.2, 0.8))


def test_datamodule_augments_training_batches_only(data_dir) -> None:
    dm = MNISTDataModule(data_dir=data_dir, batch_size=16, augment=RandomAffine(shift=3.0))
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    plain = dm.batch_transform(batch[0])
    dm.trainer = SimpleNamespace(training=False)
    assert torch.equal(dm.on_after_batch_transfer(batch, 0)[0], plain)
    dm.trainer = SimpleNamespace(training=True)
    assert not torch.equal(dm.on_after_batch_transfer(batch, 0)[0], plain)
