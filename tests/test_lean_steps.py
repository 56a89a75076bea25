"""What keeps a training step lean: running-sum metrics, a throttled progress bar, a free
profiler and callback hooks Lightning skips; and that old checkpoints still load."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback, RichProgressBar
from lightning.pytorch.profilers import SimpleProfiler
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy
from torchvision.datasets.mnist import read_image_file, read_label_file

from mnistlab.build import (
    STEP_HOOKS,
    build_datamodule,
    build_model,
    build_trainer,
    skip_empty_step_hooks,
)
from mnistlab.callbacks import ProgressBar
from mnistlab.models import CNN
from mnistlab.models.totals import TrainingTotals
from mnistlab.profiler import NoProfiler
from mnistlab.training import train
from tests.helpers import compose


@pytest.fixture(scope="module")
def batches(data_dir: Path) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Logits of an untrained CNN for the first 300 training images, in batches of 64 and
    a short last one, with their labels and mean losses."""
    raw = data_dir / "MNIST" / "raw"
    images = read_image_file(str(raw / "train-images-idx3-ubyte"))[:300]
    labels = read_label_file(str(raw / "train-labels-idx1-ubyte"))[:300]
    torch.manual_seed(0)
    model = CNN(optimizer=None)
    with torch.no_grad():
        logits = model(images.unsqueeze(1).float() / 255)
    return [(nn.functional.cross_entropy(logits[i:i + 64], labels[i:i + 64]),
             logits[i:i + 64], labels[i:i + 64]) for i in range(0, 300, 64)]


@pytest.mark.parametrize("fold_every", [1, 2, 64])
def test_totals_give_the_per_image_mean_loss_and_accuracy(batches, fold_every: int) -> None:
    totals = TrainingTotals(fold_every=fold_every)
    for loss, logits, labels in batches:
        totals.update(loss, logits, labels)
    logits = torch.cat([b[1] for b in batches])
    labels = torch.cat([b[2] for b in batches])
    computed = totals.compute()
    assert int(totals.count) == 300  # the short last batch (44 images) counts by its size
    assert computed["loss"].item() == pytest.approx(
        nn.functional.cross_entropy(logits, labels).item(), rel=1e-6)
    assert computed["acc"].item() == pytest.approx(
        (logits.argmax(1) == labels).float().mean().item())
    totals.reset()
    assert int(totals.count) == 0 and int(totals.correct) == 0


def test_checkpoints_with_the_former_training_metrics_still_load(batches) -> None:
    """Before TrainingTotals, the training metrics were a MeanMetric of batch losses and a
    micro-averaged MulticlassAccuracy; their states are converted, not refused."""
    loss_metric = MeanMetric(nan_strategy="disable")
    accuracy = MulticlassAccuracy(10, average="micro", validate_args=False)
    totals = TrainingTotals()
    for loss, logits, labels in batches[:-1]:  # equal batches: mean of batch means is exact
        loss_metric.update(loss)
        accuracy.update(logits.argmax(dim=1), labels)
        totals.update(loss, logits, labels)
    model = CNN(optimizer=None)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("train_totals.")}
    for name, metric in (("train_loss", loss_metric), ("train_acc", accuracy)):
        metric.persistent(True)
        state |= {f"{name}.{k}": v for k, v in metric.state_dict().items()}
    model.load_state_dict(state)  # strict: no unexpected or missing keys
    loaded, expected = model.train_totals.state_dict(), totals.state_dict()
    assert int(loaded["count"]) == int(expected["count"]) == 256
    assert int(loaded["correct"]) == int(expected["correct"])
    assert loaded["loss_sum"].item() == pytest.approx(expected["loss_sum"].item(), rel=1e-6)


def test_progress_bar_updates_a_few_times_a_second_and_on_the_last_batch(monkeypatch) -> None:
    updates: list[int] = []
    monkeypatch.setattr(RichProgressBar, "on_train_batch_end",
                        lambda self, trainer, module, outputs, batch, i: updates.append(i))
    monkeypatch.setattr(ProgressBar, "total_train_batches", 100)
    clock = iter([0.0, 0.01, 0.05, 0.11, 0.12, 0.3, 0.31])
    monkeypatch.setattr("mnistlab.callbacks.time.monotonic", lambda: next(clock))
    bar = ProgressBar(refresh_per_second=10)
    for i in (0, 1, 2, 3, 4, 5, 99):
        bar.on_train_batch_end(None, None, None, None, i)
    # 0 s: shown; 0.01 and 0.05: too soon; 0.11: shown; 0.12: too soon; 0.3: shown;
    # 0.31: too soon, but the epoch's last batch.
    assert updates == [0, 3, 5, 99]


def test_no_profiler_by_default_and_lightnings_on_request(tmp_path) -> None:
    default = build_trainer(compose("trainer=cpu", f"paths.output_dir={tmp_path}"))
    assert isinstance(default.profiler, NoProfiler)
    with default.profiler.profile("anything") as entered:
        assert entered is None
    simple = build_trainer(compose("trainer=cpu", "trainer.profiler=simple",
                                   f"paths.output_dir={tmp_path}"))
    assert isinstance(simple.profiler, SimpleProfiler)


class CountingCallback(Callback):
    """Implements one step hook; the others stay Callback's empty defaults."""

    def __init__(self) -> None:
        self.ends = 0

    def on_train_batch_end(self, *args) -> None:
        self.ends += 1


class CountingCNN(CNN):
    """Implements one step hook of the LightningModule; the others stay empty."""

    backwards = 0

    def on_after_backward(self) -> None:
        CountingCNN.backwards += 1


def test_empty_step_hooks_are_skipped_and_the_others_still_run(make_cfg) -> None:
    """A hook a callback or the module does not implement is None on it (Lightning skips it);
    one it does implement still runs at every step."""
    cfg = make_cfg("trainer.max_epochs=1", "trainer.limit_train_batches=5",
                   "trainer.limit_val_batches=1", "trainer.limit_test_batches=1")
    counting = CountingCallback()
    trainer = build_trainer(cfg)
    trainer.callbacks.append(skip_empty_step_hooks(counting))
    assert [h for h in STEP_HOOKS if getattr(counting, h) is None] == [
        h for h in STEP_HOOKS if h != "on_train_batch_end"]
    # Without a step or time interval, ModelCheckpoint's batch hook never saves: skipped.
    checkpoint = trainer.checkpoint_callback
    assert checkpoint.on_train_batch_end is None and checkpoint.on_before_backward is None
    built = build_model(cfg)
    model = skip_empty_step_hooks(CountingCNN(**built.hparams, optimizer=built.optimizer_factory))
    assert [h for h in STEP_HOOKS if getattr(model, h) is None] == [
        h for h in STEP_HOOKS if h != "on_after_backward"]
    trainer.fit(model, datamodule=build_datamodule(cfg))
    assert counting.ends == 5 and CountingCNN.backwards == 5


def test_a_step_interval_checkpoint_keeps_its_batch_hook(make_cfg, tmp_path) -> None:
    cfg = make_cfg("trainer.max_epochs=1", "trainer.limit_train_batches=4",
                   "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
                   "+callbacks.step_saver._target_=lightning.pytorch.callbacks.ModelCheckpoint",
                   f"+callbacks.step_saver.dirpath={tmp_path}",
                   "+callbacks.step_saver.every_n_train_steps=2",
                   "+callbacks.step_saver.save_top_k=-1")
    trainer = build_trainer(cfg)
    saver = next(c for c in trainer.checkpoint_callbacks if c.dirpath == str(tmp_path))
    assert callable(saver.on_train_batch_end)
    trainer.fit(build_model(cfg), datamodule=build_datamodule(cfg))
    # Lightning's default names: epoch=0-step=2.ckpt (the saves at steps 2 and 4).
    assert {"epoch=0-step=2.ckpt", "epoch=0-step=4.ckpt"} <= {p.name for p in tmp_path.iterdir()}


def test_a_run_counts_every_training_image_of_the_epoch(make_cfg, monkeypatch) -> None:
    frozen: list[int] = []  # objects set aside from garbage collection while training
    monkeypatch.setattr(ProgressBar, "on_train_start",
                        lambda self, *args: frozen.append(gc.get_freeze_count()))
    result = train(make_cfg("trainer.limit_train_batches=null", "trainer.enable_progress_bar=true"))
    assert frozen and frozen[0] > 100_000 and gc.get_freeze_count() == 0
    # The tiny set's 1,800 training images at batch 64: 29 steps, the last one of 8 images.
    # The accuracy is a count of images right out of all 1,800, the short batch included.
    right = result.metrics["train/acc"] * 1800
    assert abs(right - round(right)) < 0.01 and 0.5 < result.metrics["train/acc"] <= 1
    assert 0 < result.metrics["train/loss"] < 2.3


def test_the_running_hooks_name_skips_module_bookkeeping_and_nothing_else_does() -> None:
    model = CNN()
    model._current_fx_name = "training_step"  # written ~30 times a step by Lightning
    assert vars(model)["_current_fx_name"] == "training_step"
    assert "_current_fx_name" not in dict(model.named_buffers())
    model.probe = nn.Linear(2, 2)  # other attributes still go through nn.Module
    model.scale = nn.Parameter(torch.ones(()))
    assert "probe" in dict(model.named_children()) and "scale" in dict(model.named_parameters())
