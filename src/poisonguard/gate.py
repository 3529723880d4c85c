"""``gate(batch, reference)``: the guard at the door of a training pipeline.

Steps, in order: the batch's schema against the reference (columns, modality; a mismatch is
bad input), provenance (the batch against its manifest and key, when given: any failure
rejects the whole batch), drift against the reference's profile (rejects the batch when the
share of drifted columns exceeds ``max_drift``; text is not drift-checked), then a scan of
reference and batch together in which the reference rows are trusted context: they shape the
evidence and the validation rules but are never flagged, and each batch row flagged by the
ensemble is quarantined with its reason. Nothing is written here; :mod:`poisonguard.cli.gate`
writes the split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["GateResult", "check_schema", "combine_with_reference", "gate"]


@dataclass(frozen=True)
class GateResult:
    """What the gate decided for every batch row.

    ``status`` is ``accepted`` (every row passed), ``quarantined`` (some rows held back) or
    ``rejected`` (the whole batch: ``rejected_because`` says why). ``quarantined`` is a mask
    over the batch rows, ``reasons`` one line per row ('' when accepted), ``scores`` the scan's
    combined score per batch row (NaN when the scan did not run).
    """

    status: str
    quarantined: np.ndarray
    reasons: np.ndarray
    scores: np.ndarray
    rejected_because: tuple[str, ...] = ()
    drift: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    scan: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        """0 all accepted, 1 some quarantined, 3 rejected."""
        return {"accepted": 0, "quarantined": 1, "rejected": 3}[self.status]

    def summary(self) -> dict[str, Any]:
        n = len(self.quarantined)
        return {"status": self.status, "rows": n, "quarantined": int(self.quarantined.sum()),
                "accepted": int(n - self.quarantined.sum()),
                "rejected_because": list(self.rejected_because), "drift": self.drift,
                "provenance": self.provenance, "scan": self.scan,
                "timings": {k: round(v, 3) for k, v in self.timings.items()}}


def check_schema(batch: Dataset, reference: Dataset) -> None:
    """Refuse a batch whose modality, columns or image shape differ from the reference's."""
    from poisonguard.scan import _check_reference

    _check_reference(batch, reference)  # modality and columns, as a scan with --reference
    if batch.modality == "image" and np.shape(batch.X)[1:] != np.shape(reference.X)[1:]:
        raise InputError(f"batch images are {np.shape(batch.X)[1:]} but reference images are "
                         f"{np.shape(reference.X)[1:]}")


def combine_with_reference(reference: Dataset, batch: Dataset) -> Dataset:
    """Reference rows then batch rows in one dataset (ids ``ref:...`` / ``batch:...``; sources
    ``reference`` / the batch's own or ``batch``)."""
    if batch.is_frame or reference.is_frame:
        X: Any = pd.concat([reference.frame(), batch.frame()], ignore_index=True)
    else:
        X = np.concatenate([np.asarray(reference.X), np.asarray(batch.X)])
    y = np.concatenate([np.asarray(reference.y, dtype=object), np.asarray(batch.y, dtype=object)])
    if all(isinstance(v, (int, np.integer)) for v in y):
        y = y.astype(np.int64)
    ids = [f"ref:{i}" for i in reference.ids] + [f"batch:{i}" for i in batch.ids]
    src = ["reference"] * reference.n_rows + (
        [str(s) for s in batch.sources] if batch.sources is not None else ["batch"] * batch.n_rows)
    return Dataset(X, y, ids=ids, sources=src, modality=batch.modality,
                   feature_names=batch.feature_names if batch.modality == "tabular" else None,
                   name=f"{reference.name}+{batch.name}")


def gate(batch: Dataset, reference: Dataset, *, profile: Any = None,
         provenance_problems: list[str] | None = None, max_drift: float = 0.3,
         random_state: int = 0, progress: Any = None, engine: Any = None) -> GateResult:
    """Validate, check drift and scan ``batch`` against the trusted ``reference``.

    ``profile`` is a :class:`poisonguard.monitor.Profile` of the reference (fitted here when
    None); ``provenance_problems`` are the lines of a failed manifest verification (the batch
    is then rejected unscanned). ``max_drift``: the share of columns that may drift before the
    batch is rejected (1 never rejects on drift).
    """
    from poisonguard.scan import scan

    check_schema(batch, reference)
    if not 0.0 <= max_drift <= 1.0:
        raise InputError(f"'max_drift' must be in [0, 1] (got {max_drift:g})")
    n = batch.n_rows
    timings: dict[str, float] = {}
    nan = np.full(n, np.nan)
    provenance = {"checked": provenance_problems is not None,
                  "problems": list(provenance_problems or [])}
    if provenance_problems:
        return GateResult("rejected", np.ones(n, dtype=bool),
                          np.full(n, "batch rejected: provenance check failed", dtype=object), nan,
                          tuple(provenance_problems), None, provenance, None, timings)
    t0 = time.perf_counter()
    drift = None if batch.modality == "text" else _drift(profile, reference, batch, random_state)
    timings["drift"] = time.perf_counter() - t0
    if drift is not None and drift["alarm_share"] > max_drift:
        why = (f"drift: {drift['alarms']} of {drift['features']} columns drifted "
               f"({drift['alarm_share']:.0%} > {max_drift:.0%}): {', '.join(drift['alarming'][:5])}")
        return GateResult("rejected", np.ones(n, dtype=bool),
                          np.full(n, f"batch rejected: {why}", dtype=object), nan, (why,), drift,
                          provenance, None, timings)
    t0 = time.perf_counter()
    both = combine_with_reference(reference, batch)
    report = scan(both, reference=reference, random_state=random_state, progress=progress,
                  engine=engine)
    timings["scan"] = time.perf_counter() - t0
    rows = slice(reference.n_rows, None)
    flagged = np.asarray(report.flagged[rows], dtype=bool)
    reasons = np.where(flagged, report.table["reason"].to_numpy(dtype=object)[rows], "")
    status = "quarantined" if flagged.any() else "accepted"
    names = pd.Series(report.table["top_detector"].to_numpy(dtype=object)[rows][flagged],
                      dtype=object).astype(str)
    summary = {"detectors": list(report.detectors), "threshold": report.threshold,
               "flagged_by": {str(k): int(v) for k, v in names.value_counts().sort_index().items()}}
    return GateResult(status, flagged, reasons.astype(object), report.scores[rows], (), drift,
                      provenance, summary, timings)


def _drift(profile: Any, reference: Dataset, batch: Dataset, random_state: int) -> dict[str, Any]:
    """The drift check as a plain dict: ``drift``, ``features`` (columns tested), ``alarms``
    (drifted columns), ``alarm_share`` (drifted columns over columns) and ``alarming`` (their
    names); the full report under ``report``. Label shift and the multivariate test are
    reported but do not count towards rejection: poisoning itself moves the label mix, and the
    scan is what should answer it."""
    from poisonguard.monitor import DriftMonitor, Profile

    prof = profile if profile is not None else Profile.fit(reference, random_state=random_state)
    rep = DriftMonitor(random_state=random_state).check(prof, batch)
    columns = {t.feature for t in rep.tests if t.test in ("ks", "psi", "chi2")}
    drifted = list(rep.drifted_features)
    return {"drift": bool(rep.drift), "features": len(columns), "alarms": len(drifted),
            "alarm_share": len(drifted) / max(len(columns), 1), "alarming": drifted,
            "summary": rep.summary(), "report": rep.to_dict()}
