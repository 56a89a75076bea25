"""One Optuna study shared by two searches at once on a real PostgreSQL server (two machines
in miniature): exactly n_trials trials in all. Run by `make test-cluster`."""

from __future__ import annotations

import glob
import math
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from omegaconf import OmegaConf

from mnistlab.shared_study import CappedStorage
from tests import zygote
from tests.browser import free_port
from tests.test_sweeps import SHORT, results

POSTGRES_BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)

pytestmark = [pytest.mark.slow, pytest.mark.cluster,
              pytest.mark.skipif(POSTGRES_BIN is None,
                                 reason="needs PostgreSQL's programs: apt-get install postgresql")]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A PostgreSQL server of its own (initdb, pg_ctl) on a free local port, run by an
    unprivileged user (postgres, when the tests run as root); its URL, with a database."""
    folder = Path(tempfile.mkdtemp(prefix="mnistlab-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()

    def run(*command: str) -> None:
        subprocess.run([*as_user, *command], check=True, capture_output=True, text=True)

    run(f"{POSTGRES_BIN}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres")
    run(f"{POSTGRES_BIN}/pg_ctl", "-D", str(data), "-l", str(folder / "server.log"), "-w",
        "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start")
    try:
        run(f"{POSTGRES_BIN}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
            "optuna")
        yield f"postgresql://postgres@127.0.0.1:{port}/optuna"
    finally:
        run(f"{POSTGRES_BIN}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_two_searches_at_once_on_one_study_run_exactly_n_trials(tmp_path, data_dir,
                                                                postgres) -> None:
    search = ["hparams_search=optuna", *SHORT[:-1], "hydra.sweeper.n_trials=8",
              f"hydra.sweeper.storage={postgres}", "hydra.sweeper.study_name=shared",
              "trainer.limit_train_batches=5"]
    env = os.environ | {"MNISTLAB_DATA_DIR": str(data_dir)}
    machines = [zygote.start("train.py", [*search, f"hydra.sweep.dir=machine{n}",
                                          f"seed={n}"], tmp_path, env,
                             tmp_path / f"machine{n}.log") for n in (0, 1)]
    for n, machine in enumerate(machines):
        assert machine.wait() == 0, (tmp_path / f"machine{n}.log").read_text()[-3000:]

    study = optuna.load_study(study_name="shared", storage=postgres)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 8
    # Each trial ran once, on one machine, in its own job folder.
    folders = [folder for n in (0, 1)
               for folder in (tmp_path / f"machine{n}").glob("*/.hydra/overrides.yaml")]
    assert len(folders) == 8
    ran = sorted(_params(folder) for folder in folders)
    assert ran == sorted(_rounded(t.params) for t in study.trials)
    assert all(len(list((tmp_path / f"machine{n}").glob("*/.hydra"))) > 0 for n in (0, 1))
    best = max(run["metrics"]["val/acc_best"] for n in (0, 1)
               for run in results(tmp_path / f"machine{n}").values())
    assert math.isclose(study.best_value, best)
    said = (tmp_path / "machine0.log").read_text() + (tmp_path / "machine1.log").read_text()
    assert "the study holds its 8 trials" in said and "Traceback" not in said


def _params(overrides_file: Path) -> tuple:
    """A job's searched values, as its folder's overrides.yaml records them."""
    pairs = dict(item.split("=", 1) for item in OmegaConf.load(overrides_file))
    return _rounded({"optimizer": pairs["optimizer"],
                     "optimizer.lr": float(pairs["optimizer.lr"]),
                     "data.batch_size": int(pairs["data.batch_size"]),
                     "model.dropout": float(pairs["model.dropout"])})


def _rounded(params: dict) -> tuple:
    return tuple(sorted((key, round(value, 12) if isinstance(value, float) else value)
                        for key, value in params.items()))


def test_machines_opening_a_new_database_at_once_all_open_it(postgres) -> None:
    """Optuna creates its tables on first use; done twice at once, one machine failed with
    'duplicate key value violates unique constraint'."""
    engine = sqlalchemy.create_engine(postgres, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("CREATE DATABASE fresh"))
    engine.dispose()
    url = postgres.rsplit("/", 1)[0] + "/fresh"
    context = multiprocessing.get_context("fork")
    start, said = context.Barrier(6), context.Queue()
    machines = [context.Process(target=_open_at_once, args=(url, start, said))
                for _ in range(6)]
    for machine in machines:
        machine.start()
    outcomes = [said.get(timeout=120) for _ in machines]
    for machine in machines:
        machine.join()
    assert outcomes == ["opened"] * 6


def _open_at_once(url: str, start: multiprocessing.synchronize.Barrier,
                  said: multiprocessing.Queue) -> None:
    start.wait()
    try:
        CappedStorage(url, n_trials=1).engine.dispose()
    except Exception as err:  # the error is the test's output
        said.put(f"{type(err).__name__}: {err}"[:300])
        return
    said.put("opened")
