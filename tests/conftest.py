"""Shared fixtures: the real MNIST files, and the project config composed for a test."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from mnistlab.data import MNISTDataModule

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding MNIST/raw/ with the four official files, md5-checked once.

    Like train.py it reads MNISTLAB_DATA_DIR (default: data/ in the project), and fetches the
    files the way train.py would when they are not there yet.
    """
    path = Path(os.environ.get("MNISTLAB_DATA_DIR", ROOT / "data")).resolve()
    MNISTDataModule(data_dir=path).prepare_data()
    return path


def compose_config(overrides: list[str] | None = None) -> DictConfig:
    """Compose conf/train.yaml with ``overrides`` as the command line would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides or [])


@pytest.fixture
def make_cfg(tmp_path: Path, data_dir: Path) -> Iterator:
    """Build a config that trains a few real batches on the CPU and writes under tmp_path."""

    small_run = ["trainer=cpu", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
                 "++trainer.limit_train_batches=4", "++trainer.limit_val_batches=2",
                 "++trainer.limit_test_batches=2", "++trainer.enable_progress_bar=false",
                 "callbacks.model_summary.max_depth=0"]

    runs = itertools.count()

    def make(*overrides: str) -> DictConfig:
        """Later overrides win, so a test can ask for more batches with ``++trainer.<key>=``.

        Each config gets its own output folder under tmp_path, as each Hydra run would.
        """
        cfg = compose_config([*small_run, *overrides])
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / f"run{next(runs)}")
            cfg.paths.data_dir = str(data_dir)
        return cfg

    yield make
    GlobalHydra.instance().clear()
