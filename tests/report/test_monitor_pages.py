"""The drift and history pages: what each column means, plots that read right with one check,
and a history page small enough to mail."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from poisonguard.dataset import Dataset
from poisonguard.datasets import load_dataset
from poisonguard.monitor import DriftMonitor, History, Profile
from poisonguard.monitor.history import HistoryRow, LabelShare, TrendPoint
from poisonguard.report import render_drift, render_history
from poisonguard.report.monitor import _canary_figure, _feature_figure, _label_figure

PAGE_BOUND = 200_000  # bytes of a two-check history of 30 features (measured: about 170 KB)
PLOT_BOUND = 8_000  # bytes of one trend plot's data: URI (measured: 5-6 KB)
WHEN = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def halves() -> tuple[Profile, Dataset, Dataset]:
    """A profile of breast_cancer's even rows (30 numeric columns); the odd rows, as they are
    and with 'mean radius' one standard deviation up."""
    ds = load_dataset("breast_cancer")
    ref, batch = ds.take(range(0, 569, 2)), ds.take(range(1, 569, 2))
    X = np.array(batch.X, dtype=np.float64)
    X[:, 0] += ds.X[:, 0].std()
    return Profile.fit(ref), batch, batch.replace(X=X)


@pytest.fixture(scope="module")
def two_checks(halves: tuple[Profile, Dataset, Dataset],
               tmp_path_factory: pytest.TempPathFactory) -> History:
    profile, clean, shifted = halves
    history = History(tmp_path_factory.mktemp("history") / "h.sqlite")
    monitor = DriftMonitor(multivariate=False)
    for name, batch in (("clean", clean), ("shifted", shifted)):
        history.record(monitor.check(profile, batch), batch=name, when=WHEN)
    return history


def _canary(check_id: int, accuracy: float, baseline: float, alarm: bool = False) -> HistoryRow:
    return HistoryRow(id=check_id, kind="canary", batch=f"b{check_id}", when=WHEN, profile="p",
                      reference="ref.csv", n_rows=100, alarm=alarm, summary="", accuracy=accuracy,
                      baseline=baseline, model="logreg")


def _point(check_id: int, test: str, effect: float, gate: float) -> TrendPoint:
    return TrendPoint(check_id=check_id, batch=f"b{check_id}", when=WHEN, test=test,
                      feature="mean radius", effect=effect, gate=gate, p_adjusted=0.5, alarm=False)


def _inside_view(ax: Any) -> list[float]:
    lo, hi = ax.get_xlim()
    return [float(t) for t in ax.get_xticks() if lo <= t <= hi]


def _text_inside(fig: Any) -> None:
    """Every title, axis label, tick label and legend text lies inside the figure: nothing is
    clipped at its edges."""
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    ax = fig.axes[0]
    texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]
    legend = ax.get_legend() or fig.legends[0]
    texts += list(legend.get_texts())
    for text in texts:
        if not text.get_text():
            continue
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, text


def _legend_clear_of_plot(fig: Any) -> None:
    """The legend sits wholly above the plot area: no line or bar can run through it."""
    renderer = fig.canvas.get_renderer()
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend() or fig.legends[0]
    assert legend.get_window_extent(renderer).y0 >= ax.get_window_extent(renderer).y1


# ----------------------------------------------------------------------------- drift page
def test_drift_page_explains_statistic_and_effect(halves: tuple[Profile, Dataset, Dataset]) -> None:
    profile, _, shifted = halves
    report = DriftMonitor(multivariate=False).check(profile, shifted)
    page = render_drift(report)
    assert 'id="columns-note"' in page
    note = page[page.index('id="columns-note"'):page.index('<table class="tests">')]
    assert "p-value is computed from" in note and "compared with the gate" in note
    for kind in ("ks", "psi", "label"):
        assert f"<li><strong>{kind}</strong>:" in note
    assert "population stability index (PSI)" in note and "chi-square (χ²)" in note
    # each cell names its quantity: a psi row's statistic is a chi-square, its effect the PSI
    psi = next(t for t in report.tests if t.test == "psi" and t.feature == "mean radius")
    table = page[page.index('<table class="tests">'):]
    row = re.search(r"<td>psi</td><td>mean radius</td>(.*?)</tr>", table)
    assert row is not None
    cells = re.findall(r'<td class="num">(.*?)</td>', row.group(1))
    assert cells[0] == f'<span class="q">χ²</span> {psi.statistic:.3g}'
    assert cells[3] == f'<span class="q">PSI</span> {psi.effect:.3g}'
    ks = re.search(r"<td>ks</td><td>mean radius</td>(.*?)</tr>", table)
    assert ks is not None and ks.group(1).count('<span class="q">D</span>') == 2


def test_drift_page_wide_tables_scroll_in_place(halves: tuple[Profile, Dataset, Dataset]) -> None:
    profile, _, shifted = halves
    page = render_drift(DriftMonitor(multivariate=False).check(profile, shifted))
    assert '<div class="scroll">\n<table class="tests">' in page
    assert '<div class="scroll">\n<table class="alarms">' in page
    assert ".scroll { overflow-x: auto; }" in page


# --------------------------------------------------------------------------- history page
def test_two_check_history_page_is_small(two_checks: History) -> None:
    page = render_history(two_checks.rows(), two_checks.trend(), two_checks.label_shares(), db="h")
    uris = re.findall(r'src="(data:image/png;base64,[^"]+)"', page)
    assert len(uris) == 31  # the label and the 30 features
    assert len(page.encode("utf-8")) < PAGE_BOUND, len(page)
    assert max(len(u) for u in uris) < PLOT_BOUND
    assert "<script" not in page
    again = render_history(two_checks.rows(), two_checks.trend(), two_checks.label_shares(), db="h")
    assert again == page  # same history, same bytes


def test_history_plots_span_every_check_with_whole_ticks(two_checks: History) -> None:
    rows = two_checks.rows()
    order = {r.id: i + 1 for i, r in enumerate(rows)}
    fig = _feature_figure("mean radius", two_checks.trend("mean radius"), order)
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.5, 2.5)
    assert _inside_view(ax) == [1.0, 2.0]
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()] == [str(r.id) for r in rows]


def test_one_check_gives_whole_ticks_and_a_visible_baseline() -> None:
    order = {7: 1}  # one check, #7 in the table
    fig = _canary_figure([_canary(7, 0.955, 0.966)], order)
    ax = fig.axes[0]
    assert _inside_view(ax) == [1.0]
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels() if t.get_text()] == ["7"]
    baseline = next(line for line in ax.get_lines() if line.get_label() == "baseline")
    # one point draws no line: the baseline needs a marker of its own to be seen
    assert len(baseline.get_xdata()) == 1 and baseline.get_marker() not in ("", "None", None)
    assert baseline.get_markersize() >= 8
    lo, hi = ax.get_ylim()
    assert lo < 0.955 and hi > 0.966 and hi - lo >= 0.1  # a 0.01 wobble does not fill the plot
    for fig in (_feature_figure("mean radius", [_point(7, "ks", 0.12, 0.1),
                                                 _point(7, "psi", 0.3, 0.2)], order),
                _label_figure([LabelShare(7, "0", 0.4), LabelShare(7, "1", 0.6)], order)):
        assert _inside_view(fig.axes[0]) == [1.0]


@pytest.mark.parametrize("accuracy", [[0.955], [0.9612345, 0.95, 0.033]])
def test_canary_labels_are_not_clipped(accuracy: list[float]) -> None:
    rows = [_canary(i + 1, a, 0.966, alarm=a < 0.5) for i, a in enumerate(accuracy)]
    fig = _canary_figure(rows, {r.id: r.id for r in rows})
    _text_inside(fig)
    _legend_clear_of_plot(fig)


def test_feature_and_label_plots_keep_text_and_legend_clear(two_checks: History) -> None:
    order = {r.id: i + 1 for i, r in enumerate(two_checks.rows())}
    for fig in (_feature_figure("mean radius", two_checks.trend("mean radius"), order),
                _label_figure(two_checks.label_shares(), order)):
        _text_inside(fig)
        _legend_clear_of_plot(fig)


def test_history_page_layout_fits_narrow_windows(two_checks: History) -> None:
    page = render_history(two_checks.rows(), two_checks.trend(), two_checks.label_shares(),
                          db="/a/rather/long/path/to/the/team/history.sqlite")
    assert "minmax(min(330px, 100%), 1fr)" in page  # three plots a row at 1400 px, two at 800
    assert '<div class="scroll">\n<table class="checks">' in page
    assert "2 checks in /<wbr>a/<wbr>rather/<wbr>long/<wbr>" in page
    one = render_history(two_checks.rows()[:1], two_checks.trend(), two_checks.label_shares(), db="h")
    assert "1 check in h" in one and one.count('class="trend"') == 31
