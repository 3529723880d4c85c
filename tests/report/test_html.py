"""The self-contained HTML scan report: content, escaping, thumbnails, sources, determinism."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from poisonguard.report import render_scan
from poisonguard.report.html import TOP_ROWS

EVIL = "<script>alert(1)</script>"
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _images(html: str, css_class: str) -> list[str]:
    return re.findall(rf'<img class="{css_class}"[^>]*>', html)


def test_page_is_one_self_contained_file(report_factory, tmp_path: Path) -> None:
    report = report_factory("image", sources=True)
    html = render_scan(report)
    assert html.startswith("<!DOCTYPE html>")
    assert re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE) is None
    assert re.search(r"url\(\s*['\"]?\s*(https?:)?//", html, re.IGNORECASE) is None
    assert "<link" not in html and "<script" not in html and "@import" not in html
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    for payload in DATA_URI.findall(html):
        assert base64.b64decode(payload).startswith(b"\x89PNG\r\n\x1a\n")
    report.to_html(tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == html


def test_summary_numbers_and_detectors(report_factory) -> None:
    report = report_factory("tabular")
    html = render_scan(report)
    n = report.n_flagged
    assert 0 < n < report.dataset.n_rows
    assert f'id="n-rows">{report.dataset.n_rows:,}<' in html
    assert f'id="n-flagged">{n:,}<' in html
    assert f'id="flagged-share">{100 * n / report.dataset.n_rows:.2f} %<' in html
    assert 'id="threshold">0.500<' in html
    assert "toy-tabular" in html and "spectral</strong>: needs torch" in html
    assert "a seeded toy" in html and "proxy model" in html and "1.25 s" in html
    for name, count in report.flagged_by().items():
        assert f"{name} ({count})" in html


def test_budget_is_shown_instead_of_threshold(report_factory) -> None:
    html = render_scan(report_factory("tabular", budget=7))
    assert 'id="budget">7<' in html and 'id="threshold"' not in html


def test_one_histogram_per_detector_plus_combined(report_factory) -> None:
    report = report_factory("tabular")
    hists = _images(render_scan(report), "hist")
    names = [re.search(r'data-detector="([^"]+)"', h).group(1) for h in hists]  # type: ignore[union-attr]
    assert names == ["combined", *report.detectors]


def test_top_flagged_rows_in_score_order(report_factory) -> None:
    report = report_factory("tabular", n=2000)
    html = render_scan(report)
    table = report.table[report.table["flagged"]].sort_values("score", ascending=False, kind="stable")
    assert len(table) > TOP_ROWS
    shown = table["row_id"].head(TOP_ROWS).tolist()
    cells = re.findall(r'<td class="id">([^<]*)</td>', html)
    assert cells == shown
    assert table["row_id"].iloc[TOP_ROWS] not in cells
    first = table.iloc[0]
    assert f'{first["score"]:.3f}' in html and str(first["reason"]) in html


@pytest.mark.parametrize("modality", ["tabular", "image", "text"])
def test_user_text_is_escaped(report_factory, modality: str) -> None:
    html = render_scan(report_factory(modality, sources=True, evil=EVIL))
    assert EVIL not in html and "<script" not in html
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f"id-{escaped}" in html  # row id
    assert f"<td>{escaped}</td>" in html  # label (and source)
    assert f"label: {escaped}" in html  # reason
    assert f"<title>poisonguard scan: {escaped}.csv</title>" in html


def test_thumbnails_for_image_data_only(report_factory) -> None:
    image = render_scan(report_factory("image"))
    thumbs = _images(image, "thumb")
    assert len(thumbs) == min(TOP_ROWS, report_factory("image").n_flagged) > 0
    assert all('src="data:image/png;base64,' in t for t in thumbs)
    for modality in ("tabular", "text"):
        assert _images(render_scan(report_factory(modality)), "thumb") == []


def test_grey_and_channel_first_images_render(report_factory) -> None:
    from poisonguard.report._figures import thumbnail_uris

    rng = np.random.default_rng(1)
    rows = np.arange(3)
    for X in (rng.random((5, 9, 7)), rng.random((5, 3, 9, 7)), rng.random((5, 300, 200, 1)),
              np.zeros((5, 4, 4))):
        uris = thumbnail_uris(X, rows)
        assert len(uris) == 3 and all(u.startswith("data:image/png;base64,") for u in uris)


def test_text_snippets_and_tabular_features(report_factory) -> None:
    text = report_factory("text")
    html = render_scan(text)
    top = int(np.argmax(text.scores))
    assert f'<td class="text">{text.dataset.X[top]}</td>' in html
    tab = report_factory("tabular")
    html = render_scan(tab)
    top = int(np.argmax(tab.scores))
    assert f'<td class="num">{tab.dataset.X[top, 0]:.4g}</td>' in html
    assert '<th class="num feature">x5</th>' in html and ">x6<" not in html


def test_source_table_only_with_sources(report_factory) -> None:
    report = report_factory("tabular", sources=True)
    html = render_scan(report)
    assert 'id="sources"' in html
    for row in report.by_source().itertuples(index=False):
        assert (f'<tr><td class="mono">{row.source}</td><td class="num">{row.rows}</td>'
                f'<td class="num">{row.flagged}</td>') in html
    assert 'id="sources"' not in render_scan(report_factory("tabular"))


def test_no_flagged_rows(report_factory) -> None:
    report = report_factory("tabular", n=20, seed=3)
    table = report.table.assign(flagged=False, reason="")
    empty = type(report)(**{**report.__dict__, "table": table})
    html = render_scan(empty)
    assert "No rows were flagged." in html and 'id="n-flagged">0<' in html


def test_same_report_same_bytes(report_factory) -> None:
    first = render_scan(report_factory("image", sources=True))
    assert render_scan(report_factory("image", sources=True)) == first
    assert render_scan(report_factory("image", sources=True, seed=1)) != first


# ------------------------------------------------------------------ layout on narrow screens
def _style(html: str) -> str:
    return html[html.index("<style>"):html.index("</style>")]


def test_flagged_table_scrolls_inside_a_frame_no_taller_than_the_window(report_factory) -> None:
    html = render_scan(report_factory("tabular", n=2000))
    assert '<div class="table-frame" id="flagged-frame">\n<table class="flagged">' in html
    css = _style(html)
    frame = re.search(r"\.table-frame \{([^}]*)\}", css)
    assert frame is not None
    # both scrollbars belong to the frame, and the frame fits the window: the sideways
    # scrollbar is in sight wherever the table is, not under its 50th row
    assert "overflow: auto" in frame.group(1)
    assert re.search(r"max-height: min\(\d+vh, \d+px\)", frame.group(1))
    assert "table.flagged thead { position: sticky; top: 0;" in css  # the header stays
    assert re.search(r"table\.flagged tbody td:nth-child\(-n\+2\) \{ position: sticky;", css)
    assert "scrolls in its frame" in html  # and the page says so


@pytest.mark.parametrize("modality", ["tabular", "image", "text"])
def test_nothing_forces_the_page_wider_than_800_px(report_factory, modality: str) -> None:
    html = render_scan(report_factory(modality, sources=True, n=400))
    css = _style(html)
    # grid tracks shrink with the page (min(..., 100%)), fixed widths are small
    assert all(arg.startswith("min(") for arg in re.findall(r"minmax\(([^,]+),", css))
    widths = [int(w) for w in re.findall(r"(?<![-\w])(?:min-)?width: (\d+)px", css)]
    assert widths and max(widths) <= 400
    # every table but the small key-value ones scrolls inside a container of its own
    for match in re.finditer(r"<table( class=\"([^\"]*)\")?>", html):
        if "kv" in (match.group(2) or "").split():
            continue
        before = html[:match.start()]
        assert before.endswith(('<div class="scroll">', '<div class="scroll">\n',
                                '<div class="table-frame" id="flagged-frame">\n')), match.group(0)


def test_long_paths_break_at_slashes(report_factory) -> None:
    report = report_factory("tabular")
    long = "/data/" + "/".join(["a-rather-long-folder-name"] * 6) + "/batch_2025.csv"
    html = render_scan(type(report)(**{**report.__dict__, "data_path": long}))
    assert "<span class=\"data\">/<wbr>data/<wbr>a-rather-long-folder-name/<wbr>" in html
    assert f"<title>poisonguard scan: {long}</title>" in html  # the title stays as it is


def test_histogram_legend_sits_clear_of_the_plot() -> None:
    from poisonguard.report._figures import histogram_figure

    rng = np.random.default_rng(0)
    for n in (500, 1_000_000):  # one legend row; two rows when the counts are long
        scores = rng.random(n) ** 4
        fig = histogram_figure(scores, scores >= 0.5, 0.5, "combined score")
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax, legend = fig.axes[0], fig.legends[0]
        legend_box, plot_box = legend.get_window_extent(renderer), ax.get_window_extent(renderer)
        assert legend_box.y0 >= plot_box.y1  # the threshold line ends below the legend
        width, height = fig.canvas.get_width_height()
        for text in [*legend.get_texts(), ax.xaxis.label, ax.yaxis.label, *fig.texts]:
            box = text.get_window_extent(renderer)
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, text
        hit = int((scores >= 0.5).sum())
        assert sorted(t.get_text() for t in legend.get_texts()) == [
            f"flagged ({hit})", f"not flagged ({n - hit})", "threshold"]


def test_figures_are_small_paletted_pngs(report_factory) -> None:
    html = render_scan(report_factory("tabular", n=2000))
    payloads = [base64.b64decode(p) for p in re.findall(
        r'<img class="hist"[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]
    assert len(payloads) == 3
    for png in payloads:
        assert png[25] == 3  # IHDR colour type 3: a palette, not 4 bytes a pixel
        assert len(png) < 10_000
