"""Each tutorial preset pins exactly what its tutorial used; the tuned presets compose too."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from mnistlab.build import build_model
from mnistlab.data import RandomAffine
from mnistlab.models import CNN, CNNDeep, MLPBatchNorm, MLPBatchNormDropout, MLPDropout, MLPSigmoid
from tests.helpers import CONF_DIR, compose

# preset: (network, its settings, init scheme or None for PyTorch's, optimizer class, lr,
#          batch size, drop_last, epochs, seed, reported), from the tutorials themselves
TUTORIALS = {
    "tutorial000_mlp_bn": (MLPBatchNorm, {"hidden": [32, 32]}, "xavier_uniform",
                           torch.optim.Adam, 0.01, 32, True, 10, 1, "83.04%"),
    "tutorial001_mlp_dropout": (MLPDropout, {"hidden": [512] * 4, "dropout": 0.3},
                                "xavier_uniform", torch.optim.Adam, 0.001, 100, True, 15, 1,
                                "97.91%"),
    "tutorial002_mlp_sigmoid": (MLPSigmoid, {"hidden": [20]}, None, torch.optim.SGD, 0.1, 100,
                                False, 17, 42, "none"),
    "tutorial003_cnn": (CNN, {}, "xavier_uniform", torch.optim.Adam, 0.001, 100, True, 15, 777,
                        "98.74%"),
    "tutorial003_cnn_deep": (CNNDeep, {"hidden": [625], "dropout": 0.5}, "xavier_uniform",
                             torch.optim.Adam, 0.001, 100, True, 15, 777, "98.38%"),
    "tutorial004_mlp_bn_dropout": (MLPBatchNormDropout, {"hidden": [512, 256], "dropout": 0.5},
                                   "kaiming_uniform", torch.optim.Adam, 0.01, 32, False, 10, 42,
                                   "none"),
}


def test_every_preset_file_is_covered() -> None:
    names = {p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")}
    assert names == set(TUTORIALS) | {"tuned_cnn", "tuned_cnn_deep"}


@pytest.mark.parametrize("preset", sorted(TUTORIALS))
def test_preset_pins_the_tutorials_values(preset: str) -> None:
    (network, settings, scheme, optimizer_cls, lr, batch, drop_last, epochs, seed,
     reported) = TUTORIALS[preset]
    cfg = compose(f"experiment={preset}")
    model = build_model(cfg)
    assert type(model) is network
    assert {k: list(model.hparams[k]) if k == "hidden" else model.hparams[k]
            for k in settings} == settings
    assert cfg.tutorial.id == preset[8:11] and cfg.tutorial.as_run is True
    assert cfg.tutorial.reported.startswith(reported)
    optimizer = model.configure_optimizers()
    assert type(optimizer) is optimizer_cls and optimizer.defaults["lr"] == lr
    assert optimizer.defaults["weight_decay"] == 0
    if optimizer_cls is torch.optim.SGD:
        assert optimizer.defaults["momentum"] == 0 and not optimizer.defaults["nesterov"]
    assert cfg.init.scheme == (scheme or "default")
    if scheme:  # the tutorials initialised Linear weights only and kept PyTorch's biases
        assert list(cfg.init.layers) == ["linear"] and cfg.init.zero_bias is False
    assert cfg.get("scheduler") is None and cfg.get("augment") is None
    assert model.hparams.label_smoothing == 0
    assert (cfg.data.batch_size, cfg.data.drop_last) == (batch, drop_last)
    assert cfg.data.normalize is False  # ToTensor's [0, 1] pixels only
    assert (cfg.trainer.max_epochs, cfg.seed) == (epochs, seed)


def test_preset_init_leaves_conv_layers_and_biases_at_pytorchs_default() -> None:
    cfg = compose("experiment=tutorial003_cnn")
    torch.manual_seed(0)
    preset = build_model(cfg)
    torch.manual_seed(0)
    default = CNN(channels_last=cfg.model.channels_last)
    assert torch.equal(preset.layer1[0].weight, default.layer1[0].weight)
    assert torch.equal(preset.fc.bias, default.fc.bias)
    assert not torch.equal(preset.fc.weight, default.fc.weight)


def test_command_line_overrides_a_preset() -> None:
    cfg = compose("experiment=tutorial003_cnn", "trainer.max_epochs=2", "seed=5")
    assert (cfg.trainer.max_epochs, cfg.seed, cfg.optimizer.lr) == (2, 5, 0.001)


@pytest.mark.parametrize("preset", ["tuned_cnn", "tuned_cnn_deep"])
def test_tuned_presets_keep_the_tutorial_network(preset: str) -> None:
    cfg = compose(f"experiment={preset}")
    model = build_model(cfg)
    reference = TUTORIALS["tutorial003_" + preset.removeprefix("tuned_")]
    assert type(model) is reference[0]
    assert {k: list(model.hparams[k]) for k in reference[1] if k == "hidden"} == {
        k: v for k, v in reference[1].items() if k == "hidden"}
    assert (cfg.tutorial.id, cfg.tutorial.as_run) == ("003", False)
    assert cfg.tutorial.reported == reference[-1]
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in reference[0]().parameters())
    assert cfg.data.normalize is True
    assert isinstance(instantiate(cfg.augment), RandomAffine)
    assert 0 < model.hparams.label_smoothing < 1
