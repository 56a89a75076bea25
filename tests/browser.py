"""Test tooling: the demo page in headless Chromium (start demo.py, open it, draw on it).

Used by the demo's end-to-end test and by ``make screenshots``. Playwright for Python drives
Debian's ``chromium`` (``executable_path``), since Playwright's own browser download may not be
reachable; the flags keep Chromium from calling home, which a closed network refuses.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests import zygote

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
# Strokes in canvas fractions (0..1 across and down), as a hand would draw each digit.
Stroke = Sequence[tuple[float, float]]
DIGITS: dict[str, list[Stroke]] = {
    "1": [[(0.5, 0.15 + 0.035 * k) for k in range(21)]],
    "0": [[(0.5 + 0.2 * math.sin(t / 12 * math.tau), 0.5 - 0.33 * math.cos(t / 12 * math.tau))
           for t in range(14)]],
    "7": [[(0.25 + 0.05 * k, 0.18) for k in range(11)],
          [(0.75 - 0.025 * k, 0.18 + 0.065 * k) for k in range(11)]],
}


def chromium() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, seconds: float = 60,
             process: subprocess.Popen | zygote.Run | None = None,
             log: Path | None = None) -> None:
    """Return once ``url`` answers; fail when ``process`` (the server) ends or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            ended = process is not None and process.poll() is not None
            if ended or time.monotonic() > deadline:
                said = log.read_text()[-2000:] if log is not None and log.is_file() else ""
                raise RuntimeError(f"nothing answered at {url} within {seconds} s {said}"
                                   ) from None
            time.sleep(0.5)


@contextmanager
def serve_demo(ckpt_path: str | os.PathLike[str], cwd: Path, seconds: float = 180
               ) -> Iterator[str]:
    """Run ``python demo.py ckpt_path=...`` until the block ends; yield the page's URL."""
    port = free_port()
    env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False"}
    server = zygote.start("demo.py", [f"ckpt_path={ckpt_path}", f"port={port}"], cwd, env,
                          cwd / "demo.log")
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(url, seconds, server, log=cwd / "demo.log")
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


@contextmanager
def open_page(url: str, width: int = 1200, height: int = 900) -> Iterator[Any]:
    """A Playwright page on ``url`` in headless Debian chromium, once the canvas is there."""
    from playwright.sync_api import sync_playwright  # a dev extra: only the browser tests need it

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url)
            page.wait_for_selector("#canvas canvas", timeout=60_000)
            yield page
        finally:
            browser.close()


def draw(page: Any, strokes: Sequence[Stroke]) -> None:
    """Mouse strokes on the canvas: press, move through the points, release."""
    page.wait_for_function("() => document.querySelector('#canvas canvas')")
    box = page.locator("#canvas canvas").first.bounding_box()
    # The drawing area is the square in the middle of the canvas element.
    side = min(box["width"], box["height"]) * 0.8
    left = box["x"] + (box["width"] - side) / 2
    top = box["y"] + (box["height"] - side) / 2
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(left + x * side, top + y * side)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(left + x * side, top + y * side)
        page.mouse.up()


def prediction(page: Any, changed_from: str | None = None, seconds: float = 90) -> str:
    """The page's prediction line, once it differs from ``changed_from`` and is final."""
    text_box = page.locator("#prediction [data-testid=markdown]")
    busy = page.locator("#prediction [data-testid=status-tracker]:not(.hide)")
    deadline = time.monotonic() + seconds
    same = 0  # looks in a row, a quarter of a second apart, with this text and nothing running
    last = None
    while True:
        text = text_box.inner_text().strip()
        same = same + 1 if text == last and busy.count() == 0 else 0
        # Final: changed, and idle with the same text for 1.5 s (a drawing queues several
        # readings, the page is idle for a moment between them, and a loaded machine delays
        # the browser's last one).
        if text and text != changed_from and same >= 6:
            return text
        if time.monotonic() > deadline:
            return text
        last = text
        time.sleep(0.25)


def upload(page: Any, path: str | os.PathLike[str]) -> None:
    """Choose a file in the page's upload box, as a user would."""
    page.locator("#upload input[type=file]").set_input_files(str(path))


def clear(page: Any) -> str:
    """Press the page's Clear button; return the prediction line it leaves."""
    before = page.locator("#prediction [data-testid=markdown]").inner_text().strip()
    page.locator("#clear").click()
    return prediction(page, changed_from=before)
