"""Self-contained HTML pages for a drift check and for the monitoring history.

The drift page draws distributions as CSS bars (no images), so it costs nothing next to the
check. The history page embeds matplotlib (Agg) plots as base64 PNG: one per feature (its KS
and PSI, or TVD, effect per check against the gates), one of the label shares per check and
one of the canary accuracy. Features are ordered by their largest effect relative to its
gate and at most ``MAX_FEATURE_PLOTS`` are drawn. PNGs carry no date or software metadata:
the same history gives the same bytes.
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from poisonguard.monitor.drift import DriftReport, DriftTest
    from poisonguard.monitor.history import HistoryRow, LabelShare, TrendPoint

from poisonguard.report.html import environment

__all__ = ["render_drift", "render_history"]

SHOWN_DISTRIBUTIONS = 8  # columns drawn besides the label (alarmed ones, else the largest moves)
MAX_FEATURE_PLOTS = 40
SHOWN_LABELS = 10
SIZE, DPI = (5.0, 2.4), 100
EFFECTS = {"ks": "D", "psi": "PSI", "chi2": "TVD", "label": "TVD", "classifier": "AUC"}
COLORS = {"ks": "#1f77b4", "psi": "#ff7f0e", "chi2": "#2ca02c", "label": "#9467bd",
          "classifier": "#8c564b"}


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _test_view(t: DriftTest) -> dict[str, Any]:
    return {"test": t.test, "feature": t.feature, "statistic": _fmt(t.statistic),
            "p_value": _fmt(t.p_value), "p_adjusted": _fmt(t.p_adjusted), "effect": _fmt(t.effect),
            "gate": _fmt(t.gate), "alarm": t.alarm}


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
        gates=report.gates, effects=EFFECTS, notes=report.notes, version=__version__)


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(title: str) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=SIZE, dpi=DPI)
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.2, top=0.86)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel("check (oldest first)")
    ax.grid(alpha=0.3)
    return fig, ax


def _feature_plot(name: str, points: Sequence[TrendPoint], order: dict[int, int]) -> str:
    fig, ax = _figure(name)
    by_test: dict[str, list[TrendPoint]] = defaultdict(list)
    for p in points:
        by_test[p.test].append(p)
    for test, pts in by_test.items():
        x = [order[p.check_id] for p in pts]
        color = COLORS.get(test, "black")
        ax.plot(x, [p.effect for p in pts], marker="o", markersize=3, color=color, label=test)
        ax.axhline(pts[-1].gate, color=color, linestyle="--", linewidth=1)
        hits = [(xi, p.effect) for xi, p in zip(x, pts, strict=True) if p.alarm]
        if hits:
            ax.scatter(*zip(*hits, strict=True), color="#c0392b", zorder=3, s=22)
    ax.set_ylabel("effect")
    ax.legend(fontsize="small", frameon=False)
    return _png(fig)


def _label_plot(shares: Sequence[LabelShare], order: dict[int, int]) -> str:
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
    fig, ax = _figure("label distribution")
    x = [order[c] for c in checks]
    bottom = np.zeros(len(checks))
    for i, label in enumerate(labels):
        ax.bar(x, grid[i], bottom=bottom, label=label, width=0.8)
        bottom += grid[i]
    ax.set_ylabel("share of rows")
    ax.set_ylim(0, 1.3)  # headroom keeps the legend off the bars
    ax.set_yticks([0.0, 0.25, 0.5, 0.75, 1.0])
    ax.legend(fontsize="small", frameon=False, ncols=min(len(labels), 5), loc="upper center")
    return _png(fig)


def _canary_plot(rows: Sequence[HistoryRow], order: dict[int, int]) -> str:
    fig, ax = _figure("canary accuracy")
    x = [order[r.id] for r in rows]
    ax.plot(x, [r.accuracy for r in rows], marker="o", markersize=3, label="accuracy")
    ax.plot(x, [r.baseline for r in rows], linestyle="--", color="gray", label="baseline")
    hits = [(xi, r.accuracy) for xi, r in zip(x, rows, strict=True) if r.alarm]
    if hits:
        ax.scatter(*zip(*hits, strict=True), color="#c0392b", zorder=3, s=22, label="alert")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize="small", frameon=False)
    return _png(fig)


def render_history(rows: Sequence[HistoryRow], trend: Sequence[TrendPoint],
                   shares: Sequence[LabelShare], *, db: str, profile: str | None = None) -> str:
    """The history page: every check, then trend plots (features, label, canary)."""
    from poisonguard import __version__

    order = {r.id: i + 1 for i, r in enumerate(rows)}
    trend = [p for p in trend if p.check_id in order]
    plots = []
    canary = [r for r in rows if r.kind == "canary" and r.accuracy is not None]
    if canary:
        plots.append({"name": "(canary)", "uri": _canary_plot(canary, order)})
    if shares:
        plots.append({"name": "(label)", "uri": _label_plot([s for s in shares if s.check_id in order],
                                                            order)})
    by_feature: dict[str, list[TrendPoint]] = defaultdict(list)
    for p in trend:
        if p.test in ("ks", "psi", "chi2"):
            by_feature[p.feature].append(p)
    ranked = sorted(by_feature, key=lambda f: -max(p.effect / max(p.gate, 1e-12) for p in by_feature[f]))
    plots += [{"name": f, "uri": _feature_plot(f, by_feature[f], order)}
              for f in ranked[:MAX_FEATURE_PLOTS]]
    checks = [{"id": r.id, "when": r.when.strftime("%Y-%m-%d %H:%M:%S"), "kind": r.kind,
               "batch": r.batch, "reference": r.reference, "n_rows": r.n_rows, "alarm": r.alarm,
               "summary": r.summary} for r in rows]
    return environment().get_template("history.html.j2").render(
        checks=checks, plots=plots, db=db, profile=profile, version=__version__)
