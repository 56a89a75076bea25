"""Fixtures: the real MNIST files, a tiny slice of them, and configs for small runs.

No test fetches data. The real files come from MNISTLAB_DATA_DIR (default: data/ in the
project); `make data` (which `make test` runs first) obtains them there like train.py does.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, open_dict

from mnistlab.data.files import MNIST_FILES, find_problems
from tests.helpers import ROOT, TINY_VAL, compose, run_cli, write_tiny_mnist


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker, and every process it starts, gets its share of the cores
    for torch's threads: two workers of two threads each on two cores wait on each other."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        share = max(1, (os.cpu_count() or 1) // workers)
        os.environ.setdefault("OMP_NUM_THREADS", str(share))
        torch.set_num_threads(share)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding MNIST/raw/ with the four official files, md5-checked once."""
    path = Path(os.environ.get("MNISTLAB_DATA_DIR", ROOT / "data")).resolve()
    problems = find_problems(MNIST_FILES.raw_dir(path), MNIST_FILES)
    if problems:
        pytest.fail(f"the tests need the official MNIST files in {MNIST_FILES.raw_dir(path)} "
                    f"({', '.join(f'{k} {v}' for k, v in problems.items())}): run `make data`, "
                    "or set MNISTLAB_DATA_DIR to a folder holding MNIST/raw/", pytrace=False)
    return path


@pytest.fixture(scope="session")
def tiny_dir(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with 2,000 training and 1,000 test images of the real MNIST."""
    return write_tiny_mnist(data_dir, tmp_path_factory.mktemp("tiny-mnist"))


@pytest.fixture
def make_cfg(tmp_path: Path, tiny_dir: Path) -> Callable[..., DictConfig]:
    """Build a config that trains a few batches of the tiny set on the CPU under tmp_path."""

    small_run = ["trainer=cpu", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
                 "trainer.limit_train_batches=4", "trainer.limit_val_batches=2",
                 "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false",
                 "callbacks.model_summary.max_depth=0", "data._target_=tests.helpers.TinyMNIST",
                 # Figures take a second each; the dashboard tests switch them back on.
                 "callbacks.input_images=null", "callbacks.test_report.misclassified=0",
                 "callbacks.test_report.confusion_matrix=false",
                 # A constant lr: PyTorch's OneCycleLR divides by zero on exactly 4 steps
                 # (pct_start 0.25 x 4 = 1); tests of the schedule set it themselves.
                 "~scheduler",
                 f"data.val_size={TINY_VAL}", "data.eval_batch_size=100"]
    runs = itertools.count()

    def make(*overrides: str) -> DictConfig:
        """Later overrides win; each config gets its own output folder, as each run would."""
        chosen = {o.split("=")[0].lstrip("+~") for o in overrides}
        cfg = compose(*[o for o in small_run if o.lstrip("~") not in chosen], *overrides)
        with open_dict(cfg):
            cfg.paths.output_dir = str(tmp_path / f"run{next(runs)}")
            cfg.paths.data_dir = str(tiny_dir)
        return cfg

    return make


@pytest.fixture(scope="session")
def mnist_cnn(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CNN trained on 25,600 real MNIST images (200 batches; about 98% on the test set), by
    train.py as a user runs it; shared by the demo, export and prediction tests.

    Trained once per test run: pytest-xdist's workers share the folder above their own temporary
    folders, and the first to arrive trains while the others wait on the lock.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    result = root / "mnist-cnn" / "run" / "result.json"
    with (root / "mnist-cnn.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not result.is_file():
            result.parent.parent.mkdir(exist_ok=True)
            trained = run_cli("train.py", "model=cnn", "trainer=cpu", "trainer.max_epochs=1",
                              "trainer.limit_train_batches=200", "trainer.limit_val_batches=1",
                              "trainer.enable_progress_bar=false", "callbacks.input_images=null",
                              "callbacks.test_report=null", "hydra.run.dir=run",
                              cwd=result.parent.parent, data_dir=data_dir)
            assert trained.returncode == 0, trained.stderr[-3000:]
    return Path(json.loads(result.read_text())["best_checkpoint"])
