"""Checks on a composed config, run before anything trains or writes a file.

Torch and Lightning would reject most of these values too, but only after the run folder, the
loggers and the data download have started, and with messages that do not name the config key.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from mnistlab.data.datamodule import LOADERS

MNIST_TRAIN_IMAGES = 60000


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key, the value and the fix."""


@dataclass(frozen=True)
class Rule:
    """One checked key: ``ok`` says whether a value works, the other fields word the error."""

    key: str
    ok: Callable[[Any], bool]
    requirement: str
    example: str


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_widths(value: Any) -> bool:
    return (isinstance(value, list | tuple | ListConfig) and len(value) > 0
            and all(_is_int(v) and v >= 1 for v in value))


RULES = (
    Rule("seed", lambda v: _is_int(v) and v >= 0, "an integer >= 0", "seed=42"),
    Rule("optimizer.lr", lambda v: _is_number(v) and math.isfinite(v) and v > 0,
         "a finite number > 0", "optimizer.lr=0.001"),
    Rule("optimizer.weight_decay", lambda v: _is_number(v) and math.isfinite(v) and v >= 0,
         "a finite number >= 0", "optimizer.weight_decay=0.0001"),
    Rule("data.num_workers", lambda v: _is_int(v) and v >= 0, "an integer >= 0",
         "data.num_workers=0"),
    Rule("data.batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1",
         "data.batch_size=64"),
    Rule("data.eval_batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1",
         "data.eval_batch_size=1000"),
    Rule("trainer.max_epochs", lambda v: _is_int(v) and v >= 1, "an integer >= 1",
         "trainer.max_epochs=5"),
    Rule("model.dropout", lambda v: _is_number(v) and 0 <= v < 1, "a probability in [0, 1)",
         "model.dropout=0.3"),
    Rule("model.label_smoothing", lambda v: _is_number(v) and 0 <= v < 1,
         "a number in [0, 1)", "model.label_smoothing=0.1"),
    Rule("threads", lambda v: v is None or (_is_int(v) and v >= 1), "null or an integer >= 1",
         "threads=1"),
    Rule("replicate", lambda v: _is_int(v) and v >= 0, "an integer >= 0", "replicate=1"),
    Rule("model.hidden", _is_widths, "a non-empty list of layer widths >= 1",
         "'model.hidden=[512,256]'"),
    Rule("data.loader", lambda v: v in LOADERS,
         "memory (whole batches from memory, fast) or torchvision (per image)",
         "data.loader=memory"),
    Rule("data.on_device", lambda v: v is None or isinstance(v, bool),
         "null (automatic: on a GPU), true or false", "data.on_device=false"),
    Rule("data.pin_memory", lambda v: v is None or isinstance(v, bool),
         "null (automatic: when training on a GPU), true or false", "data.pin_memory=true"),
    Rule("data.val_size", lambda v: _is_int(v) and 0 < v < MNIST_TRAIN_IMAGES,
         f"an integer in (0, {MNIST_TRAIN_IMAGES})", "data.val_size=5000"),
)


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value that cannot work; absent keys are not checked.

    Single values first (``RULES``), then what depends on several keys, the machine or a file
    (``mnistlab.checks``).
    """
    for rule in RULES:
        value = OmegaConf.select(cfg, rule.key, default=None)
        if value is not None and not rule.ok(value):
            raise ConfigError(f"{rule.key}={value!r} is invalid: it must be {rule.requirement}. "
                              f"Fix: override it, e.g. `python train.py {rule.example}`.")
    from mnistlab.checks import CHECKS  # they use this module's ConfigError

    for check in CHECKS:
        check(cfg)


class CheckConfigOnRunStart(Callback):
    """Runs ``check_config`` before Hydra creates any run or sweep folder.

    A run folder fixed with ``hydra.run.dir`` is also claimed here (``mnistlab.run_folder``),
    before Hydra writes its config into it, and released when the run ends.

    Hydra turns exceptions raised in callbacks into warnings and carries on, so a bad value ends
    the program here with exit status 2, the usual status for a bad command line. In a sweep only
    the values shared by all jobs are known at this point; each job's own values are checked
    again when it starts, before it trains, and earlier jobs keep their results.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mnistlab.run_folder import claim, explicit_run_dir

        ckpt_path = config.get("ckpt_path")
        if config.get("resume"):  # checked as the run's own config, with its last.ckpt
            from mnistlab.resume import resumed_config

            try:
                resumed = resumed_config(config, config.hydra.overrides.task)
            except ConfigError as err:
                print(f"Error: {err}", file=sys.stderr)
                raise SystemExit(2) from None
            ckpt_path = resumed.ckpt_path
            resumed.hydra = config.hydra
            config = resumed
        _check_or_exit(config)
        folder = explicit_run_dir(config)
        # Lightning starts the other DDP ranks with hydra.run.dir set to rank 0's folder.
        if folder is not None and os.environ.get("LOCAL_RANK", "0") == "0":
            try:
                claim(folder, ckpt_path)
            except ConfigError as err:
                print(f"Error: {err}", file=sys.stderr)
                raise SystemExit(2) from None

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mnistlab.run_folder import explicit_run_dir, release

        folder = explicit_run_dir(config)
        if folder is not None and os.environ.get("LOCAL_RANK", "0") == "0":
            release(folder)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(config)


def _check_or_exit(config: DictConfig) -> None:
    try:
        check_config(config)
    except ConfigError as err:
        print(f"Error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
