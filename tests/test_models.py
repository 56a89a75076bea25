"""The tutorial networks: shapes, parameter counts, initialisation, modes and learning."""

from __future__ import annotations

import functools
import math

import lightning as L
import pytest
import torch
from torch import nn

from mnistlab.build import build_model
from mnistlab.models import CNN, CNNDeep, MNISTClassifier, WeightInit
from mnistlab.models.layers import conv_block
from tests.helpers import TINY_VAL, TinyMNIST, compose, quiet_trainer

# Parameter counts of the tutorials' networks, worked out from their layer shapes (tutorial
# 002's summary prints its 15,910).
PARAMETERS = {
    "mlp_sigmoid": 15_910,
    "mlp_bn": (784 * 32 + 32) + 2 * 32 + (32 * 32 + 32) + 2 * 32 + (32 * 10 + 10),
    "mlp_dropout": (784 * 512 + 512) + 3 * (512 * 512 + 512) + (512 * 10 + 10),
    "mlp_bn_dropout": (784 * 512 + 512) + 2 * 512 + (512 * 256 + 256) + 2 * 256 + 2570,
    "cnn": (9 * 32 + 32) + (9 * 32 * 64 + 64) + (3136 * 10 + 10),
    "cnn_deep": (9 * 32 + 32) + (9 * 32 * 64 + 64) + (9 * 64 * 128 + 128)
    + (2048 * 625 + 625) + (625 * 10 + 10),
}
ADAM = functools.partial(torch.optim.Adam, lr=1e-3)


def build(name: str, *overrides: str) -> MNISTClassifier:
    return build_model(compose(f"model={name}", *overrides))


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_output_shape_and_parameter_count(name: str) -> None:
    model = build(name)
    assert model(torch.rand(7, 1, 28, 28)).shape == (7, 10)
    assert sum(p.numel() for p in model.parameters()) == PARAMETERS[name]


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_output_layer_follows_the_datasets_classes(name: str) -> None:
    model = build(name, "data._target_=tests.helpers.ThreeClasses")
    assert model.hparams.num_classes == 3
    assert model.eval()(torch.rand(5, 1, 28, 28)).shape == (5, 3)


@pytest.mark.parametrize("name", ["mlp_sigmoid", "mlp_bn", "mlp_dropout", "mlp_bn_dropout",
                                  "cnn_deep"])
def test_hidden_widths_are_a_list_of_layers(name: str) -> None:
    model = build(name, "model.hidden=[24,12]")
    widths = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    assert widths == [24, 12, 10]
    with pytest.raises(ValueError, match=r"model.hidden=\[\] is invalid"):
        type(model)(hidden=[])


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_every_network_applies_the_configured_init(name: str) -> None:
    model = build(name, "init=xavier_uniform")
    layers = [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    assert layers
    for layer in layers:
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(layer.weight)
        assert layer.weight.abs().max() <= math.sqrt(6 / (fan_in + fan_out))
        assert torch.count_nonzero(layer.bias) == 0


def test_default_init_keeps_pytorch_biases_and_layers_option_limits_the_scheme() -> None:
    assert torch.count_nonzero(CNN(weight_init=WeightInit("default")).fc.bias) > 0
    model = CNN(weight_init=WeightInit("xavier_uniform", layers=["linear"]))
    assert torch.count_nonzero(model.fc.bias) == 0
    assert torch.count_nonzero(model.layer1[0].bias) > 0


def test_lecun_normal_has_unit_fan_in_variance() -> None:
    layer = nn.Linear(2000, 500)
    WeightInit("lecun_normal")(layer)
    assert layer.weight.std().item() == pytest.approx(1 / math.sqrt(2000), rel=0.02)


def test_unknown_init_scheme_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"init\.scheme=.glorot.*xavier_uniform"):
        WeightInit("glorot")


def test_eval_mode_turns_off_dropout_and_freezes_batchnorm() -> None:
    model = build("mlp_bn_dropout")
    x = torch.rand(64, 1, 28, 28)
    bn = model.hidden_layers[1]
    model.train()
    assert not torch.equal(model(x), model(x))  # dropout masks differ
    stats = bn.running_mean.clone()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    assert torch.equal(bn.running_mean, stats)  # eval uses, and does not update, the stats
    model.train()
    model(x)
    assert not torch.equal(bn.running_mean, stats)


class ModeRecorder(L.Callback):
    """Records whether every submodule was in training mode in each stage."""

    def __init__(self) -> None:
        self.modes: dict[str, set[bool]] = {"train": set(), "val": set()}

    def on_train_batch_start(self, trainer, pl_module, *args) -> None:
        self.modes["train"] |= {m.training for m in pl_module.modules()}

    def on_validation_batch_start(self, trainer, pl_module, *args) -> None:
        self.modes["val"] |= {m.training for m in pl_module.modules()}


def small_datamodule(tiny_dir, batch_size: int = 64) -> TinyMNIST:
    return TinyMNIST(data_dir=tiny_dir, batch_size=batch_size, eval_batch_size=TINY_VAL,
                     val_size=TINY_VAL)


def test_lightning_switches_train_and_eval_modes(tiny_dir) -> None:
    recorder = ModeRecorder()
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                            num_sanity_val_steps=0, callbacks=[recorder])
    trainer.fit(build("cnn_deep"), datamodule=small_datamodule(tiny_dir))
    assert recorder.modes == {"train": {True}, "val": {False}}


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow)
                                  if name.startswith("cnn") else name
                                  for name in sorted(PARAMETERS)])
def test_each_network_learns_on_real_mnist(name: str, tiny_dir) -> None:
    torch.manual_seed(0)
    datamodule = small_datamodule(tiny_dir)
    datamodule.setup("fit")
    images, labels = next(iter(datamodule.val_dataloader()))
    images = datamodule.batch_transform(images)  # loaders give uint8; the datamodule scales
    model = build(name)  # the default recipe: Adam peaking at lr 0.006

    def loss() -> float:
        model.eval()
        with torch.no_grad():
            value = nn.functional.cross_entropy(model(images), labels).item()
        model.train()
        return value

    before = loss()
    quiet_trainer(max_steps=30, limit_val_batches=0).fit(model, datamodule=datamodule)
    after = loss()
    assert after < 0.9 * before, (before, after)


def test_checkpoint_restores_the_same_network(tmp_path) -> None:
    model = CNNDeep(optimizer=ADAM, weight_init=WeightInit("kaiming_normal"), dropout=0.25)
    trainer = quiet_trainer(max_epochs=0)
    trainer.strategy.connect(model)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    restored = CNNDeep.load_from_checkpoint(path, weights_only=False)
    x = torch.rand(3, 1, 28, 28)
    assert restored.hparams.dropout == 0.25 and restored.hparams.hidden == (625,)
    assert torch.equal(model.eval()(x), restored.eval()(x))


def test_model_without_optimizer_says_how_to_give_one() -> None:
    with pytest.raises(ValueError, match="without an optimizer"):
        CNN().configure_optimizers()


@pytest.mark.parametrize("cls", [CNN, CNNDeep])
def test_channels_last_changes_the_layout_not_the_result(cls) -> None:
    torch.manual_seed(0)
    fast = cls(weight_init=WeightInit("kaiming_normal")).eval()
    torch.manual_seed(0)
    plain = cls(weight_init=WeightInit("kaiming_normal"), channels_last=False).eval()
    assert fast.layer1[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.layer1[0].weight.is_contiguous()
    images = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(fast(images), plain(images), atol=1e-5)


@pytest.mark.parametrize("bfloat16", [False, True])
@pytest.mark.parametrize("pool_padding", [0, 1])
def test_conv_block_computes_the_tutorials_conv_relu_pool_bit_for_bit(
        pool_padding: int, bfloat16: bool, tiny_dir) -> None:
    datamodule = small_datamodule(tiny_dir)
    datamodule.setup("fit")
    images = datamodule.batch_transform(next(iter(datamodule.val_dataloader()))[0])
    torch.manual_seed(0)
    block = conv_block(1, 32, pool_padding=pool_padding)
    conv = block[0]
    tutorial = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2, stride=2, padding=pool_padding))

    def outputs_and_gradients(net: nn.Module) -> tuple[torch.Tensor, ...]:
        inputs = images.clone().requires_grad_()
        conv.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            out = net(inputs)
        out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(1)))
        return out, inputs.grad, conv.weight.grad.clone(), conv.bias.grad.clone()

    ours, theirs = outputs_and_gradients(block), outputs_and_gradients(tutorial)
    out = ours[0]
    assert out.dtype == (torch.bfloat16 if bfloat16 else torch.float32)
    # Windows whose maximum is negative and windows with a positive one: both orders are seen.
    assert (out == 0).float().mean() > 0.05 and (out > 0).float().mean() > 0.05
    for a, b in zip(ours, theirs, strict=True):
        assert torch.equal(a, b)
