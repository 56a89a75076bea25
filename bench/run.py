"""``make bench``: epoch times of the tutorials' loops, mnistlab, and the bare compute floor.

For every tutorial setup the same network, batch size, optimizer and learning rate run three
ways, interleaved (a b c d, a b c d, ...) so that drift in the machine's speed hits all alike:

  a. the tutorial's plain PyTorch loop over torchvision's per-image dataset (bench/tutorials.py),
  b. mnistlab: the tutorial's preset (conf/experiment/) through ``mnistlab.training.train``,
  c. the floor: forward, backward and optimizer step on batches already in memory,
  d. the floor's batches and step through a bare Lightning Trainer: Lightning's own share.

All of them train on the same 55,000 images (mnistlab's training split) on the CPU. The table
gives median seconds per training epoch, the ratios b/a and b/c, the per-step overheads (b - c
in all, d - c Lightning's, b - d mnistlab's own; each the median of the rounds' own differences,
with their range), the Python calls one step makes in b, c and d (bench/calls.py: a count
that machine noise does not move) and the test accuracy after the benchmarked epochs (a and b,
mean over rounds, the same seeds). It is printed and written to outputs/bench/bench.md and
bench.csv (and into ``--page``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig, open_dict
from torchvision import datasets

from bench.calls import calls_per_step
from bench.lightning_loop import lightning_epoch
from bench.tutorials import TUTORIALS, floor_epoch
from mnistlab.build import build_datamodule, build_model, compose_config
from mnistlab.internals import skip_failing_nvml_check
from mnistlab.tables import publish
from mnistlab.training import train

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"


def preset_config(preset: str, epochs: int, output_dir: Path, round_: int = 0,
                  extra: tuple[str, ...] = ()) -> DictConfig:
    """The preset as ``python train.py experiment=<preset> <extra>`` composes it, on the CPU.

    Round r uses the preset's seed + r (``replicate``), as ``make reproduce`` does. Every
preset that pins a tutorial's own run (``tutorial.as_run``) has its tutorial's loop in
bench/tutorials.py under the preset's name.
    """
    cfg = compose_config(CONF_DIR, [f"experiment={preset}", "trainer=cpu",
                                    f"trainer.max_epochs={epochs}", f"replicate={round_}",
                                    *extra])
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


class Setup:
    """One tutorial's three contestants, sharing data and settings."""

    def __init__(self, name: str, epochs: int, workdir: Path, extra: tuple[str, ...]) -> None:
        self.name, self.epochs, self.workdir, self.extra = name, epochs, workdir, extra
        self.tutorial = TUTORIALS[name]
        self.cfg = preset_config(name, epochs, workdir, extra=extra)
        datamodule = build_datamodule(self.cfg)
        datamodule.prepare_data()
        datamodule.setup()
        self.root = datamodule.files.raw_dir(self.cfg.data.data_dir).parent.parent
        train_indices = datamodule.train_set.indices
        self.indices = workdir / f"{name}-indices.pt"
        torch.save(torch.tensor(train_indices), self.indices)
        full = datasets.MNIST(self.root, train=True)
        self.images = full.data[train_indices].unsqueeze(1).float().div_(255)
        self.labels = full.targets[train_indices]
        self.times: dict[str, list[float]] = {"a": [], "a_threads": [], "b": [], "c": [],
                                              "d": []}
        self.accuracy: dict[str, list[float]] = {"a": [], "b": []}
        self.calls: dict[str, float] = {}

    def run_tutorial(self, seed: int, threads: int | None = None) -> None:
        """The tutorial's loop in a fresh process (bench/tutorial_process.py), as its script
        would run: no Lightning imported, torch's own thread count unless ``threads``."""
        command = [sys.executable, "-m", "bench.tutorial_process", "--preset", self.name,
                   "--root", str(self.root), "--indices", str(self.indices),
                   "--batch-size", str(self.cfg.data.batch_size), "--seed", str(seed),
                   "--epochs", str(self.epochs)]
        if self.cfg.data.drop_last:
            command.append("--drop-last")
        if threads:
            command += ["--threads", str(threads)]
        # Lightning's import in this process set PYTORCH_NVML_BASED_CUDA_CHECK; a tutorial's
        # script never imports Lightning, so its process does not have it.
        env = {k: v for k, v in os.environ.items() if k != "PYTORCH_NVML_BASED_CUDA_CHECK"}
        output = subprocess.run(command, check=True, capture_output=True, text=True, env=env,
                                cwd=ROOT).stdout
        run = json.loads(output.strip().splitlines()[-1])
        self.times["a_threads" if threads else "a"].append(statistics.median(run["seconds"]))
        if not threads:
            self.accuracy["a"].append(run["accuracy"])

    def run_mnistlab(self, round_: int) -> None:
        cfg = preset_config(self.name, self.epochs,
                            self.workdir / f"{self.name}-{round_}", round_, self.extra)
        # Progress bar and result tables as a user gets them, but not on the benchmark's screen.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            result = train(cfg)
        self.times["b"].append(statistics.median(result.epoch_seconds))
        self.accuracy["b"].append(result.metrics["test/acc"])

    def run_floor(self, seed: int) -> None:
        self.times["c"].append(self._bare(seed, floor_epoch))

    def run_lightning(self, seed: int) -> None:
        self.times["d"].append(self._bare(seed, lightning_epoch))

    def _bare(self, seed: int, epoch: Callable[..., float]) -> float:
        """Median seconds of ``epoch`` (the floor's loop, or Lightning's) on a fresh model."""
        model, optimizer = self._fresh(seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(self.cfg.threads or threads)  # as mnistlab runs it
        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                seconds = [epoch(model, optimizer, self.images, self.labels,
                                 self.cfg.data.batch_size) for _ in range(self.epochs)]
        finally:
            torch.set_num_threads(threads)
        return statistics.median(seconds)

    def _fresh(self, seed: int) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        """The preset's network from ``seed``, and its optimizer (the presets have no schedule)."""
        torch.manual_seed(seed)
        model = build_model(self.cfg)
        return model, model.configure_optimizers()

    def count_calls(self) -> None:
        """Python calls per step of b, c and d (bench/calls.py): once per setup, untimed."""
        batch = self.cfg.data.batch_size

        def bare(epoch: Callable[..., float]) -> Callable[[int], float]:
            def run(steps: int) -> float:
                return epoch(*self._fresh(self.cfg.seed), self.images[:steps * batch],
                             self.labels[:steps * batch], batch)
            return run

        def mnistlab(steps: int) -> object:
            # Two evaluation batches: the same in both runs, so they drop out of the difference.
            # The progress bar redraws by the clock (10 times a second), not by the step: its
            # calls would follow the profiler's slowness, so it is off while counting.
            limits = (f"trainer.limit_train_batches={steps}", "trainer.limit_val_batches=2",
                      "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false")
            # A folder of its own each time: a run finding a last.ckpt would resume from it.
            output = Path(tempfile.mkdtemp(prefix=f"{self.name}-calls-", dir=self.workdir))
            return train(preset_config(self.name, 1, output, extra=(*self.extra, *limits)))

        self.calls = {"b": calls_per_step(mnistlab), "c": calls_per_step(bare(floor_epoch)),
                      "d": calls_per_step(bare(lightning_epoch))}

    def steps(self) -> int:
        """Optimizer steps in one of mnistlab's epochs (55,000 images, the preset's batches)."""
        images, batch = len(self.labels), self.cfg.data.batch_size
        return images // batch if self.cfg.data.drop_last else -(-images // batch)

    def per_step(self, slower: str, faster: str) -> str:
        """Milliseconds per step between two contestants: the median over rounds of each round's
        own difference, then the lowest and highest of those in brackets.

        Rounds are interleaved, so a round's two runs met the same machine; differencing within
        a round cancels the drift between rounds, which on two cores moves an epoch by more
        than the overhead itself. The range shows how far one round can be trusted.
        """
        steps = self.steps()
        diffs = [1000 * (s - f) / steps
                 for s, f in zip(self.times[slower], self.times[faster], strict=True)]
        median = f"{statistics.median(diffs):.2f}"
        return median if len(diffs) == 1 else f"{median} ({min(diffs):.2f} to {max(diffs):.2f})"

    def row(self) -> dict[str, str]:
        a, b, c, d = (statistics.median(self.times[k]) for k in "abcd")
        a_threads = (statistics.median(self.times["a_threads"]) if self.times["a_threads"]
                     else None)
        acc_a, acc_b = (100 * statistics.mean(self.accuracy[k]) for k in "ab")
        return {
            "tutorial": self.cfg.tutorial.id,
            "preset": self.name,
            "batch": str(self.cfg.data.batch_size),
            "threads (b, c, d)": str(self.cfg.threads or "default"),
            "a: tutorial loop (s)": f"{a:.2f}",
            "a': tutorial loop at b's threads (s)": f"{a_threads:.2f}" if a_threads else "= a",
            "b: mnistlab (s)": f"{b:.2f}",
            "c: floor (s)": f"{c:.2f}",
            "d: bare Lightning (s)": f"{d:.2f}",
            "b/a": f"{b / a:.2f}",
            "b/a'": f"{b / (a_threads or a):.2f}",
            "b/c": f"{b / c:.2f}",
            "b - c per step (ms)": self.per_step("b", "c"),
            "d - c per step (ms)": self.per_step("d", "c"),
            "b - d per step (ms)": self.per_step("b", "d"),
            "Python calls per step (b / c / d)": " / ".join(
                f"{self.calls[k]:,.0f}" for k in "bcd") if self.calls else "not counted",
            "test acc a (%)": f"{acc_a:.2f}",
            "test acc b (%)": f"{acc_b:.2f}",
        }


def main() -> None:
    skip_failing_nvml_check()  # before any round, so that every round runs alike
    logging.getLogger("lightning").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=FutureWarning)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", nargs="+", default=list(TUTORIALS), choices=list(TUTORIALS),
                        metavar="PRESET", help="tutorial presets to time (default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--epochs", type=int, default=1,
                        help="epochs per timed run; each run's median epoch counts (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "bench")
    parser.add_argument("--page", type=Path, default=None,
                        help="also write the table into this page (e.g. docs/performance.md)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="Hydra overrides for mnistlab's runs (b) and the floor (c)")
    args = parser.parse_args()
    if args.rounds < 1 or args.epochs < 1:
        parser.error(f"--rounds and --epochs must be at least 1, got {args.rounds} and "
                     f"{args.epochs}")

    with tempfile.TemporaryDirectory(prefix="mnistlab-bench-") as workdir:
        setups = [Setup(name, args.epochs, Path(workdir), tuple(args.overrides))
                  for name in args.setups]
        for round_ in range(args.rounds):
            for setup in setups:
                seed = setup.cfg.seed + round_
                setup.run_tutorial(seed)
                if setup.cfg.threads:  # the same loop at the preset's thread count
                    setup.run_tutorial(seed, threads=setup.cfg.threads)
                setup.run_mnistlab(round_)
                setup.run_floor(seed)
                setup.run_lightning(seed)
                print(f"round {round_ + 1}/{args.rounds} {setup.name}: "
                      + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in setup.times.items() if v),
                      flush=True)

        for setup in setups:
            setup.count_calls()
    rows = [setup.row() for setup in setups]
    command = f'make bench BENCH_ARGS="{" ".join(sys.argv[1:])}"' if sys.argv[1:] else "make bench"
    publish(args.out, f"Seconds per training epoch (median of {args.rounds} interleaved rounds, "
            f"{args.epochs} epoch(s) each), 55,000 training images.", command, rows, name="bench",
            page=args.page)


if __name__ == "__main__":
    main()
