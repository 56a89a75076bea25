"""averaging=ema: validation, the checkpoints and the reported test accuracy use the average."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.datasets.mnist import read_image_file, read_label_file

from mnistlab.checkpoint_files import read_checkpoint
from mnistlab.loading import load_model
from mnistlab.training import train


@pytest.mark.slow
def test_the_reported_test_accuracy_is_the_averaged_checkpoints(make_cfg, tiny_dir: Path
                                                                ) -> None:
    result = train(make_cfg("averaging=ema", "averaging.decay=0.9", "trainer.max_epochs=2",
                            "trainer.limit_train_batches=10"))
    checkpoint = read_checkpoint(result.best_checkpoint)
    averaged, trained = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert not torch.equal(averaged["fc.weight"], trained["fc.weight"])

    # The test stage saw the first 2 batches of 100 test images: score them with the
    # checkpoint as eval.py and predict.py load it (its state_dict: the averaged weights).
    raw = tiny_dir / "MNIST" / "raw"
    images = read_image_file(str(raw / "t10k-images-idx3-ubyte"))[:200].unsqueeze(1) / 255
    labels = read_label_file(str(raw / "t10k-labels-idx1-ubyte"))[:200]
    loaded = load_model(result.best_checkpoint)
    with torch.no_grad():
        accuracy = (loaded.model(loaded.prepare(images)).argmax(1) == labels).float().mean()
    assert result.metrics["test/acc"] == accuracy.item()
