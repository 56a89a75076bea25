"""Fixtures: the real MNIST files, a tiny slice of them, and configs for small runs.

No test fetches data. The real files come from MNISTLAB_DATA_DIR (default: data/ in the
project); `make data` (which `make test` runs first) obtains them there like train.py does.

The fixtures import mnistlab and the test helpers when first used: they import Lightning (about
6 s), and pytest-xdist's controller, which loads this file but runs no test, would wait for it
before starting any worker.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker, and every process it starts, gets its share of the cores
    for torch's threads: two workers of two threads each on two cores wait on each other."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        # torch is not imported yet (see above): it sizes its thread pool from this variable.
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder holding MNIST/raw/ with the four official files, md5-checked once."""
    from mnistlab.data.files import MNIST_FILES, find_problems  # Lightning: see the docstring

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
    from tests.helpers import write_tiny_mnist  # Lightning: see the module's docstring

    return write_tiny_mnist(data_dir, tmp_path_factory.mktemp("tiny-mnist"))


@pytest.fixture
def make_cfg(tmp_path: Path, tiny_dir: Path) -> Callable[..., DictConfig]:
    """Build a config that trains a few batches of the tiny set on the CPU under tmp_path."""
    from tests.helpers import small_config  # Lightning: see the module's docstring

    runs = itertools.count()

    def make(*overrides: str) -> DictConfig:
        """Each config gets its own output folder, as each run would."""
        return small_config(tmp_path / f"run{next(runs)}", tiny_dir, *overrides)

    return make


# The shared CNN: train.py as a user runs it, in its own folder above the workers' folders.
CNN_RUN = ["train.py", "model=cnn", "trainer=cpu", "trainer.max_epochs=1",
           "trainer.limit_train_batches=200", "trainer.limit_val_batches=1",
           "trainer.enable_progress_bar=false", "callbacks.input_images=null",
           "callbacks.test_report=null", "hydra.run.dir=run"]


def _shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder that pytest-xdist's workers share: the one above their own temporary folders."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


@pytest.fixture(scope="session", autouse=True)
def _start_mnist_cnn(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> None:
    """Start training the shared CNN in the background as soon as a session that needs it
    begins, so that no worker sits idle waiting for it later.

    The first worker to take the lock starts the training and hands the lock to it (the lock
    is released when train.py exits); the ``mnist_cnn`` fixture waits on the same lock.
    """
    if not any("mnist_cnn" in item.fixturenames for item in request.session.items):
        return
    root = _shared_root(tmp_path_factory)
    folder = root / "mnist-cnn"
    lock = (root / "mnist-cnn.lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # another worker's training holds it
        lock.close()
        return
    if not folder.exists():
        data_dir = request.getfixturevalue("data_dir")
        folder.mkdir()
        with (folder / "train.log").open("w") as log:
            subprocess.Popen([sys.executable, str(ROOT / CNN_RUN[0]), *CNN_RUN[1:]], cwd=folder,
                             env=os.environ | {"MNISTLAB_DATA_DIR": str(data_dir)},
                             stdout=log, stderr=subprocess.STDOUT, pass_fds=[lock.fileno()])
    lock.close()


@pytest.fixture(scope="session")
def mnist_cnn(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CNN trained on 25,600 real MNIST images (200 batches; about 98% on the test set), by
    train.py as a user runs it; shared by the demo, export and prediction tests.

    Trained once per test run, started in the background by ``_start_mnist_cnn``.
    """
    root = _shared_root(tmp_path_factory)
    with (root / "mnist-cnn.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
    result = root / "mnist-cnn" / "run" / "result.json"
    if not result.is_file():
        log = root / "mnist-cnn" / "train.log"
        pytest.fail(f"training the shared CNN failed: {log.read_text()[-3000:]}", pytrace=False)
    return Path(json.loads(result.read_text())["best_checkpoint"])
