"""Every config choice composes and instantiates; bad group choices get Hydra's message."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
from hydra.errors import InstantiationException, MissingConfigException
from hydra.utils import instantiate
from omegaconf import OmegaConf, open_dict

from mnistlab.build import build_datamodule, build_model, build_trainer
from mnistlab.data import FashionMNISTDataModule, MNISTDataModule
from mnistlab.internals import cpu_computes_bfloat16
from mnistlab.models import MNISTClassifier, WeightInit
from tests.helpers import CONF_DIR, compose


def choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


MODELS, OPTIMIZERS, INITS = choices("model"), choices("optimizer"), choices("init")


def test_groups_hold_the_documented_choices() -> None:
    assert sorted(["mlp_sigmoid", "mlp_bn", "mlp_dropout", "mlp_bn_dropout", "cnn",
                   "cnn_deep"]) == MODELS
    assert sorted(["default", "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta",
                   "adam", "adamw", "radam"]) == OPTIMIZERS
    assert sorted(["default", "tutorial", "xavier_uniform", "xavier_normal", "kaiming_uniform",
                   "kaiming_normal", "lecun_normal"]) == INITS
    assert choices("trainer") == ["cpu", "ddp", "debug", "default", "gpu"]


def test_every_model_init_and_optimizer_instantiates() -> None:
    # Each choice is composed once, as the command line would; every init is then applied to
    # every network (inits depend on the layers), and every optimizer built for two networks.
    models = {name: compose(f"model={name}").model for name in MODELS}
    optimizers = {name: compose(f"optimizer={name}").optimizer for name in OPTIMIZERS}
    inits = {name: compose(f"init={name}").init for name in INITS}
    cfg = compose("~scheduler")  # the optimizer alone: a schedule needs a Trainer's step count
    combinations = [(m, "adam", i) for m in MODELS for i in INITS]
    combinations += [(m, o, "default") for m in ("mlp_bn", "cnn") for o in OPTIMIZERS]
    for model_name, optimizer_name, init_name in combinations:
        with open_dict(cfg):
            cfg.model, cfg.optimizer = models[model_name], optimizers[optimizer_name]
            cfg.init = inits[init_name]
        model = build_model(cfg)
        assert isinstance(model, MNISTClassifier)
        assert isinstance(model.optimizer_factory, functools.partial)
        assert isinstance(model.weight_init, WeightInit)
        assert model.weight_init.scheme == cfg.init.scheme
        built = model.configure_optimizers()
        assert isinstance(built, model.optimizer_factory.func)
        assert built.defaults["lr"] == cfg.optimizer.lr


def _file_values(group: str, choice: str) -> dict:
    """A choice's own values: its file over the files its defaults list names in its group."""
    raw = OmegaConf.load(CONF_DIR / group / f"{choice}.yaml")
    values: dict = {}
    for parent in raw.get("defaults") or []:
        if parent != "_self_":
            values |= _file_values(group, parent)
    return values | {k: v for k, v in raw.items() if k != "defaults"}


@pytest.mark.parametrize("schedule", [[], ["~scheduler"], ["scheduler=cosine"]])
def test_every_optimizer_choice_trains_at_its_own_files_lr(schedule: list[str]) -> None:
    for choice in OPTIMIZERS:
        own = _file_values("optimizer", choice)
        composed = compose(f"optimizer={choice}", *schedule).optimizer
        assert (composed._target_, composed.lr) == (own["_target_"], own["lr"]), choice
    # The default run's lr belongs to the default choice alone.
    assert compose().optimizer.lr == _file_values("optimizer", "default")["lr"] == 0.006
    assert compose("optimizer=adam").optimizer.lr == 0.001


@pytest.mark.parametrize("primary", ["train", "eval", "predict", "demo", "export"])
def test_no_top_level_key_overrides_a_groups_choice(primary: str) -> None:
    # A top-level key named like a group (optimizer: {lr: ...}) would silently override every
    # choice of that group; a choice's values belong in its own file.
    groups = {p.name for p in CONF_DIR.iterdir() if p.is_dir()} - {"hydra"}
    keys = set(OmegaConf.load(CONF_DIR / f"{primary}.yaml")) - {"defaults", "hydra"}
    assert not keys & groups


@pytest.mark.parametrize(("choice", "cls", "mean"), [("mnist", MNISTDataModule, 0.1307),
                                                      ("fashion_mnist", FashionMNISTDataModule,
                                                       0.2860)])
def test_data_configs_instantiate(choice: str, cls: type, mean: float) -> None:
    cfg = compose(f"data={choice}", "augment=shift")
    datamodule = build_datamodule(cfg)
    assert type(datamodule) is cls and datamodule.mean == mean
    # Fashion-MNIST takes MNIST's split and batch settings from data/mnist.yaml.
    assert (datamodule.hparams.batch_size, datamodule.hparams.val_size) == (128, 5000)
    assert datamodule.augment is not None and datamodule.augment.shift == 2.0


@pytest.mark.parametrize("trainer_name", ["default", "cpu", "ddp", "debug"])
def test_trainer_configs_instantiate(trainer_name: str, tmp_path) -> None:
    cfg = compose(f"trainer={trainer_name}", f"paths.output_dir={tmp_path}")
    trainer = build_trainer(cfg, logger=False)
    assert isinstance(trainer, L.Trainer)
    assert trainer.fast_dev_run is (trainer_name == "debug")
    assert {type(c).__name__ for c in trainer.callbacks} >= {"ModelCheckpoint", "ModelSummary",
                                                             "EpochTimer"}


def test_common_trainer_arguments_need_no_plus(tmp_path) -> None:
    cfg = compose("trainer=cpu", "trainer.limit_train_batches=0.1", "trainer.limit_val_batches=3",
                  "trainer.check_val_every_n_epoch=2", "trainer.gradient_clip_val=0.5",
                  "trainer.accumulate_grad_batches=2", "trainer.enable_progress_bar=false",
                  "trainer.precision=bf16-mixed", f"paths.output_dir={tmp_path}")
    trainer = build_trainer(cfg, logger=False)
    assert (trainer.limit_train_batches, trainer.limit_val_batches) == (0.1, 3)
    assert (trainer.check_val_every_n_epoch, trainer.gradient_clip_val) == (2, 0.5)
    assert trainer.accumulate_grad_batches == 2 and trainer.progress_bar_callback is None
    assert trainer.precision == "bf16-mixed"


def test_trainer_defaults_are_lightnings_own(tmp_path) -> None:
    cfg = compose("trainer=cpu", f"paths.output_dir={tmp_path}", "~logger", "~callbacks")
    ours = build_trainer(cfg)
    lightning = L.Trainer(accelerator="cpu", devices=1, max_epochs=cfg.trainer.max_epochs,
                          logger=False, deterministic="warn", log_every_n_steps=50)
    for key in ("limit_train_batches", "limit_val_batches", "limit_test_batches",
                "val_check_interval", "check_val_every_n_epoch", "num_sanity_val_steps",
                "gradient_clip_val", "accumulate_grad_batches", "max_steps", "num_nodes",
                "fast_dev_run"):
        assert getattr(ours, key) == getattr(lightning, key), key
    # precision=auto, Lightning's own 32-true where the CPU lacks native bfloat16
    assert ours.precision == ("bf16-mixed" if cpu_computes_bfloat16() else lightning.precision)


def test_gpu_trainer_config_instantiates_or_names_the_missing_gpu(tmp_path) -> None:
    cfg = compose("trainer=gpu", f"paths.output_dir={tmp_path}")
    if torch.cuda.is_available():
        assert build_trainer(cfg, logger=False).num_devices == 1
    else:
        with pytest.raises(InstantiationException, match="No supported gpu backend"):
            build_trainer(cfg, logger=False)


@pytest.mark.parametrize("logger_choice", ["tensorboard", "csv", "[tensorboard,csv]"])
def test_logger_configs_instantiate(logger_choice: str, tmp_path) -> None:
    cfg = compose(f"logger={logger_choice}", f"paths.output_dir={tmp_path}")
    loggers = [instantiate(c) for c in cfg.logger.values()]
    assert len(loggers) == logger_choice.count(",") + 1
    assert all(str(lg.save_dir).startswith(str(tmp_path)) for lg in loggers)


def test_unknown_group_choice_lists_the_available_ones() -> None:
    with pytest.raises(MissingConfigException) as err:
        compose("model=resnet")
    message = str(err.value)
    assert "resnet" in message
    for name in MODELS:
        assert name in message
