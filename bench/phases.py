"""``make bench-phases``: where the seconds of ``python train.py`` go, from the command to its exit.

Each round runs the command as typed in a fresh process (``python -X importtime train.py``
plus a clock callback: ``+callbacks.phase_clock._target_=bench.phase_clock.PhaseClock``), reading
its stderr as it comes, so that every import is placed in time. The clock stamps Lightning's
hooks; the table splits the run into imports (the top-level imports that finished before the
clock was built: ``-X importtime``'s cumulative microseconds), the rest of start-up
(interpreter, Hydra's config, run-start checks), set-up (model, logger, data), the sanity
check, each training epoch without its validation, validation, checkpoints and logs written
between epochs, loading the best checkpoint, testing (its report and figures apart), and the
end (summary, result.json, exit). Medians over rounds; ``--compare REF`` also runs the command
at another commit (a git worktree), interleaved, for a before/after table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.phase_clock import CLOCK_FILE
from mnistlab.tables import publish

ROOT = Path(__file__).resolve().parents[1]
IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)")
PHASES = ("imports", "other start-up", "set-up", "sanity check", "training", "validation",
          "checkpoints, logs", "best checkpoint", "testing", "test report", "end")
LABELS = {
    "imports": "imports (`-X importtime`, before training starts)",
    "other start-up": "interpreter, Hydra config, run-start checks",
    "set-up": "model, logger, data set-up",
    "sanity check": "sanity-check validation (2 batches)",
    "training": "training epochs, without validation",
    "validation": "validation after each epoch",
    "checkpoints, logs": "checkpoints and logs between epochs",
    "best checkpoint": "loading the best checkpoint for testing",
    "testing": "testing (10,000 images)",
    "test report": "test report: figures, confusion matrix",
    "end": "summary, result.json, exit",
}


def timed_run(python: str, repo: Path, folder: Path, overrides: list[str]) -> dict[str, Any]:
    """One ``python -X importtime train.py`` from start to exit: its phases in seconds."""
    imports: list[tuple[float, float]] = []  # (when the line came, cumulative seconds)
    command = [python, "-X", "importtime", str(repo / "train.py"), f"hydra.run.dir={folder}",
               "+callbacks.phase_clock._target_=bench.phase_clock.PhaseClock", *overrides]
    path = str(repo / "src")  # the commit's own mnistlab, not the installed one
    start = time.time()
    process = subprocess.Popen(command, cwd=repo, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               env=os.environ | {"PYTHONPATH": path})

    def read() -> None:
        for line in process.stderr:  # type: ignore[union-attr]
            match = IMPORT_LINE.match(line)
            if match and not match.group(2):  # a top-level import (no indentation)
                imports.append((time.time(), int(match.group(1)) / 1e6))

    reader = threading.Thread(target=read)
    reader.start()
    status = process.wait()
    end = time.time()
    reader.join()
    if status != 0:
        raise SystemExit(f"{' '.join(command)} exited {status}")
    stamps = json.loads((folder / CLOCK_FILE).read_text())
    result = json.loads((folder / "result.json").read_text())
    return {"phases": phases(start, end, stamps, imports), "total": end - start,
            "test_acc": result["metrics"]["test/acc"], "epochs": result["epochs"]}


def phases(start: float, end: float, stamps: list[list], imports: list[tuple[float, float]]
           ) -> dict[str, float]:
    """The run's seconds per phase, from the clock's stamps (in the order they came)."""
    first = {name: t for name, t in reversed(stamps)}
    built = first["built"]
    early_imports = sum(seconds for when, seconds in imports if when <= built)
    out = dict.fromkeys(PHASES, 0.0)
    out["imports"] = early_imports
    out["other start-up"] = built - start - early_imports
    out["set-up"] = first["setup_fit"] - built
    out["sanity check"] = first.get("sanity_end", first["setup_fit"]) - first["setup_fit"]
    # From the sanity check's end to the end of fitting, each stamp closes the phase that ran
    # since the one before it.
    after = {"epoch_start": "training", "val_start": "validation", "val_end": "checkpoints, logs",
             "epoch_end": "checkpoints, logs"}
    previous, running = first.get("sanity_end", first["setup_fit"]), "checkpoints, logs"
    for name, t in stamps:
        if name in after or name == "fit_end":
            out[running] += t - previous
            previous, running = t, after.get(name, running)
            if name == "fit_end":
                break
    out["best checkpoint"] = first["test_start"] - first["fit_end"]
    out["testing"] = first["test_end"] - first["test_start"]
    out["test report"] = first["teardown_test"] - first["test_end"]
    out["end"] = end - first["teardown_test"]
    return out


def worktree(ref: str, workdir: Path) -> Path:
    """A checkout of ``ref`` to run its train.py with its own mnistlab (PYTHONPATH), and this
    checkout's clock in its bench package (train.py's folder comes first on sys.path)."""
    folder = workdir / f"at-{ref}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), ref],
                   check=True, capture_output=True)
    shutil.copy(ROOT / "bench" / "phase_clock.py", folder / "bench" / "phase_clock.py")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", metavar="REF", default=None,
                        help="also time the command at this commit, interleaved (before/after)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench-phases")
    parser.add_argument("--page", type=Path, default=None,
                        help="also write the table into this page (e.g. docs/performance.md)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="Hydra overrides for every run (none: the default command)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        repos = {"now": ROOT}
        if args.compare:
            repos = {args.compare: worktree(args.compare, Path(workdir)), "now": ROOT}
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in repos}
        try:
            for round_ in range(args.rounds):
                order = list(repos) if round_ % 2 == 0 else list(repos)[::-1]  # A B, then B A
                for name in order:
                    folder = Path(tempfile.mkdtemp(dir=workdir))
                    runs[name].append(timed_run(sys.executable, repos[name], folder,
                                                args.overrides))
                    print(name, json.dumps({k: round(v, 2) for k, v in
                                            runs[name][-1]["phases"].items()}), flush=True)
        finally:
            if args.compare:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                                str(repos[args.compare])], check=False)
    rows = []
    for phase in (*PHASES, "total"):
        row = {"phase": LABELS.get(phase, "**from the command to its exit**")}
        for name, done in runs.items():
            values = [run["total"] if phase == "total" else run["phases"][phase] for run in done]
            row[_column(name, args.compare)] = f"{statistics.median(values):.1f}"
        rows.append(row)
    rows.append({"phase": "test accuracy (each round)"} | {
        _column(name, args.compare): ", ".join(f"{100 * run['test_acc']:.2f}%" for run in done)
        for name, done in runs.items()})
    given = [f"--rounds {args.rounds}"] if args.rounds != 3 else []
    given += [f"--compare {args.compare}"] if args.compare else []
    command = "make bench-phases" + (f" PHASES_ARGS='{' '.join(given + args.overrides)}'"
                                     if given or args.overrides else "")
    what = " ".join(["python train.py", *args.overrides])
    publish(args.out, f"Where the seconds of `{what}` go, from the command to its exit: median "
            f"of {args.rounds} interleaved rounds, each in a fresh process.", command, rows,
            name="phases", page=args.page)


def _column(name: str, compare: str | None) -> str:
    if compare is None:
        return "seconds"
    return f"before ({compare}, s)" if name == compare else "after (s)"


if __name__ == "__main__":
    main()
