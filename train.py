"""Train an MNIST classifier: `python train.py model=cnn_deep optimizer=adam`.

`python train.py --help` lists every config group and its choices; `-m` runs a sweep.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from mnistlab.training import report, save_result, train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    result = train(cfg)
    report(result)
    if rank_zero_only.rank == 0:
        save_result(result, Path(cfg.paths.output_dir) / "result.json",
                    experiment=HydraConfig.get().runtime.choices.get("experiment"),
                    seed=cfg.seed + cfg.replicate)
    return result.metric(cfg.optimized_metric)


if __name__ == "__main__":
    main()
