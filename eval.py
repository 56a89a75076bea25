"""Evaluate a trained model: `python eval.py ckpt_path=outputs/runs/.../checkpoints/epoch_004.ckpt`.

The checkpoint alone rebuilds the model (no `model=` needed); `split=val` scores the run's
validation split instead of the test set. Metrics, the confusion matrix and misclassified
digits go to TensorBoard in a new folder under outputs/eval/, with result.json beside them.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import hydra
from omegaconf import DictConfig

from mnistlab.resolvers import register_resolvers

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    # torch and Lightning (about 6 s) load after Hydra has answered --help and --cfg (train.py)
    from mnistlab.evaluation import evaluate
    from mnistlab.internals import skip_failing_nvml_check

    skip_failing_nvml_check()
    result = evaluate(cfg)
    (Path(cfg.paths.output_dir) / "result.json").write_text(
        json.dumps(asdict(result), indent=2) + "\n")
    split = result.split
    log.info("%s accuracy: %.2f%% on %d images (loss %.4f) of %s\n  run folder: %s\n  curves: "
             "tensorboard --logdir %s", split, 100 * result.metrics[f"{split}/acc"],
             result.images, result.metrics[f"{split}/loss"], result.checkpoint,
             os.path.normpath(result.run_dir),
             " ".join(os.path.normpath(d) for d in result.tensorboard_dirs) or "-")
    return result.metrics[f"{split}/acc"]


if __name__ == "__main__":
    register_resolvers()
    main()
