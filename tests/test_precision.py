"""``trainer.precision=auto`` (mnistlab.precision): bfloat16 mixed precision where training runs
on a CPU that computes bfloat16 natively, float32 elsewhere; result.json says which ran."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from mnistlab import precision
from mnistlab.internals import cpu_computes_bfloat16
from mnistlab.precision import chosen_precision, trains_on_cpu
from tests.helpers import run_cli
from tests.test_sweeps import SHORT


def trainer(**values: str) -> object:
    return OmegaConf.create({"precision": "auto", "accelerator": "auto"} | values)


@pytest.mark.parametrize("native", [True, False])
def test_auto_takes_bfloat16_only_where_the_cpu_computes_it(monkeypatch, native: bool) -> None:
    # The other kind of CPU than this one is only reachable by answering for it.
    monkeypatch.setattr(precision, "cpu_computes_bfloat16", lambda: native)
    assert chosen_precision(trainer(accelerator="cpu")) == ("bf16-mixed" if native else "32-true")
    assert chosen_precision(trainer(accelerator="gpu")) == "32-true"  # GPUs: float32
    for given in ("32-true", "bf16-mixed", "16-mixed", 64):
        assert chosen_precision(trainer(precision=given, accelerator="cpu")) == given


def test_auto_accelerator_trains_on_the_cpu_only_without_a_gpu() -> None:
    assert trains_on_cpu("auto") == (not torch.cuda.is_available()
                                     and not torch.backends.mps.is_available())
    assert trains_on_cpu("cpu") and not trains_on_cpu("gpu") and not trains_on_cpu("cuda")


@pytest.mark.slow
def test_the_default_command_records_the_precision_it_chose(tmp_path, data_dir) -> None:
    native = cpu_computes_bfloat16() and trains_on_cpu("auto")
    runs = {"auto": [], "float32": ["trainer.precision=32-true"],
            "preset": ["experiment=tutorial002_mlp_sigmoid"]}
    for name, extra in runs.items():
        result = run_cli("train.py", *SHORT, *extra, f"hydra.run.dir={name}", cwd=tmp_path,
                         data_dir=data_dir)
        assert result.returncode == 0, result.stderr
        saved = json.loads((tmp_path / name / "result.json").read_text())
        expected = "bf16-mixed" if name == "auto" and native else "32-true"
        assert saved["precision"] == expected, name
        said = (tmp_path / name / "train.log").read_text()
        assert ("precision: bf16-mixed (trainer.precision=auto" in said) == (expected !=
                                                                             "32-true"), name
