"""Classify your own digit images: `python predict.py ckpt_path=<checkpoint> inputs=<folder>`.

Several checkpoints (a sweep folder, or `ckpt_path='[a.ckpt,b.ckpt]'`) classify as one
ensemble: the mean of their probabilities.

Any size, colour or grayscale, with or without transparency, dark on light or light on dark:
each image is cropped to its ink, fitted into 20x20 and centred by mass in 28x28, as MNIST's
digits were. Prints file, predicted digit, probability and top guesses; `output=preds.csv` (or
.json) also saves them. A file that cannot be read gets its reason and the others are still
classified; the exit status is 1 when any file failed.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from mnistlab.checks import check_or_exit
from mnistlab.errors import exit_with
from mnistlab.resolvers import register_resolvers


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    check_or_exit(cfg)
    # torch and Lightning (about 6 s) load after Hydra has answered --help and --cfg (train.py)
    from mnistlab.ensemble import load_or_exit
    from mnistlab.internals import skip_failing_nvml_check
    from mnistlab.prediction import collect_inputs, predict_files, table, write

    skip_failing_nvml_check()
    loaded = load_or_exit(cfg.ckpt_path)
    inputs = cfg.inputs
    paths = collect_inputs(OmegaConf.to_container(inputs) if OmegaConf.is_list(inputs)
                           else str(inputs))
    if not paths:
        exit_with(f"inputs={inputs} holds no files")
    predictions = predict_files(loaded, paths, top=cfg.top, max_pixels=cfg.max_pixels)
    print(table(predictions))
    if cfg.output:
        write(predictions, cfg.output)
        print(f"written to {cfg.output}")
    failed = sum(p.error is not None for p in predictions)
    if failed:
        print(f"{failed} of {len(predictions)} files could not be classified", file=sys.stderr)
        raise SystemExit(1)  # Hydra passes no return value on; the exit status says it


if __name__ == "__main__":
    register_resolvers()
    main()
