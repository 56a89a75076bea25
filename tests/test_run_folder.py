"""One run, one folder: a folder in use is locked, and a lock left by a killed run is taken."""

from __future__ import annotations

import os

import pytest

from mnistlab.errors import ConfigError
from mnistlab.run_folder import LOCK, claim, release


def test_a_run_folder_is_locked_while_a_live_run_writes_to_it(tmp_path) -> None:
    folder = tmp_path / "shared-run"
    folder.mkdir()
    (folder / LOCK).write_text(str(os.getppid()))  # a process that is alive
    with pytest.raises(ConfigError, match=rf"hydra.run.dir={folder} is in use by another run "
                                          rf"\(process {os.getppid()}\)"):
        claim(folder, None)
    (folder / LOCK).write_text("999999999")  # a run that was killed: its lock is stale
    claim(folder, None)
    assert (folder / LOCK).read_text() == str(os.getpid())
    release(folder)
    assert not (folder / LOCK).exists()
