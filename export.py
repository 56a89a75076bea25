"""Export a trained network: `python export.py ckpt_path=<checkpoint> format=onnx`.

Writes the network, with its input normalisation built in, beside the checkpoint (or to
`out=`), and a JSON card with its input and output; `format=torchscript` for TorchScript. Then
runs the exported file on the checkpoint's 10,000 test images and reports the largest logit
difference from the checkpoint's own network and whether every predicted digit is the same
(exit 1 if not).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from mnistlab.checkpoints import CheckpointError, load_model
from mnistlab.cuda_check import skip_failing_nvml_check
from mnistlab.export import FORMATS, check, export, held_out_pixels, report


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    if cfg.format not in FORMATS:
        print(f"Error: format={cfg.format!r} is unknown; use format=onnx or "
              "format=torchscript", file=sys.stderr)
        raise SystemExit(2)
    try:
        loaded = load_model(cfg.ckpt_path)
    except CheckpointError as err:
        print(f"Error: ckpt_path={err}", file=sys.stderr)
        raise SystemExit(2) from None
    path = export(loaded, cfg.format, Path(cfg.out) if cfg.out else None)
    print(f"written {path} ({path.stat().st_size / 1e6:.1f} MB) and {path}.json")
    if not cfg.check:
        return
    result = check(loaded, path, *held_out_pixels(loaded, cfg.paths.data_dir))
    print(report(result))
    if not result.identical:
        raise SystemExit(1)


if __name__ == "__main__":
    skip_failing_nvml_check()
    main()
