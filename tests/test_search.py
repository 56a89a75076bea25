"""The Optuna search's start: a study database that cannot be read is named with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnistlab.build import compose_with_hydra
from mnistlab.search import ResumeSearch
from tests.helpers import CONF_DIR


@pytest.mark.parametrize(
    "damage", [b"not a database at all" * 100, b"SQLite format 3\x00" + b"\x07" * 200]
)
def test_a_damaged_study_database_is_one_line_naming_the_file(
    tmp_path: Path, capsys, damage: bytes
) -> None:
    database = tmp_path / "optuna.db"
    database.write_bytes(damage)
    config = compose_with_hydra(CONF_DIR, ["hparams_search=optuna", f"hydra.sweep.dir={tmp_path}"])
    with pytest.raises(SystemExit) as exit_info:
        ResumeSearch().on_multirun_start(config)
    assert exit_info.value.code == 2
    said = capsys.readouterr().err
    assert said.count("\n") == 1 and said.startswith(
        f"Error: hydra.sweeper.storage=sqlite:///{tmp_path}/optuna.db: {database} is not a "
        "readable Optuna study ("
    )
    assert said.endswith(
        "Fix: move the file aside (it was left as it is) to start the search "
        "anew, or choose another sweep folder or hydra.sweeper.storage.\n"
    )
    assert database.read_bytes() == damage
