"""Bad input and faults, as users and hostile files bring them: each refused with the key, the
value and the fix (exit status 2 before anything is written), or recorded honestly."""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from mnistlab.build import compose_with_hydra
from mnistlab.checks import check_config, check_or_exit
from mnistlab.errors import ConfigError
from mnistlab.run_start import CheckConfigAndClaimFolder
from mnistlab.training import train
from tests.helpers import CONF_DIR, compose

# overrides -> the start of the message (after "Error: ").
CONFIG_CASES = [
    ("optimizer.lr=0", "optimizer.lr=0 is invalid: it must be a finite number > 0"),
    ("optimizer.lr=-0.1", "optimizer.lr=-0.1 is invalid"),
    ("optimizer.lr=inf", "optimizer.lr=inf is invalid: it must be a finite number > 0"),
    ("optimizer.lr=nan", "optimizer.lr=nan is invalid"),
    ("optimizer.lr=abc", "optimizer.lr='abc' is invalid"),
    ("data.batch_size=0", "data.batch_size=0 is invalid: it must be an integer >= 1"),
    ("data.batch_size=2.5", "data.batch_size=2.5 is invalid"),
    ("data.eval_batch_size=0", "data.eval_batch_size=0 is invalid"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0 is invalid"),
    ("model=mlp_dropout model.dropout=1.0", "model.dropout=1.0 is invalid"),
    ("model=cnn_deep model.dropout=-0.2", "model.dropout=-0.2 is invalid"),
    ("model.label_smoothing=1.5", "model.label_smoothing=1.5 is invalid"),
    ("threads=0", "threads=0 is invalid: it must be auto, null or an integer >= 1"),
    ("replicate=-1", "replicate=-1 is invalid"),
    ("data.val_size=0", "data.val_size=0 is invalid"),
    ("data.val_size=60000", "data.val_size=60000 is invalid"),
    ("data.loader=pil", "data.loader='pil' is invalid: it must be memory"),
    ("model=mlp_bn model.hidden=[]", "model.hidden=[] is invalid"),
    ("model=mlp_bn model.hidden=[32,0]", "model.hidden=[32, 0] is invalid"),
    ("model=cnn_deep model.hidden=625", "model.hidden=625 is invalid"),
    ("seed=-5", "seed=-5 is invalid: it must be an integer >= 0"),
    ("seed=abc", "seed='abc' is invalid: it must be an integer >= 0"),
    ("optimizer.weight_decay=-1", "optimizer.weight_decay=-1 is invalid: it must be a finite"),
    ("data.num_workers=-1", "data.num_workers=-1 is invalid: it must be an integer >= 0"),
    (f"trainer.accelerator=cpu trainer.devices={os.cpu_count() + 1}",
     f"trainer.devices={os.cpu_count() + 1} is invalid: this machine has {os.cpu_count()} CPU "
     "cores"),
    ("data.batch_size=100000 data.drop_last=true",
     "data.batch_size=100000 with data.drop_last=true is invalid: the 55,000 training images"),
    ("trainer.limit_train_batches=0", "trainer.limit_train_batches=0 is invalid"),
    ("trainer.limit_val_batches=0",
     "optimized_metric=val/acc_best needs validation, but trainer.limit_val_batches=0"),
    ("trainer.check_val_every_n_epoch=10 trainer.max_epochs=2",
     "optimized_metric=val/acc_best needs validation, but trainer.check_val_every_n_epoch=10"),
    ("optimized_metric=val/f1", "optimized_metric='val/f1' is invalid: no run logs it"),
    ("optimized_metric=val/accuracy", "optimized_metric='val/accuracy' is invalid"),
    ("model=cnn +model.dropout=0.5",
     "model.dropout=0.5 is invalid: model=cnn has no field 'dropout'; the models with it are "
     "cnn_deep, mlp_bn_dropout, mlp_dropout"),
    ("model=mlp_sigmoid +model.channels_last=false",
     "model.channels_last=False is invalid: model=mlp_sigmoid has no field 'channels_last'; "
     "the models with it are cnn, cnn_deep"),
    ("experiment=tutorial000_mlp_bn model=cnn",
     "experiment=tutorial000_mlp_bn does not fit model=cnn: the preset is made for model=mlp_bn"),
    ("experiment=tutorial004_mlp_bn_dropout model=cnn",
     "experiment=tutorial004_mlp_bn_dropout does not fit model=cnn"),
]


@pytest.fixture
def earlier_run(tmp_path: Path) -> Path:
    """Another run's files, which no refused command may touch."""
    folder = tmp_path / "earlier"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (folder / "result.json").write_text('{"status": "completed"}')
    return folder


def snapshot(folder: Path) -> dict[str, tuple[str, float]]:
    return {str(p.relative_to(folder)): (hashlib.md5(p.read_bytes()).hexdigest(),
                                         p.stat().st_mtime)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("overrides", "message"), CONFIG_CASES)
def test_bad_value_exits_2_with_key_value_and_fix(overrides: str, message: str, capsys,
                                                  earlier_run) -> None:
    before = snapshot(earlier_run.parent)
    cfg = compose(*overrides.split())
    with pytest.raises(SystemExit) as exit_info:
        CheckConfigAndClaimFolder().on_multirun_start(cfg)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"Error: {message}"), error
    assert "Fix:" in error and error.count("\n") == 1  # one line
    assert snapshot(earlier_run.parent) == before


def test_every_default_model_and_preset_passes() -> None:
    for overrides in (["model=mlp_sigmoid"], ["model=cnn_deep"], ["experiment=tuned_cnn"],
                      ["experiment=tutorial004_mlp_bn_dropout"]):
        check_config(compose(*overrides))


@pytest.fixture
def mlp_checkpoint(make_cfg) -> Path:
    cfg = make_cfg("model=mlp_bn", "logger=csv")
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def bad_files(folder: Path, checkpoint: Path) -> dict[str, tuple[Path, str]]:
    """A file (or folder) per kind of broken checkpoint, and what the error must say."""
    folder.mkdir()
    made = {
        "missing": (folder / "missing.ckpt", "no such file"),
        "empty": (folder / "empty.ckpt", "is empty (0 bytes), not a checkpoint"),
        "random": (folder / "random.ckpt", "is not a readable checkpoint (truncated, or not a "
                                           "PyTorch file"),
        "text": (folder / "notes.ckpt", "is not a readable checkpoint"),
        "truncated": (folder / "cut.ckpt", "is not a readable checkpoint"),
        "pickle": (folder / "evil.ckpt", "holds pickled Python objects, so it was not loaded"),
        "folder": (folder / "a_run", "is a folder; pass a checkpoint file in it"),
        "tensors": (folder / "tensors.pt", "is a PyTorch file but not a training checkpoint"),
    }
    made["empty"][0].write_bytes(b"")
    made["random"][0].write_bytes(os.urandom(4096))
    made["text"][0].write_text("epoch=3\nval_acc=0.98\n")
    made["truncated"][0].write_bytes(checkpoint.read_bytes()[:5000])
    made["pickle"][0].write_bytes(pickle.dumps({"state_dict": Exploit()}, protocol=2))
    made["folder"][0].mkdir()
    torch.save({"weights": torch.zeros(3)}, made["tensors"][0])
    return made


def test_broken_checkpoints_get_one_line_each_and_run_no_code(mlp_checkpoint, tmp_path,
                                                              monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for kind, (path, expected) in bad_files(tmp_path / "bad", mlp_checkpoint).items():
        with pytest.raises(ConfigError) as err:
            check_config(compose("model=mlp_bn", f"ckpt_path={path}"))
        message = str(err.value)
        assert message.startswith(f"ckpt_path={path}: {expected}"), (kind, message)
        assert "\n" not in message
    assert not (tmp_path / "pwned").exists()


def test_a_checkpoint_of_another_network_names_both(mlp_checkpoint) -> None:
    with pytest.raises(ConfigError, match=r"a checkpoint of model=mlp_bn, but model=cnn\. Fix: "
                                          r"add model=mlp_bn"):
        check_config(compose("model=cnn", f"ckpt_path={mlp_checkpoint}"))
    # The run's own settings pass, going on for another epoch (it finished its one).
    saved = OmegaConf.create(torch.load(mlp_checkpoint, weights_only=True)["mnistlab"]["config"])
    saved.ckpt_path, saved.trainer.max_epochs = str(mlp_checkpoint), 2
    check_config(saved)


@pytest.mark.parametrize(("override", "listed"), [
    ("optimizer.lr=0.5", "optimizer.lr=0.5 (the checkpoint trained with 0.006)"),
    ("optimizer=sgd", "optimizer._target_='torch.optim.SGD' (the checkpoint trained with "
                      "'torch.optim.Adam')"),
    ("seed=7", "seed=7 (the checkpoint trained with 42)"),
    ("augment=shift", "augment.shift=2.0 (the checkpoint trained with None)"),
])
def test_resuming_may_not_change_what_was_trained(mlp_checkpoint, override, listed) -> None:
    saved = OmegaConf.create(torch.load(mlp_checkpoint, weights_only=True)["mnistlab"]["config"])
    key, value = override.split("=")
    if key in ("optimizer", "augment"):  # a group choice: that group's config replaces it
        saved[key] = compose(override)[key]
    else:
        OmegaConf.update(saved, key, float(value) if "." in value else int(value))
    saved.ckpt_path = str(mlp_checkpoint)
    with pytest.raises(ConfigError) as err:
        check_config(saved)
    message = str(err.value)
    assert message.startswith(f"ckpt_path={mlp_checkpoint}: resuming may not change what was "
                              "trained: ")
    assert listed in message and message.endswith(
        "Fix: drop those overrides to resume, or start a new run without ckpt_path.")


def test_a_scheduled_run_is_not_lengthened_on_resume(make_cfg) -> None:
    """The one-cycle schedule is sized for the run's steps; past them PyTorch would fail
    mid-run, so a longer resume is refused up front, with what to do instead."""
    cfg = make_cfg("model=mlp_sigmoid", "scheduler=onecycle", "trainer.limit_train_batches=8")
    train(cfg)
    last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    saved = OmegaConf.create(torch.load(last, weights_only=True)["mnistlab"]["config"])
    saved.ckpt_path = str(last)
    # The same length: the run finished it, and its schedule cannot be stretched.
    with pytest.raises(ConfigError, match=r"has nothing left to train: .* Fix: its learning-"
                                          r"rate schedule ended with it, so test it with "):
        check_config(saved)
    saved.trainer.max_epochs = 2
    with pytest.raises(ConfigError) as err:
        check_config(saved)
    assert str(err.value).startswith(
        f"ckpt_path={last}: trainer.max_epochs=2 (the checkpoint's run: 1) changes the length of "
        "a run whose learning-rate schedule (scheduler=onecycle) was sized for its own steps. "
        "Fix: resume with the run's own trainer settings")


def test_ckpt_path_last_says_where_it_looked() -> None:
    with pytest.raises(ConfigError, match=r"ckpt_path=last: no such file; ckpt_path=last looks "
                                          r"in this run's own new folder"):
        check_config(compose("ckpt_path=last"))


def test_train_refuses_before_writing_anything(make_cfg) -> None:
    cfg = make_cfg("data.batch_size=0")
    with pytest.raises(ConfigError, match=r"data\.batch_size=0"):
        train(cfg)
    assert not Path(cfg.paths.output_dir).exists()


# (entry point, overrides, the start of the message, overrides that follow its fix). The
# checkpoint named is another run's (not a real one): each refusal comes before it is read.
ENTRY_POINT_CASES = [
    ("train", "trainer.devices=0", "trainer.devices=0 is invalid: it must be an integer >= 1, "
     "-1 (every device), auto, or a list of device ids. Fix: override it, e.g. `python "
     "train.py trainer.devices=1`", "trainer.devices=1"),
    ("train", "+trainer.max_epoch=3", "trainer.max_epoch is not a setting of Lightning's "
     "Trainer. Fix: trainer.max_epochs (`python train.py --cfg job` shows the trainer's "
     "settings), or drop it.", "trainer.max_epochs=3"),
    ("eval", "", "ckpt_path is required: the checkpoint to use", None),
    ("eval", "ckpt_path={ckpt} split=nonsense", "split='nonsense' is invalid: it must be test "
     "or val. Fix: override it, e.g. `python eval.py split=test`.", None),
    ("predict", "ckpt_path={ckpt}", "inputs is required: the pictures to classify", None),
    ("predict", "ckpt_path={ckpt} inputs=a.png top=0", "top=0 is invalid: it must be an "
     "integer >= 1 (guesses listed per file). Fix: override it, e.g. `python predict.py "
     "top=3`.", None),
    ("predict", "ckpt_path={ckpt} inputs=a.png top=-1", "top=-1 is invalid", None),
    ("predict", "ckpt_path={ckpt} inputs=a.png output=preds.xlsx", "output='preds.xlsx' is "
     "invalid: it must be null or a file name ending in .csv or .json", None),
    ("predict", "ckpt_path={ckpt} inputs=a.png output={tmp}", "output='{tmp}' is invalid", None),
    ("export", "ckpt_path={ckpt} out={tmp}", "out={tmp} is a folder. Fix: name the file to "
     "write in it, e.g. out={tmp}/model.onnx.", None),
    ("export", "ckpt_path={ckpt} format=tflite", "format='tflite' is invalid: it must be onnx "
     "or torchscript. Fix: override it, e.g. `python export.py format=onnx`.", None),
]


@pytest.mark.parametrize(("script", "overrides", "message", "fixed"), ENTRY_POINT_CASES)
def test_each_entry_points_bad_value_is_one_line_and_its_fix_works(
        script: str, overrides: str, message: str, fixed: str | None, capsys, earlier_run,
        tmp_path: Path) -> None:
    where = {"ckpt": earlier_run / "checkpoints" / "last.ckpt", "tmp": tmp_path}
    before = snapshot(earlier_run.parent)
    cfg = compose_with_hydra(CONF_DIR, overrides.format(**where).split(), script)
    with pytest.raises(SystemExit) as exit_info:
        check_or_exit(cfg)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"Error: {message.format(**where)}"), error
    assert "Fix:" in error and error.count("\n") == 1
    assert snapshot(earlier_run.parent) == before
    if fixed is not None:  # the fix, as the message gives it, passes
        check_config(compose(*overrides.split()[:-1], *fixed.split()))


@pytest.mark.skipif(torch.cuda.is_available(), reason="the machine has a GPU")
@pytest.mark.parametrize("overrides", ["trainer=gpu", "trainer.accelerator=gpu"])
def test_a_gpu_asked_for_on_a_machine_without_one_is_one_line(overrides: str) -> None:
    with pytest.raises(ConfigError, match=r"^trainer.accelerator=gpu is invalid: torch \(.*\) "
                       r"sees no GPU on this machine. Fix: train on the CPU with trainer=cpu, "
                       r"or let Lightning choose with trainer.accelerator=auto.$"):
        check_config(compose(overrides))
    for fixed in ("trainer=cpu", "trainer.accelerator=auto"):  # either fix, in its place
        check_config(compose(fixed))


def test_a_port_in_use_is_one_line_with_a_free_one(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        cfg = compose_with_hydra(CONF_DIR, [f"port={port}"], "demo")
        with pytest.raises(ConfigError, match=rf"^port={port} cannot be used on 127.0.0.1 "
                           rf"\(.*\): another program .* Fix: choose another, e.g. `python "
                           rf"demo.py port={port + 1}`"):
            check_config(cfg)
