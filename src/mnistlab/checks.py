"""Every check of a composed config, run before anything trains or writes a file.

Torch and Lightning would reject most of these values too, but only after the run folder, the
loggers and the data download have started, with messages that do not name the config key; the
rest (several keys together, the machine, a checkpoint) surfaced only after a whole run (zero
training batches, a metric no run logs), as a hang (64 processes on a 2-core machine) or as a
raw traceback. Each raises ConfigError naming the key, the value and the fix. One module for
all of them, so that a reader finds every rule in one place (hence its length).

Hydra runs these checks before the entry point imports torch and Lightning (about 6 s), so a
refused value answers at once; the checks that need them (devices, a checkpoint, the model's
own arguments) import them when they are reached.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf

from mnistlab.checkpoint_files import inspect_checkpoint, member_paths, trained_so_far
from mnistlab.errors import CheckpointError, ConfigError, exit_with
from mnistlab.resume import fixed_changes

# How MNISTDataModule may hold the images, and the official training set's size (MNIST and
# Fashion-MNIST alike), known here without loading torch.
LOADERS = ("memory", "torchvision")
TRAIN_IMAGES = 60000
# What export.py writes (mnistlab.export).
EXPORT_FORMATS = ("onnx", "torchscript")


@dataclass(frozen=True)
class Rule:
    """One checked key: ``ok`` says whether a value works, the other fields word the error."""

    key: str
    ok: Callable[[Any], bool]
    requirement: str
    example: str


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_widths(value: Any) -> bool:
    return (isinstance(value, list | tuple | ListConfig) and len(value) > 0
            and all(_is_int(v) and v >= 1 for v in value))


RULES = (
    Rule("seed", lambda v: _is_int(v) and v >= 0, "an integer >= 0", "seed=42"),
    Rule("optimizer.lr", lambda v: _is_number(v) and math.isfinite(v) and v > 0,
         "a finite number > 0", "optimizer.lr=0.001"),
    Rule("optimizer.weight_decay", lambda v: _is_number(v) and math.isfinite(v) and v >= 0,
         "a finite number >= 0", "optimizer.weight_decay=0.0001"),
    Rule("data.num_workers", lambda v: _is_int(v) and v >= 0, "an integer >= 0",
         "data.num_workers=0"),
    Rule("data.batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1",
         "data.batch_size=64"),
    Rule("data.eval_batch_size", lambda v: _is_int(v) and v >= 1, "an integer >= 1",
         "data.eval_batch_size=1000"),
    Rule("trainer.max_epochs", lambda v: _is_int(v) and v >= 1, "an integer >= 1",
         "trainer.max_epochs=5"),
    Rule("model.dropout", lambda v: _is_number(v) and 0 <= v < 1, "a probability in [0, 1)",
         "model.dropout=0.3"),
    Rule("model.label_smoothing", lambda v: _is_number(v) and 0 <= v < 1,
         "a number in [0, 1)", "model.label_smoothing=0.1"),
    Rule("threads", lambda v: v is None or v == "auto" or (_is_int(v) and v >= 1),
         "auto, null or an integer >= 1", "threads=1"),
    Rule("replicate", lambda v: _is_int(v) and v >= 0, "an integer >= 0", "replicate=1"),
    Rule("model.hidden", _is_widths, "a non-empty list of layer widths >= 1",
         "'model.hidden=[512,256]'"),
    Rule("data.loader", lambda v: v in LOADERS,
         "memory (whole batches from memory, fast) or torchvision (per image)",
         "data.loader=memory"),
    Rule("data.on_device", lambda v: v is None or isinstance(v, bool),
         "null (automatic: on a GPU), true or false", "data.on_device=false"),
    Rule("data.pin_memory", lambda v: v is None or isinstance(v, bool),
         "null (automatic: when training on a GPU), true or false", "data.pin_memory=true"),
    Rule("data.val_size", lambda v: _is_int(v) and 0 < v < TRAIN_IMAGES,
         f"an integer in (0, {TRAIN_IMAGES})", "data.val_size=5000"),
    Rule("trainer.devices", lambda v: v == "auto" or (_is_int(v) and (v >= 1 or v == -1))
         or (isinstance(v, str | ListConfig | list) and len(v) > 0 and not _is_int(v)),
         "an integer >= 1, -1 (every device), auto, or a list of device ids",
         "trainer.devices=1"),
    # eval.py, predict.py and export.py: keys only their configs have.
    Rule("split", lambda v: v in ("test", "val"), "test or val", "split=test"),
    Rule("top", lambda v: _is_int(v) and v >= 1, "an integer >= 1 (guesses listed per file)",
         "top=3"),
    Rule("output", lambda v: v is None or str(v).lower().endswith((".csv", ".json")),
         "null or a file name ending in .csv or .json", "output=predictions.csv"),
    Rule("format", lambda v: v in EXPORT_FORMATS, " or ".join(EXPORT_FORMATS), "format=onnx"),
)
# Which settings each entry point cannot do without ("???" in its config).
REQUIRED = {"ckpt_path": "the checkpoint to use, e.g. "
                         "ckpt_path=outputs/runs/<date>/<time>/checkpoints/epoch_NNN.ckpt",
            "inputs": "the pictures to classify: a file, a folder or a list, e.g. "
                      "inputs=my_digit.png"}


# What a training run logs, for optimized_metric (test/acc_class/<class> too).
LOGGED = ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best", "test/loss",
          "test/acc", "time/epoch_s")


def _choices(cfg: DictConfig) -> dict[str, str | None]:
    """The chosen config groups: from the config's own hydra node, or from HydraConfig."""
    if "hydra" in cfg:
        return dict(cfg.hydra.runtime.choices)
    return dict(HydraConfig.get().runtime.choices) if HydraConfig.initialized() else {}


def _script(cfg: DictConfig) -> str:
    """The entry point being checked (train.py, eval.py, ...), for the fixes the errors show."""
    name = OmegaConf.select(cfg, "hydra.job.name", default=None)
    if name is None and HydraConfig.initialized():
        name = HydraConfig.get().job.name
    return f"{name or 'train'}.py"


def _config_dirs(cfg: DictConfig) -> list[Path]:
    sources = cfg.hydra.runtime.config_sources if "hydra" in cfg else (
        HydraConfig.get().runtime.config_sources if HydraConfig.initialized() else [])
    return [Path(s.path) for s in sources if s.schema == "file"]


def _group_files(cfg: DictConfig, group: str) -> dict[str, Path]:
    return {path.stem: path for folder in _config_dirs(cfg)
            for path in sorted((folder / group).glob("*.yaml"))}


def check_devices(cfg: DictConfig) -> None:
    devices = OmegaConf.select(cfg, "trainer.devices", default=None)
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto"))
    if accelerator not in ("gpu", "cuda") and (
            not isinstance(devices, int) or isinstance(devices, bool) or devices < 1):
        return
    import torch  # 2 s: only a config that names its devices waits for it (see the docstring)

    if accelerator in ("gpu", "cuda") and torch.cuda.device_count() == 0:
        build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
        raise ConfigError(
            f"trainer.accelerator={accelerator} is invalid: torch ({torch.__version__}, "
            f"{build}) sees no GPU on this machine. Fix: train on the CPU with trainer=cpu, or "
            "let Lightning choose with trainer.accelerator=auto.")
    if not isinstance(devices, int) or isinstance(devices, bool) or devices < 1:
        return
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto"
                                                 and torch.cuda.is_available())
    available = torch.cuda.device_count() if on_gpu else (os.cpu_count() or 1)
    kind = "GPUs" if on_gpu else "CPU cores"
    if devices > available:
        raise ConfigError(
            f"trainer.devices={devices} is invalid: this machine has {available} {kind}, and "
            f"each device is a process. Fix: trainer.devices={available} (or fewer), or "
            "trainer.devices=auto.")


def check_training_batches(cfg: DictConfig) -> None:
    batch = OmegaConf.select(cfg, "data.batch_size", default=None)
    val_size = OmegaConf.select(cfg, "data.val_size", default=None)
    if OmegaConf.select(cfg, "trainer.limit_train_batches", default=None) in (0, 0.0):
        raise ConfigError("trainer.limit_train_batches=0 is invalid: it leaves no training "
                          "batch. Fix: trainer.limit_train_batches=null (all) or a number > 0.")
    if not (isinstance(batch, int) and isinstance(val_size, int)):
        return
    images = TRAIN_IMAGES - val_size
    if batch > images and OmegaConf.select(cfg, "data.drop_last", default=False):
        raise ConfigError(
            f"data.batch_size={batch} with data.drop_last=true is invalid: the {images:,} "
            f"training images make no full batch, so nothing would train. Fix: "
            f"data.batch_size={min(images, 1024)} or data.drop_last=false.")


def check_optimized_metric(cfg: DictConfig) -> None:
    metric = cfg.get("optimized_metric")
    if metric is None:
        return
    if metric not in LOGGED and not str(metric).startswith("test/acc_class/"):
        raise ConfigError(f"optimized_metric={metric!r} is invalid: no run logs it. Fix: one of "
                          f"{', '.join(LOGGED)}, e.g. optimized_metric=val/acc_best.")
    if not str(metric).startswith("val/"):
        return
    limit = OmegaConf.select(cfg, "trainer.limit_val_batches", default=None)
    every = OmegaConf.select(cfg, "trainer.check_val_every_n_epoch", default=1)
    epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=1)
    if limit in (0, 0.0):
        off = f"trainer.limit_val_batches={limit} switches validation off"
    elif isinstance(every, int) and isinstance(epochs, int) and every > epochs:
        off = (f"trainer.check_val_every_n_epoch={every} never validates in "
               f"{epochs} epochs")
    else:
        return
    raise ConfigError(f"optimized_metric={metric} needs validation, but {off}. Fix: validate "
                      "(drop that override), or optimize a metric that needs none, e.g. "
                      "optimized_metric=test/acc.")


def check_model_fields(cfg: DictConfig) -> None:
    """Every field under ``model`` must be an argument of the chosen network."""
    target = OmegaConf.select(cfg, "model._target_", default=None)
    if target is None:
        return
    accepted = _arguments(get_class(target))
    unknown = [key for key in cfg.model if key != "_target_" and key not in accepted]
    if not unknown:
        return
    key = unknown[0]
    choices = _choices(cfg)
    chosen = choices.get("model") or target
    having = sorted(name for name, path in _group_files(cfg, "model").items()
                    if key in _arguments(get_class(OmegaConf.load(path)._target_)))
    preset = choices.get("experiment")
    presets = _group_files(cfg, "experiment")
    if preset and preset in presets and key in (OmegaConf.load(presets[preset]).get("model")
                                                or {}):
        made_for = _preset_model(presets[preset])
        raise ConfigError(
            f"experiment={preset} does not fit model={chosen}: the preset is made for "
            f"model={made_for} and sets model.{key}, which model={chosen} does not have. Fix: "
            f"drop model={chosen} to run the preset as it is, or drop experiment={preset}.")
    raise ConfigError(
        f"model.{key}={cfg.model[key]!r} is invalid: model={chosen} has no field {key!r}"
        + (f"; the models with it are {', '.join(having)}" if having else "")
        + ". Fix: drop the override, or choose a model that has it"
        + (f", e.g. model={having[0]}." if having else "."))


def check_trainer_fields(cfg: DictConfig) -> None:
    """Every field under ``trainer`` must be an argument of Lightning's Trainer."""
    target = OmegaConf.select(cfg, "trainer._target_", default=None)
    if target is None:
        return
    accepted = _arguments(get_class(target))
    unknown = [key for key in cfg.trainer if not key.startswith("_") and key not in accepted]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(accepted), n=1)
        fix = f"trainer.{close[0]}" if close else "one of the Trainer's settings"
        raise ConfigError(
            f"trainer.{key} is not a setting of Lightning's Trainer. Fix: {fix} (`python "
            f"{_script(cfg)} --cfg job` shows the trainer's settings), or drop it.")


def check_output_files(cfg: DictConfig) -> None:
    """predict.py's ``output`` and export.py's ``out`` name a file to write, not a folder."""
    for key, example in (("output", "predictions.csv"), ("out", "model.onnx")):
        value = cfg.get(key)
        if isinstance(value, str) and Path(value).is_dir():
            raise ConfigError(f"{key}={value} is a folder. Fix: name the file to write in it, "
                              f"e.g. {key}={Path(value) / example}.")


def check_port(cfg: DictConfig) -> None:
    """demo.py's ``port`` must be free: Gradio's own message names its environment variable."""
    if "port" not in cfg or cfg.get("port") is None:
        return
    host, port = str(cfg.get("host") or "127.0.0.1"), cfg.port
    with socket.socket() as probe:
        try:
            probe.bind((host, int(port)))
        except OSError as err:
            raise ConfigError(
                f"port={port} cannot be used on {host} ({err.strerror}): another program (an "
                "earlier demo?) serves there. Fix: choose another, e.g. "
                f"`python demo.py port={int(port) + 1}`, or stop the other one.") from None


def check_checkpoint(cfg: DictConfig) -> None:
    path = cfg.get("ckpt_path")
    if path is None:
        return
    if (_script(cfg) in ENSEMBLE_SCRIPTS
            and (isinstance(path, ListConfig) or Path(str(path)).is_dir())):
        _check_members(cfg, path)  # an ensemble
        return
    try:
        info = inspect_checkpoint(path)
    except CheckpointError as err:
        hint = ""
        if str(path) in ("last", "best") and not Path(path).exists():
            hint = (f"; ckpt_path={path} looks in this run's own new folder, where there is "
                    "none: pass the file, e.g. ckpt_path=outputs/runs/<date>/<time>/checkpoints"
                    "/last.ckpt")
        raise ConfigError(f"ckpt_path={path}: {err}{hint}") from None
    if "model" not in cfg:  # eval.py and predict.py: the checkpoint brings its own model
        return
    saved = (info.get("config") or {}).get("model", {}).get("_target_")
    wanted = OmegaConf.select(cfg, "model._target_", default=None)
    if saved and wanted and saved != wanted:
        name = info.get("model") or saved
        chosen = _choices(cfg).get("model") or wanted
        raise ConfigError(f"ckpt_path={path}: a checkpoint of model={name}, but model={chosen}. "
                          f"Fix: add model={name}, or pass a checkpoint of model={chosen}.")
    changed = fixed_changes(info.get("config") or {}, cfg)
    if changed:
        listed = ", ".join(f"{key}={now!r} (the checkpoint trained with {before!r})"
                           for key, (before, now) in changed.items())
        raise ConfigError(f"ckpt_path={path}: resuming may not change what was trained: "
                          f"{listed}. Fix: drop those overrides to resume, or start a new run "
                          "without ckpt_path.")
    _check_schedule_length(path, info.get("config") or {}, cfg)
    _check_something_left(path, info.get("config") or {}, cfg)


def _check_something_left(path: Path, saved: dict[str, Any], cfg: DictConfig) -> None:
    """Going on from a checkpoint whose run already reached this run's end would only test it
    again and overwrite its record: refused, naming how to train longer instead."""
    epochs, steps = trained_so_far(path)
    max_epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=None)
    max_steps = OmegaConf.select(cfg, "trainer.max_steps", default=-1)
    if max_epochs is None and max_steps in (None, -1):
        max_epochs = 1000  # Lightning's default when neither is set
    reached = []
    if isinstance(max_epochs, int) and max_epochs >= 0 and epochs >= max_epochs:
        reached.append(f"trainer.max_epochs={max_epochs}")
    if isinstance(max_steps, int) and max_steps >= 0 and steps >= max_steps:
        reached.append(f"trainer.max_steps={max_steps}")
    if not reached:
        return
    source = f"resume={cfg.resume}" if cfg.get("resume") else f"ckpt_path={path}"
    evaluate = f"test it with `python eval.py ckpt_path={path}`"
    if cfg.get("scheduler") is not None and saved.get("scheduler") is not None:
        fix = (f"its learning-rate schedule ended with it, so {evaluate}, or start a new run "
               "with more epochs (python train.py trainer.max_epochs=...).")
    else:
        longer = (f"trainer.max_epochs={epochs + 1}" if reached[0].startswith("trainer.max_ep")
                  else f"trainer.max_steps={2 * steps}")
        fix = f"add {longer} (or more) to train on, or {evaluate}."
    raise ConfigError(
        f"{source} has nothing left to train: its run already trained {epochs} epoch(s) "
        f"({steps} steps), as far as {' and '.join(reached)} goes, so nothing was changed. "
        f"Fix: {fix}")


# Trainer settings that change how many optimizer steps a run takes.
RUN_LENGTH = ("max_epochs", "max_steps", "limit_train_batches", "accumulate_grad_batches")


def _check_schedule_length(path: Path, saved: dict[str, Any], cfg: DictConfig) -> None:
    """A learning-rate schedule is sized for the run's steps: resuming cannot lengthen it."""
    if cfg.get("scheduler") is None or saved.get("scheduler") is None:
        return
    before, now = saved.get("trainer") or {}, cfg.trainer
    changed = [f"trainer.{key}={now.get(key)!r} (the checkpoint's run: {before.get(key)!r})"
               for key in RUN_LENGTH if key in before and before.get(key) != now.get(key)]
    if changed:
        choice = _choices(cfg).get("scheduler") or "the schedule"
        raise ConfigError(
            f"ckpt_path={path}: {', '.join(changed)} changes the length of a run whose "
            f"learning-rate schedule (scheduler={choice}) was sized for its own steps. Fix: "
            "resume with the run's own trainer settings, or start a new run with them "
            "(python train.py trainer.max_epochs=...); train with ~scheduler to extend runs later.")


def _arguments(cls: type) -> set[str]:
    """Constructor arguments of a network class and of every class it builds on."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names |= set(inspect.signature(klass.__init__).parameters) - {"self", "kwargs"}
    return names


def _preset_model(path: Path) -> str:
    for entry in OmegaConf.load(path).get("defaults") or []:
        if isinstance(entry, dict | DictConfig):
            for key, value in entry.items():
                if key.endswith("/model"):
                    return str(value)
    return "?"


CHECKS: tuple[Callable[[DictConfig], None], ...] = (
    check_output_files, check_port, check_devices, check_training_batches,
    check_optimized_metric, check_checkpoint, check_trainer_fields, check_model_fields)
# (In this order the checks that import Lightning, to read the Trainer's and the networks'
# arguments, come last: a refused checkpoint answers after importing torch alone.)


# The entry points that take several checkpoints as one ensemble (mnistlab.ensemble).
ENSEMBLE_SCRIPTS = ("eval.py", "predict.py", "export.py")


def _check_members(cfg: DictConfig, path: Any) -> None:
    """Every checkpoint of an ensemble (a list, or a run or sweep folder) can be read, and an
    ensemble is scored on the test set (members of replicates hold different validation
    splits)."""
    try:
        members = member_paths(path)
        for member in members:
            try:
                inspect_checkpoint(member)
            except CheckpointError as err:
                raise CheckpointError(f"{member}: {err}") from None
    except CheckpointError as err:
        raise ConfigError(f"ckpt_path={path}: {err}") from None
    if len(members) > 1 and cfg.get("split", "test") != "test":
        raise ConfigError(f"split={cfg.split} with {len(members)} checkpoints: an ensemble is "
                          "scored on the test set, which all its members share. Fix: leave "
                          "split out, or give one checkpoint.")


def check_config(cfg: DictConfig) -> None:
    """Raise ConfigError for the first value that cannot work; absent keys are not checked.

    Single values first (``RULES``), then what depends on several keys, the machine or a file
    (``CHECKS``).
    """
    script = _script(cfg)
    for key, what in REQUIRED.items():
        # A "???" value is not `in` a DictConfig; its key is among the keys.
        if key in cfg.keys() and OmegaConf.is_missing(cfg, key):  # noqa: SIM118
            raise ConfigError(f"{key} is required: {what}. Fix: `python {script} {key}=...`.")
    for rule in RULES:
        value = OmegaConf.select(cfg, rule.key, default=None)
        if value is not None and not rule.ok(value):
            raise ConfigError(f"{rule.key}={value!r} is invalid: it must be {rule.requirement}. "
                              f"Fix: override it, e.g. `python {script} {rule.example}`.")
    for check in CHECKS:
        check(cfg)


def check_or_exit(cfg: DictConfig) -> None:
    """``check_config``, ending the program with its one line: for the entry points that make
    no run folder (predict.py, export.py, demo.py), which Hydra's run-start callback skips."""
    try:
        check_config(cfg)
    except ConfigError as err:
        exit_with(err)
