"""Bad values are refused before anything trains or writes, with the key, value and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnistlab.checks import check_config
from mnistlab.errors import ConfigError
from mnistlab.training import train
from tests.helpers import compose

BAD_VALUES = [
    ("optimizer.lr=0", "optimizer.lr=0 "),
    ("optimizer.lr=-0.1", "optimizer.lr=-0.1 "),
    ("data.batch_size=0", "data.batch_size=0 "),
    ("trainer.max_epochs=0", "trainer.max_epochs=0 "),
    ("model=mlp_dropout model.dropout=1.0", "model.dropout=1.0 "),
    ("model=cnn_deep model.dropout=-0.2", "model.dropout=-0.2 "),
    ("data.val_size=0", "data.val_size=0 "),
    ("data.val_size=60000", "data.val_size=60000 "),
    ("data.loader=pil", "data.loader='pil' "),
    ("model=mlp_bn model.hidden=[]", "model.hidden=[] "),
    ("model=mlp_bn model.hidden=[32,0]", "model.hidden=[32, 0] "),
    ("model=cnn_deep model.hidden=625", "model.hidden=625 "),
]


@pytest.mark.parametrize(("overrides", "named"), BAD_VALUES)
def test_bad_value_is_named_with_its_fix(overrides: str, named: str) -> None:
    key = named.split("=")[0]
    with pytest.raises(ConfigError, match="must be") as err:
        check_config(compose(*overrides.split()))
    message = str(err.value)
    assert message.startswith(named + "is invalid")
    assert f"python train.py {key}=" in message or f"python train.py '{key}=" in message


def test_good_defaults_pass_for_every_model() -> None:
    for model in ["mlp_sigmoid", "mlp_bn", "mlp_dropout", "mlp_bn_dropout", "cnn", "cnn_deep"]:
        check_config(compose(f"model={model}"))


def test_train_refuses_before_writing_anything(make_cfg, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"data\.batch_size=0"):
        train(make_cfg("data.batch_size=0"))
    assert list(tmp_path.iterdir()) == []
