"""The demo page in a real browser.

The browser test serves a CNN trained for one epoch on the real MNIST (the session's
``mnist_cnn``) with demo.py and draws digits with the mouse in headless Chromium (Debian's
package; skipped with the reason when it is absent). The tests that need that CNN are slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torchvision.datasets import MNIST

from mnistlab.demo import NoCheckpointError, newest_checkpoint, read_digit
from mnistlab.loading import load_model
from tests import browser
from tests.helpers import run_cli

WAITING = "Draw a digit, or upload a picture of one."


def paper_digit(data_dir: Path, index: int, path: Path) -> int:
    """Test image ``index`` as a photo-like PNG: dark ink on white, 5 times larger, off-centre."""
    test = MNIST(data_dir, train=False)
    ink = np.asarray(test.data[index].numpy(), dtype=np.uint8)
    page = np.full((200, 240), 255, dtype=np.uint8)
    page[30:170, 70:210] = 255 - np.kron(ink, np.ones((5, 5), dtype=np.uint8))
    Image.fromarray(page).save(path)
    return int(test.targets[index])


@pytest.mark.slow
@pytest.mark.skipif(browser.chromium() is None,
                    reason="needs Debian's chromium (apt-get install chromium)")
def test_digits_drawn_with_the_mouse_and_uploaded_files_in_a_real_browser(
        mnist_cnn, data_dir, tmp_path) -> None:
    picture = tmp_path / "my_digit.png"
    label = paper_digit(data_dir, 0, picture)
    (tmp_path / "notes.txt").write_text("not a picture")
    with browser.serve_demo(mnist_cnn, cwd=tmp_path) as url, browser.open_page(url) as page:
        header = page.locator("h2 + p, .prose p").first.inner_text()
        assert "CNN, test accuracy" in page.content() and str(mnist_cnn.name) in header
        for digit in ("1", "0", "7"):
            browser.draw(page, browser.DIGITS[digit])
            assert browser.prediction(page, WAITING).startswith(f"Predicted: {digit} ("), digit
            # The ten probabilities as bars, and the 28x28 input the network saw.
            assert page.locator("#probabilities").inner_text().count("%") == 10
            assert page.locator("#seen img").count() == 1
            assert browser.clear(page) == WAITING
        browser.upload(page, picture)
        assert browser.prediction(page, WAITING).startswith(f"Predicted: {label} (")
        browser.clear(page)
        browser.upload(page, tmp_path / "notes.txt")
        assert browser.prediction(page, WAITING) == (
            "Cannot read notes.txt: not an image (no image format recognised).")
    assert "Traceback" not in (tmp_path / "demo.log").read_text()


@pytest.mark.slow
def test_reading_a_digit_shows_the_prepared_28x28_input(mnist_cnn, data_dir, tmp_path) -> None:
    loaded = load_model(mnist_cnn)
    label = paper_digit(data_dir, 1, tmp_path / "two.png")
    reading = read_digit(loaded, Image.open(tmp_path / "two.png"))
    assert reading.message.startswith(f"Predicted: {label} (")
    assert sorted(reading.probabilities) == [str(d) for d in range(10)]
    assert sum(reading.probabilities.values()) == pytest.approx(1, abs=1e-5)
    assert reading.seen.shape == (196, 196) and reading.seen.max() == 255
    blank = read_digit(loaded, Image.new("L", (50, 50), 255))
    assert blank.message == "Cannot read a digit: no ink: the image is blank or has too little " \
                            "contrast." and blank.probabilities is None


@pytest.mark.slow
def test_without_a_checkpoint_the_demo_says_to_train_first(tmp_path, data_dir) -> None:
    with pytest.raises(NoCheckpointError, match="train a model first"):
        newest_checkpoint(tmp_path / "outputs")
    result = run_cli("demo.py", cwd=tmp_path, data_dir=data_dir)
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: no checkpoint under {tmp_path / 'outputs'}: train "
                                    "a model first")
