"""Real reports in headless Chromium: a scan report renders (``scripts/check-html.py``), and
the scan and history pages fit 800 and 1400 px wide windows without sideways scrolling."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from poisonguard.datasets import load_dataset
from poisonguard.monitor import DriftMonitor, History, Profile
from poisonguard.report import render_history
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


# A probe for a copy of a page (the reports themselves carry no script): after load it writes
# what the layout came to into a <pre> that --dump-dom prints.
PROBE = """<script>
addEventListener('load', () => {
  const d = document.documentElement, f = document.getElementById('flagged-frame');
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({page: d.scrollWidth, window: d.clientWidth, height: innerHeight,
    frame: f && {width: f.clientWidth, content: f.scrollWidth, height: f.clientHeight}});
  document.body.appendChild(out);
});
</script>"""


def _layout(page: Path, width: int, tmp_path: Path) -> dict[str, Any]:
    """What a ``width`` px wide window makes of ``page``, measured on a probed copy."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser is not None
    copy = tmp_path / f"probe-{width}-{page.name}"
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                    encoding="utf-8")
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--host-resolver-rules=MAP * ~NOTFOUND", f"--window-size={width},900",
         "--virtual-time-budget=5000", "--dump-dom", copy.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    assert found is not None, done.stderr[-2000:]
    layout: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return layout


@pytest.mark.parametrize("width", [800, 1400])
def test_wide_scan_and_history_fit_the_window(tmp_path: Path, width: int) -> None:
    data = load_dataset("breast_cancer")  # 30 features: the top-rows table is wider than 800 px
    report = scan(data, detectors=["label", "neighbors"])
    assert report.n_flagged > 0
    page = tmp_path / "report.html"
    report.to_html(page)
    layout = _layout(page, width, tmp_path)
    assert layout["page"] <= layout["window"]  # no sideways scrolling of the page itself
    frame = layout["frame"]
    assert frame["height"] < layout["height"]  # its scrollbar is on screen with the table
    if width == 800:
        assert frame["content"] > frame["width"]  # the table scrolls, inside its frame

    history = History(tmp_path / "h.sqlite")
    profile = Profile.fit(data.take(range(0, 569, 2)))
    history.record(DriftMonitor(multivariate=False).check(profile, data.take(range(1, 569, 2))))
    hist = tmp_path / "history.html"
    hist.write_text(render_history(history.rows(), history.trend(), history.label_shares(),
                                   db=str(tmp_path / "a" / "long" / "path" / "h.sqlite")),
                    encoding="utf-8")
    layout = _layout(hist, width, tmp_path)
    assert layout["page"] <= layout["window"]
