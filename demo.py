"""Draw a digit in the browser and see what the network thinks: `python demo.py`.

Serves the newest best checkpoint under outputs/ (or `ckpt_path=...`) on http://127.0.0.1:7860:
a canvas, an upload box, the predicted digit, all ten probabilities and the 28x28 image the
network actually saw. Needs the demo extra (`pip install -e ".[demo]"`, part of `make install`).
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from mnistlab.checkpoints import CheckpointError, load_model
from mnistlab.cuda_check import skip_failing_nvml_check
from mnistlab.demo import NoCheckpointError, build_page, describe, newest_checkpoint


@hydra.main(version_base="1.3", config_path="conf", config_name="demo")
def main(cfg: DictConfig) -> None:
    try:
        import gradio  # noqa: F401
    except ImportError:
        print('Error: the demo needs Gradio: pip install -e ".[demo]" (make install has it)',
              file=sys.stderr)
        raise SystemExit(2) from None
    try:
        loaded = load_model(cfg.ckpt_path or newest_checkpoint())
    except NoCheckpointError as err:
        print(f"Error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except CheckpointError as err:
        print(f"Error: ckpt_path={err}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's requests to itself
    print(f"serving {describe(loaded)}", flush=True)
    build_page(loaded, cfg.max_pixels).launch(server_name=cfg.host, server_port=cfg.port,
                                              show_error=True)


if __name__ == "__main__":
    skip_failing_nvml_check()
    main()
