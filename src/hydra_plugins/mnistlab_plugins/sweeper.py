"""hparams_search=optuna: Hydra's Optuna sweeper on a storage that holds exactly n_trials
trials, also when several searches share one study (mnistlab.shared_study)."""

from __future__ import annotations

import logging

from hydra_plugins.hydra_optuna_sweeper.optuna_sweeper import OptunaSweeper

log = logging.getLogger(__name__)


class SharedStudySweeper(OptunaSweeper):
    def sweep(self, arguments: list[str]) -> None:
        # optuna and SQLAlchemy, as in the parent's sweep: Hydra imports every plugin at start.
        from mnistlab.shared_study import CappedStorage, StudyFull

        impl = self.sweeper
        if isinstance(impl.storage, str):
            impl.storage = CappedStorage(impl.storage, impl.n_trials)
        try:
            return super().sweep(arguments)
        except StudyFull as full:
            log.info("%s: this search stops", full)
