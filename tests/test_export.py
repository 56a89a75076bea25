"""Exported networks run outside mnistlab: ONNX in onnxruntime, TorchScript in torch.jit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import open_dict

from mnistlab import export as exporting
from mnistlab.loading import held_out_pixels, load_model
from mnistlab.training import train
from tests.helpers import run_cli


@pytest.mark.slow
def test_export_command_writes_the_network_beside_its_checkpoint_and_checks_it(
        mnist_cnn, data_dir, tmp_path) -> None:
    copy = tmp_path / "checkpoints" / mnist_cnn.name
    copy.parent.mkdir()
    copy.write_bytes(mnist_cnn.read_bytes())
    result = run_cli("export.py", f"ckpt_path={copy}", "format=onnx", cwd=tmp_path,
                     data_dir=data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    written = copy.with_suffix(".onnx")
    assert f"written {written}" in result.stdout
    assert "checked on 10000 test images: predicted digits identical" in result.stdout
    card = json.loads(Path(f"{written}.json").read_text())
    assert card["format"] == "onnx" and card["input"]["shape"] == ["batch", 1, 28, 28]
    assert card["input"]["normalisation"] == "built in: (pixels - 0.1307) / 0.3081"
    assert card["classes"] == [str(d) for d in range(10)]


@pytest.mark.slow
def test_torchscript_export_runs_the_same_on_the_whole_test_set(mnist_cnn, data_dir,
                                                                 tmp_path) -> None:
    loaded = load_model(mnist_cnn)
    path = exporting.export(loaded, "torchscript", tmp_path / "cnn.torchscript.pt")
    checked = exporting.check(loaded, path, *held_out_pixels(loaded, str(data_dir)))
    assert checked.images == 10000 and checked.identical, checked
    assert json.loads(Path(f"{path}.json").read_text())["format"] == "torchscript"


@pytest.mark.slow
def test_export_refuses_an_unknown_format(tmp_path, data_dir) -> None:
    result = run_cli("export.py", "ckpt_path=any.ckpt", "format=tflite", cwd=tmp_path,
                     data_dir=data_dir)
    assert result.returncode == 2
    # Each entry point's messages are tested in test_checks.py; here one, as typed.
    assert result.stderr == ("Error: format='tflite' is invalid: it must be onnx or torchscript. "
                             "Fix: override it, e.g. `python export.py format=onnx`.\n")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cnn", "cnn_deep", "mlp_bn", "mlp_dropout", "mlp_sigmoid",
                                   "mlp_bn_dropout"])
def test_every_network_runs_the_same_in_onnxruntime_on_the_whole_test_set(
        model, make_cfg, data_dir, tmp_path) -> None:
    cfg = make_cfg(f"model={model}", "data._target_=mnistlab.data.MNISTDataModule")
    with open_dict(cfg):  # a few batches of the real files, so the test set is all 10,000
        cfg.paths.data_dir = str(data_dir)
    result = train(cfg)
    loaded = load_model(result.best_checkpoint)
    path = exporting.export(loaded, "onnx", tmp_path / f"{model}.onnx")
    checked = exporting.check(loaded, path, *held_out_pixels(loaded, str(data_dir)))
    assert checked.images == 10000 and checked.identical, checked
    assert checked.max_logit_difference < 1e-3


def test_a_flip_between_logits_tied_within_rounding_is_not_a_difference() -> None:
    expected = torch.tensor([[2.0, 1.0, 0.0], [1.0, 1.0 + 2e-7, 0.0], [0.0, 3.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    # The second image's top two logits are 2e-7 apart; the runtime's rounding (1e-7 here)
    # may order them either way. The third flips for real.
    exported = expected + torch.tensor([[1e-7, 0, 0], [1e-7, -1e-7, 0], [0, 0, 2.5]])
    checked = exporting.compare(expected, exported, labels)
    assert (checked.same_predictions, checked.ties) == (1, 1) and not checked.identical
    assert "DIFFERENT for 1" in exporting.report(checked)
    fine = exporting.compare(expected[:2], exported[:2], labels[:2])
    assert fine.identical and "identical but for 1 tie(s) within rounding" in exporting.report(fine)
