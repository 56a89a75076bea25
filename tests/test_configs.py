"""Every config choice composes and instantiates; bad group choices get Hydra's message."""

from __future__ import annotations

import functools
import subprocess
import sys
from itertools import product

import lightning as L
import pytest
import torch
from hydra.errors import InstantiationException, MissingConfigException
from hydra.utils import instantiate

from mnistlab.data import MNISTDataModule
from mnistlab.models import MNISTClassifier, WeightInit
from tests.conftest import CONF_DIR, ROOT, compose_config


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


MODELS, OPTIMIZERS, INITS = choices("model"), choices("optimizer"), choices("init")


def test_groups_hold_the_documented_choices() -> None:
    assert sorted(["mlp_sigmoid", "mlp_bn", "mlp_dropout", "mlp_bn_dropout", "cnn",
                             "cnn_deep"]) == MODELS
    assert sorted(["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta",
                                 "adam", "adamw", "radam"]) == OPTIMIZERS
    assert sorted(["default", "xavier_uniform", "xavier_normal", "kaiming_uniform",
                            "kaiming_normal", "lecun_normal"]) == INITS
    assert choices("trainer") == ["cpu", "ddp", "debug", "default", "gpu"]


@pytest.mark.parametrize("model_name", MODELS)
def test_every_model_optimizer_init_combination_instantiates(model_name: str) -> None:
    for optimizer_name, init_name in product(OPTIMIZERS, INITS):
        cfg = compose_config([f"model={model_name}", f"optimizer={optimizer_name}",
                              f"init={init_name}"])
        optimizer = instantiate(cfg.optimizer)
        weight_init = instantiate(cfg.init)
        assert isinstance(optimizer, functools.partial)
        assert isinstance(weight_init, WeightInit)
        assert weight_init.scheme == init_name
        model = instantiate(cfg.model, optimizer=optimizer, weight_init=weight_init)
        assert isinstance(model, MNISTClassifier)
        built = model.configure_optimizers()
        assert isinstance(built, optimizer.func)
        assert built.defaults["lr"] == cfg.optimizer.lr


def test_data_config_instantiates(data_dir) -> None:
    cfg = compose_config([f"paths.data_dir={data_dir}"])
    datamodule = instantiate(cfg.data)
    assert isinstance(datamodule, MNISTDataModule)
    assert datamodule.hparams.batch_size == cfg.data.batch_size


@pytest.mark.parametrize("trainer_name", ["default", "cpu", "ddp", "debug"])
def test_trainer_configs_instantiate(trainer_name: str, tmp_path) -> None:
    cfg = compose_config([f"trainer={trainer_name}", f"paths.output_dir={tmp_path}"])
    trainer = instantiate(cfg.trainer, logger=False)
    assert isinstance(trainer, L.Trainer)
    if trainer_name == "debug":
        assert trainer.fast_dev_run


def test_gpu_trainer_config_instantiates_or_names_the_missing_gpu(tmp_path) -> None:
    cfg = compose_config(["trainer=gpu", f"paths.output_dir={tmp_path}"])
    if torch.cuda.is_available():
        assert instantiate(cfg.trainer, logger=False).num_devices == 1
    else:
        with pytest.raises(InstantiationException, match="No supported gpu backend"):
            instantiate(cfg.trainer, logger=False)


@pytest.mark.parametrize("logger_choice", ["tensorboard", "csv", "[tensorboard,csv]"])
def test_logger_and_callback_configs_instantiate(logger_choice: str, tmp_path) -> None:
    cfg = compose_config([f"logger={logger_choice}", f"paths.output_dir={tmp_path}"])
    loggers = [instantiate(c) for c in cfg.logger.values()]
    assert len(loggers) == logger_choice.count(",") + 1
    assert all(str(lg.save_dir).startswith(str(tmp_path)) for lg in loggers)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    assert {type(c).__name__ for c in callbacks} == {"ModelCheckpoint", "ModelSummary",
                                                     "EpochTimer"}


def test_unknown_group_choice_lists_the_available_ones() -> None:
    with pytest.raises(MissingConfigException) as err:
        compose_config(["model=resnet"])
    message = str(err.value)
    assert "resnet" in message
    for name in MODELS:
        assert name in message


def test_help_lists_groups_and_choices() -> None:
    result = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    for group, names in {"model": MODELS, "optimizer": OPTIMIZERS, "init": INITS}.items():
        line = next(x for x in result.stdout.splitlines() if x.startswith(f"{group}:"))
        assert all(name in line for name in names)
