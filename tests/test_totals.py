"""The training metrics' running sums: per-image means over the whole epoch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar
from torch import nn
from torchvision.datasets.mnist import read_image_file, read_label_file

from mnistlab.callbacks import ProgressBar
from mnistlab.models import CNN
from mnistlab.models.totals import TrainingTotals
from mnistlab.training import train


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


@pytest.mark.slow
def test_a_run_counts_every_training_image_of_the_epoch(make_cfg) -> None:
    result = train(make_cfg("trainer.limit_train_batches=null"))
    # The tiny set's 1,800 training images at batch 64: 29 steps, the last one of 8 images.
    # The accuracy is a count of images right out of all 1,800, the short batch included.
    right = result.metrics["train/acc"] * 1800
    assert abs(right - round(right)) < 0.01 and 0.5 < result.metrics["train/acc"] <= 1
    assert 0 < result.metrics["train/loss"] < 2.3
