"""The one place where a composed config becomes a datamodule, a model and a trainer.

Every caller (train.py, the benchmark, the tests) builds through these functions, so a new
config group is wired in here and nowhere else.
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

import lightning as L
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate, to_absolute_path
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ProgressBar
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, open_dict

from mnistlab.checkpoints import AtomicCheckpointIO, checkpoint_info
from mnistlab.data import MNISTDataModule
from mnistlab.data.resumable import RestoreLoaderState
from mnistlab.internals import no_profiler, skip_empty_step_hooks
from mnistlab.models import MNISTClassifier
from mnistlab.precision import chosen_precision
from mnistlab.resolvers import register_resolvers


class Run(NamedTuple):
    """What one training run is made of."""

    datamodule: MNISTDataModule
    model: MNISTClassifier
    trainer: L.Trainer


def compose_config(config_dir: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = (),
                   config_name: str = "train") -> DictConfig:
    """Compose ``config_name`` from ``config_dir`` with ``overrides`` as the command line would.

    For code that runs outside ``@hydra.main`` (the benchmark, tests); Hydra's global state is
    reset first, so it can be called any number of times in one process. As in a real run, the
    Hydra config (the chosen groups, for one) is then available through ``HydraConfig``.
    """
    return as_run_config(compose_with_hydra(config_dir, overrides, config_name))


def compose_with_hydra(config_dir: str | os.PathLike[str],
                       overrides: list[str] | tuple[str, ...] = (),
                       config_name: str = "train") -> DictConfig:
    """The composed config with its ``hydra`` node (for ``as_run_config``, which a caller that
    keeps composed configs, as the tests do, calls on a copy)."""
    register_resolvers()
    GlobalHydra.instance().clear()
    # The job is named after the config, as `python <config>.py` names it.
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3",
                               job_name=config_name):
        return compose(config_name=config_name, overrides=list(overrides),
                       return_hydra_config=True)


def as_run_config(cfg: DictConfig) -> DictConfig:
    """Make ``cfg``'s hydra node the current ``HydraConfig`` and return ``cfg`` without it."""
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


def build_datamodule(cfg: DictConfig) -> MNISTDataModule:
    """The ``data`` group, with the ``augment`` choice applied to its training batches.

    A relative data folder is taken from where the command was started, also when Hydra
    changes into the run folder (hydra.job.chdir=true), so every run shares one copy.
    """
    return instantiate(cfg.data, augment=_optional(cfg, "augment"),
                       data_dir=to_absolute_path(str(cfg.data.data_dir)), _convert_="all")


def build_model(cfg: DictConfig) -> MNISTClassifier:
    """The ``model`` group with its ``optimizer``, ``init`` and ``scheduler`` choices.

    The number of outputs comes from the dataset's class names, so a dataset with other classes
    needs no change to any model config.
    """
    num_classes = len(get_class(cfg.data._target_).classes)
    # _convert_: plain lists and dicts, so that checkpoints hold no OmegaConf objects.
    return instantiate(cfg.model, optimizer=instantiate(cfg.optimizer),
                       weight_init=instantiate(cfg.init), scheduler=_optional(cfg, "scheduler"),
                       num_classes=num_classes, _convert_="all")


def build_trainer(cfg: DictConfig, **overrides: Any) -> L.Trainer:
    """The ``trainer`` group with the ``callbacks`` and ``logger`` choices attached.

    ``overrides`` replace trainer arguments (e.g. ``logger=False`` for a quiet evaluation).
    """
    # An entry set to null (callbacks.input_images=null) is switched off.
    callbacks: list[Callback] = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()
                                 if c is not None]
    if not overrides.get("enable_progress_bar", cfg.trainer.get("enable_progress_bar", True)):
        # Lightning refuses a progress bar callback when the bar is switched off.
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    loggers: list[Logger] = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    if cfg.get("averaging") is not None:
        callbacks.append(instantiate(cfg.averaging))
    if cfg.get("scheduler") is not None and loggers:  # a changing rate is worth a curve
        callbacks.append(LearningRateMonitor(logging_interval="step"))
    callbacks.append(RestoreLoaderState())  # exact resume, also from an epoch's end
    # Checkpoints are written under a temporary name and renamed: never a half-written file.
    arguments: dict[str, Any] = {"callbacks": callbacks, "logger": loggers or False,
                                 "plugins": [AtomicCheckpointIO()],
                                 "precision": chosen_precision(cfg.trainer)} | overrides
    if cfg.trainer.get("profiler") is None:
        arguments.setdefault("profiler", no_profiler())
    trainer: L.Trainer = instantiate(cfg.trainer, **arguments)
    for callback in trainer.callbacks:  # also those Lightning added
        skip_empty_step_hooks(callback)
    return trainer


def build(cfg: DictConfig) -> Run:
    """Datamodule, model and trainer of one run; the model's checkpoints will stand alone."""
    datamodule, model = build_datamodule(cfg), skip_empty_step_hooks(build_model(cfg))
    model.checkpoint_info = checkpoint_info(cfg, datamodule)
    return Run(datamodule, model, build_trainer(cfg))


def _optional(cfg: DictConfig, group: str) -> Any:
    """Instantiate an optional config group, or None when no choice was made."""
    node = cfg.get(group)
    return None if node is None else instantiate(node)
