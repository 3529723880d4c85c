"""``scan(dataset) -> ScanReport``: score every row for suspicion, explain, and clean.

The scan builds one :class:`~poisonguard.evidence.Evidence` (proxy models and neighbour graph,
computed once), runs each requested detector on it, calibrates and combines their scores
(:mod:`poisonguard.detectors._ensemble`) and flags rows without being told the poison rate.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from poisonguard.dataset import Dataset
from poisonguard.detectors import DEFAULT_DETECTORS, DETECTORS, get_detector
from poisonguard.detectors._ensemble import calibrate, combine, resolve_scan_budget
from poisonguard.errors import InputError
from poisonguard.evidence import Evidence

if TYPE_CHECKING:
    from poisonguard.selftest import SelfTest

__all__ = ["ScanReport", "scan"]

Progress = Callable[[str], Any]


def _versions() -> dict[str, str]:
    import scipy
    import sklearn

    import poisonguard

    out = {"poisonguard": poisonguard.__version__, "python": platform.python_version(),
           "numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
           "pandas": pd.__version__}
    if "torch" in sys.modules:
        out["torch"] = str(sys.modules["torch"].__version__)
    return out


@dataclass(frozen=True)
class ScanReport:
    """The result of a scan.

    ``table`` has one row per dataset row: ``row_id``, ``score`` (combined, in [0, 1]),
    ``flagged``, ``reason`` and ``top_detector`` (the detector behind the flag; both empty when
    not flagged) and one column per detector with its calibrated score. ``raw`` holds each
    detector's uncalibrated scores; ``weights`` the weight each detector's ranking got in the
    combined score (:mod:`poisonguard.detectors._ensemble`).
    """

    dataset: Dataset
    table: pd.DataFrame
    raw: Mapping[str, np.ndarray]
    detectors: tuple[str, ...]
    threshold: float
    budget: int | None = None
    skipped: Mapping[str, str] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)
    seed: int = 0
    data_path: str | None = None
    weights: Mapping[str, float] = field(default_factory=dict)
    self_test: SelfTest | None = None

    @property
    def scores(self) -> np.ndarray:
        """Combined scores in [0, 1]."""
        return np.asarray(self.table["score"], dtype=np.float64)

    @property
    def flagged(self) -> np.ndarray:
        """True for every flagged row."""
        return np.asarray(self.table["flagged"], dtype=bool)

    @property
    def n_flagged(self) -> int:
        """Number of flagged rows."""
        return int(self.flagged.sum())

    def clean(self) -> Dataset:
        """The dataset without its flagged rows (ids, sources and origin kept)."""
        return self.dataset.take(np.flatnonzero(~self.flagged))

    def flagged_by(self) -> dict[str, int]:
        """Flagged rows per detector that gave their reason, largest first."""
        counts = self.table.loc[self.flagged, "top_detector"].value_counts()
        return {str(k): int(v) for k, v in counts.items()}

    def evaluate(self, mask: Sequence[bool] | np.ndarray) -> dict[str, float]:
        """Detection quality against ground truth ``mask`` (True = poisoned).

        AUROC and average precision of the combined score (and of each detector as
        ``auroc_<name>``), precision / recall / F1 and false-positive rate of the flagged set.
        """
        from poisonguard.evaluation.metrics import detection_metrics

        truth = np.asarray(mask, dtype=bool)
        if truth.shape != (self.dataset.n_rows,):
            raise InputError(f"'mask' must have one entry per row ({self.dataset.n_rows}); "
                             f"got shape {truth.shape}")
        out = detection_metrics(truth, self.scores, self.flagged)
        for name in self.detectors:
            out[f"auroc_{name}"] = detection_metrics(truth, self.raw[name], None)["auroc"]
        return out

    def summary(self) -> dict[str, Any]:
        """Counts, threshold, detectors run and skipped, reasons, sources, timings and notes."""
        out: dict[str, Any] = {
            "data": self.data_path or self.dataset.name or "",
            "rows": self.dataset.n_rows,
            "modality": self.dataset.modality,
            "classes": [str(c) for c in self.dataset.classes],
            "flagged": self.n_flagged,
            "flagged_share": self.n_flagged / max(self.dataset.n_rows, 1),
            "threshold": self.threshold,
            "budget": self.budget,
            "detectors": list(self.detectors),
            "skipped": dict(self.skipped),
            "flagged_by": self.flagged_by(),
            "weights": dict(self.weights),
            "seed": self.seed,
        }
        if self.dataset.sources is not None:
            out["sources"] = self.by_source().to_dict(orient="records")
        return out

    def by_source(self) -> pd.DataFrame:
        """Per source: rows, flagged rows, flagged share, mean score and the Beta posterior of
        its poisoning rate (:func:`poisonguard.provenance.reputation.reputation`: ``rate``,
        ``rate_low``, ``rate_high``, ``named``), ranked by ``rate_low`` (sources required)."""
        from poisonguard.provenance.reputation import reputation

        if self.dataset.sources is None:
            raise InputError("this dataset has no sources (use --source-col)")
        frame = pd.DataFrame({"source": np.asarray(self.dataset.sources, dtype=str),
                              "flagged": self.flagged, "score": self.scores})
        grouped = frame.groupby("source", sort=True)
        out = pd.DataFrame({"rows": grouped.size(), "flagged": grouped["flagged"].sum(),
                            "mean_score": grouped["score"].mean()})
        out = out.reset_index()
        rep = reputation(out[["source", "rows", "flagged"]].to_dict(orient="records"))
        out = rep.merge(out[["source", "mean_score"]], on="source", how="left")
        return out[["source", "rows", "flagged", "flagged_share", "mean_score", "rate", "rate_low",
                    "rate_high", "named"]]

    def to_dict(self, top: int = 100, *, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
        """JSON-ready report: summary, the ``top`` flagged rows, timings, versions, notes, the
        self-test when one ran, and ``provenance`` when given (the scanned file's SHA-256 and
        Merkle root, which ``attest`` checks against a manifest)."""
        flagged = self.table[self.table["flagged"]].sort_values("score", ascending=False,
                                                                 kind="stable")
        rows = flagged.head(top)
        out = {
            "summary": self.summary(),
            "top_flagged": json.loads(rows.to_json(orient="records")),
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "notes": list(self.notes),
            "versions": dict(self.versions),
        }
        if self.self_test is not None:
            out["self_test"] = self.self_test.to_dict()
        if provenance is not None:
            out["provenance"] = dict(provenance)
        return out

    def to_csv(self, path: str | Path) -> Path:
        """Write the per-row table (``row_id,score,flagged,reason,top_detector,<detectors>``)
        atomically; text a spreadsheet would run as a formula starts with a quote."""
        from poisonguard.io import report_csv

        table = self.table.copy()
        table["flagged"] = table["flagged"].astype(int)
        return report_csv(table, path, float_format="%.6g", lineterminator="\n")

    def to_json(self, path: str | Path, top: int = 100, *,
                provenance: dict[str, Any] | None = None) -> Path:
        """Write :meth:`to_dict` as JSON atomically."""
        from poisonguard.io import write_text

        return write_text(path, json.dumps(self.to_dict(top, provenance=provenance), indent=2)
                          + "\n")

    def to_html(self, path: str | Path) -> Path:
        """Write the self-contained HTML report atomically."""
        from poisonguard.io import write_text
        from poisonguard.report.html import render_scan

        return write_text(path, render_scan(self))


def _detector_names(detectors: Sequence[str] | str | None, reference: Dataset | None) -> list[str]:
    if detectors is None:
        names = [n for n in DEFAULT_DETECTORS if n in DETECTORS]
        if reference is None:
            names = [n for n in names if not DETECTORS[n].needs_reference]
        return names
    if isinstance(detectors, str):
        detectors = [d.strip() for d in detectors.split(",") if d.strip()]
    names = list(dict.fromkeys(detectors))
    if not names:
        raise InputError("'detectors' is empty")
    for name in names:
        get_detector(name)
    return names


def scan(dataset: Dataset, *, detectors: Sequence[str] | str | None = None,
         budget: float | int | None = None, reference: Dataset | None = None,
         model: str | Any = "auto", embedder: str = "auto", k: int = 10, folds: int = 5,
         random_state: int = 0, progress: Progress | None = None,
         evidence: Evidence | None = None) -> ScanReport:
    """Score every row of ``dataset`` for suspicion and flag the likely poisoned ones.

    ``detectors`` names detectors (default: all that apply; ``validation`` only with a
    ``reference``). ``budget`` flags exactly that many rows (a count, or a fraction of rows)
    instead of the ensemble's own threshold. ``evidence`` reuses one already built for this
    dataset. Same inputs and ``random_state`` give the same table.
    """
    if not isinstance(dataset, Dataset):
        raise InputError(f"scan needs a Dataset (got {type(dataset).__name__})")
    if reference is not None:
        _check_reference(dataset, reference)
    n_budget = resolve_scan_budget(budget, dataset.n_rows)
    names = _detector_names(detectors, reference)
    start = time.perf_counter()
    ev = evidence if evidence is not None else Evidence(
        dataset, model=model, embedder=embedder, k=k, folds=folds, reference=reference,
        random_state=random_state, progress=progress)
    if ev.dataset is not dataset:
        raise InputError("'evidence' was built for another dataset")
    raw: dict[str, np.ndarray] = {}
    calibrated: dict[str, np.ndarray] = {}
    skipped: dict[str, str] = {}
    timings: dict[str, float] = {}
    found: dict[str, Any] = {}
    for name in names:
        det = get_detector(name)
        why = det.applies(ev)
        if why is not None:
            skipped[name] = why
            continue
        if progress is not None:
            progress(f"detector {name}")
        t0 = time.perf_counter()
        scores = np.asarray(det.suspicion(ev), dtype=np.float64)
        if scores.shape != (dataset.n_rows,) or not np.all(np.isfinite(scores)):
            raise RuntimeError(f"detector {name!r} broke its contract (shape {scores.shape})")
        timings[f"detector {name}"] = time.perf_counter() - t0
        raw[name] = scores
        calibrated[name] = calibrate(scores, det.calibration)
        found[name] = det
    combined = combine(raw, calibrated, dataset.n_rows, n_budget)
    reasons = np.full(dataset.n_rows, "", dtype=object)
    tops = np.full(dataset.n_rows, "", dtype=object)
    t0 = time.perf_counter()
    for j, name in enumerate(combined.names):
        rows = np.flatnonzero(combined.flagged & (combined.top == j))
        if len(rows):
            lines = found[name].explain(ev, rows)
            reasons[rows] = [f"{name}: {line}" for line in lines]
            tops[rows] = name
    timings["explain"] = time.perf_counter() - t0
    table = pd.DataFrame({"row_id": np.asarray(dataset.ids, dtype=str), "score": combined.score,
                          "flagged": combined.flagged, "reason": reasons.astype(str),
                          "top_detector": tops.astype(str)})
    for name in combined.names:
        table[name] = calibrated[name]
    timings = {**ev.timings, **timings, "total": time.perf_counter() - start}
    return ScanReport(dataset=dataset, table=table, raw=raw, detectors=combined.names,
                      threshold=combined.threshold, budget=n_budget, skipped=skipped,
                      timings=timings, notes=tuple(ev.notes), versions=_versions(),
                      seed=random_state, weights=combined.weights)


def _check_reference(dataset: Dataset, reference: Dataset) -> None:
    if not isinstance(reference, Dataset):
        raise InputError(f"'reference' must be a Dataset (got {type(reference).__name__})")
    if reference.modality != dataset.modality:
        raise InputError(f"reference is {reference.modality} data but the scanned data is "
                         f"{dataset.modality}")
    if dataset.modality == "tabular":
        ours, theirs = list(dataset.feature_names), list(reference.feature_names)
        if ours != theirs:
            missing = [c for c in theirs if c not in ours]
            extra = [c for c in ours if c not in theirs]
            parts = []
            if missing:
                parts.append(f"missing {', '.join(map(str, missing[:5]))}")
            if extra:
                parts.append(f"not in the reference: {', '.join(map(str, extra[:5]))}")
            if not parts:
                parts.append("same columns in another order")
            raise InputError(f"the data's columns differ from the reference's ({'; '.join(parts)})")
