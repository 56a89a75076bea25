"""A hyperparameter search that survives being killed: ``hparams_search=optuna``.

Hydra's Optuna sweeper keeps its study in ``hydra.sweeper.storage`` (a SQLite file in the sweep
folder here) and loads it again when the same sweep folder is used, but then runs
``n_trials`` *more* trials, numbers the new jobs from 0 again (into the folders of the first
run's jobs) and leaves the trial that was running when the search was killed marked as running
forever. ``ResumeSearch`` runs before the sweeper is built: it marks that killed trial failed
and replaced (``n_trials`` is the study's total, which mnistlab.shared_study holds it to, and a
replaced trial does not count), numbers new job folders after the existing ones, and moves the
sampler's seed on (the same seed would draw the first run's trials again). Only
``hparams_search=optuna`` loads this module, so optuna is imported by searches alone.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import optuna
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from optuna.trial import TrialState

from mnistlab.errors import exit_with
from mnistlab.shared_study import REPLACED, CappedStorage
from mnistlab.sweeps import JOB_OFFSET_ENV

log = logging.getLogger(__name__)

SQLITE = "sqlite:///"


def sqlite_file(storage: str) -> Path | None:
    """The database file of a SQLite storage URL, or None for a database server."""
    return Path(storage[len(SQLITE):]) if storage.startswith(SQLITE) else None


class ResumeSearch(Callback):
    """Turns a rerun of a search in its sweep folder into the rest of that search."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        storage = OmegaConf.select(config, "hydra.sweeper.storage")
        if not storage:
            return
        database = sqlite_file(storage)
        if database is not None:  # SQLite cannot create the file's folder
            database.parent.mkdir(parents=True, exist_ok=True)
        name = config.hydra.sweeper.study_name
        total = int(config.hydra.sweeper.n_trials)
        try:
            study = optuna.load_study(study_name=name, storage=CappedStorage(storage, total))
        except KeyError:  # a new study
            return
        except Exception as err:  # the storage's own error: SQLAlchemy's, many kinds
            exit_with(_unreadable(storage, database, err))
        finished = [t for t in study.trials if t.state.is_finished()]
        running = [t for t in study.trials if t.state == TrialState.RUNNING]
        sweep_dir = Path(config.hydra.sweep.dir).resolve()
        # A SQLite file in the sweep folder belongs to this search alone, so a trial still
        # marked running was killed with it. A shared database server may be running other
        # machines' trials: those are left alone.
        if database is not None and database.resolve().parent == sweep_dir:
            for trial in running:
                study.tell(trial.number, state=TrialState.FAIL)
            # Replaced, not run: the study's n_trials does not count them (CappedStorage).
            replaced = study.user_attrs.get(REPLACED, [])
            study.set_user_attr(REPLACED, [*replaced, *(t.number for t in running)])
            finished = [t for t in finished if t.number not in replaced]
            running = []
        remaining = max(0, total - len(finished) - len(running))
        seed = OmegaConf.select(config, "hydra.sweeper.sampler.seed")
        with read_write(config), open_dict(config):
            if seed is not None:  # the same seed would draw the first run's trials again
                config.hydra.sweeper.sampler.seed = int(seed) + len(study.trials)
        os.environ[JOB_OFFSET_ENV] = str(len(study.trials))
        log.info("study %r in %s: %d of %d trials finished, %d running elsewhere; running %d "
                 "more", name, storage, len(finished), total, len(running), remaining)


def _unreadable(storage: str, database: Path | None, err: Exception) -> str:
    """One line for a study storage that cannot be opened, naming the file or server."""
    first = (str(getattr(err, "orig", None) or err).strip().splitlines() or [""])[0][:160]
    if database is not None:
        return (f"hydra.sweeper.storage={storage}: {database.resolve()} is not a readable Optuna "
                f"study ({first}). Fix: move the file aside (it was left as it is) to start the "
                "search anew, or choose another sweep folder or hydra.sweeper.storage.")
    return (f"hydra.sweeper.storage={storage}: the study's database cannot be opened ({first})."
            " Fix: check that the server runs and the URL, user and password are right.")
