"""Exact resume (data/resumable.py): a run killed with SIGKILL and resumed ends as one never
stopped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import BatchSampler, RandomSampler

from mnistlab.data.resumable import ResumableBatchSampler, rng_states
from tests.helpers import run_cli


@pytest.mark.parametrize("drop_last", [False, True])
def test_the_resumable_batches_are_random_samplers_batches(drop_last: bool) -> None:
    # Same batches and the same use of torch's global generator: runs shuffle as before. The
    # positions map through a Subset's indices as the Subset would map them.
    indices = torch.randperm(5000)[:1000]
    torch.manual_seed(3)
    expected = [[indices[b].tolist() for b in
                 BatchSampler(RandomSampler(range(1000)), 64, drop_last=drop_last)]
                for _ in range(2)]
    after_expected = torch.rand(1)
    torch.manual_seed(3)
    sampler = ResumableBatchSampler(1000, 64, drop_last=drop_last, indices=indices)
    assert [[batch.tolist() for batch in sampler] for _ in range(2)] == expected
    assert len(sampler) == len(expected[0]) == (15 if drop_last else 16)
    assert torch.equal(torch.rand(1), after_expected)


def test_a_sampler_resumes_partway_with_the_saved_seed_and_generators() -> None:
    torch.manual_seed(0)
    sampler = ResumableBatchSampler(100, 8)
    order = iter(sampler)
    first = torch.cat([next(order) for _ in range(5)]).tolist()
    assert len(set(first)) == 40
    state = {"seed": sampler.seed, "samples": 40, "epoch_done": False, "rng": rng_states()}
    rest, draws = torch.cat(list(order)).tolist(), torch.rand(3)
    torch.manual_seed(99)  # a new process, another generator state
    resumed = ResumableBatchSampler(100, 8)
    resumed._resume = state
    assert torch.cat(list(resumed)).tolist() == rest and set(first) | set(rest) == set(range(100))
    assert torch.equal(torch.rand(3), draws)  # the generators are back where they were


# mlp_dropout with affine augmentation: both draw random numbers on every step.
RUN = ["model=mlp_dropout", "augment=affine", "trainer=cpu", "trainer.max_epochs=3",
       "trainer.limit_train_batches=10", "trainer.limit_val_batches=2",
       "trainer.limit_test_batches=2", "trainer.enable_progress_bar=false",
       "trainer.deterministic=true", "data.batch_size=32", "callbacks.input_images=null",
       "callbacks.test_report=null"]


def outcome(folder: Path) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    metrics = json.loads((folder / "result.json").read_text())["metrics"]
    weights = torch.load(folder / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return {k: v for k, v in metrics.items() if not k.startswith("time/")}, weights


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir) -> tuple[dict, dict]:
    folder = tmp_path_factory.mktemp("uninterrupted")
    result = run_cli("train.py", *RUN, "callbacks.step_checkpoint.every_n_steps=4",
                     "hydra.run.dir=run", cwd=folder, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    return outcome(folder / "run")


@pytest.mark.slow
@pytest.mark.parametrize(("every", "kill_at", "saved_at"), [
    (4, 14, 12),    # last.ckpt from step 12, two batches into the second epoch
    (100, 13, 10),  # last.ckpt from the end of the first epoch
])
def test_sigkill_then_resume_ends_like_a_run_never_stopped(uninterrupted, every, kill_at,
                                                           saved_at, tmp_path,
                                                           data_dir) -> None:
    run = [*RUN, f"callbacks.step_checkpoint.every_n_steps={every}", "hydra.run.dir=run"]
    killed = run_cli("train.py", *run, "+callbacks.kill._target_=tests.helpers.KillAtStep",
                     f"+callbacks.kill.step={kill_at}", cwd=tmp_path, data_dir=data_dir)
    assert killed.returncode == -9  # SIGKILL: no handler ran, nothing was tidied up
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == saved_at
    resumed = run_cli("train.py", *run, f"ckpt_path={last}", cwd=tmp_path, data_dir=data_dir)
    assert resumed.returncode == 0, resumed.stderr
    metrics, weights = outcome(tmp_path / "run")
    expected_metrics, expected_weights = uninterrupted
    assert metrics == expected_metrics
    assert weights.keys() == expected_weights.keys()
    for key, value in expected_weights.items():
        assert torch.equal(weights[key], value), key
