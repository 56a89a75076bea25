"""Evaluate a trained model: `python eval.py ckpt_path=outputs/runs/.../checkpoints/epoch_004.ckpt`.

The checkpoint alone rebuilds the model (no `model=` needed); `split=val` scores the run's
validation split instead of the test set. Metrics, the confusion matrix and misclassified
digits go to TensorBoard in a new folder under outputs/eval/, with result.json beside them.
Several checkpoints (a sweep folder: every job's best; or `ckpt_path='[a.ckpt,b.ckpt]'`) are
scored one by one and as an ensemble, the mean of their probabilities (mnistlab.ensemble).
"""

from __future__ import annotations

import gc
import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import hydra
from omegaconf import DictConfig, open_dict

from mnistlab.checkpoint_files import member_paths
from mnistlab.resolvers import register_resolvers

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
def main(cfg: DictConfig) -> float:
    # torch and Lightning (about 6 s) load after Hydra has answered --help and --cfg (train.py)
    from mnistlab.evaluation import evaluate
    from mnistlab.internals import skip_failing_nvml_check

    skip_failing_nvml_check()
    members = member_paths(cfg.ckpt_path)
    if len(members) > 1:
        return evaluate_members(cfg, members)
    with open_dict(cfg):  # a run folder: its best checkpoint
        cfg.ckpt_path = str(members[0])
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


def evaluate_members(cfg: DictConfig, members: list[Path]) -> float:
    """Each member's test accuracy and the ensemble's, printed and written to result.json."""
    # torch and Lightning, as in main: after Hydra has answered
    from mnistlab.ensemble import evaluate_ensemble, load_or_exit

    result = evaluate_ensemble(load_or_exit(members), cfg.paths.data_dir)
    (Path(cfg.paths.output_dir) / "result.json").write_text(
        json.dumps(asdict(result), indent=2) + "\n")
    lines = [f"{100 * acc:6.2f}%  {path}" for path, acc in result.members.items()]
    log.info("test accuracy on %d images\n  %s\n  %6.2f%%  the ensemble of these %d (mean "
             "probability)", result.images, "\n  ".join(lines), 100 * result.ensemble,
             len(lines))
    return result.ensemble


if __name__ == "__main__":
    register_resolvers()
    main()
    gc.freeze()  # the result is written: skip the collection on the way out (see train.py)
