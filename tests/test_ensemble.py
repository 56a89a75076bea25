"""Ensembles: several checkpoints scored as the mean of their probabilities, on the tiny set;
members that do not fit together refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from mnistlab import export as exporting
from mnistlab.checkpoint_files import member_paths
from mnistlab.ensemble import evaluate_ensemble, load_ensemble
from mnistlab.ensemble import main as ensemble_table
from mnistlab.errors import CheckpointError
from mnistlab.loading import held_out_pixels
from mnistlab.prediction import predict_files
from mnistlab.summary import mean_std
from mnistlab.training import train
from tests.helpers import run_cli, small_config

pytestmark = pytest.mark.slow  # trains its members (about a second each)


@pytest.fixture(scope="module")
def members(tmp_path_factory, tiny_dir) -> list[Path]:
    """Two replicates of a small MLP, as a sweep's folder holds them: sweep/<job>/."""
    sweep = tmp_path_factory.mktemp("sweep")
    for job in range(2):
        # Float32, as the ensemble scores its members, so that each member's accuracy there
        # is its run's own test accuracy.
        cfg = small_config(sweep / f"{job}_replicate={job}", tiny_dir, "model=mlp_bn",
                           f"replicate={job}", "trainer.limit_test_batches=null",
                           "trainer.precision=32-true")
        result = train(cfg)
        (sweep / f"{job}_replicate={job}" / "result.json").write_text(json.dumps(
            {"status": "completed", "best_checkpoint": str(result.best_checkpoint),
             "metrics": result.metrics, "precision": "32-true"}))
    return member_paths(sweep)


def test_the_ensemble_averages_its_members_probabilities(members, tiny_dir) -> None:
    ensemble = load_ensemble(members)
    pixels, labels = held_out_pixels(ensemble.members[0], str(tiny_dir))
    each = [member.probabilities(pixels) for member in ensemble.members]
    assert not torch.equal(each[0], each[1])  # two different networks
    assert torch.allclose(ensemble.probabilities(pixels), (each[0] + each[1]) / 2)

    result = evaluate_ensemble(ensemble, str(tiny_dir), batch=300)
    assert result.images == len(labels) == 1000
    for path, probabilities in zip(members, each, strict=True):
        # Each member's accuracy is its own run's test accuracy on the same images.
        accuracy = (probabilities.argmax(dim=1) == labels).float().mean().item()
        assert result.members[str(path)] == pytest.approx(accuracy, abs=1e-6)
        run = json.loads((path.parent.parent / "result.json").read_text())
        assert result.members[str(path)] == pytest.approx(run["metrics"]["test/acc"], abs=1e-6)
    mean = (each[0] + each[1]) / 2
    assert result.ensemble == pytest.approx((mean.argmax(dim=1) == labels).float().mean().item(),
                                            abs=1e-6)


FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]


def test_a_member_with_other_inputs_is_refused(members, tmp_path, tiny_dir) -> None:
    odd = train(small_config(tmp_path / "odd", tiny_dir, "model=mlp_bn", "data.normalize=false"))
    with pytest.raises(CheckpointError) as refused:
        load_ensemble([members[0], odd.best_checkpoint])
    assert str(refused.value).startswith(
        f"{odd.best_checkpoint} does not fit with {members[0]}: its inputs are normalised "
        "differently (normalize=False, mean 0.1307, std 0.3081). Fix: leave it out")


def test_a_member_of_other_classes_is_refused(members, tmp_path) -> None:
    """A network of Fashion-MNIST's ten classes: the same shape, other meanings."""
    checkpoint = torch.load(members[1], weights_only=True)
    checkpoint["mnistlab"]["classes"] = FASHION
    torch.save(checkpoint, tmp_path / "fashion.ckpt")
    with pytest.raises(CheckpointError) as refused:
        load_ensemble([members[0], tmp_path / "fashion.ckpt"])
    assert str(refused.value) == (
        f"{tmp_path / 'fashion.ckpt'} does not fit with {members[0]}: its classes are "
        f"{FASHION}, not {[str(digit) for digit in range(10)]}. Fix: leave it out of the "
        "ensemble")


def test_eval_command_scores_a_sweep_folder_member_by_member_and_together(
        members, tmp_path, data_dir) -> None:
    sweep = members[0].parent.parent.parent
    result = run_cli("eval.py", f"ckpt_path={sweep}", "hydra.run.dir=ensemble", cwd=tmp_path,
                     data_dir=data_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "ensemble" / "result.json").read_text())
    assert list(record["members"]) == [str(path) for path in members]
    assert record["images"] == 10000
    said = result.stdout + result.stderr
    for path, accuracy in record["members"].items():
        assert f"{100 * accuracy:6.2f}%  {path}" in said
    assert f"{100 * record['ensemble']:6.2f}%  the ensemble of these 2" in said

    refused = run_cli("eval.py", f"ckpt_path={sweep}", "split=val", cwd=tmp_path,
                      data_dir=data_dir)
    assert refused.returncode == 2 and refused.stderr == (
        "Error: split=val with 2 checkpoints: an ensemble is scored on the test set, which all "
        "its members share. Fix: leave split out, or give one checkpoint.\n")


def test_an_ensemble_exports_to_onnx_that_answers_as_it_does(members, tmp_path,
                                                             tiny_dir) -> None:
    ensemble = load_ensemble(members)
    path = exporting.export(ensemble, "onnx", tmp_path / "ensemble.onnx")
    pixels, labels = held_out_pixels(ensemble.members[0], str(tiny_dir))
    checked = exporting.check(ensemble, path, pixels, labels)
    assert checked.images == 1000 and checked.identical, checked
    assert checked.accuracy == pytest.approx(evaluate_ensemble(ensemble, str(tiny_dir)).ensemble,
                                             abs=1e-6)
    card = json.loads(Path(f"{path}.json").read_text())
    assert card["checkpoint"] == [str(m) for m in members]
    assert card["model"].startswith("ensemble of 2 (MLPBatchNorm, MLPBatchNorm)")
    # Its output's softmax is the members' mean probability.
    softmax = exporting.run_exported(path, pixels[:50]).softmax(dim=1)
    assert torch.allclose(softmax, ensemble.probabilities(pixels[:50]), atol=1e-5)


def test_predict_classifies_with_the_ensemble(members, tmp_path, tiny_dir, data_dir) -> None:
    ensemble = load_ensemble(members)
    pixels, _ = held_out_pixels(ensemble.members[0], str(tiny_dir))
    Image.fromarray((pixels[0, 0] * 255).byte().numpy()).save(tmp_path / "digit.png")
    [prediction] = predict_files(ensemble, [tmp_path / "digit.png"], top=10)
    read = dict(prediction.top)
    assert sum(read.values()) == pytest.approx(1, abs=1e-3)
    sweep = members[0].parent.parent.parent
    said = run_cli("predict.py", f"ckpt_path={sweep}", f"inputs={tmp_path / 'digit.png'}",
                   cwd=tmp_path, data_dir=data_dir)
    assert said.returncode == 0, said.stderr[-3000:]
    row = said.stdout.splitlines()[1].split()
    assert row[1:3] == [prediction.label, f"{prediction.probability:.3f}"]


def test_the_ensemble_table_scores_each_sweeps_first_jobs(members, tmp_path, tiny_dir) -> None:
    sweep = members[0].parent.parent.parent
    page = tmp_path / "page.md"
    page.write_text("# Results\n\n<!-- table:ensembles -->\n<!-- /table:ensembles -->\n")
    ensemble_table([str(sweep), "--sizes", "1", "2", "--data-dir", str(tiny_dir), "--out",
                    str(tmp_path / "out"), "--page", str(page), "--command", "make ensembles"])
    text = page.read_text()
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| - |")]
    alone = evaluate_ensemble(load_ensemble(members[:1]), str(tiny_dir))
    both = evaluate_ensemble(load_ensemble(members), str(tiny_dir))
    first, second = (100 * acc for acc in both.members.values())
    assert [row[1:] for row in rows] == [
        ["32-true", "1", f"{first:.2f}%", f"{first:.2f}%", f"{100 * alone.ensemble:.2f}% |"],
        ["32-true", "2", mean_std(list(both.members.values())), f"{max(first, second):.2f}%",
         f"{100 * both.ensemble:.2f}% |"]]
    assert "Written by `make ensembles` at commit" in text
    with pytest.raises(SystemExit, match="has 2 completed jobs, not 3"):
        ensemble_table([str(sweep), "--sizes", "3", "--data-dir", str(tiny_dir), "--out",
                        str(tmp_path / "out")])
