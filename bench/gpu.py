"""``make bench-gpu``: seconds per epoch of the CNNs and the default command's wall time on a GPU.

Each setup trains through ``mnistlab.training.train`` as ``python train.py <overrides>`` would,
with the training set resident on the device (the default where the images fit). The table
gives the first epoch (CUDA start-up, cuDNN's choice of kernels) apart from the median of the
others, and the test accuracy. The default command is then run as typed, ``python train.py``,
in a fresh process, timed from its start to its exit. The table is printed and written to
``<out>/gpu.md`` and ``gpu.csv``. ``--accelerator cpu`` runs the same code on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
from omegaconf import open_dict

from mnistlab.build import compose_config
from mnistlab.internals import skip_failing_nvml_check
from mnistlab.tables import publish
from mnistlab.training import train

ROOT = Path(__file__).resolve().parents[1]
SETUPS = {
    "cnn": (),
    "cnn-bf16": ("trainer.precision=bf16-mixed",),
    "cnn_deep": ("model=cnn_deep",),
    "cnn_deep-bf16": ("model=cnn_deep", "trainer.precision=bf16-mixed"),
}


def time_setup(name: str, accelerator: str, epochs: int, workdir: Path,
               extra: tuple[str, ...]) -> dict[str, str]:
    """One setup's row: its epochs' seconds and its test accuracy."""
    cfg = compose_config(ROOT / "conf", [*SETUPS[name], f"trainer.accelerator={accelerator}",
                                         "trainer.devices=1", f"trainer.max_epochs={epochs}",
                                         "trainer.enable_progress_bar=false", *extra])
    with open_dict(cfg):
        cfg.paths.output_dir = str(workdir / name)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = train(cfg)
    return {"setup": name, "overrides": " ".join(SETUPS[name]) or "(default)",
            **_epochs(result.epoch_seconds, result.metrics["test/acc"])}


def _epochs(seconds: list[float], accuracy: float) -> dict[str, str]:
    """The first epoch apart (CUDA start-up, cuDNN's kernel choice), the rest's median."""
    first, *rest = seconds
    return {"epochs": str(len(seconds)), "first epoch (s)": f"{first:.2f}",
            "later epochs, median (s)": f"{statistics.median(rest):.2f}" if rest else "-",
            "test acc (%)": f"{100 * accuracy:.2f}"}


def time_default_command(workdir: Path, extra: tuple[str, ...]) -> dict[str, str]:
    """``python train.py`` as typed, in its own process: seconds to its exit and its result."""
    run_dir = workdir / "default-command"
    start = time.perf_counter()
    subprocess.run([sys.executable, "train.py", f"hydra.run.dir={run_dir}", *extra],
                   cwd=ROOT, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    result = json.loads((run_dir / "result.json").read_text())
    return {"setup": "python train.py", "overrides": " ".join(extra) or "(as typed)",
            **_epochs(result["epoch_seconds"], result["metrics"]["test/acc"]),
            "training (s)": f"{sum(result['epoch_seconds']):.1f}",
            "command to exit (s)": f"{seconds:.1f}"}


def main() -> None:
    skip_failing_nvml_check()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accelerator", default="gpu", help="gpu (default) or cpu")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per setup (default 3)")
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS),
                        metavar="SETUP", help=f"setups to time (default: all of {list(SETUPS)})")
    parser.add_argument("--skip-default-command", action="store_true",
                        help="do not time `python train.py`")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench-gpu")
    parser.add_argument("--page", type=Path, default=None,
                        help="also write the table into this page (e.g. docs/performance.md)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="Hydra overrides for every run (e.g. trainer.limit_train_batches=5)")
    args = parser.parse_args()
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        parser.error("--accelerator gpu, but torch sees no CUDA device; --accelerator cpu "
                     "runs the same code on the CPU")
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    overrides = tuple(args.overrides)
    with tempfile.TemporaryDirectory(prefix="mnistlab-bench-gpu-") as workdir:
        rows = []
        for name in args.setups:
            rows.append(time_setup(name, args.accelerator, args.epochs, Path(workdir),
                                   overrides))
            print(rows[-1], flush=True)
        if not args.skip_default_command:
            rows.append(time_default_command(Path(workdir), overrides))
            print(rows[-1], flush=True)
    columns = list(rows[-1]) if not args.skip_default_command else list(rows[0])
    rows = [{column: row.get(column, "-") for column in columns} for row in rows]
    device = torch.cuda.get_device_name() if args.accelerator == "gpu" else "CPU"
    command = "python -m bench.gpu " + " ".join(sys.argv[1:])
    publish(args.out, f"Seconds per training epoch (without validation), 55,000 training "
            f"images, on {device}.", command.strip(), rows, name="gpu",
            page=args.page)


if __name__ == "__main__":
    main()
