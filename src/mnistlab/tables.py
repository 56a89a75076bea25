"""Result tables for the README: markdown rows and a line naming the machine that ran them."""

from __future__ import annotations

import contextlib
import csv
import os
import platform
from pathlib import Path

import lightning
import torch


def machine() -> str:
    """CPU model, cores, torch and Lightning versions (and the GPU, where one is used)."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Lightning {lightning.__version__}")


def markdown(rows: list[dict[str, str]]) -> str:
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row[key] for key in header) + " |" for row in rows]
    return "\n".join(lines)


def write_tables(out: Path, text: str, rows: list[dict[str, str]],
                 name: str = "results") -> None:
    """Write ``text`` (which holds the markdown table) to <name>.md and the rows to .csv."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(text)
    with (out / f"{name}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def publish(out: Path, title: str, command: str, rows: list[dict[str, str]],
            name: str = "results") -> None:
    """Print a benchmark's table under its title, the machine and the command that made it,
    and write it to <out>/<name>.md and .csv, so every figure keeps its command."""
    text = f"{title}\nMachine: {machine()}.\nCommand: {command}\n\n{markdown(rows)}\n"
    print("\n" + text)
    write_tables(out, text, rows, name)
    print(f"written to {out / name}.md and {name}.csv")
