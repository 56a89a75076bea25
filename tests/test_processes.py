"""The machine's processes, read from /proc: idle cores, and the threads a run takes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from mnistlab.processes import free_threads, idle_cores
from mnistlab.training import train

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat")


@contextmanager
def every_core_busy() -> Iterator[None]:
    """One busy-looping process per core, as other programs on a shared machine."""
    burners = [subprocess.Popen([sys.executable, "-c", "while 1: pass"])
               for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def test_idle_cores_are_a_share_of_the_machine() -> None:
    idle = idle_cores(0.1)
    assert idle is not None and 0 <= idle <= (os.cpu_count() or 1)


@pytest.mark.slow  # keeps every core busy for a second or two
def test_with_every_core_busy_a_run_on_auto_threads_takes_one(make_cfg, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr("mnistlab.training._train",
                        lambda cfg: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(4)  # torch's default on a 4-core machine
    try:
        with every_core_busy():
            assert idle_cores() < 0.5
            assert free_threads(8) == 1
            train(make_cfg("threads=auto"))
            train(make_cfg("threads=null"))
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 4]  # auto steps aside; null keeps torch's default
