"""Classifying ordinary images: MNIST-style preparation, bad files, and accuracy on real PNGs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets

from mnistlab.digits import DigitImageError, open_image, prepare_digit
from mnistlab.loading import load_model
from mnistlab.prediction import collect_inputs, predict_files
from tests.helpers import run_cli


@pytest.fixture(scope="module")
def test_digits(data_dir) -> datasets.MNIST:
    return datasets.MNIST(data_dir, train=False)


def as_people_have_it(digit: np.ndarray, rng: random.Random, mode: str = "RGB") -> Image.Image:
    """An MNIST digit as a photo or drawing: dark ink on light paper, large, off-centre."""
    scale = rng.uniform(4, 6)
    size = round(28 * scale)
    ink = np.asarray(Image.fromarray(digit).resize((size, size), Image.Resampling.BILINEAR),
                     dtype=np.float64)[..., None] / 255
    paper, pen = np.array([246, 243, 236]), np.array([25, 30, 90])
    width, height = size + rng.randint(10, 90), size + rng.randint(10, 90)
    left, top = rng.randint(0, width - size), rng.randint(0, height - size)
    canvas = np.zeros((height, width, 4))
    canvas[..., :3], canvas[..., 3] = paper, 255
    patch = canvas[top:top + size, left:left + size]
    if mode == "RGBA-transparent":  # strokes on a transparent canvas
        canvas[..., 3] = 0
        patch[..., :3], patch[..., 3:] = pen, ink * 255
    else:
        patch[..., :3] = paper * (1 - ink) + pen * ink
    image = Image.fromarray(canvas.round().astype(np.uint8), "RGBA")
    return image if mode.startswith("RGBA") else image.convert(mode)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "RGBA-transparent"])
def test_a_large_dark_on_light_digit_becomes_the_mnist_digit(test_digits, mode: str) -> None:
    rng = random.Random(0)
    for index in range(20):
        original = test_digits.data[index].float() / 255
        prepared = prepare_digit(as_people_have_it(test_digits.data[index].numpy(), rng, mode))
        assert prepared.shape == (1, 28, 28) and prepared.min() >= 0 and prepared.max() <= 1
        # Same shape and place as the original digit, up to resampling.
        assert (prepared[0] - original).abs().mean() < 0.06, index


def test_light_on_dark_and_dark_on_light_give_the_same_digit(test_digits) -> None:
    digit = test_digits.data[3].numpy()
    light_on_dark = Image.fromarray(digit).resize((140, 140))
    dark_on_light = Image.fromarray(255 - digit).resize((140, 140))
    assert torch.allclose(prepare_digit(light_on_dark), prepare_digit(dark_on_light), atol=1e-3)


def test_files_that_are_not_digit_images_get_one_line_reasons(tmp_path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a picture")
    Image.new("L", (64, 64), 255).save(tmp_path / "blank.png")
    Image.new("L", (300, 200), 0).save(tmp_path / "big.png")
    (tmp_path / "folder.png").mkdir()
    reasons = {}
    for name in ("empty.png", "notes.txt", "blank.png", "big.png", "folder.png", "gone.png"):
        try:
            prepare_digit(open_image(tmp_path / name, max_pixels=50_000))
        except DigitImageError as err:
            reasons[name] = str(err)
    assert reasons == {
        "empty.png": "empty file",
        "notes.txt": "not an image (no image format recognised)",
        "blank.png": "no ink: the image is blank or has too little contrast",
        "big.png": "too large: 300x200 pixels, more than 50,000",
        "folder.png": "not a file",
        "gone.png": "no such file",
    }


@pytest.fixture
def checkpoint(mnist_cnn: Path) -> Path:
    """The session's CNN, trained for one epoch on the real MNIST (about 98.5% accurate)."""
    return mnist_cnn


@pytest.mark.slow
def test_pngs_as_people_have_them_score_like_the_original_digits(checkpoint, test_digits,
                                                                 tmp_path) -> None:
    loaded = load_model(checkpoint)
    count = 1000
    originals = test_digits.data[:count].unsqueeze(1).float() / 255
    labels = test_digits.targets[:count]
    right = int((loaded.probabilities(originals).argmax(dim=1) == labels).sum())
    rng = random.Random(1)
    modes = ["RGB", "RGB", "RGBA", "RGBA-transparent"]
    for index in range(count):
        image = as_people_have_it(test_digits.data[index].numpy(), rng, modes[index % 4])
        image.save(tmp_path / f"{index:04d}.png")
    predictions = predict_files(loaded, collect_inputs(tmp_path))
    assert all(p.error is None for p in predictions)
    right_from_png = sum(p.label == str(int(y)) for p, y in zip(predictions, labels, strict=True))
    assert right > 0.95 * count
    assert abs(right_from_png - right) <= 0.005 * count, (right_from_png, right)  # 0.5 points


@pytest.mark.slow
def test_predict_command_classifies_the_good_files_and_names_the_bad(checkpoint, test_digits,
                                                                     tmp_path, data_dir) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = random.Random(2)
    for index in range(3):
        as_people_have_it(test_digits.data[index].numpy(), rng).save(folder / f"d{index}.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "readme.txt").write_text("hello")
    out = tmp_path / "predictions.json"
    result = run_cli("predict.py", f"ckpt_path={checkpoint}", f"inputs={folder}",
                     f"output={out}", cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["file", "predicted", "probability", "top"]
    assert any(line.startswith(str(folder / "empty.png")) and "error: empty file" in line
               for line in lines)
    assert "error: not an image" in next(line for line in lines if "readme.txt" in line)
    saved = {Path(p["file"]).name: p for p in json.loads(out.read_text())}
    assert [saved[f"d{i}.png"]["label"] for i in range(3)] == [
        str(int(y)) for y in test_digits.targets[:3]]
    assert len(saved["d0.png"]["top"]) == 3 and saved["empty.png"]["error"] == "empty file"
    assert "2 of 5 files could not be classified" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed", "predictions.json"]
    missing = run_cli("predict.py", "ckpt_path=gone.ckpt", f"inputs={folder}", cwd=tmp_path,
                      data_dir=data_dir)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "Error: ckpt_path=gone.ckpt: no such file"
