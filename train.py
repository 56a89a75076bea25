"""Train an MNIST classifier: `python train.py model=cnn_deep optimizer=adam`.

`python train.py --help` lists every config group and its choices; `-m` runs a sweep.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from mnistlab.cuda_check import skip_failing_nvml_check
from mnistlab.training import report, save_result, train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    result = train(cfg)
    report(result)
    if rank_zero_only.rank == 0:
        tutorial = cfg.get("tutorial")
        save_result(result, Path(cfg.paths.output_dir) / "result.json",
                    experiment=HydraConfig.get().runtime.choices.get("experiment"),
                    tutorial=OmegaConf.to_container(tutorial) if tutorial else None,
                    seed=cfg.seed + cfg.replicate)
    return result.metric(cfg.optimized_metric)


if __name__ == "__main__":
    skip_failing_nvml_check()
    main()
