"""Classify image files with a trained checkpoint: one row per file, bad files named, not fatal."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from mnistlab.digits import MAX_PIXELS, DigitImageError, open_image, prepare_digit
from mnistlab.ensemble import Ensemble
from mnistlab.loading import LoadedModel


@dataclass
class Prediction:
    """The network's answer for one file, or why the file could not be classified."""

    file: str
    label: str | None = None
    probability: float | None = None
    top: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None


def collect_inputs(inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
                   ) -> list[Path]:
    """Files named directly, and every file in a named folder (sorted); missing ones kept."""
    items = [inputs] if isinstance(inputs, str | os.PathLike) else list(inputs)
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            paths += sorted(p for p in item.iterdir() if not p.name.startswith("."))
        else:
            paths.append(item)
    return paths


def predict_files(loaded: LoadedModel | Ensemble, paths: Iterable[Path], top: int = 3,
                  max_pixels: int = MAX_PIXELS, batch_size: int = 256) -> list[Prediction]:
    """Prepare each file as an MNIST digit and classify the good ones in batches, with one
    network or an ensemble (the mean of its members' probabilities)."""
    predictions, ready = [], []
    for path in paths:
        prediction = Prediction(file=str(path))
        predictions.append(prediction)
        try:
            ready.append((prediction, prepare_digit(open_image(path, max_pixels))))
        except DigitImageError as err:
            prediction.error = str(err)
    for first in range(0, len(ready), batch_size):
        chunk = ready[first:first + batch_size]
        images = torch.stack([digit for _, digit in chunk])
        for (prediction, _), probs in zip(chunk, loaded.probabilities(images), strict=True):
            values, indices = probs.topk(min(top, len(loaded.classes)))
            prediction.top = [(loaded.classes[int(i)], round(float(v), 4))
                              for v, i in zip(values, indices, strict=True)]
            prediction.label, prediction.probability = prediction.top[0]
    return predictions


def table(predictions: Sequence[Prediction]) -> str:
    """A plain-text table: file, predicted class, probability, top guesses (or the error)."""
    rows = [("file", "predicted", "probability", "top")]
    for p in predictions:
        if p.error:
            rows.append((p.file, "-", "-", f"error: {p.error}"))
        else:
            rows.append((p.file, p.label, f"{p.probability:.3f}",
                         ", ".join(f"{label} {prob:.3f}" for label, prob in p.top)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}"
                     for r in rows)


def write(predictions: Sequence[Prediction], path: str | os.PathLike[str]) -> None:
    """Save as .json (a list of objects) or .csv (one row per file)."""
    path = Path(path)
    if path.suffix == ".json":
        path.write_text(json.dumps([asdict(p) for p in predictions], indent=2) + "\n")
    elif path.suffix == ".csv":
        with path.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "predicted", "probability", "top", "error"])
            for p in predictions:
                writer.writerow([p.file, p.label or "", p.probability or "",
                                 " ".join(f"{label}:{prob}" for label, prob in p.top),
                                 p.error or ""])
    else:
        raise ValueError(f"output={str(path)!r}: use a file name ending in .csv or .json")
