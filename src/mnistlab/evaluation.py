"""Evaluate a checkpoint on its own: the network, data settings and normalisation come from it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, open_dict

from mnistlab.build import build_datamodule, build_trainer
from mnistlab.loading import load_model

SPLITS = ("test", "val")


@dataclass
class EvalResult:
    """What an evaluation produced; ``metrics`` are named ``<split>/...``."""

    checkpoint: str
    split: str
    metrics: dict[str, float]
    images: int
    seconds: float
    run_dir: str
    tensorboard_dirs: list[str]
    trained_config: dict


def evaluate(cfg: DictConfig) -> EvalResult:
    """Rebuild the model from ``cfg.ckpt_path`` and test it on ``cfg.split``.

    The data settings (split seed, validation size, normalisation, batch size) are the
    checkpoint's own, so evaluating the test set reproduces the training run's test numbers;
    only where the files are (``paths.data_dir``) comes from this machine.
    """
    if cfg.split not in SPLITS:
        raise ValueError(f"split={cfg.split!r} is unknown; use split=test or split=val")
    start = time.perf_counter()
    loaded = load_model(cfg.ckpt_path)
    trained = loaded.config
    with open_dict(trained):
        trained.data.data_dir = cfg.paths.data_dir
        if cfg.get("eval_batch_size"):
            trained.data.eval_batch_size = cfg.eval_batch_size
    datamodule = build_datamodule(trained)
    datamodule.prepare_data()
    datamodule.setup()
    if cfg.split == "val":  # the run's own held-out images, served by the test loop
        datamodule.test_set = datamodule.val_set
    model = loaded.model
    model.test_prefix = cfg.split
    trainer = build_trainer(cfg)
    trainer.test(model=model, datamodule=datamodule)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return EvalResult(
        checkpoint=str(loaded.path), split=cfg.split, metrics=metrics,
        images=len(datamodule.test_set), seconds=time.perf_counter() - start,
        run_dir=str(cfg.paths.output_dir),
        tensorboard_dirs=[lg.log_dir for lg in trainer.loggers
                          if isinstance(lg, TensorBoardLogger)],
        trained_config=loaded.model.checkpoint_info["config"])
