"""A real scan report renders in headless Chromium (``scripts/check-html.py``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from poisonguard.datasets import load_dataset
from poisonguard.scan import scan

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check-html.py"

pytestmark = [
    pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                       reason="no chromium or chromium-browser on PATH (apt-get install chromium)"),
    pytest.mark.slow,
]


def _check(page: Path, png: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), str(page), "--png", str(png)],
                          capture_output=True, text=True, timeout=300, check=False)


def test_scan_report_renders_in_chromium(tmp_path: Path) -> None:
    data = load_dataset("digits", n_rows=400, random_state=0)
    sources = np.random.default_rng(0).choice(["vendor-a", "vendor-b"], size=data.n_rows)
    report = scan(data.replace(sources=sources), detectors=["label", "neighbors"])
    assert report.n_flagged > 0
    page = tmp_path / "report.html"
    report.to_html(page)
    done = _check(page, tmp_path / "shot.png")
    assert done.returncode == 0, done.stderr
    assert "ok (1280x2000" in done.stdout
    assert (tmp_path / "shot.png").read_bytes().startswith(b"\x89PNG")


def test_blank_page_fails(tmp_path: Path) -> None:
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body style='background:#fafafa'></body></html>\n")
    done = _check(page, tmp_path / "shot.png")
    assert done.returncode == 1
    assert "blank page" in done.stderr and len(done.stderr.strip().splitlines()) == 1
