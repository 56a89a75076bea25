"""Export a trained network: `python export.py ckpt_path=<checkpoint> format=onnx`.

Writes the network, with its input normalisation built in, beside the checkpoint (or to
`out=`), and a JSON card with its input and output; `format=torchscript` for TorchScript. Then
runs the exported file on the checkpoint's 10,000 test images and reports the largest logit
difference from the checkpoint's own network and whether every predicted digit is the same
(exit 1 if not). Several checkpoints (a sweep folder, or `ckpt_path='[a.ckpt,b.ckpt]'`) export
as one ensemble, `ensemble.onnx` here unless `out=` says where: its output is the log of the
members' mean probability, so that softmax gives the ensemble's probabilities.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from mnistlab.checks import check_or_exit
from mnistlab.resolvers import register_resolvers


@hydra.main(version_base="1.3", config_path="conf", config_name="export")
def main(cfg: DictConfig) -> None:
    check_or_exit(cfg)
    # torch and Lightning (about 6 s) load after Hydra has answered --help and --cfg (train.py)
    from mnistlab.ensemble import Ensemble, load_or_exit
    from mnistlab.export import check, export, report
    from mnistlab.internals import skip_failing_nvml_check
    from mnistlab.loading import held_out_pixels

    skip_failing_nvml_check()
    loaded = load_or_exit(cfg.ckpt_path)
    path = export(loaded, cfg.format, Path(cfg.out) if cfg.out else None)
    print(f"written {path} ({path.stat().st_size / 1e6:.1f} MB) and {path}.json")
    if not cfg.check:
        return
    first = loaded.members[0] if isinstance(loaded, Ensemble) else loaded
    result = check(loaded, path, *held_out_pixels(first, cfg.paths.data_dir))
    print(report(result))
    if not result.identical:
        raise SystemExit(1)


if __name__ == "__main__":
    register_resolvers()
    main()
