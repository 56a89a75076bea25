"""Train an MNIST classifier: `python train.py model=cnn_deep optimizer=adam`.

`python train.py --help` lists every config group and its choices; `-m` runs a sweep.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from mnistlab.training import report, train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    result = train(cfg)
    report(result)
    return result.metric(cfg.optimized_metric)


if __name__ == "__main__":
    main()
