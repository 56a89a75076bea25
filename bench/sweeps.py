"""``make bench``'s sweep line: one 4-job sweep in sequence, then with 2 jobs side by side.

Both sweeps are the command line a user types (``python train.py -m ...``), timed from start to
exit, alternating sequential and parallel in each round so that drift in the machine's speed
hits both alike. The jobs are tutorial 000's small MLP (one torch thread each, as its preset
pins), so the parallel jobs do the same arithmetic as the sequential ones: the table also says
whether every job's metrics came out identical. Written to outputs/bench/sweeps.md and .csv.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnistlab.tables import publish

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["experiment=tutorial000_mlp_bn", "optimizer.lr=0.01,0.005", "seed=1,2",
         "trainer.enable_progress_bar=false", "callbacks.input_images=null",
         "callbacks.test_report=null"]


def run_sweep(sweep_dir: Path, epochs: int, parallel: int) -> float:
    """Seconds from typing the command to its exit."""
    launcher = (["hydra/launcher=joblib", f"hydra.launcher.n_jobs={parallel}"]
                if parallel > 1 else [])
    command = [sys.executable, str(ROOT / "train.py"), "-m", *SWEEP,
               f"trainer.max_epochs={epochs}", f"hydra.sweep.dir={sweep_dir}", *launcher]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=os.environ)
    return time.perf_counter() - start


def metrics(sweep_dir: Path) -> dict[str, dict[str, float]]:
    """Every job's metrics but the timings."""
    return {path.parent.name: {k: v for k, v in json.loads(path.read_text())["metrics"].items()
                               if not k.startswith("time/")}
            for path in sweep_dir.glob("*/result.json")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4, help="epochs per job (default 4)")
    parser.add_argument("--parallel", type=int, default=2, help="jobs side by side (default 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    args = parser.parse_args()
    times: dict[str, list[float]] = {"sequential": [], "parallel": []}
    identical = True
    with tempfile.TemporaryDirectory(prefix="mnistlab-bench-sweeps-") as workdir:
        for round_ in range(args.rounds):
            sequential, parallel = Path(workdir, f"seq{round_}"), Path(workdir, f"par{round_}")
            times["sequential"].append(run_sweep(sequential, args.epochs, 1))
            times["parallel"].append(run_sweep(parallel, args.epochs, args.parallel))
            same = metrics(sequential) == metrics(parallel) and len(metrics(parallel)) == 4
            identical &= same
            print(f"round {round_ + 1}/{args.rounds}: sequential "
                  f"{times['sequential'][-1]:.1f} s, parallel {times['parallel'][-1]:.1f} s, "
                  f"identical metrics: {same}", flush=True)
    seq, par = (statistics.median(times[k]) for k in ("sequential", "parallel"))
    rows = [{"sweep": f"4 jobs of tutorial000_mlp_bn, {args.epochs} epochs each",
             "sequential (s)": f"{seq:.1f}",
             f"hydra/launcher=joblib, {args.parallel} at a time (s)": f"{par:.1f}",
             "speed-up": f"{seq / par:.2f}x",
             "identical metrics": "yes" if identical else "no"}]
    command = "python -m bench.sweeps" + (f" {' '.join(sys.argv[1:])}" if sys.argv[1:] else "")
    publish(args.out, f"Whole sweeps from command to exit, median of {args.rounds} alternating "
            "rounds.", f"{command} (part of make bench)", rows, name="sweeps")


if __name__ == "__main__":
    main()
