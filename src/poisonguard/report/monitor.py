"""Self-contained HTML pages for a drift check and for the monitoring history.

The drift page draws distributions as CSS bars (no images), so it costs nothing next to the
check, and says what its statistic and effect columns are for each kind of test (they differ
for psi, chi2 and the label). The history page embeds small matplotlib (Agg) plots as base64
paletted PNGs (:func:`~poisonguard.report._figures.png_uri`, a few KB each): one per feature
(its KS and PSI, or TVD, effect per check against the gates), one of the label shares per
check and one of the canary accuracy against its baseline. Every plot spans all the checks of
the page, oldest first; its ticks sit on whole checks and read each check's # in the table.
Features are ordered by their largest effect relative to its gate and at most
``MAX_FEATURE_PLOTS`` are drawn. PNGs carry no date or software metadata: the same history
gives the same bytes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from poisonguard.monitor.drift import DriftReport, DriftTest
    from poisonguard.monitor.history import HistoryRow, LabelShare, TrendPoint

from poisonguard.report._figures import png_uri
from poisonguard.report.html import environment

__all__ = ["render_drift", "render_history"]

SHOWN_DISTRIBUTIONS = 8  # columns drawn besides the label (alarmed ones, else the largest moves)
MAX_FEATURE_PLOTS = 40
SHOWN_LABELS = 10
SIZE, DPI = (3.8, 2.3), 100  # inches at DPI: drawn near 1:1 in the page's grid of ~370 px
MARKER = 3.5
FONT = 9  # points: about 12 px, next to the page's 14 px text
LEGEND_PAD = 21  # points between a plot and its title: the legend's row
EFFECTS = {"ks": "D", "psi": "PSI", "chi2": "TVD", "label": "TVD", "classifier": "AUC"}
# the statistic each test's p-value comes from (psi's p-value is the chi-square test of its bins)
STATISTICS = {"ks": "D", "psi": "χ²", "chi2": "χ²", "label": "χ²", "classifier": "AUC"}
EXPLAINED = {  # what the drift page says of each kind of test, under its table of all tests
    "ks": "two-sample Kolmogorov-Smirnov test of a numeric column; statistic and effect are "
          "both D, the largest gap between the two cumulative distributions",
    "psi": "a numeric column over the reference's decile bins (and a bin of missing values): "
           "the statistic is the chi-square (χ²) of the binned counts, which gives the p-value; "
           "the effect is the population stability index (PSI) over the same bins",
    "chi2": "a categorical column: statistic χ² of the category counts, effect the total "
            "variation distance (TVD) between the reference's and the batch's shares",
    "label": "the labels: statistic χ² of the label counts, effect their TVD",
    "classifier": "a domain classifier that tells batch rows from reference rows: statistic "
                  "and effect are both its out-of-fold AUC (0.5: it cannot tell them apart)",
}
COLORS = {"ks": "#1f77b4", "psi": "#ff7f0e", "chi2": "#2ca02c", "label": "#9467bd",
          "classifier": "#8c564b"}


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _test_view(t: DriftTest) -> dict[str, Any]:
    return {"test": t.test, "feature": t.feature, "statistic": _fmt(t.statistic),
            "statistic_name": STATISTICS.get(t.test, ""), "p_value": _fmt(t.p_value),
            "p_adjusted": _fmt(t.p_adjusted), "effect": _fmt(t.effect),
            "effect_name": EFFECTS.get(t.test, ""), "gate": _fmt(t.gate), "alarm": t.alarm}


def render_drift(report: DriftReport) -> str:
    """The drift page of ``report``."""
    from poisonguard import __version__
    from poisonguard.monitor.drift import relative

    with_shares = [t for t in report.tests if t.shares and t.test != "label"]
    moved = [t for t in with_shares if t.alarm] or sorted(with_shares, key=lambda t: -relative(t))
    shown = [t for t in report.tests if t.test == "label"] + moved[:SHOWN_DISTRIBUTIONS]
    distributions = [{"feature": t.feature, "test": t.test, "effect": _fmt(t.effect),
                      "shares": t.shares, "top": max(max(r, b) for _, r, b in t.shares) or 1.0}
                     for t in shown]
    return environment().get_template("drift.html.j2").render(
        drift=report.drift, batch=report.batch, reference=report.reference, profile=report.profile[:19],
        n_batch=report.n_batch, n_reference=report.n_reference, n_tests=len(report.tests),
        alarms=[_test_view(t) for t in report.alarms], tests=[_test_view(t) for t in report.tests],
        distributions=distributions, alpha=report.alpha, correction=report.correction,
        gates=report.gates, effects=EFFECTS, notes=report.notes, version=__version__,
        explained=[(k, EXPLAINED[k]) for k in dict.fromkeys(t.test for t in report.tests)
                   if k in EXPLAINED])


def _figure(title: str, order: dict[int, int]) -> tuple[Any, Any]:
    """A small trend figure over the checks ``order`` (check id -> place, oldest first, from 1):
    a check sits at its place and its tick reads its id (the table's #); ticks are whole checks
    only, and the legend goes above the plot (:func:`_legend`)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")  # room for any tick label's width
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    # min_n_ticks=1: without it a short span falls back to fractional ticks (0.96, 0.98, ...)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True, min_n_ticks=1))
    ax.set_xlim(0.5, max(len(order), 1) + 0.5)
    ids = {place: check for check, place in order.items()}
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: str(ids.get(round(v), ""))))
    ax.set_title(title, fontsize=FONT + 1, pad=LEGEND_PAD)
    ax.set_xlabel("check #", fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    ax.grid(alpha=0.3)
    return fig, ax


def _legend(ax: Any, ncols: int) -> None:
    """The legend in a row of its own between the title and the plot, clear of the data."""
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=FONT, frameon=False,
              ncols=ncols, handlelength=1.6, columnspacing=1.2, borderaxespad=0.1)


def _feature_figure(name: str, points: Sequence[TrendPoint], order: dict[int, int]) -> Any:
    """Effects (KS D, PSI, TVD) of one feature per check, its gates dashed, alarms in red."""
    fig, ax = _figure(name, order)
    by_test: dict[str, list[TrendPoint]] = defaultdict(list)
    for p in points:
        by_test[p.test].append(p)
    for test, pts in by_test.items():
        x = [order[p.check_id] for p in pts]
        color = COLORS.get(test, "black")
        ax.plot(x, [p.effect for p in pts], marker="o", markersize=MARKER, color=color,
                label=f"{test} ({EFFECTS.get(test, test)})")
        ax.axhline(pts[-1].gate, color=color, linestyle="--", linewidth=1)
        hits = [(xi, p.effect) for xi, p in zip(x, pts, strict=True) if p.alarm]
        if hits:
            ax.scatter(*zip(*hits, strict=True), color="#c0392b", zorder=3, s=22)
    top = max(max(p.effect, p.gate) for p in points)
    ax.set_ylim(0.0, 1.12 * top if top > 0 else 1.0)  # room for a marker on the top value
    ax.set_ylabel("effect", fontsize=FONT)
    _legend(ax, len(by_test))
    return fig


def _label_figure(shares: Sequence[LabelShare], order: dict[int, int]) -> Any:
    """The label shares of each drift check's batch as stacked bars (the ``SHOWN_LABELS``
    most common labels)."""
    import numpy as np

    totals: dict[str, float] = defaultdict(float)
    for s in shares:
        totals[s.label] += s.share
    labels = sorted(totals, key=lambda k: -totals[k])[:SHOWN_LABELS]
    checks = sorted({s.check_id for s in shares}, key=lambda c: order[c])
    grid = np.zeros((len(labels), len(checks)))
    col = {c: j for j, c in enumerate(checks)}
    for s in shares:
        if s.label in labels:
            grid[labels.index(s.label), col[s.check_id]] = s.share
    fig, ax = _figure("label distribution", order)
    x = [order[c] for c in checks]
    bottom = np.zeros(len(checks))
    for i, label in enumerate(labels):
        ax.bar(x, grid[i], bottom=bottom, label=label, width=0.8)
        bottom += grid[i]
    ax.set_ylabel("share of rows", fontsize=FONT)
    ax.set_ylim(0, 1.0)
    ax.set_yticks([0.0, 0.25, 0.5, 0.75, 1.0])
    _legend(ax, min(len(labels), 5))
    return fig


def _canary_figure(rows: Sequence[HistoryRow], order: dict[int, int]) -> Any:
    """Canary accuracy per check against its baseline (a dash at every check, so one check
    shows it too), alerts in red."""
    fig, ax = _figure("canary accuracy", order)
    x = [order[r.id] for r in rows]
    accuracy = [float(r.accuracy) for r in rows if r.accuracy is not None]
    based = [(order[r.id], float(r.baseline)) for r in rows if r.baseline is not None]
    baseline = [b for _, b in based]
    if based:
        ax.plot([i for i, _ in based], baseline, linestyle="--", color="gray", marker="_",
                markersize=14, markeredgewidth=1.5, label="baseline")
    ax.plot(x, accuracy, marker="o", markersize=MARKER, color=COLORS["ks"], label="accuracy")
    hits = [(xi, r.accuracy) for xi, r in zip(x, rows, strict=True) if r.alarm]
    if hits:
        ax.scatter(*zip(*hits, strict=True), color="#c0392b", zorder=3, s=22, label="alert")
    values = accuracy + baseline
    # at least 0.1 of accuracy in view: a 0.01 wobble must not fill the plot like a collapse
    lo, hi = min(values), max(values)
    pad = max(0.0, 0.1 - (hi - lo)) / 2 + 0.03  # and room for the markers at either end
    ax.set_ylim(max(-0.02, lo - pad), min(1.02, hi + pad))
    ax.set_ylabel("accuracy", fontsize=FONT)
    _legend(ax, 3 if hits else 2)
    return fig


def render_history(rows: Sequence[HistoryRow], trend: Sequence[TrendPoint],
                   shares: Sequence[LabelShare], *, db: str, profile: str | None = None) -> str:
    """The history page: every check, then trend plots (features, label, canary)."""
    from poisonguard import __version__

    order = {r.id: i + 1 for i, r in enumerate(rows)}
    trend = [p for p in trend if p.check_id in order]
    shares = [s for s in shares if s.check_id in order]
    plots = []
    canary = [r for r in rows if r.kind == "canary" and r.accuracy is not None]
    if canary:
        plots.append({"name": "(canary)", "uri": png_uri(_canary_figure(canary, order))})
    if shares:
        plots.append({"name": "(label)", "uri": png_uri(_label_figure(shares, order))})
    by_feature: dict[str, list[TrendPoint]] = defaultdict(list)
    for p in trend:
        if p.test in ("ks", "psi", "chi2"):
            by_feature[p.feature].append(p)
    ranked = sorted(by_feature, key=lambda f: -max(p.effect / max(p.gate, 1e-12) for p in by_feature[f]))
    plots += [{"name": f, "uri": png_uri(_feature_figure(f, by_feature[f], order))}
              for f in ranked[:MAX_FEATURE_PLOTS]]
    checks = [{"id": r.id, "when": r.when.strftime("%Y-%m-%d %H:%M:%S"), "kind": r.kind,
               "batch": r.batch, "reference": r.reference, "n_rows": r.n_rows, "alarm": r.alarm,
               "summary": r.summary} for r in rows]
    return environment().get_template("history.html.j2").render(
        checks=checks, plots=plots, db=db, profile=profile, version=__version__)
