"""What several test files share: the config composed as train.py composes it, a tiny MNIST
slice that trains in a blink, and quiet trainers."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import time
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from torchvision.datasets.mnist import read_image_file, read_label_file
from torchvision.datasets.utils import calculate_md5

from mnistlab.build import as_run_config, compose_with_hydra
from mnistlab.data import MNISTDataModule
from mnistlab.data.files import MNIST_FILES, RawFiles
from mnistlab.data.pypi_copy import write_idx
from tests import zygote

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"

# The tiny set: the first images of each official file, 200 of the training ones for validation.
TINY_TRAIN, TINY_TEST, TINY_VAL = 2000, 1000, 200


# Each set of overrides is composed once per test run; every test gets its own copy.
_COMPOSED: dict[tuple[str, ...], DictConfig] = {}


def compose(*overrides: str) -> DictConfig:
    """conf/train.yaml with ``overrides``, as `python train.py <overrides>` composes it."""
    if overrides not in _COMPOSED:
        _COMPOSED[overrides] = compose_with_hydra(CONF_DIR, overrides)
    return as_run_config(copy.deepcopy(_COMPOSED[overrides]))


# A run of a few batches of the tiny set on the CPU, for the in-process tests.
SMALL_RUN = ("trainer=cpu", "trainer.max_epochs=1", "trainer.log_every_n_steps=1",
             "trainer.limit_train_batches=4", "trainer.limit_val_batches=2",
             "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false",
             "callbacks.model_summary.max_depth=0", "data._target_=tests.helpers.TinyMNIST",
             # Figures take a second each; the dashboard tests switch them back on.
             "callbacks.input_images=null", "callbacks.test_report.misclassified=0",
             "callbacks.test_report.confusion_matrix=false",
             # A constant lr: PyTorch's OneCycleLR divides by zero on exactly 4 steps
             # (pct_start 0.25 x 4 = 1); tests of the schedule set it themselves.
             "~scheduler",
             f"data.val_size={TINY_VAL}", "data.eval_batch_size=100")


def small_config(output_dir: Path, tiny_dir: Path, *overrides: str) -> DictConfig:
    """``SMALL_RUN`` with ``overrides`` (later ones win), writing into ``output_dir``."""
    chosen = {o.split("=")[0].lstrip("+~") for o in overrides}
    cfg = compose(*[o for o in SMALL_RUN if o.lstrip("~") not in chosen], *overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.data_dir = str(tiny_dir)
    return cfg


class TinyMNIST(MNISTDataModule):
    """The first 2,000 training and 1,000 test images of the real MNIST, and no sources.

    ``write_tiny_mnist`` writes the files and sets ``files`` to their sizes and md5s, so the
    datamodule verifies them like the real ones and has nowhere to fetch from.
    """

    files = MNIST_FILES
    sources = ()


class ThreeClasses(MNISTDataModule):
    """A dataset with three classes, to check that networks size their output from the data."""

    classes = ("a", "b", "c")


def write_tiny_mnist(mnist_dir: Path, out: Path) -> Path:
    """Write slices of the official IDX files into ``out``/MNIST/raw/ and register their md5s."""
    source, raw = MNIST_FILES.raw_dir(mnist_dir), MNIST_FILES.raw_dir(out)
    raw.mkdir(parents=True, exist_ok=True)
    counts = {"train": TINY_TRAIN, "t10k": TINY_TEST}
    for name in MNIST_FILES.files:
        count = counts[name.split("-")[0]]
        read = read_image_file if "images" in name else read_label_file
        write_idx(raw / name, read(str(source / name))[:count].numpy())
    TinyMNIST.files = RawFiles(folder="MNIST", files={
        name: ((raw / name).stat().st_size, calculate_md5(str(raw / name)))
        for name in MNIST_FILES.files})
    return out


def quiet_trainer(**kwargs) -> L.Trainer:
    """A CPU trainer with no logger, checkpoints, progress bar or summary."""
    defaults = {"accelerator": "cpu", "devices": 1, "logger": False,
                "enable_checkpointing": False, "enable_progress_bar": False,
                "enable_model_summary": False}
    return L.Trainer(**(defaults | kwargs))


def run_cli(script: str, *args: str, cwd: Path, data_dir: Path) -> subprocess.CompletedProcess:
    """Run one of the entry points as a user types it, from ``cwd`` (forked from a process that
    has imported torch and Lightning: tests/zygote.py)."""
    return zygote.run(script, args, cwd, os.environ | {"MNISTLAB_DATA_DIR": str(data_dir)})


def wait_for_file(run: zygote.Run, folder: Path, pattern: str, seconds: float = 300) -> None:
    """Return once a file matching ``pattern`` is under ``folder`` (e.g. a job's last.ckpt: it
    is training); fail if ``run`` ends first or time runs out."""
    deadline = time.monotonic() + seconds
    while not list(folder.glob(pattern)):
        assert run.poll() is None, f"the run ended before {folder / pattern} was written"
        assert time.monotonic() < deadline, f"no {folder / pattern} within {seconds} s"
        time.sleep(0.02)


class KillAtStep(L.Callback):
    """Sends its own process a signal (SIGKILL: a crash, no cleanup) after optimizer step
    ``step``, so a test interrupts a real run at a known point; in a sweep, only in the job
    whose folder has number ``job`` (None: every job; a resumed search numbers its new jobs
    after the earlier ones), and with ``parent`` to the process that started it."""

    def __init__(self, step: int, signum: int = signal.SIGKILL, job: int | None = None,
                 parent: bool = False) -> None:
        self.step, self.signum, self.job, self.parent = step, signum, job, parent

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        folder = Path(HydraConfig.get().runtime.output_dir).name
        if self.job is not None and folder.split("_")[0] != str(self.job):
            return
        if trainer.global_step == self.step:  # parent: the sweep's process, from a worker
            os.kill(os.getppid() if self.parent else os.getpid(), self.signum)


class SlowSteps(L.Callback):
    """Makes every training step last at least ``seconds``, so that a time limit falls within
    an epoch of the tiny set."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, *args) -> None:
        time.sleep(self.seconds)
