"""``make bench-patches``: what each speed patch of ``mnistlab.internals`` saves, per preset.

Every preset trains a whole epoch (the MLPs) or its first steps (the CNNs, whose steps are long:
``--cnn-steps``) through ``mnistlab.training.train`` on the CPU, once with every patch and once
with each patch switched off (``mnistlab.internals.disabled``; the NVML switch by setting
torch's variable back). The runs are interleaved (all, -a, -b, ..., all, -a, ...) so that drift
in the machine's speed hits them alike, each round starting at another variant, each preset's
runs after an untimed one. A patch's saving in a round is 1 - t(all) / t(without it),
of that round's training seconds (``time/epoch_s``: no validation); the table gives the median
over the rounds, and its range. A patch that saves under 3% on every preset goes.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import sys
import tempfile
import warnings
from pathlib import Path

from omegaconf import DictConfig, open_dict

from mnistlab import internals
from mnistlab.build import compose_config
from mnistlab.internals import SPEED_PATCHES, skip_failing_nvml_check
from mnistlab.tables import publish
from mnistlab.training import train

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
NVML = "nvml"


def preset_config(preset: str, steps: int | None, output_dir: Path) -> DictConfig:
    """The preset's first ``steps`` training steps (None: one epoch) on the CPU, no validation,
    one test batch."""
    cfg = compose_config(ROOT / "conf", [
        f"experiment={preset}", "trainer=cpu", "trainer.max_epochs=1",
        f"trainer.limit_train_batches={'null' if steps is None else steps}",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0", "trainer.limit_test_batches=1",
        "trainer.enable_progress_bar=false", "optimized_metric=test/acc"])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


def seconds(cfg: DictConfig, off: str | None, nvml_switched: bool) -> float:
    """Training seconds of one run with the patch ``off`` switched off (None: all on)."""
    internals.disabled.clear()
    if off in SPEED_PATCHES:
        internals.disabled.add(off)
    if nvml_switched:  # "1": torch tries to load the NVIDIA library at every CUDA check
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1" if off == NVML else "0"
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = train(cfg)
    finally:
        internals.disabled.clear()
    return sum(result.epoch_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None,
                        help="training steps of the MLPs (default: a whole epoch)")
    parser.add_argument("--cnn-steps", type=int, default=100, help="training steps of the CNNs")
    parser.add_argument("--presets", nargs="+", default=PRESETS, choices=PRESETS)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    parser.add_argument("--page", type=Path, default=None,
                        help="also write the table into this page (e.g. docs/performance.md)")
    args = parser.parse_args()
    if args.rounds < 1 or (args.steps is not None and args.steps < 1) or args.cnn_steps < 1:
        parser.error("--rounds, --steps and --cnn-steps must be at least 1")
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")
    nvml_switched = skip_failing_nvml_check()
    variants: list[str | None] = [None, *SPEED_PATCHES] + ([NVML] if nvml_switched else [])
    times: dict[tuple[str, str | None], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="mnistlab-bench-patches-") as workdir:
        configs = {}
        for preset in args.presets:
            cnn = "cnn" in preset
            configs[preset] = preset_config(preset, args.cnn_steps if cnn else args.steps,
                                            Path(workdir))
        runs = 0
        for round_ in range(args.rounds):
            # Each round starts at another variant, so that no variant always runs first.
            order = variants[round_ % len(variants):] + variants[:round_ % len(variants)]
            for preset, cfg in configs.items():
                # An untimed run first: a preset's first run after another's costs extra.
                with open_dict(cfg):
                    cfg.paths.output_dir = str(Path(workdir) / f"warm-up{runs}")
                seconds(cfg, None, nvml_switched)
                for off in order:
                    with open_dict(cfg):
                        cfg.paths.output_dir = str(Path(workdir) / f"run{runs}")
                    runs += 1
                    times.setdefault((preset, off), []).append(seconds(cfg, off, nvml_switched))
                print(f"round {round_ + 1}/{args.rounds} {preset}: "
                      + ", ".join(f"{off or 'all'} {times[preset, off][-1]:.2f} s"
                                  for off in variants), flush=True)

    rows = []
    for preset, cfg in configs.items():
        steps = cfg.trainer.limit_train_batches
        row = {"preset": preset, "steps": "an epoch" if steps is None else str(steps),
               "all patches (s)": f"{statistics.median(times[preset, None]):.2f}"}
        for off in variants[1:]:
            savings = [100 * (1 - with_all / without) for with_all, without
                       in zip(times[preset, None], times[preset, off], strict=True)]
            row[f"{off} saves"] = (f"{statistics.median(savings):.1f}% "
                                   f"({min(savings):.1f} to {max(savings):.1f})")
        rows.append(row)
    given = sys.argv[1:]
    if "--page" in given:  # the Makefile's own argument, not the user's
        del given[given.index("--page"):given.index("--page") + 2]
    command = "make bench-patches" + (f' PATCHES_ARGS="{" ".join(given)}"' if given else "")
    publish(args.out, f"What each speed patch saves of the training seconds: median over "
            f"{args.rounds} interleaved rounds (lowest to highest), of an epoch or its first "
            "steps, on the CPU.", command, rows, name="patches", page=args.page)


if __name__ == "__main__":
    main()
