"""Several trained networks as one: the mean of their class probabilities.

A sweep's replicates (``-m replicate=0,1,2,3,4``) are networks that make different mistakes;
averaging their probabilities is the classic way past what any one of them reaches.
``eval.py ckpt_path=<sweep folder>`` (or a list of checkpoints) scores each member and the
ensemble on the same test images; ``python -m mnistlab.ensemble <sweep folder>... --sizes 3 5``
tables ensembles of a sweep's first 3 and 5 jobs (``make ensembles`` writes docs/results.md's).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from mnistlab.checkpoint_files import member_paths
from mnistlab.errors import CheckpointError, exit_with
from mnistlab.loading import LoadedModel, held_out_pixels, load_model
from mnistlab.summary import mean_std
from mnistlab.tables import publish


@dataclass(frozen=True)
class Ensemble:
    """Members that fit together: the same classes and the same input normalisation."""

    members: list[LoadedModel]

    @property
    def classes(self) -> list[str]:
        return self.members[0].classes

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """The members' mean class probabilities for images (N, 1, 28, 28) in [0, 1]."""
        return torch.stack([member.probabilities(images) for member in self.members]).mean(dim=0)


def load_ensemble(paths: Sequence[str | os.PathLike[str]]) -> Ensemble:
    """Load every member; refuse members whose classes or normalisation differ from the
    first's (their probabilities would not mean the same)."""
    members = [load_model(path) for path in paths]
    first = members[0]
    for member in members[1:]:
        if member.classes != first.classes:
            raise CheckpointError(
                f"{member.path} does not fit with {first.path}: its classes are "
                f"{member.classes}, not {first.classes}. Fix: leave it out of the ensemble")
        if (member.normalize, member.mean, member.std) != (first.normalize, first.mean,
                                                           first.std):
            raise CheckpointError(
                f"{member.path} does not fit with {first.path}: its inputs are normalised "
                f"differently (normalize={member.normalize}, mean {member.mean}, std "
                f"{member.std}). Fix: leave it out, or ensemble runs of one data setting")
    return Ensemble(members)


@dataclass
class EnsembleResult:
    """Each member's test accuracy and the ensemble's, on the same images."""

    members: dict[str, float]
    ensemble: float
    images: int


def evaluate_ensemble(ensemble: Ensemble, data_dir: str, batch: int = 1000) -> EnsembleResult:
    """Score every member and the mean of their probabilities on the members' test set."""
    pixels, labels = held_out_pixels(ensemble.members[0], data_dir)
    correct = torch.zeros(len(ensemble.members) + 1)
    with torch.inference_mode():
        for start in range(0, len(labels), batch):
            images, truth = pixels[start:start + batch], labels[start:start + batch]
            probabilities = torch.stack([m.probabilities(images) for m in ensemble.members])
            guesses = torch.cat([probabilities, probabilities.mean(dim=0, keepdim=True)])
            correct += (guesses.argmax(dim=2) == truth).sum(dim=1)
    accuracy = (correct / len(labels)).tolist()
    return EnsembleResult(
        members={str(m.path): acc for m, acc in zip(ensemble.members, accuracy, strict=False)},
        ensemble=accuracy[-1], images=len(labels))


def load_or_exit(ckpt_path: Any) -> LoadedModel | Ensemble:
    """The network, or the ensemble, that ``ckpt_path`` names (a checkpoint, a list, a run or
    sweep folder); or the reason it cannot be used, and exit status 2."""
    try:
        paths = member_paths(ckpt_path)
        return load_model(paths[0]) if len(paths) == 1 else load_ensemble(paths)
    except CheckpointError as err:
        exit_with(f"ckpt_path={err}")


def ensemble_rows(sweep: Path, sizes: Sequence[int], data_dir: str) -> list[dict[str, str]]:
    """One row per size: the sweep's first ``size`` jobs, each alone and as an ensemble."""
    paths = member_paths(sweep)
    first_job = json.loads((paths[0].parent.parent / "result.json").read_text())
    rows = []
    for size in sizes:
        if size > len(paths):
            raise SystemExit(f"Error: {sweep} has {len(paths)} completed jobs, not {size}")
        result = evaluate_ensemble(load_ensemble(paths[:size]), data_dir)
        members = list(result.members.values())
        # The precision the sweep trained in (result.json records it): tables may hold sweeps
        # trained in bfloat16 beside float32 ones.
        rows.append({"preset": first_job.get("experiment") or "-",
                     "trained in": first_job.get("precision", "-"), "members": str(size),
                     "members' test acc": mean_std(members),
                     "best member": f"{100 * max(members):.2f}%",
                     "ensemble test acc": f"{100 * result.ensemble:.2f}%"})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Test accuracy of ensembles of each sweep's first N completed jobs.")
    parser.add_argument("sweeps", type=Path, nargs="+")
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--data-dir", default=os.environ.get("MNISTLAB_DATA_DIR", "data"))
    parser.add_argument("--out", type=Path, default=Path("outputs/ensembles"))
    parser.add_argument("--page", type=Path, default=None,
                        help="also write the table into this page (e.g. docs/results.md)")
    parser.add_argument("--command", default=None, help="the command that made the sweeps")
    args = parser.parse_args(argv)
    rows = [row for sweep in args.sweeps for row in ensemble_rows(sweep, args.sizes,
                                                                   args.data_dir)]
    command = args.command or "python -m mnistlab.ensemble " + " ".join(map(str, args.sweeps))
    publish(args.out, "Test accuracy (10,000 images, float32) of each sweep's first jobs alone "
            "and as an ensemble (mean of their probabilities).", command, rows,
            name="ensembles", page=args.page)


if __name__ == "__main__":
    main()
