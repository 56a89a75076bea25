"""One run, one folder: a folder in use is locked, and a lock left by a killed run is taken."""

from __future__ import annotations

import os

import pytest

from mnistlab.build import compose_with_hydra
from mnistlab.errors import ConfigError
from mnistlab.run_folder import LOCK, check_can_make, claim, claim_sweep, job_left_off, release
from mnistlab.run_start import CheckConfigAndClaimFolder
from tests.helpers import CONF_DIR


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


def _sys_refusal() -> str:
    """What the kernel says to a new folder in /sys, which nobody may make (root included):
    read-only in most containers, not permitted elsewhere."""
    try:
        os.mkdir("/sys/mnistlab-probe")
    except OSError as err:
        return err.strerror
    os.rmdir("/sys/mnistlab-probe")
    return "made"


SYS = _sys_refusal()


@pytest.mark.parametrize(("where", "message"), [
    ("{tmp}/a_file/run", "hydra.run.dir={tmp}/a_file/run is invalid: {tmp}/a_file is a file, so "
     "no folder can be made under it. Fix: choose another folder with hydra.run.dir=<folder>."),
    ("/sys/mnistlab/run", "hydra.run.dir=/sys/mnistlab/run is invalid: no folder can be made in "
     "/sys ({sys_refusal}). Fix: run from a folder you can write to, or choose one "
     "with hydra.run.dir=<folder>."),
    ("{tmp}/" + "x" * 300, "hydra.run.dir={tmp}/" + "x" * 300 + " is invalid: the name "
     + "x" * 24 + "... is 300 bytes, and this file system allows 255. Fix: a shorter name, "
     "e.g. hydra.run.dir=outputs/my_run."),
])
def test_a_run_folder_that_cannot_be_made_is_one_line_before_anything_is_written(
        tmp_path, capsys, where: str, message: str) -> None:
    (tmp_path / "a_file").write_text("kept")
    config = compose_with_hydra(CONF_DIR, [f"hydra.run.dir={where.format(tmp=tmp_path)}"])
    with pytest.raises(SystemExit) as exit_info:
        CheckConfigAndClaimFolder().on_run_start(config)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"Error: {message.format(tmp=tmp_path, sys_refusal=SYS)}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]
    assert (tmp_path / "a_file").read_text() == "kept"
    # The fix: a folder that can be made.
    check_can_make(tmp_path / "outputs" / "my_run", "hydra.run.dir")


def test_a_sweep_folder_holds_one_sweep_and_resumes_only_its_own_command(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    command = ["model=cnn,mlp_bn", "trainer.max_epochs=2"]
    assert claim_sweep(sweep, command) is False  # a new sweep
    with pytest.raises(ConfigError, match=rf"^hydra.sweep.dir={sweep} is in use by another "
                                          r"sweep \(process ") as err:
        (sweep / LOCK).write_text(str(os.getppid()))  # another live process holds it
        claim_sweep(sweep, command)
    assert str(os.getppid()) in str(err.value)
    release(sweep)  # not ours: left in place
    assert (sweep / LOCK).read_text() == str(os.getppid())
    (sweep / LOCK).write_text("999999999")  # that sweep was killed
    assert claim_sweep(sweep, list(reversed(command))) is True  # the same command resumes
    release(sweep)
    with pytest.raises(ConfigError) as err:
        claim_sweep(sweep, ["model=cnn,mlp_bn", "trainer.max_epochs=3"])
    assert str(err.value) == (
        f"hydra.sweep.dir={sweep} holds a sweep of another command (its overrides: "
        "model=cnn,mlp_bn trainer.max_epochs=2); it adds trainer.max_epochs=3; it drops "
        "trainer.max_epochs=2. Fix: run that command again to resume it, or choose another "
        "folder with hydra.sweep.dir=<folder>.")


@pytest.mark.parametrize(("files", "state"), [
    ({"result.json": '{"status": "completed"}', "checkpoints/last.ckpt": "w"}, "completed"),
    ({"result.json": '{"status": "interrupted"}', "checkpoints/last.ckpt": "w"}, "interrupted"),
    ({"checkpoints/last.ckpt": "w"}, "interrupted"),  # killed: no record, a checkpoint
    ({"result.json": '{"status": "compl', "checkpoints/last.ckpt": "w"}, "interrupted"),
    ({"result.json": '{"status": "failed"}'}, "new"),
    ({}, "new"),
])
def test_a_sweep_job_goes_on_from_where_it_was_left(tmp_path, files, state) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    left, last = job_left_off(tmp_path)
    assert left == state
    assert last == (tmp_path / "checkpoints" / "last.ckpt" if state == "interrupted" else None)
