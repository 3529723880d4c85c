"""Put detector scores on one [0, 1] scale, combine them, and choose the flagged rows.

Calibration (per detector, from its own scores, no ground truth):

* ``probability`` scores are already estimates in [0, 1] and are kept;
* ``tail`` scores become a robust z-score ``z = (s - median) / (1.4826 * MAD)`` (the standard
  deviation when the MAD is 0) mapped through a logistic centred on ``ALARM_Z``: a row
  ``ALARM_Z`` robust standard deviations above the detector's median scores 0.5.

The combined score of a row is the largest calibrated score over the detectors, and the row's
reason is that detector's explanation. A row is flagged when its combined score is at least
0.5 — every calibrated scale puts "more likely poisoned than not" there — so no poison rate is
assumed; a ``budget`` (a count, or a fraction of rows) flags exactly that many top rows instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from poisonguard.errors import InputError

__all__ = ["ALARM_Z", "THRESHOLD", "Combined", "calibrate", "combine", "resolve_scan_budget",
           "robust_z"]

ALARM_Z = 6.0
THRESHOLD = 0.5


def robust_z(scores: np.ndarray) -> np.ndarray:
    """``(s - median) / (1.4826 * MAD)``, falling back to the standard deviation, then to 0."""
    s = np.asarray(scores, dtype=np.float64)
    med = float(np.median(s))
    spread = 1.4826 * float(np.median(np.abs(s - med)))
    if spread <= 1e-12:
        spread = float(s.std())
    if spread <= 1e-12:
        return np.zeros_like(s)
    out: np.ndarray = (s - med) / spread
    return out


def calibrate(scores: np.ndarray, kind: str) -> np.ndarray:
    """Scores of one detector on the common [0, 1] scale (see the module docstring)."""
    s = np.asarray(scores, dtype=np.float64)
    if kind == "probability":
        return np.clip(s, 0.0, 1.0)
    if kind == "tail":
        out: np.ndarray = 1.0 / (1.0 + np.exp(-(robust_z(s) - ALARM_Z)))
        return out
    raise ValueError(f"unknown calibration {kind!r}")


def resolve_scan_budget(budget: float | int | None, n_rows: int) -> int | None:
    """A flag budget as a row count: ``None`` (choose), a count >= 1, or a fraction in (0, 1)."""
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, float, np.integer, np.floating)):
        raise InputError(f"'budget' must be a row count or a fraction (got {budget!r})")
    b = float(budget)
    if not np.isfinite(b) or b <= 0:
        raise InputError(f"'budget' must be > 0 (got {budget})")
    if b < 1:
        return max(1, round(b * n_rows))
    if b != int(b):
        raise InputError(f"'budget' above 1 must be a whole number of rows (got {budget})")
    if b > n_rows:
        raise InputError(f"'budget' of {int(b)} rows exceeds the {n_rows} rows scanned")
    return int(b)


@dataclass(frozen=True)
class Combined:
    """The ensemble's output: combined ``score``, ``flagged`` mask and the index into ``names``
    of the detector behind each row's score (``top``)."""

    score: np.ndarray
    flagged: np.ndarray
    top: np.ndarray
    names: tuple[str, ...]
    threshold: float


def combine(calibrated: Mapping[str, np.ndarray], n_rows: int,
            budget: int | None = None) -> Combined:
    """Combine calibrated detector scores (max) and flag rows (threshold or ``budget``)."""
    names = tuple(calibrated)
    if not names:
        raise InputError("no detector could run on this data")
    stack = np.stack([np.asarray(calibrated[n], dtype=np.float64) for n in names], axis=1)
    top = stack.argmax(axis=1)
    score = stack[np.arange(n_rows), top]
    if budget is None:
        threshold = THRESHOLD
        flagged = score >= threshold
    else:
        # stable: ties broken by row order, so the same scores give the same flagged rows
        order = np.argsort(-score, kind="stable")[:budget]
        flagged = np.zeros(n_rows, dtype=bool)
        flagged[order] = True
        threshold = float(score[order].min()) if budget else 1.0
    return Combined(score=score, flagged=flagged, top=top, names=names, threshold=threshold)
