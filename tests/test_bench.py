"""The benchmark's baseline is the tutorials' computation: same networks, same initial weights."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision import datasets

from bench.lightning_loop import lightning_epoch
from bench.phase_clock import CLOCK_FILE
from bench.phases import PHASES, timed_run
from bench.run import Setup
from bench.tutorials import TUTORIALS, floor_epoch, tutorial_epoch
from mnistlab.build import build_model
from tests import zygote
from tests.helpers import CONF_DIR, ROOT, compose
from tests.test_sweeps import SHORT


def weighted_layers(network: nn.Module) -> list[nn.Module]:
    return [m for m in network.modules() if isinstance(m, nn.Linear | nn.Conv2d)]


def preset_network(preset: str) -> nn.Module:
    return build_model(compose(f"experiment={preset}"))


def test_every_preset_of_a_tutorials_own_run_has_its_loop() -> None:
    as_run = {path.stem for path in (CONF_DIR / "experiment").glob("*.yaml")
              if (OmegaConf.load(path).get("tutorial") or {}).get("as_run")}
    assert as_run == set(TUTORIALS)


@pytest.mark.parametrize("preset", sorted(TUTORIALS))
def test_preset_builds_the_tutorials_network(preset: str) -> None:
    tutorial, ours = TUTORIALS[preset].network(), preset_network(preset)
    assert sum(p.numel() for p in tutorial.parameters()) == sum(
        p.numel() for p in ours.parameters())
    assert [tuple(m.weight.shape) for m in weighted_layers(tutorial)] == [
        tuple(m.weight.shape) for m in weighted_layers(ours)]


# The deep CNN's tutorial initialises fc1 before it creates fc2, so the random numbers are
# drawn in another order there; the others draw them exactly as their tutorial did.
@pytest.mark.parametrize("preset", sorted(set(TUTORIALS) - {"tutorial003_cnn_deep"}))
def test_same_seed_gives_the_tutorials_initial_weights(preset: str) -> None:
    torch.manual_seed(0)
    tutorial = TUTORIALS[preset].network()
    torch.manual_seed(0)
    ours = preset_network(preset)
    for theirs, mine in zip(weighted_layers(tutorial), weighted_layers(ours), strict=True):
        assert torch.equal(theirs.weight, mine.weight)
        assert torch.equal(theirs.bias, mine.bias)


@pytest.mark.parametrize("preset", ["tutorial000_mlp_bn", "tutorial003_cnn"])
def test_baseline_loops_step_once_per_batch(preset: str, data_dir) -> None:
    test = datasets.MNIST(data_dir, train=False)
    images, labels = test.data[:330].unsqueeze(1).float() / 255, test.targets[:330]
    tutorial = TUTORIALS[preset]
    for run in ("tutorial", "floor"):
        model = tutorial.network()
        optimizer = tutorial.optimizer(model.parameters(), lr=tutorial.lr)
        steps = []
        optimizer.register_step_post_hook(lambda *_, seen=steps: seen.append(1))
        before = [p.detach().clone() for p in model.parameters()]
        if run == "tutorial":
            loader = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True,
                                drop_last=True)
            tutorial_epoch(tutorial, model, optimizer, loader)
        else:
            flat = images.view(-1, 28 * 28) if tutorial.flatten else images
            floor_epoch(model, optimizer, flat, labels, batch_size=32)
        assert len(steps) == 10, run  # 330 images: ten full batches of 32, the rest dropped
        assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(),
                                                        strict=True))


@pytest.mark.slow
def test_the_tutorial_loop_runs_in_a_process_without_lightning(data_dir, tmp_path) -> None:
    """Baseline a runs as the tutorial's script would: Lightning never imported, so torch keeps
    its own CUDA check, and torch's own thread count unless one is asked for."""
    indices = tmp_path / "indices.pt"
    torch.save(torch.arange(64 * 3), indices)
    probe = ("import runpy, sys; sys.argv = sys.argv[1:]; "
             "runpy.run_module('bench.tutorial_process', run_name='__main__'); "
             "print(json.dumps({'lightning': 'lightning' in sys.modules, "
             "'nvml': os.environ.get('PYTORCH_NVML_BASED_CUDA_CHECK')}))")
    env = {k: v for k, v in os.environ.items() if k != "PYTORCH_NVML_BASED_CUDA_CHECK"}
    result = subprocess.run(
        [sys.executable, "-c", f"import json, os; {probe}", "bench.tutorial_process",
         "--preset", "tutorial002_mlp_sigmoid", "--root", str(data_dir), "--indices",
         str(indices), "--batch-size", "64", "--seed", "0", "--threads", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    run, probe_result = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    assert probe_result == {"lightning": False, "nvml": None}
    assert len(run["seconds"]) == 1 and run["threads"] == 1 and 0 <= run["accuracy"] <= 1


def test_bare_lightning_does_the_floors_computation(data_dir) -> None:
    """Column d times the floor's own steps: from the same weights, the same weights after."""
    test = datasets.MNIST(data_dir, train=False)
    images, labels = test.data[:330].view(-1, 784).float() / 255, test.targets[:330]
    tutorial = TUTORIALS["tutorial000_mlp_bn"]
    trained = []
    for epoch in (floor_epoch, lightning_epoch):
        torch.manual_seed(0)
        model = tutorial.network()
        optimizer = tutorial.optimizer(model.parameters(), lr=tutorial.lr)
        steps = []
        optimizer.register_step_post_hook(lambda *_, seen=steps: seen.append(1))
        assert epoch(model, optimizer, images, labels, batch_size=32) > 0
        assert len(steps) == 10, epoch.__name__
        trained.append([p.detach() for p in model.parameters()])
    for floor, lightning in zip(*trained, strict=True):
        assert torch.allclose(floor, lightning, atol=1e-6)


def test_overhead_per_step_differences_each_rounds_own_runs() -> None:
    """Interleaved rounds are paired: a slow round slows both of its runs, and cancels out."""
    setup = Setup.__new__(Setup)  # the timing arithmetic only: no data, no runs
    setup.steps = lambda: 1000
    # Round 2 ran on a slow machine. The rounds' own differences are 1.0, 0.4 and 1.3 s; the
    # difference of the medians (2.5 - 1.2 s) would be 1.3 ms a step.
    setup.times = {"b": [2.0, 3.0, 2.5], "c": [1.0, 2.6, 1.2]}
    assert setup.per_step("b", "c") == "1.00 (0.40 to 1.30)"
    setup.times = {"b": [2.0], "c": [1.5]}
    assert setup.per_step("b", "c") == "0.50"


@pytest.mark.slow
def test_gpu_bench_runs_its_setups_through_train_on_any_accelerator(tmp_path) -> None:
    """bench/gpu.py's code path, on the CPU: the same configs and timing as on a GPU."""
    from bench.gpu import time_setup

    row = time_setup("cnn-bf16", "cpu", 2, tmp_path, ("trainer.limit_train_batches=3",
                                                      "trainer.limit_val_batches=1",
                                                      "trainer.limit_test_batches=1"))
    assert row["setup"] == "cnn-bf16" and row["overrides"] == "trainer.precision=bf16-mixed"
    assert row["epochs"] == "2" and float(row["later epochs, median (s)"]) > 0
    assert 0 < float(row["test acc (%)"]) <= 100
    # The run really was bf16-mixed: its checkpoint's config says so.
    ckpt = next((tmp_path / "cnn-bf16" / "checkpoints").glob("epoch_*.ckpt"))
    config = torch.load(ckpt, weights_only=False)["mnistlab"]["config"]
    assert config["trainer"]["precision"] == "bf16-mixed"


@pytest.mark.slow
def test_gpu_bench_without_a_gpu_says_how_to_run_on_the_cpu() -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    done = zygote.run("-m", ["bench.gpu", "--setups", "cnn"], ROOT, dict(os.environ))
    assert done.returncode == 2 and "--accelerator cpu" in done.stderr


@pytest.mark.slow
def test_phases_of_the_command_add_up_to_its_whole_time(tmp_path, data_dir,
                                                        monkeypatch) -> None:
    """make bench-phases: the command in a fresh process, split at Lightning's hooks."""
    monkeypatch.setenv("MNISTLAB_DATA_DIR", str(data_dir))  # for the child
    run = timed_run(sys.executable, ROOT, tmp_path, [*SHORT, "trainer.max_epochs=2"])
    assert math.isclose(sum(run["phases"].values()), run["total"], rel_tol=1e-9)
    assert list(run["phases"]) == list(PHASES) and run["epochs"] == 2
    # Two epochs, each training then validating, in the order the clock saw them.
    stamps = [name for name, _ in json.loads((tmp_path / CLOCK_FILE).read_text())]
    assert [s for s in stamps if s in ("epoch_start", "val_start", "val_end", "epoch_end")] == [
        "epoch_start", "val_start", "val_end", "epoch_end"] * 2
    # torch and Lightning are imported before training starts: most of the start-up.
    assert run["phases"]["imports"] > run["phases"]["other start-up"]
    saved = json.loads((tmp_path / "result.json").read_text())
    assert run["test_acc"] == saved["metrics"]["test/acc"]
