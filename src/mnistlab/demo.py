"""A local web page to draw a digit and watch the network read it (``python demo.py``).

Built with Gradio (``pip install -e ".[demo]"``; ``make install`` includes it). What is drawn or
uploaded goes through predict.py's MNIST-style preparation (``mnistlab.digits``), and the page
shows the 28x28 image the network saw, so a wrong guess can be traced to the drawing or to the
network.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mnistlab.digits import MAX_PIXELS, DigitImageError, open_image, prepare_digit
from mnistlab.errors import exit_with
from mnistlab.loading import LoadedModel

# Gradio's sketchpad opens, and clears, with no tool chosen ("select the draw tool to start");
# the page picks the brush then, so that drawing works at once.
SELECT_BRUSH = """() => {
  let tries = 0;
  const pick = setInterval(() => {
    const canvas = document.querySelector('#canvas');
    const brush = document.querySelector('#canvas button[aria-label="Brush"]');
    if (brush && canvas.innerText.includes('select the draw tool')) brush.click();
    if (++tries > 50 || (brush && !canvas.innerText.includes('select the draw tool'))) {
      clearInterval(pick);
    }
  }, 100);
}"""
CLEAR_CANVAS = ("""() => {
  document.querySelector('#canvas button[aria-label="Clear canvas"]')?.click();
  (""" + SELECT_BRUSH + """)();
}""")
# How much the 28x28 input is enlarged on the page (nearest neighbour: the pixels stay visible).
ZOOM = 7


class NoCheckpointError(FileNotFoundError):
    """No checkpoint was named and none is under outputs/."""


def newest_checkpoint(root: str | os.PathLike[str] = "outputs") -> Path:
    """The most recently written best checkpoint (``epoch_*.ckpt``) under ``root``."""
    found = sorted(Path(root).glob("**/checkpoints/epoch_*.ckpt"),
                   key=lambda path: path.stat().st_mtime)
    if not found:
        raise NoCheckpointError(
            f"no checkpoint under {Path(root).resolve()}: train a model first (`python train.py`"
            ", or `make train`), or name one with ckpt_path=<run>/checkpoints/epoch_NNN.ckpt")
    return found[-1]


def describe(loaded: LoadedModel) -> str:
    """Which checkpoint, which model, and its test accuracy (from its run's result.json)."""
    model = loaded.config.model._target_.rsplit(".", 1)[-1]
    result = loaded.path.parent.parent / "result.json"
    accuracy = "test accuracy unknown (no result.json in its run folder)"
    if result.is_file():
        value = (json.loads(result.read_text()).get("metrics") or {}).get("test/acc")
        if value is not None:
            accuracy = f"test accuracy {100 * value:.2f}%"
    return f"`{loaded.path}`: {model}, {accuracy}"


@dataclass
class Reading:
    """What the page shows for one image: the guess, every probability and the input seen."""

    message: str
    probabilities: dict[str, float] | None = None
    seen: np.ndarray | None = None


def read_digit(loaded: LoadedModel, image: Image.Image | None) -> Reading:
    """Prepare a picture as an MNIST digit and classify it; a bad picture gets a message."""
    if image is None:
        return Reading("Draw a digit, or upload a picture of one.")
    try:
        digit = prepare_digit(image)
    except DigitImageError as err:
        return Reading(f"Cannot read a digit: {err}.")
    probs = loaded.probabilities(digit.unsqueeze(0))[0]
    ranked = {loaded.classes[i]: float(p) for i, p in enumerate(probs)}
    best = max(ranked, key=ranked.__getitem__)
    pixels = (digit[0].numpy() * 255).round().astype(np.uint8)
    seen = np.kron(pixels, np.ones((ZOOM, ZOOM), dtype=np.uint8))
    return Reading(f"Predicted: {best} ({100 * ranked[best]:.1f}%)", ranked, seen)


def sketch_image(value: Any) -> Image.Image | None:
    """The drawing of Gradio's sketchpad as an image, or None when nothing is drawn."""
    composite = value.get("composite") if isinstance(value, dict) else value
    if composite is None:
        return None
    image = Image.fromarray(np.asarray(composite))
    if image.mode == "RGBA" and not np.asarray(image)[..., 3].any():
        return None  # an empty canvas is fully transparent
    return image


def upload_image(path: str | None, max_pixels: int = MAX_PIXELS) -> Image.Image | str | None:
    """An uploaded file as an image, or the reason it is not one."""
    if not path:
        return None
    try:
        return open_image(path, max_pixels)
    except DigitImageError as err:
        return f"Cannot read {Path(path).name}: {err}."


def build_page(loaded: LoadedModel, max_pixels: int = MAX_PIXELS) -> Any:
    """The Gradio page: a canvas and an upload box in, the guess and what the network saw out."""
    try:
        import gradio as gr  # the demo extra: only the page needs it
    except ImportError:
        exit_with('the demo needs Gradio: pip install -e ".[demo]" (make install has it)')
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's requests to itself

    def show(reading: Reading) -> tuple[str, Any, Any]:
        return reading.message, reading.probabilities, reading.seen

    def from_sketch(value: Any) -> tuple[str, Any, Any]:
        return show(read_digit(loaded, sketch_image(value)))

    def from_upload(path: str | None) -> tuple[str, Any, Any]:
        image = upload_image(path, max_pixels)
        if isinstance(image, str):
            return show(Reading(image))
        return show(read_digit(loaded, image))

    with gr.Blocks(title="mnistlab: draw a digit") as page:
        gr.Markdown(f"## Draw a digit\n{describe(loaded)}")
        with gr.Row():
            with gr.Column():
                canvas = gr.Sketchpad(label="Draw here (mouse or touch)", type="numpy",
                                      image_mode="RGBA", canvas_size=(280, 280),
                                      brush=gr.Brush(default_size=18, colors=["#000000"],
                                                     color_mode="fixed"),
                                      layers=False, elem_id="canvas")
                clear = gr.Button("Clear", elem_id="clear")
                upload = gr.File(label="Or upload a picture of a digit", type="filepath",
                                 elem_id="upload")
            with gr.Column():
                message = gr.Markdown("Draw a digit, or upload a picture of one.",
                                      elem_id="prediction")
                bars = gr.Label(num_top_classes=len(loaded.classes), label="Probabilities",
                                elem_id="probabilities")
                seen = gr.Image(label="What the network saw (28x28)", type="numpy",
                                image_mode="L", interactive=False, height=260, elem_id="seen")
        outputs = [message, bars, seen]
        sketched = canvas.change(from_sketch, canvas, outputs, trigger_mode="always_last")
        upload.change(from_upload, upload, outputs)
        # The sketchpad's own clear (its toolbar's bin) keeps the brush chosen; setting the
        # canvas's value from Python would reset its tools. A reading of the last strokes still
        # queued or running is cancelled, or it would land after the clear and show a stale guess.
        clear.click(lambda: (None, *show(read_digit(loaded, None))), None, [upload, *outputs],
                    js=CLEAR_CANVAS, cancels=[sketched])
        page.load(None, None, None, js=SELECT_BRUSH)
    return page
