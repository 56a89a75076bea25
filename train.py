"""Train an MNIST classifier: `python train.py model=cnn_deep optimizer=adam`.

`python train.py --help` lists every config group and its choices; `-m` runs a sweep. What a
run does and records (result.json, exit statuses) is mnistlab.training.run.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from mnistlab.internals import skip_failing_nvml_check
from mnistlab.resolvers import register_resolvers
from mnistlab.training import run


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    return run(cfg)


if __name__ == "__main__":
    register_resolvers()
    skip_failing_nvml_check()
    main()
