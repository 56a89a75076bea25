"""What TensorBoard shows, read back from the event files: HPARAMS, curves, images, figures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from torchvision.datasets.mnist import read_label_file

from mnistlab.callbacks import EvaluationReport
from mnistlab.hparams import METRICS
from mnistlab.sweeps import SWEEP_KEYS_ENV, job_name
from mnistlab.training import train

FIGURES_ON = ["callbacks.input_images={_target_:mnistlab.callbacks.InputImages,count:16}",
              "callbacks.test_report.misclassified=16",
              "callbacks.test_report.confusion_matrix=true"]


def events(run_dir: str) -> EventAccumulator:
    accumulator = EventAccumulator(str(Path(run_dir) / "tensorboard"),
                                   size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def hparams_entry(accumulator: EventAccumulator
                  ) -> tuple[list[str], dict[str, object], set[str]]:
    """The HPARAMS entry's metric tags, hyperparameter values, and those marked as varied."""
    content = accumulator.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/experiment"]).experiment
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    values = {name: value.string_value or value.number_value
              for name, value in start.hparams.items()}
    differs = {info.name for info in experiment.hparam_infos if info.differs}
    return [m.name.tag for m in experiment.metric_infos], values, differs


@pytest.mark.slow
def test_a_run_shows_hparams_learning_rate_images_and_per_class_accuracy(make_cfg,
                                                                          tiny_dir) -> None:
    cfg = make_cfg("model=mlp_sigmoid", "scheduler=onecycle", "optimizer.lr=0.02",
                   "trainer.max_epochs=2", *FIGURES_ON)
    result = train(cfg)
    accumulator = events(cfg.paths.output_dir)
    metrics, values, differs = hparams_entry(accumulator)
    assert metrics == list(METRICS)
    # What the command line set comes first in TensorBoard's table.
    assert differs == {"model", "scheduler", "lr", "max_epochs"}
    assert {k: values[k] for k in ("model", "optimizer", "scheduler", "init", "augment",
                                   "preset", "lr", "batch_size", "max_epochs", "seed")} == {
        "model": "mlp_sigmoid", "optimizer": "default", "scheduler": "onecycle",
        "init": "default", "augment": "none", "preset": "none", "lr": pytest.approx(0.02),
        "batch_size": 128, "max_epochs": 2, "seed": 42}
    scalars = accumulator.Tags()["scalars"]
    assert set(METRICS) <= set(scalars)  # the declared metrics are logged, so the table fills
    # One rate per optimizer step (log_every_n_steps=1), rising to the peak, then falling.
    rates = [event.value for event in accumulator.Scalars("train/lr")]
    assert len(rates) == 8 and max(rates) == pytest.approx(0.02) and rates[-1] < rates[0]
    assert set(accumulator.Tags()["images"]) == {"images/train_inputs",
                                                 "images/test_misclassified",
                                                 "figures/test_confusion_matrix"}
    # Per-class accuracy, weighted by how many test images of each class were tested (the
    # first 200 of the tiny set), is the overall accuracy.
    labels = read_label_file(str(tiny_dir / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"))[:200]
    per_class = [accumulator.Scalars(f"test/acc_class/{digit}")[-1].value for digit in range(10)]
    counts = torch.bincount(labels, minlength=10).tolist()
    assert sum(a * n for a, n in zip(per_class, counts, strict=True)) / 200 == pytest.approx(
        result.metrics["test/acc"], abs=1e-5)


def test_without_a_schedule_or_figures_none_are_written(make_cfg) -> None:
    cfg = make_cfg("model=mlp_sigmoid", "callbacks.test_report.per_class=false")
    train(cfg)
    accumulator = events(cfg.paths.output_dir)
    assert accumulator.Tags()["images"] == []
    assert not [tag for tag in accumulator.Tags()["scalars"]
                if tag == "train/lr" or "acc_class" in tag]


class FakeModule:
    test_prefix = "test"

    def __init__(self) -> None:
        self.logged: dict[str, float] = {}
        self.device = torch.device("cpu")

    def log_dict(self, values, **options) -> None:
        self.logged |= {k: float(v) for k, v in values.items()}


def test_test_report_keeps_only_misclassified_digits_and_counts_per_class() -> None:
    trainer = type("T", (), {"datamodule": type("D", (), {"classes": ["a", "b", "c"]})(),
                             "global_rank": 0, "loggers": []})()
    report, module = EvaluationReport(misclassified=3), FakeModule()
    report.on_test_epoch_start(trainer, module)
    labels = torch.tensor([0, 1, 2, 2, 1, 0])
    guesses = torch.tensor([0, 2, 2, 1, 0, 0])  # three wrong, at positions 1, 3 and 4
    images = torch.arange(6.0).view(6, 1, 1, 1)
    logits = torch.nn.functional.one_hot(guesses, 3).float()
    report.on_test_batch_end(trainer, module, {"logits": logits}, (images, labels), 0)
    assert [(float(img), true, guess) for img, true, guess in report._wrong] == [
        (1.0, 1, 2), (3.0, 2, 1), (4.0, 1, 0)]
    report.on_test_epoch_end(trainer, module)
    assert module.logged == {"test/acc_class/a": 1.0, "test/acc_class/b": 0.0,
                             "test/acc_class/c": 0.5}


def test_job_names_carry_the_swept_values(monkeypatch) -> None:
    monkeypatch.setenv(SWEEP_KEYS_ENV, "model,optimizer.lr")
    overrides = ["model=cnn", "optimizer.lr=0.01", "trainer.max_epochs=1", "hydra.verbose=true"]
    assert job_name(3, overrides) == "3_model=cnn,optimizer.lr=0.01"
    monkeypatch.setenv(SWEEP_KEYS_ENV, "model.hidden")
    assert job_name(0, ["model.hidden=[32,32]"]) == "0_model.hidden=_32,32_"
    monkeypatch.setenv(SWEEP_KEYS_ENV, "")
    assert job_name(5, ["model=cnn"]) == "5"
    monkeypatch.delenv(SWEEP_KEYS_ENV)  # another launcher: every override of the job
    assert job_name(1, ["model=cnn", "seed=3"]) == "1_model=cnn,seed=3"


def test_long_job_names_are_shortened_but_stay_distinct(monkeypatch) -> None:
    keys = ["optimizer.weight_decay", "model.label_smoothing", "data.batch_size",
            "trainer.max_epochs", "model.dropout"]
    monkeypatch.setenv(SWEEP_KEYS_ENV, ",".join(keys))
    short = job_name(2, ["optimizer.weight_decay=0.0001", "data.batch_size=64"])
    assert short == "2_optimizer.weight_decay=0.0001,data.batch_size=64"
    shortened = job_name(2, ["optimizer.weight_decay=0.0001", "data.batch_size=64",
                             "model.label_smoothing=0.1"])
    assert shortened == "2_weight_decay=0.0001,batch_size=64,label_smoothing=0.1"
    names = {job_name(7, [f"{k}={v}" for k in keys]) for v in ("0.1", "0.2")}
    assert len(names) == 2
    assert all(name.startswith("7_weight_decay=0.") and len(name) <= 62 for name in names)
