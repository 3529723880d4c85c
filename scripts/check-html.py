#!/usr/bin/env python3
"""Render an HTML report in headless Chromium and fail if the screenshot is blank.

    python scripts/check-html.py REPORT.html [--png OUT.png]

Chromium (``chromium`` or ``chromium-browser`` on PATH) loads the file with every host name
unresolvable, so the page must stand on its own, and writes a 1280x2000 screenshot. The page
fails when the screenshot is a single colour or has fewer than ``MIN_INK`` of its pixels off
the background colour (the most common one). Exit codes: 0 the page renders; 1 blank page or
Chromium failed; 2 usage error (no such file, no Chromium).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

BROWSERS = ("chromium", "chromium-browser")
WINDOW = (1280, 2000)
MIN_INK = 0.01  # share of pixels that must differ from the background colour
TOLERANCE = 8  # per-channel difference (of 255) still counted as background
TIMEOUT_S = 120


def find_browser() -> str | None:
    """Path of the first Chromium binary on PATH, or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(browser: str, page: Path, png: Path) -> None:
    """Let headless Chromium write a screenshot of ``page`` to ``png``; raise on failure."""
    with tempfile.TemporaryDirectory(prefix="check-html-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--hide-scrollbars", "--no-first-run", "--no-default-browser-check",
               f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
               f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={png}",
               page.resolve().as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"chromium did not finish within {TIMEOUT_S} s") from None
    if done.returncode != 0 or not png.is_file() or png.stat().st_size == 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        last = lines[-1] if lines else "no output"
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {last}")


def ink(png: Path) -> tuple[float, int]:
    """Share of pixels away from the background colour, and the number of distinct colours."""
    from matplotlib.image import imread

    img = np.asarray(imread(png))
    if img.dtype.kind == "f":
        img = np.rint(img * 255)
    rgb = img.reshape(-1, img.shape[-1])[:, :3].astype(np.int64) if img.ndim == 3 else \
        img.reshape(-1, 1).astype(np.int64)
    colours, counts = np.unique(rgb, axis=0, return_counts=True)
    background = colours[np.argmax(counts)]
    off = np.abs(rgb - background).max(axis=1) > TOLERANCE
    return float(off.mean()), len(colours)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="the HTML file to render")
    parser.add_argument("--png", type=Path, help="keep the screenshot here")
    args = parser.parse_args(argv)
    page: Path = args.report
    if not page.is_file():
        print(f"check-html: {page}: no such file", file=sys.stderr)
        return 2
    browser = find_browser()
    if browser is None:
        print(f"check-html: no Chromium on PATH (looked for {', '.join(BROWSERS)})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="check-html-shot-") as tmp:
        png = args.png.resolve() if args.png else Path(tmp) / "screenshot.png"
        png.parent.mkdir(parents=True, exist_ok=True)
        png.unlink(missing_ok=True)
        try:
            screenshot(browser, page, png)
        except RuntimeError as exc:
            print(f"check-html: {page}: {exc}", file=sys.stderr)
            return 1
        share, n_colours = ink(png)
    if n_colours <= 1 or share < MIN_INK:
        print(f"check-html: {page}: blank page ({100 * share:.2f} % of pixels off the background, "
              f"{n_colours} colour{'s' if n_colours != 1 else ''}; need {100 * MIN_INK:.0f} %)",
              file=sys.stderr)
        return 1
    print(f"check-html: {page}: ok ({WINDOW[0]}x{WINDOW[1]}, {100 * share:.1f} % of pixels off the "
          f"background, {n_colours} colours)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
