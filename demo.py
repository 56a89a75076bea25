"""Draw a digit in the browser and see what the network thinks: `python demo.py`.

Serves the newest best checkpoint under outputs/ (or `ckpt_path=...`) on http://127.0.0.1:7860:
a canvas, an upload box, the predicted digit, all ten probabilities and the 28x28 image the
network actually saw. Needs the demo extra (`pip install -e ".[demo]"`, part of `make install`).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from mnistlab.checks import check_or_exit
from mnistlab.errors import exit_with
from mnistlab.resolvers import register_resolvers


@hydra.main(version_base="1.3", config_path="conf", config_name="demo")
def main(cfg: DictConfig) -> None:
    check_or_exit(cfg)
    # torch and Lightning (about 6 s) load after Hydra has answered --help and --cfg (train.py)
    from mnistlab.demo import NoCheckpointError, build_page, describe, newest_checkpoint
    from mnistlab.internals import skip_failing_nvml_check
    from mnistlab.loading import load_or_exit

    skip_failing_nvml_check()
    try:
        loaded = load_or_exit(cfg.ckpt_path or newest_checkpoint())
    except NoCheckpointError as err:
        exit_with(err)
    print(f"serving {describe(loaded)}", flush=True)
    build_page(loaded, cfg.max_pixels).launch(server_name=cfg.host, server_port=cfg.port,
                                              show_error=True)


if __name__ == "__main__":
    register_resolvers()
    main()
