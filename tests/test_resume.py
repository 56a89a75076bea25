"""What resume=<run folder> may change: trainer settings, never what the run trains."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from mnistlab.errors import ConfigError
from mnistlab.resume import resumed_config
from tests.helpers import compose


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A run folder as train.py leaves it: its config and a last.ckpt (not read here)."""
    folder = tmp_path / "run"
    (folder / ".hydra").mkdir(parents=True)
    (folder / "checkpoints").mkdir()
    OmegaConf.save(compose("model=mlp_bn", "~scheduler"), folder / ".hydra" / "config.yaml")
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    return folder


def test_the_runs_own_config_goes_on_with_new_trainer_settings(run: Path) -> None:
    cfg = resumed_config(OmegaConf.create({"resume": str(run)}),
                         ["trainer.max_epochs=7", "+trainer.max_time=00:01:00:00", "threads=1"])
    assert cfg.model._target_ == "mnistlab.models.MLPBatchNorm" and cfg.get("scheduler") is None
    assert (cfg.trainer.max_epochs, cfg.trainer.max_time, cfg.threads) == (7, "00:01:00:00", 1)
    assert (cfg.ckpt_path, cfg.resume) == (str(run / "checkpoints" / "last.ckpt"), str(run))


@pytest.mark.parametrize(("overrides", "message"), [
    (["model=cnn"], "goes on with the run's own config, but model=cnn would change what it "
                    "trains. Fix: drop them; trainer settings such as trainer.max_epochs may "
                    "change."),
    (["optimizer.lr=0.5", "seed=3"], "but optimizer.lr=0.5, seed=3 would change what it trains"),
])
def test_what_the_run_trains_may_not_change(run: Path, overrides, message) -> None:
    with pytest.raises(ConfigError) as err:
        resumed_config(OmegaConf.create({"resume": str(run)}), overrides)
    assert str(err.value).startswith(f"resume={run} ") and message in str(err.value)


def test_a_folder_without_a_run_or_without_last_ckpt_is_refused(run: Path, tmp_path) -> None:
    with pytest.raises(ConfigError, match=rf"resume={tmp_path}/nowhere is invalid: "
                                          rf"{tmp_path}/nowhere holds no run \(no \.hydra/"):
        resumed_config(OmegaConf.create({"resume": str(tmp_path / "nowhere")}), [])
    (run / "checkpoints" / "last.ckpt").unlink()
    with pytest.raises(ConfigError, match=r"the run saved no checkpoints/last\.ckpt to go on "
                                          r"from\. Fix: start it again without resume\."):
        resumed_config(OmegaConf.create({"resume": str(run)}), [])
