"""The clock of ``make bench-phases`` (bench.phases), a callback added to the run as typed:
``+callbacks.phase_clock._target_=bench.phase_clock.PhaseClock``. It imports Lightning only, so
that it also runs inside another commit's mnistlab (bench.phases --compare)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

CLOCK_FILE = "phase_clock.json"


class PhaseClock(Callback):
    """Stamps the wall clock (time.time, comparable across processes) at Lightning's hooks and
    writes them into the run folder at the end of testing."""

    def __init__(self) -> None:
        self.stamps: list[tuple[str, float]] = [("built", time.time())]

    def _stamp(self, name: str) -> None:
        self.stamps.append((name, time.time()))

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._stamp(f"setup_{getattr(stage, 'value', stage)}")

    def on_sanity_check_start(self, *args: Any) -> None:
        self._stamp("sanity_start")

    def on_sanity_check_end(self, *args: Any) -> None:
        self._stamp("sanity_end")

    def on_train_epoch_start(self, *args: Any) -> None:
        self._stamp("epoch_start")

    def on_train_epoch_end(self, *args: Any) -> None:
        self._stamp("epoch_end")

    def on_validation_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if not trainer.sanity_checking:
            self._stamp("val_start")

    def on_validation_epoch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if not trainer.sanity_checking:
            self._stamp("val_end")

    def on_fit_end(self, *args: Any) -> None:
        self._stamp("fit_end")

    def on_test_epoch_start(self, *args: Any) -> None:
        self._stamp("test_start")

    def on_test_batch_end(self, *args: Any) -> None:
        # The last one ends the forward passes; the test report's own epoch-end hook runs
        # before this clock's, which comes last.
        if self.stamps[-1][0] == "test_end":
            self.stamps.pop()
        self._stamp("test_end")

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        stage = getattr(stage, "value", stage)  # Lightning's TrainerFn, a str enum
        self._stamp(f"teardown_{stage}")
        if stage == "test":
            Path(trainer.default_root_dir, CLOCK_FILE).write_text(json.dumps(self.stamps))
