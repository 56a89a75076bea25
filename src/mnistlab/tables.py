"""Result tables: markdown and CSV rows, and the line under every published table that says
which command wrote it, at which commit, when and on what machine.

Pages in docs/ hold their tables between ``<!-- table:NAME -->`` and ``<!-- /table:NAME -->``;
the command that makes a table rewrites that block (``write_into_page``), so a page's figures
are always a command's output, never typed in.
"""

from __future__ import annotations

import contextlib
import csv
import os
import platform
import re
import subprocess
from datetime import date
from pathlib import Path


def machine() -> str:
    """CPU model, cores, torch and Lightning versions (and the GPU, where one is used)."""
    # 6 s: Hydra loads the sweep summary's callback (and so this module) before every run.
    import lightning
    import torch

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {os.cpu_count()} cores{gpu}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Lightning {lightning.__version__}")


def commit(folder: Path | None = None) -> str:
    """The checked-out commit, marked when tracked files differ from it ("unknown" outside git)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder or Path(__file__).parent, check=True,
                              capture_output=True, text=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} with uncommitted changes" if dirty else head


def provenance(command: str) -> str:
    """The line written under a table: the command, commit, date and machine that made it."""
    return (f"Written by `{command}` at commit {commit()} on {date.today().isoformat()}; "
            f"machine: {machine()}.")


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


def write_into_page(page: Path, name: str, block: str) -> None:
    """Replace the page's ``table:NAME`` block with ``block`` (appended when it has none)."""
    start, end = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
    text = page.read_text() if page.is_file() else ""
    new = f"{start}\n{block.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: new, text, count=1)
    else:
        text = f"{text.rstrip()}\n\n{new}\n" if text.strip() else f"{new}\n"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)


def publish(out: Path, title: str, command: str, rows: list[dict[str, str]],
            name: str = "results", page: Path | None = None) -> None:
    """Print a benchmark's table under its title, with the line saying what made it; write it
    to <out>/<name>.md and .csv, and into ``page``'s ``table:NAME`` block when given."""
    block = f"{title}\n\n{markdown(rows)}\n\n{provenance(command)}\n"
    print("\n" + block)
    write_tables(out, block, rows, name)
    if page is not None:
        write_into_page(page, name, block)
    print(f"written to {out / name}.md and {name}.csv" + (f" and {page}" if page else ""))
