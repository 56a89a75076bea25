"""Train an MNIST classifier: `python train.py model=cnn_deep optimizer=adam`.

`python train.py --help` lists every config group and its choices; `-m` runs a sweep. What a
run does and records (result.json, exit statuses) is mnistlab.training.run.
"""

from __future__ import annotations

import gc

import hydra
from omegaconf import DictConfig

from mnistlab.resolvers import register_resolvers


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    # Lightning and torch load here (about 6 s), after Hydra has answered --help and --cfg
    # and the run-start checks have accepted the config: questions and refusals answer at once.
    from mnistlab.internals import skip_failing_nvml_check
    from mnistlab.training import run

    skip_failing_nvml_check()
    return run(cfg)


if __name__ == "__main__":
    register_resolvers()
    main()
    # The run is written and its summary printed. Python's last collection walks every object
    # torch and Lightning made (1.4 s of the exit): frozen, they are only let go.
    gc.freeze()
