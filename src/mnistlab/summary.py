"""One table per sweep: which settings won, which runs failed, where each run is.

A sweep folder holds one folder per job, each with Hydra's ``.hydra/overrides.yaml`` (written
before the job runs) and train.py's ``result.json`` (written when it ends, also when it fails).
Reading those two files is all it takes, so the same table comes out of a sweep that just ended
(``SummariseSweep``, a Hydra callback), one that was killed halfway, or one from last month
(``python -m mnistlab.summary <sweep dir>``).

Jobs whose overrides differ only in ``replicate`` are the same config with other seeds and
share one row with mean ± std; different configs are never averaged together.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mnistlab.sweeps import short_value, stopped_by
from mnistlab.tables import machine, markdown, provenance, write_into_page, write_tables

log = logging.getLogger(__name__)

# Seeds of one config: grouped, not shown as a column.
REPLICATE = "replicate"


@dataclass
class Job:
    """One job folder: its overrides and what train.py recorded (empty when it never ended)."""

    folder: Path
    number: int
    overrides: dict[str, str]
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.result.get("status", "no result")

    def metric(self, name: str) -> float | None:
        value = (self.result.get("metrics") or {}).get(name)
        return None if value is None or not math.isfinite(value) else float(value)


def read_jobs(sweep_dir: Path) -> list[Job]:
    """Every job folder of a sweep, in job order."""
    jobs = []
    for overrides_file in sweep_dir.glob("*/.hydra/overrides.yaml"):
        folder = overrides_file.parent.parent
        number = folder.name.split("_", 1)[0]
        pairs = (item.split("=", 1) for item in OmegaConf.load(overrides_file) if "=" in item)
        overrides = {key.lstrip("+~"): value for key, value in pairs
                     if not key.lstrip("+~").startswith("hydra.")}
        jobs.append(Job(folder, int(number) if number.isdigit() else -1, overrides,
                        _read_result(folder / "result.json")))
    if not jobs:
        raise FileNotFoundError(f"no job folders (*/.hydra/overrides.yaml) under {sweep_dir}: "
                                "pass the folder of a sweep run with `python train.py -m`")
    return sorted(jobs, key=lambda job: (job.number, job.folder.name))


def _read_result(path: Path) -> dict[str, Any]:
    """A job's record; one cut short or damaged (a killed write, a full disk) is listed as
    such, so that the other jobs still make their table."""
    if not path.is_file():
        return {}
    try:
        result = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        why = "empty" if path.stat().st_size == 0 else f"not JSON ({err})"
        return {"status": "unreadable", "error": f"{path.name} is {why}"}
    if not isinstance(result, dict):
        return {"status": "unreadable", "error": f"{path.name} holds no record"}
    return result


def varying_keys(jobs: list[Job]) -> list[str]:
    """The override keys whose values are not the same in every job, in command-line order."""
    keys: list[str] = []
    for job in jobs:
        keys += [key for key in job.overrides if key not in keys]
    return [key for key in keys if len({job.overrides.get(key) for job in jobs}) > 1]


def mean_std(values: list[float], scale: float = 100.0, unit: str = "%") -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{scale * values[0]:.2f}{unit}"
    return (f"{scale * statistics.mean(values):.2f} ± {scale * statistics.stdev(values):.2f}"
            f"{unit}")


def _status(jobs: list[Job]) -> str:
    if len(jobs) == 1:
        job = jobs[0]
        error = job.result.get("error")
        return f"{job.status}: {error}" if error and job.status != "completed" else job.status
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in counts.items())


def _reported(result: dict[str, Any]) -> str:
    """What a tutorial preset's tutorial reported (the preset's ``tutorial`` block)."""
    tutorial = result.get("tutorial")
    if not tutorial:
        return "-"
    if tutorial.get("as_run"):
        return str(tutorial["reported"])
    return f"{tutorial['reported']} ({tutorial['id']}, same network)"


def summarise(jobs: list[Job], metric: str = "val/acc_best") -> list[dict[str, str]]:
    """The table's rows, best first by ``metric`` (lowest first for a loss)."""
    keys = varying_keys(jobs)
    shown = [key for key in keys if key != REPLICATE]
    groups: dict[tuple[str | None, ...], list[Job]] = {}
    for job in jobs:
        groups.setdefault(tuple(job.overrides.get(key) for key in shown), []).append(job)
    grouped = any(len(members) > 1 for members in groups.values())
    tutorials = any(job.result.get("tutorial") for job in jobs)
    lower_is_better = "loss" in metric

    def sort_key(members: list[Job]) -> tuple[bool, float]:
        values = [v for v in (job.metric(metric) for job in members) if v is not None]
        if not values:
            return (True, 0.0)
        mean = statistics.mean(values)
        return (False, mean if lower_is_better else -mean)

    rows = []
    for values, members in sorted(groups.items(), key=lambda kv: sort_key(kv[1])):
        done = [job for job in members if job.status == "completed"]
        epoch_seconds = [s for job in done for s in job.result.get("epoch_seconds", [])]
        row = {"job": ",".join(str(job.number) for job in members)}
        row |= {key: short_value(value) if value is not None else "-"
                for key, value in zip(shown, values, strict=True)}
        row["status"] = _status(members)
        if grouped:
            row["n"] = str(len(done))
        if tutorials:
            row["tutorial reported"] = _reported(members[0].result)
        row["best val acc"] = mean_std([v for v in (j.metric("val/acc_best") for j in done)
                                         if v is not None])
        row["test acc"] = mean_std([v for v in (j.metric("test/acc") for j in done)
                                     if v is not None])
        row["epochs"] = ",".join(sorted({str(j.result["epochs"]) for j in done})) or "-"
        row["s/epoch"] = f"{statistics.median(epoch_seconds):.1f}" if epoch_seconds else "-"
        row["total s"] = mean_std([j.result["seconds"] for j in done], scale=1, unit="")
        row["run folder"] = ", ".join(job.folder.name for job in members)
        rows.append(row)
    return rows


def failed(jobs: Iterable[Job]) -> list[Job]:
    """The jobs that failed. One that a signal stopped did not: running the sweep again resumes
    it, and a search resumed runs another trial in its place (mnistlab.search)."""
    return [job for job in jobs if job.status not in ("completed", "no result", "interrupted")]


def write_summary(sweep_dir: Path, out: Path | None = None, command: str | None = None,
                  metric: str | None = None, pages: Sequence[Path] = (),
                  columns: list[str] | None = None) -> tuple[str, list[Job]]:
    """Write summary.md and summary.csv into the sweep folder (and ``out``); return the text.

    The table (only ``columns``, when given) also replaces each page's block named after ``out``
    (``mnistlab.tables.write_into_page``), with the line that says what made it.
    """
    jobs = read_jobs(sweep_dir)
    metric = metric or _optimized_metric(jobs)
    rows = summarise(jobs, metric)
    lines = [f"Sweep: {sweep_dir} ({len(jobs)} jobs; sorted by {metric})"]
    if command:
        lines.append(f"Command: `{command}`")
    lines += [f"Machine: {machine()}", "", markdown(rows), ""]
    text = "\n".join(lines)
    for folder in {sweep_dir, out} - {None}:
        write_tables(folder, text, rows, name="summary")
    if pages:  # the provenance line asks git, so only for a page; once, before any changes
        shown = [{key: row[key] for key in columns or row if key in row} for row in rows]
        block = f"{markdown(shown)}\n\n{provenance(command or '?')}"
        for page in pages:
            write_into_page(page, out.name if out is not None else sweep_dir.name, block)
    return text, jobs


def _optimized_metric(jobs: list[Job]) -> str:
    """The sweep's ``optimized_metric``, from a job's saved config."""
    for job in jobs:
        config = job.folder / ".hydra" / "config.yaml"
        if config.is_file():
            return OmegaConf.load(config).get("optimized_metric") or "val/acc_best"
    return "val/acc_best"


def print_summary(sweep_dir: Path, metric: str | None = None) -> list[Job]:
    """Write the sweep's summary files and print its table: at the sweep's end, or when a
    signal stops it."""
    text, jobs = write_summary(sweep_dir, metric=metric)
    print(f"\n{text}\nwritten to {sweep_dir / 'summary.md'} and summary.csv", flush=True)
    return jobs


class SummariseSweep(Callback):
    """Prints and writes the summary when a multirun ends; exits 1 when any job failed.

    Hydra calls this after the last job, whatever the launcher or sweeper; a job that failed
    has returned normally (train.py records it), so every job has run by then.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            jobs = print_summary(sweep_dir, config.get("optimized_metric"))
        except FileNotFoundError as err:
            log.warning("%s", err)
            return
        bad = failed(jobs)
        if bad and stopped_by(sweep_dir) is None:  # a stopped sweep exits with its signal
            print(f"Error: {len(bad)} of {len(jobs)} jobs failed: "
                  + ", ".join(job.folder.name for job in bad)
                  + " (each folder keeps its log and result.json)", file=sys.stderr)
            raise SystemExit(1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Summarise a sweep folder (also an interrupted one) into summary.md/.csv.")
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None,
                        help="also write summary.md and summary.csv into this folder")
    parser.add_argument("--command", default=None, help="the command that made the sweep")
    parser.add_argument("--metric", default=None,
                        help="sort by this metric (default: the sweep's optimized_metric)")
    parser.add_argument("--page", type=Path, action="append", default=[],
                        help="also write the table into this page's block named after --out "
                             "(repeatable)")
    parser.add_argument("--columns", default=None,
                        help="the page's columns, comma-separated (default: all)")
    args = parser.parse_args(argv)
    columns = args.columns.split(",") if args.columns else None
    try:
        text, _ = write_summary(args.sweep_dir, args.out, args.command, args.metric, args.page,
                                columns)
    except FileNotFoundError as err:
        raise SystemExit(f"Error: {err}") from None
    where = args.out or args.sweep_dir
    print(f"{text}\nwritten to {where / 'summary.md'} and summary.csv")


if __name__ == "__main__":
    main()
