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


def test_elastic_bends_strokes_smoothly_and_keeps_the_digit(digits) -> None:
    torch.manual_seed(3)
    bend = RandomAffine(shift=0.0, elastic=34.0, elastic_sigma=4.0)
    field = bend._displacement(256, 28, 28, digits.device, digits.dtype)
    assert field.shape == (256, 28, 28, 2)
    # Displacements of about a pixel, varying smoothly: neighbours move almost alike.
    assert 0.3 < field.abs().mean() < 3.0
    assert (field[:, 1:] - field[:, :-1]).abs().mean() < 0.25 * field.abs().mean()
    out = bend(digits)
    assert out.shape == digits.shape and out.min() >= 0 and out.max() <= 1
    changed = (out - digits).abs().flatten(1).sum(1) / digits.flatten(1).sum(1)
    assert (changed > 0.05).all()  # every image is bent ...
    # ... but stays in place: strokes stretch and thin locally, yet the ink is about the same
    # and its centre of mass moves by a pixel or so (a few at most).
    ink_change = (out.flatten(1).sum(1) / digits.flatten(1).sum(1) - 1).abs()
    assert ink_change.max() < 0.5 and ink_change.mean() < 0.2
    rows = torch.arange(28, dtype=digits.dtype).view(1, 1, 28, 1)

    def centre(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([(x * rows).flatten(1).sum(1), (x * rows.mT).flatten(1).sum(1)],
                           1) / x.flatten(1).sum(1, keepdim=True)

    moved = (centre(out) - centre(digits)).norm(dim=1)
    assert moved.max() < 3.5 and moved.mean() < 1.5


def test_no_elastic_is_the_plain_affine_draw(digits) -> None:
    torch.manual_seed(5)
    plain = RandomAffine(shift=2.0, degrees=10.0)(digits)
    torch.manual_seed(5)
    assert torch.equal(RandomAffine(shift=2.0, degrees=10.0, elastic=0.0)(digits), plain)


def test_bad_elastic_settings_are_named() -> None:
    with pytest.raises(ValueError, match=r"elastic=-1"):
        RandomAffine(elastic=-1)
    with pytest.raises(ValueError, match=r"elastic_sigma=0"):
        RandomAffine(elastic=34, elastic_sigma=0)
