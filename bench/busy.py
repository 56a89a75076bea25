"""``make bench-busy``: the default command alone and beside a busy program, with torch's default
threads (``threads=null``) and with ``threads=auto`` (the default).

Each round runs, interleaved: beside one busy-looping process of equal priority (``python -c
"while 1: pass"``, as another user's job on a shared machine) with null and auto; then alone
with null and auto; every other round in the other order (null auto, then auto null), so that
a drift in the machine's speed hits both alike. Each is ``python train.py`` as typed, in a
fresh process, timed from its start to its exit. The table gives the median wall seconds, the
ratio busy/alone and the test accuracy (the same seed throughout).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mnistlab.tables import publish

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("null", "auto")


def timed_run(workdir: Path, threads: str, busy: bool, overrides: list[str]) -> tuple[float, dict]:
    """Wall seconds of `python train.py threads=<threads>`, and its result.json."""
    burner = subprocess.Popen([sys.executable, "-c", "while 1: pass"]) if busy else None
    try:
        if burner is not None:
            time.sleep(1)  # running before the command starts, as another program would be
        folder = Path(tempfile.mkdtemp(dir=workdir))
        start = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "train.py"), f"threads={threads}",
                        f"hydra.run.dir={folder}", *overrides], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
    return seconds, json.loads((folder / "result.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench-busy")
    parser.add_argument("--page", type=Path, default=None,
                        help="also write the table into this page (e.g. docs/performance.md)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="Hydra overrides for every run (e.g. trainer.max_epochs=1)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    times: dict[tuple[str, bool], list[float]] = {}
    results: dict[tuple[str, bool], dict] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for round_ in range(args.rounds):
            order = SETTINGS if round_ % 2 == 0 else SETTINGS[::-1]  # A B, then B A
            for busy in (True, False):
                for threads in order:
                    seconds, result = timed_run(Path(workdir), threads, busy, args.overrides)
                    times.setdefault((threads, busy), []).append(seconds)
                    results[threads, busy] = result
    rows = []
    for threads in SETTINGS:
        alone = statistics.median(times[threads, False])
        beside = statistics.median(times[threads, True])
        rows.append({"threads": threads,
                     "alone (s)": f"{alone:.1f}",
                     "beside a busy process (s)": f"{beside:.1f}",
                     "busy / alone": f"{beside / alone:.2f}",
                     "torch threads alone, beside": (f"{results[threads, False]['threads']}, "
                                                     f"{results[threads, True]['threads']}"),
                     "test acc": f"{100 * results[threads, False]['metrics']['test/acc']:.2f}%"})
    given = ([f"--rounds {args.rounds}"] if args.rounds != 2 else []) + args.overrides
    command = "make bench-busy" + (f" BUSY_ARGS='{' '.join(given)}'" if given else "")
    publish(args.out, f"`python train.py` from start to exit (median of {args.rounds} "
            "interleaved rounds), alone and beside one busy-looping process.", command, rows,
            name="busy", page=args.page)


if __name__ == "__main__":
    main()
