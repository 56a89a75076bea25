"""Checkpoints stand alone: plain data, the model rebuilt from them, evaluation reproduced."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from mnistlab.build import compose_config
from mnistlab.evaluation import evaluate
from mnistlab.loading import load_model
from mnistlab.training import train
from tests.helpers import CONF_DIR, TINY_TEST, TINY_VAL, small_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dir):
    """A short run of the deeper CNN that tests all 1,000 tiny test images; the tests here
    only read it, so it is trained once for all of them."""
    cfg = small_config(tmp_path_factory.mktemp("trained") / "run", tiny_dir, "model=cnn_deep",
                       "trainer.max_epochs=2", "trainer.limit_test_batches=null",
                       "augment=shift", "model.hidden=[64]")
    return cfg, train(cfg)


def eval_config(tmp_path: Path, tiny_dir: Path, checkpoint: str, *overrides: str):
    cfg = compose_config(CONF_DIR, [f"ckpt_path={checkpoint}", "trainer=cpu", "logger=csv",
                                    "trainer.enable_progress_bar=false", *overrides],
                         config_name="eval")
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / f"eval{len(list(tmp_path.iterdir()))}")
        cfg.paths.data_dir = str(tiny_dir)
    return cfg


def test_checkpoints_are_plain_data_that_rebuild_the_network(trained) -> None:
    cfg, result = trained
    for path in (result.best_checkpoint, Path(cfg.paths.output_dir) / "checkpoints/last.ckpt"):
        checkpoint = torch.load(path, weights_only=True)  # raises on any pickled object
        info = checkpoint["mnistlab"]
        assert info["config"]["model"]["hidden"] == [64]
        assert info["classes"] == [str(d) for d in range(10)]
        assert (info["normalize"], info["mean"], info["std"]) == (True, 0.1307, 0.3081)
    loaded = load_model(result.best_checkpoint)  # no model= or run folder needed
    assert type(loaded.model).__name__ == "CNNDeep" and not loaded.model.training
    state = torch.load(result.best_checkpoint, weights_only=True)["state_dict"]
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, state[key]), key
    pixels = torch.rand(4, 1, 28, 28)
    assert torch.equal(loaded.prepare(pixels), (pixels - 0.1307) / 0.3081)


def test_eval_reproduces_the_runs_test_and_validation_numbers_exactly(trained, tmp_path,
                                                                      tiny_dir) -> None:
    _, result = trained
    tested = evaluate(eval_config(tmp_path, tiny_dir, result.best_checkpoint))
    assert tested.images == TINY_TEST
    assert tested.metrics["test/acc"] == result.metrics["test/acc"]
    assert tested.metrics["test/loss"] == result.metrics["test/loss"]
    assert {f"test/acc_class/{d}" for d in range(10)} <= set(tested.metrics)
    validated = evaluate(eval_config(tmp_path, tiny_dir, result.best_checkpoint, "split=val"))
    assert validated.images == TINY_VAL
    assert validated.metrics["val/acc"] == pytest.approx(result.metrics["val/acc_best"])
    assert not [key for key in validated.metrics if key.startswith("test/")]


def test_eval_refuses_an_unknown_split(trained, tmp_path, tiny_dir) -> None:
    _, result = trained
    with pytest.raises(ValueError, match="split='train' is unknown; use split=test or split=val"):
        evaluate(eval_config(tmp_path, tiny_dir, result.best_checkpoint, "split=train"))


def test_checkpoints_are_renamed_into_place_whole(trained) -> None:
    cfg, _ = trained
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    assert (folder / "last.ckpt").is_file()
    assert not [p for p in folder.iterdir() if ".partial-" in p.name]
