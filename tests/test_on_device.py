"""Device-resident data: the decoded images stay on the training device and batches are gathered
there. No GPU here, so the same code runs with the device as a parameter (the CPU), and the
automatic choice is checked against a Trainer that reports a GPU."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from mnistlab.data.resumable import ResumableBatchSampler
from tests.helpers import TinyMNIST, quiet_trainer


class OnDevice(TinyMNIST):
    """The tiny set with the training device taken from ``device``, not from a Trainer."""

    device: torch.device | None = None

    def training_device(self) -> torch.device | None:
        return self.device


def datamodule(tiny_dir, device: str | None = None, **options) -> OnDevice:
    data = OnDevice(data_dir=tiny_dir, val_size=200, batch_size=64, eval_batch_size=100,
                    drop_last=True, **options)
    data.device = torch.device(device) if device else None
    data.setup()
    return data


def test_resident_batches_equal_the_in_memory_path(tiny_dir) -> None:
    host = datamodule(tiny_dir)
    resident = datamodule(tiny_dir, device="cpu", on_device=True)
    assert host.resident_device() is None and resident.resident_device() == torch.device("cpu")
    # The resident copy is a new tensor on the device; the host path keeps torchvision's.
    assert resident.train_set.dataset.images is not host.train_set.dataset.images
    for make in ("train_dataloader", "val_dataloader", "test_dataloader"):
        torch.manual_seed(0)  # the training loader shuffles with torch's global generator
        expected = list(getattr(host, make)())
        torch.manual_seed(0)
        got = list(getattr(resident, make)())
        assert len(got) == len(expected) > 0, make
        for (images, labels), (want_images, want_labels) in zip(got, expected, strict=True):
            assert torch.equal(images, want_images) and torch.equal(labels, want_labels), make
            assert images.dtype == torch.uint8 and images.device.type == "cpu"
    # drop_last still drops the short batch: 1,800 training images, batches of 64.
    assert len(expected) == 1000 // 100 and len(list(resident.train_dataloader())) == 1800 // 64


def test_a_gpu_run_keeps_the_images_on_the_gpu_unless_told_otherwise(tiny_dir) -> None:
    def choice(device: str, **options) -> tuple[torch.device | None, bool]:
        data = OnDevice(data_dir=tiny_dir, **options)
        data.device = torch.device(device)
        return data.resident_device(), data.pin_memory()

    gpu = torch.device("cuda:0")
    assert choice("cuda:0") == (gpu, False)  # on the GPU: nothing to pin
    assert choice("cuda:0", on_device=False) == (None, True)  # host memory: pinned
    assert choice("cuda:0", num_workers=2) == (None, True)  # workers cannot share GPU tensors
    assert choice("cuda:0", loader="torchvision") == (None, True)
    assert choice("cuda:0", pin_memory=False) == (gpu, False)
    assert choice("cpu") == (None, False)  # a CPU run reads host memory as it is
    assert choice("cpu", on_device=True) == (torch.device("cpu"), False)


def test_the_trainers_device_decides(tiny_dir) -> None:
    data = TinyMNIST(data_dir=tiny_dir)
    assert data.training_device() is None  # no Trainer: eval.py, export.py
    data.trainer = quiet_trainer()
    assert data.training_device() == torch.device("cpu") and data.resident_device() is None
    data.trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cuda", 1)))
    assert data.resident_device() == torch.device("cuda", 1)


def test_an_epochs_batch_indices_are_moved_to_the_images_device_once() -> None:
    """The order is made on the CPU (its seeded generator) and moved as one tensor; every batch
    is then a slice on the device. The meta device stands in for a GPU here."""
    torch.manual_seed(0)
    expected = [b.tolist() for b in ResumableBatchSampler(100, 32)]
    torch.manual_seed(0)
    batches = list(ResumableBatchSampler(100, 32, device=torch.device("meta")))
    assert [b.device.type for b in batches] == ["meta"] * 4
    assert [len(b) for b in batches] == [len(b) for b in expected]
