"""Processes: whether one still runs (a lock or staging folder of a killed process), and which
ones a sweep started (to pass a signal on to them)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


def alive(pid: int) -> bool:
    """True while process ``pid`` exists (also when it belongs to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def descendants(pid: int) -> list[int]:
    """Every process started by ``pid``, and by those, on Linux (read from /proc); [] elsewhere."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # "pid (name) state ppid ...": the name may hold spaces, so split after its ")".
            parent = int(entry.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def idle_cores(seconds: float = 0.2) -> float | None:
    """How many of the machine's cores no program used over the next ``seconds`` (from
    /proc/stat's tick counts: idle and waiting for I/O); None where there is no /proc."""
    def ticks() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return values[3] + values[4], sum(values)

    try:
        (idle_before, total_before), _ = ticks(), time.sleep(seconds)
        idle_after, total_after = ticks()
    except (OSError, ValueError, IndexError):
        return None
    if total_after <= total_before:
        return None
    return (os.cpu_count() or 1) * (idle_after - idle_before) / (total_after - total_before)


def free_threads(default: int) -> int:
    """Torch threads for a run on a machine others may share: ``default`` (torch's, one per
    core), or as many as cores are idle when fewer are. Beside a busy program each of torch's
    threads in turn loses its core, and the others wait for it at every operator's end: on 2
    cores beside one busy process, 2 threads took 3.2 times as long as alone, 1 thread 1.5."""
    idle = idle_cores()
    return default if idle is None else max(1, min(default, round(idle)))
