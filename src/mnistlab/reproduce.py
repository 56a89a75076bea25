"""``make reproduce``'s table: every preset's runs of one sweep, side by side with the tutorials.

Reads ``*/result.json`` under a Hydra sweep folder (train.py writes one per run) and writes
``results.md`` and ``results.csv``: the tutorial's reported accuracy (from the preset's
``tutorial`` block, which train.py copies into result.json), the test accuracy (mean ±
std over seeds), the best validation accuracy, epochs, seconds per epoch and parameters.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from mnistlab.tables import machine, markdown, write_tables


def load_runs(sweep_dir: Path) -> dict[str, list[dict]]:
    """Group the sweep's results by preset: tutorials' own runs first, then by name."""
    runs: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(sweep_dir.glob("*/result.json")):
        result = json.loads(path.read_text())
        runs[result.get("experiment") or "(no preset)"].append(result)
    if not runs:
        raise SystemExit(f"no */result.json under {sweep_dir}: pass the folder of a sweep run "
                         "with train.py -m (make reproduce prints it)")
    return dict(sorted(runs.items(), key=lambda kv: (not _as_run(kv[1][0]), kv[0])))


def _as_run(result: dict) -> bool:
    return bool((result.get("tutorial") or {}).get("as_run"))


def reported(result: dict) -> str:
    """What the preset's tutorial reported (from the preset's ``tutorial`` block)."""
    tutorial = result.get("tutorial")
    if not tutorial:
        return "-"
    if _as_run(result):
        return str(tutorial["reported"])
    return f"{tutorial['reported']} ({tutorial['id']}, same network)"


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}%"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}%"


def summarise(runs: dict[str, list[dict]]) -> list[dict[str, str]]:
    rows = []
    for preset, results in runs.items():
        epoch_seconds = [s for r in results for s in r["epoch_seconds"]]
        rows.append({
            "preset": preset,
            "tutorial reported": reported(results[0]),
            "test acc": _mean_std([100 * r["metrics"]["test/acc"] for r in results]),
            "best val acc": _mean_std([100 * r["metrics"]["val/acc_best"] for r in results]),
            "seeds": ", ".join(str(r["seed"]) for r in results),
            "epochs": str(len(results[0]["epoch_seconds"])),
            "s/epoch": f"{statistics.median(epoch_seconds):.1f}" if epoch_seconds else "-",
            "parameters": f"{results[0]['parameters']:,}",
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--out", type=Path, default=Path("outputs/reproduce"))
    parser.add_argument("--command", default="make reproduce",
                        help="the command that made the sweep, quoted under the table")
    args = parser.parse_args()
    rows = summarise(load_runs(args.sweep_dir))
    text = (f"Command: `{args.command}` (runs in {args.sweep_dir})\n"
            f"Machine: {machine()}\n\n{markdown(rows)}\n")
    write_tables(args.out, text, rows)
    print(text + f"\nwritten to {args.out / 'results.md'} and results.csv")


if __name__ == "__main__":
    main()
