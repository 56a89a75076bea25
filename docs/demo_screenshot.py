"""The README's picture of the demo page: serve a checkpoint, draw a 7, photograph the page.

`make screenshots` runs it after the TensorBoard pictures; by default it serves the newest best
checkpoint under outputs/ (`--ckpt` picks one). Needs Debian's chromium and Playwright.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from PIL import Image

from mnistlab.demo import newest_checkpoint
from tests import browser

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "demo.png")
    args = parser.parse_args()
    if browser.chromium() is None:
        raise SystemExit("Error: no chromium on PATH; install it with `apt-get install chromium`")
    ckpt = (args.ckpt or newest_checkpoint(ROOT / "outputs")).resolve()
    with tempfile.TemporaryDirectory(prefix="mnistlab-demo-") as workdir, \
            browser.serve_demo(ckpt, cwd=Path(workdir)) as url, \
            browser.open_page(url, width=1200, height=1000) as page:
        browser.draw(page, browser.DIGITS["7"])
        print(browser.prediction(page, "Draw a digit, or upload a picture of one."))
        page.wait_for_timeout(1500)  # the outputs' fade-in after an update
        page.screenshot(path=str(args.out))
    # A 64-colour palette keeps the picture legible at a fraction of the bytes.
    Image.open(args.out).convert("RGB").quantize(64).save(args.out, optimize=True)
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
