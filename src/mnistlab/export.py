"""A checkpoint as a file that runs without mnistlab: ONNX (any onnxruntime) or TorchScript.

The exported graph includes the checkpoint's input normalisation, so its input is plain pixels:
float32 (N, 1, 28, 28) in [0, 1], a light digit on a dark background, centred as MNIST's digits
are (what ``mnistlab.digits.prepare_digit`` makes of any picture). The output is one logit per
class. A JSON card beside the file says so, with the class names; ``check`` runs the exported
file on the whole test set and compares it with the checkpoint's own network.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from mnistlab.ensemble import Ensemble
from mnistlab.internals import tracing
from mnistlab.loading import LoadedModel

FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
INPUT, OUTPUT = "pixels", "logits"


class WithNormalisation(nn.Module):
    """The network behind its own input normalisation, so that users feed plain pixels."""

    def __init__(self, loaded: LoadedModel) -> None:
        super().__init__()
        self.network = loaded.model.eval()
        self.normalize = loaded.normalize
        self.register_buffer("mean", torch.tensor(loaded.mean))
        self.register_buffer("std", torch.tensor(loaded.std))

    def forward(self, pixels: Tensor) -> Tensor:
        if self.normalize:
            pixels = (pixels - self.mean) / self.std
        return self.network(pixels)


class EnsembleOutput(nn.Module):
    """Several networks as one: the log of their mean probability, a logit vector whose softmax
    is the ensemble's probabilities (mnistlab.ensemble)."""

    def __init__(self, ensemble: Ensemble) -> None:
        super().__init__()
        self.members = nn.ModuleList(WithNormalisation(member) for member in ensemble.members)

    def forward(self, pixels: Tensor) -> Tensor:
        probabilities = torch.stack([member(pixels).softmax(dim=1) for member in self.members])
        return probabilities.mean(dim=0).log()


def as_module(loaded: LoadedModel | Ensemble) -> nn.Module:
    """What is exported: plain pixels in, logits out."""
    module = EnsembleOutput(loaded) if isinstance(loaded, Ensemble) else WithNormalisation(loaded)
    return module.eval()


def card(loaded: LoadedModel | Ensemble, fmt: str) -> dict:
    """What a user of the exported file needs to know, written beside it as JSON."""
    members = loaded.members if isinstance(loaded, Ensemble) else [loaded]
    first = members[0]
    normalisation = (f"built in: (pixels - {first.mean}) / {first.std}" if first.normalize
                     else "none (the network was trained on [0, 1] pixels)")
    models = [member.config.model._target_.rsplit(".", 1)[-1] for member in members]
    return {
        "format": fmt,
        "checkpoint": str(first.path) if len(members) == 1 else [str(m.path) for m in members],
        "model": models[0] if len(members) == 1 else (
            f"ensemble of {len(members)} ({', '.join(models)}): the output is the log of the "
            "members' mean probability"),
        "input": {"name": INPUT, "dtype": "float32", "shape": ["batch", 1, 28, 28],
                  "pixels": "[0, 1], light digit on a dark background, cropped to the ink, "
                            "scaled to fit 20x20 and centred by mass in 28x28 (as MNIST; "
                            "mnistlab.digits.prepare_digit does this to any picture)",
                  "normalisation": normalisation},
        "output": {"name": OUTPUT, "shape": ["batch", len(first.classes)],
                   "meaning": "logits; softmax gives probabilities, argmax the class"},
        "classes": first.classes,
    }


def export(loaded: LoadedModel | Ensemble, fmt: str, out: Path | None = None) -> Path:
    """Write the network in ``fmt`` and its JSON card: by default beside the checkpoint, and
    an ensemble as ensemble.onnx (or .pt) in the current folder."""
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r} is unknown; use format=onnx or format=torchscript")
    if out is None:
        out = (Path(f"ensemble{FORMATS[fmt]}") if isinstance(loaded, Ensemble)
               else loaded.path.with_suffix(FORMATS[fmt]))
    module = as_module(loaded)
    members = loaded.members if isinstance(loaded, Ensemble) else [loaded]
    example = torch.rand(2, 1, 28, 28)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporters' notes on their own internals
        if fmt == "onnx":
            for name in ("onnxscript", "onnx_ir"):  # each optimisation pass says what it did
                logging.getLogger(name).setLevel(logging.WARNING)
            batch = torch.export.Dim("batch")
            program = torch.onnx.export(module, (example,), input_names=[INPUT],
                                        output_names=[OUTPUT], dynamo=True,
                                        dynamic_shapes={"pixels": {0: batch}}, verbose=False)
            program.save(str(out))
        else:
            with contextlib.ExitStack() as stack:
                for member in members:
                    stack.enter_context(tracing(member.model))
                torch.jit.trace(module, example).save(str(out))
    Path(f"{out}.json").write_text(json.dumps(card(loaded, fmt), indent=2) + "\n")
    return out


# The most two runtimes' float32 arithmetic moves a logit of these networks (measured: under
# 1e-6); a larger difference is a different network.
ROUNDING = 1e-4


@dataclass
class Check:
    """How the exported file's answers compare with the checkpoint's on a set of images."""

    images: int
    max_logit_difference: float
    same_predictions: int
    accuracy: float
    # Images predicted differently only because the checkpoint's two highest logits are closer
    # than the two runtimes' float rounding (ROUNDING) moved them: a tie either may break.
    ties: int = 0

    @property
    def identical(self) -> bool:
        return self.same_predictions + self.ties == self.images


def run_exported(path: Path, pixels: Tensor, batch_size: int = 1000) -> Tensor:
    """Logits of the exported file: onnxruntime for .onnx, torch.jit for TorchScript."""
    chunks = []
    if path.suffix == ".onnx":
        import onnxruntime  # the export extra: only checking an ONNX file needs it

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for start in range(0, len(pixels), batch_size):
            batch = pixels[start:start + batch_size].numpy()
            chunks.append(torch.from_numpy(session.run([OUTPUT], {INPUT: batch})[0]))
    else:
        module = torch.jit.load(str(path))
        with torch.no_grad():
            chunks = [module(pixels[start:start + batch_size])
                      for start in range(0, len(pixels), batch_size)]
    return torch.cat(chunks)


def check(loaded: LoadedModel | Ensemble, path: Path, pixels: Tensor, labels: Tensor) -> Check:
    """Run the exported file and the checkpoint's network (or ensemble) on the same images."""
    module = as_module(loaded)
    with torch.no_grad():
        expected = torch.cat([module(pixels[s:s + 1000]) for s in range(0, len(pixels), 1000)])
    return compare(expected, run_exported(path, pixels), labels)


def compare(expected: Tensor, logits: Tensor, labels: Tensor) -> Check:
    """The exported file's logits against the checkpoint's, image by image."""
    predicted = logits.argmax(dim=1)
    moved = (logits - expected).abs().amax(dim=1)  # each image's largest logit difference
    same = predicted == expected.argmax(dim=1)
    top_two = expected.topk(2, dim=1).values
    tied = (moved <= ROUNDING) & (top_two[:, 0] - top_two[:, 1] <= 2 * moved)
    return Check(images=len(expected), max_logit_difference=float(moved.max()),
                 same_predictions=int(same.sum()),
                 accuracy=float((predicted == labels).float().mean()),
                 ties=int((~same & tied).sum()))


def report(check_result: Check) -> str:
    different = check_result.images - check_result.same_predictions
    verdict = ("identical" if different == 0 else
               f"identical but for {different} tie(s) within rounding" if check_result.identical
               else f"DIFFERENT for {different - check_result.ties}")
    return (f"checked on {check_result.images} test images: predicted digits {verdict}, "
            f"largest logit difference {check_result.max_logit_difference:.2e}, "
            f"accuracy {100 * check_result.accuracy:.2f}%")

