"""hydra/launcher=slurm: Hydra's submitit SLURM launcher, with a submission that ``sbatch``
refuses ending in one line that names the setting to change (mnistlab.launchers), not in
submitit's traceback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher

from mnistlab.errors import exit_with
from mnistlab.launchers import sbatch_refusal


class CheckedSlurmLauncher(SlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Any:
        # submitit, as in the parent's launch: Hydra imports every plugin at each start.
        from submitit.core.utils import FailedJobError

        try:
            return super().launch(job_overrides, initial_job_idx)
        except FailedJobError as err:
            message = sbatch_refusal(str(err))
            if message is None:
                raise
            exit_with(message)
