"""Weight averaging whose checkpoints test, evaluate and export the averaged weights."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn


class EMA(EMAWeightAveraging):
    """Lightning's exponential moving average of the weights, for ``averaging=ema``.

    A checkpoint's ``state_dict`` holds the averaged weights and ``current_model_state`` the
    ones being trained. Lightning's callback loads the latter whenever a checkpoint is loaded,
    so ``trainer.test(ckpt_path=best)`` after training would test the weights that were never
    validated or chosen. Here they are loaded only to resume training; testing and validating
    a checkpoint use its averaged weights, as eval.py, predict.py and export.py do.
    """

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
