"""``render_scan(report) -> str``: one self-contained HTML page for a :class:`ScanReport`.

The page needs nothing but itself: CSS is inline, figures are base64 PNG ``data:`` URIs, and
there is no script and no external reference. Everything that comes from the data (name, ids,
labels, reasons, text, feature names) is escaped by the template's autoescaping. Only the
``TOP_ROWS`` highest-scoring flagged rows are rendered, so the page stays small and fast for
reports of millions of rows. Same report, same bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from poisonguard.report._figures import histogram_uri, thumbnail_uris

if TYPE_CHECKING:
    import jinja2
    import markupsafe

    from poisonguard.dataset import Dataset
    from poisonguard.scan import ScanReport

__all__ = ["breakable", "environment", "render_scan"]

TOP_ROWS = 50
TOP_SOURCES = 50
SHOWN_CLASSES = 30
SHOWN_FEATURES = 6
SNIPPET_CHARS = 240
_BREAK_AFTER = re.compile(r"([/\\_.])(?=.)")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The Jinja environment over ``report/templates`` (shared by every HTML report)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("poisonguard.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters["breakable"] = breakable
    return env


def breakable(text: object) -> markupsafe.Markup:
    """``text`` escaped, with a line-break opportunity (``<wbr>``) after each ``/``, ``\\``,
    ``_`` and ``.``: a long path or name wraps at those points in a narrow column instead of
    pushing the page wider than the screen."""
    import markupsafe

    escaped = str(markupsafe.escape(str(text)))
    return markupsafe.Markup(_BREAK_AFTER.sub(r"\1<wbr>", escaped))


def _number(value: Any) -> str:
    """A short, stable text form of one feature value."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4g}"
    return str(value)


def _snippet(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[:SNIPPET_CHARS - 1] + "…"


def _features(ds: Dataset, row: int) -> list[str]:
    """The first ``SHOWN_FEATURES`` feature values of tabular row ``row``."""
    if isinstance(ds.X, pd.DataFrame):
        values = list(ds.X.iloc[row, :SHOWN_FEATURES])
    else:
        values = list(np.asarray(ds.X[row])[:SHOWN_FEATURES])
    return [_number(v) for v in values]


def _top_rows(report: ScanReport) -> tuple[np.ndarray, int]:
    """Positions of the ``TOP_ROWS`` flagged rows by score (ties in row order), and all flagged."""
    flagged = np.flatnonzero(report.flagged)
    order = np.argsort(-report.scores[flagged], kind="stable")[:TOP_ROWS]
    return flagged[order], len(flagged)


def _rows(report: ScanReport, positions: np.ndarray) -> list[dict[str, Any]]:
    if not len(positions):
        return []
    ds = report.row_data(positions)  # the top rows alone (a scan of partitions holds no more)
    table = report.table
    thumbs = thumbnail_uris(ds.X, np.arange(len(positions))) if ds.modality == "image" else []
    out = []
    for k, i in enumerate(positions.tolist()):
        row: dict[str, Any] = {
            "id": str(table["row_id"].iat[i]),
            "score": f"{float(table['score'].iat[i]):.3f}",
            "reason": str(table["reason"].iat[i]),
            "label": str(ds.y[k]),
            "detectors": [f"{float(table[name].iat[i]):.3f}" for name in report.detectors],
            "source": None if ds.sources is None else str(ds.sources[k]),
            "thumbnail": thumbs[k] if thumbs else None,
            "text": _snippet(ds.X[k]) if ds.modality == "text" else None,
            "features": _features(ds, k) if ds.modality == "tabular" else [],
        }
        out.append(row)
    return out


def _sources(report: ScanReport) -> dict[str, Any] | None:
    if report.dataset.sources is None:
        return None
    frame = report.by_source()
    rows = [{"source": str(r.source), "rows": int(r.rows), "flagged": int(r.flagged),
             "share": f"{100 * float(r.flagged_share):.1f} %", "mean": f"{float(r.mean_score):.3f}",
             "rate": f"{100 * float(r.rate_low):.1f}-{100 * float(r.rate_high):.1f} %",
             "named": bool(r.named)}
            for r in frame.head(TOP_SOURCES).itertuples(index=False)]
    return {"rows": rows, "total": len(frame)}


def _classes(ds: Dataset) -> str:
    classes = [str(c) for c in ds.classes]
    shown = ", ".join(classes[:SHOWN_CLASSES])
    if len(classes) > SHOWN_CLASSES:
        shown += f", … ({len(classes)} in all)"
    return shown


def _seconds(timings: Mapping[str, float]) -> list[tuple[str, str]]:
    return [(str(k), f"{float(v):.2f} s") for k, v in timings.items()]


def _histograms(report: ScanReport) -> list[dict[str, str]]:
    flagged = report.flagged
    out = [{"name": "combined", "uri": histogram_uri(report.scores, flagged, report.threshold,
                                                     "combined score")}]
    for name in report.detectors:
        scores = report.table[name].to_numpy(dtype=np.float64)
        out.append({"name": name, "uri": histogram_uri(scores, flagged, report.threshold, name)})
    return out


def _self_test(report: ScanReport) -> dict[str, Any] | None:
    st = report.self_test
    if st is None:
        return None
    rows = [{"family": r.family, "attack": r.attack, "planted": r.planted,
             "recall": "-" if r.skipped else f"{100 * r.recall:.0f} %",
             "auroc": "-" if r.skipped else f"{r.auroc:.3f}", "note": r.skipped} for r in st.rows]
    return {"rate": f"{100 * st.rate:g} %", "fpr": f"{100 * st.false_positive_rate:.1f} %",
            "rows": rows}


def render_scan(report: ScanReport,
                sections: Sequence[tuple[str, Sequence[Mapping[str, Any]]]] = ()) -> str:
    """The scan report as one self-contained HTML page (no scripts, no external references);
    ``sections``: extra tables (title, rows) shown before the score distributions."""
    ds = report.dataset
    positions, n_flagged = _top_rows(report)
    names = report.row_data(positions).feature_names if len(positions) else ds.feature_names
    first_cols = list(names[:SHOWN_FEATURES]) if ds.modality == "tabular" else []
    context = {
        "title": report.data_path or ds.name or "dataset",
        "rows": f"{ds.n_rows:,}",
        "modality": ds.modality,
        "classes": _classes(ds),
        "n_classes": len(ds.classes),
        "flagged": f"{n_flagged:,}",
        "share": f"{100 * n_flagged / max(ds.n_rows, 1):.2f} %",
        "threshold": f"{report.threshold:.3f}",
        "budget": None if report.budget is None else f"{report.budget:,}",
        "seed": report.seed,
        "detectors": list(report.detectors),
        "skipped": sorted((str(k), str(v)) for k, v in report.skipped.items()),
        "flagged_by": sorted(report.flagged_by().items(), key=lambda kv: (-kv[1], kv[0])),
        "notes": [str(n) for n in report.notes],
        "versions": sorted((str(k), str(v)) for k, v in report.versions.items()),
        "timings": _seconds(report.timings),
        "histograms": _histograms(report),
        "top": _rows(report, positions),
        "n_top": len(positions),
        "has_sources": ds.sources is not None,
        "sources": _sources(report),
        "feature_columns": first_cols,
        "more_features": ds.modality == "tabular" and len(names) > SHOWN_FEATURES,
        "self_test": _self_test(report),
        "sections": [(title, list(rows[0]) if rows else [],
                      [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()]
                       for row in rows]) for title, rows in sections],
    }
    return environment().get_template("scan.html.j2").render(context)
