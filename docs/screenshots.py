"""`make screenshots`: the README's pictures of TensorBoard, taken from a real sweep.

Runs a small sweep (four runs, a fraction of an epoch each), starts a real `tensorboard` on it,
and has headless Chromium (Debian's package `chromium`) photograph the HPARAMS table, the
scalars and the images. The PNGs are written to docs/ at a reduced palette to stay small.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

from tests.browser import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["model=cnn,mlp_bn", "optimizer=adam,sgd", "optimizer.lr=0.003", "scheduler=onecycle",
         "trainer.max_epochs=2", "trainer.limit_train_batches=0.25",
         "trainer.enable_progress_bar=false"]
# TensorBoard's dashboards (the URL after '#', with a tag filter) and the window size for each.
PAGES = {
    "hparams": ("hparams", "1800,700"),
    "scalars": ("scalars&tagFilter=%5E(val%7Ctest)%2F(acc%7Closs)%24%7Ctrain%2Flr", "1400,1000"),
    "images": ("images&tagFilter=%5Eimages%2F", "1400,1000"),
}


def screenshot(chromium: str, url: str, out: Path, size: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mnistlab-chromium-") as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        f"--user-data-dir={profile}", "--hide-scrollbars",
                        f"--screenshot={out}", f"--window-size={size}",
                        "--virtual-time-budget=15000", url],
                       check=True, capture_output=True, timeout=120)
    # A 64-colour palette keeps a dashboard picture legible at a fraction of the bytes.
    Image.open(out).convert("RGB").quantize(64).save(out, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--sweep-dir", type=Path, default=ROOT / "outputs" / "screenshots")
    parser.add_argument("--reuse", action="store_true",
                        help="photograph the sweep already in --sweep-dir instead of a new one")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Error: no chromium on PATH; install it with `apt-get install chromium`")
    if not args.reuse:
        shutil.rmtree(args.sweep_dir, ignore_errors=True)
        subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", *SWEEP,
                        f"hydra.sweep.dir={args.sweep_dir}"], check=True, cwd=ROOT)
    port = free_port()
    board = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir",
                              str(args.sweep_dir), "--host", "127.0.0.1", "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        args.out.mkdir(parents=True, exist_ok=True)
        for name, (page, size) in PAGES.items():
            out = args.out / f"tensorboard_{name}.png"
            screenshot(chromium, f"http://127.0.0.1:{port}/#{page}", out, size)
            print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    finally:
        board.terminate()
        board.wait(timeout=30)


if __name__ == "__main__":
    main()
