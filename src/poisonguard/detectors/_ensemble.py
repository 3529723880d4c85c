"""Put detector scores on one [0, 1] scale, combine them, and choose the flagged rows.

Two questions, answered separately:

**Which rows are flagged?** Only evidence with a model of what poison looks like may flag a row
on its own: a ``probability`` detector's estimate that the row is poisoned (a label-noise model,
a split-off group, an exact copy with another label, a broken rule) of at least 0.5, or a
``tail`` detector's score beyond what a heavy-tailed null fitted to the detector's own bulk
allows for any row of this data. The null is a Student-t (a Gaussian when the bulk is lighter)
matched to the median, 75th and 95th percentiles of the scores; the alarm is its
``1 - ALPHA / n`` quantile, so on data without poison a tail detector raises 0.05 false alarms
per scan in expectation *whatever the shape of its tail*. (A fixed robust z of 6 put 3-4 % of
clean spam-table rows over the alarm for each of ``outlier`` and ``spectral``: distance scores on
real tables have power-law tails.) A tail detector therefore ranks rows far more often than it
flags them; its calibrated column is a logistic centred on its alarm.

**How are rows ranked?** By the flag first, then, within the flagged and the unflagged rows, by
the strongest evidence and the *evidence-weighted rank* ``T = sum_j w_j u_j / sum_j w_j``, where
``u_j`` is the row's rank under detector ``j`` (in [0, 1)) and ``w_j`` says how well detector ``j``
sees the poison on *this* data: its AUROC at separating the flagged rows from the rest, less 0.5,
squared (the flagged rows act as pseudo-labels, so a detector that echoes the same rows leads and
a detector with no signal, AUROC about 0.5, adds nothing). Without flagged rows (or with fewer than three)
every detector weighs the same. Within each half the order is ``0.9 * min(E / 0.5, 1) + 0.1 * T``
with ``E`` the row's largest calibrated score: how close the strongest evidence came to flagging
the row leads (a group detector's sub-threshold probability lifts its whole group: measured on 26
saved cases x 2 seeds, mean gap to the best column -0.143 -> -0.116, worst -0.80 -> -0.57), the
weighted rank breaks ties. The combined score is ``0.5 * (flagged + order)``: in [0, 1], at
least 0.5 exactly for the flagged rows, so the threshold is 0.5 and no poison rate is assumed.
A ``budget`` (a count, or a fraction of rows) flags exactly that many top-scoring rows instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm, rankdata
from scipy.stats import t as student_t

from poisonguard._validation import resolve_flag_budget
from poisonguard.errors import InputError

__all__ = ["ALPHA", "THRESHOLD", "Combination", "Combined", "calibrate", "combine",
           "fit_combination", "resolve_scan_budget", "robust_z", "tail_alarm"]

ALPHA = 0.05  # expected false alarms per scan from one tail detector on clean data
THRESHOLD = 0.5
_MIN_PSEUDO = 3
_LEAD = 0.9  # share of the within-half order taken by the evidence itself
_GAUSS_RATIO = float(norm.ppf(0.95) / norm.ppf(0.75))


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


@dataclass(frozen=True)
class TailNull:
    """A detector's null fitted to its own bulk: ``alarm`` (the score no clean row of this data
    should reach, see the module docstring), ``scale`` (of the logistic around it) and ``df``
    (the Student-t degrees of freedom; ``inf`` for a Gaussian bulk)."""

    alarm: float
    scale: float
    df: float


def tail_alarm(scores: np.ndarray, alpha: float = ALPHA, n_rows: int | None = None) -> TailNull:
    """Fit the heavy-tailed null of the module docstring to ``scores`` (higher = more
    suspicious) and return its alarm level for ``n_rows`` rows (default ``len(scores)``; more
    when the scores are a sample of the rows scanned)."""
    s = np.asarray(scores, dtype=np.float64)
    n = max(len(s) if n_rows is None else int(n_rows), 1)
    med, q75, q95 = (float(v) for v in np.quantile(s, [0.5, 0.75, 0.95]))
    a, b = q75 - med, q95 - med
    if a <= 1e-12:  # at least a quarter of the rows tie at the median: only what is far from it
        spread = max(b, float(s.std()), 1e-12)
        return TailNull(alarm=med + 6.0 * spread, scale=spread, df=float("inf"))
    ratio = b / a
    if ratio <= _GAUSS_RATIO:
        sigma = a / float(norm.ppf(0.75))
        return TailNull(alarm=med + sigma * float(norm.isf(alpha / n)), scale=sigma,
                        df=float("inf"))

    def gap(log_df: float) -> float:
        df = float(np.exp(log_df))
        return float(student_t.ppf(0.95, df) / student_t.ppf(0.75, df)) - ratio

    low, high = np.log(0.3), np.log(1e4)
    df = 0.3 if gap(low) < 0 else float(np.exp(brentq(gap, low, high)))
    sigma = a / float(student_t.ppf(0.75, df))
    return TailNull(alarm=med + sigma * float(student_t.isf(alpha / n, df)), scale=sigma, df=df)


def calibrate(scores: np.ndarray, kind: str, null: TailNull | None = None) -> np.ndarray:
    """Scores of one detector on the common [0, 1] scale: ``probability`` scores clipped,
    ``tail`` scores through a logistic that puts the detector's :func:`tail_alarm` (fitted to
    ``scores`` unless a fitted ``null`` is given) at 0.5."""
    s = np.asarray(scores, dtype=np.float64)
    if kind == "probability":
        return np.clip(s, 0.0, 1.0)
    if kind == "tail":
        null = tail_alarm(s) if null is None else null
        x = np.clip((s - null.alarm) / max(null.scale, 1e-12), -50.0, 50.0)
        out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
        return out
    raise ValueError(f"unknown calibration {kind!r}")


def resolve_scan_budget(budget: float | int | None, n_rows: int) -> int | None:
    """A flag budget as a row count: ``None`` (choose), a count >= 1, or a fraction in (0, 1)
    (:func:`poisonguard._validation.resolve_flag_budget`)."""
    return resolve_flag_budget(budget, n_rows)


@dataclass(frozen=True)
class Combined:
    """The ensemble's output: combined ``score``, ``flagged`` mask, the index into ``names`` of
    the detector behind each row (``top``), the ``weights`` each detector's rank got and how many
    rows served as pseudo-labels for them (``pseudo``)."""

    score: np.ndarray
    flagged: np.ndarray
    top: np.ndarray
    names: tuple[str, ...]
    threshold: float
    weights: Mapping[str, float] = field(default_factory=dict)
    pseudo: int = 0


def _auroc(truth: np.ndarray, ranks: np.ndarray) -> float:
    """AUROC of ``ranks`` (average ranks, 1-based) for the boolean ``truth`` (Mann-Whitney)."""
    pos = int(truth.sum())
    neg = len(truth) - pos
    return float((ranks[truth].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _weights(flagged: np.ndarray, ranks: list[np.ndarray]) -> np.ndarray:
    """Each detector's weight: its AUROC at separating the flagged rows (pseudo-labels) less
    0.5, squared, normalised; equal weights with too few pseudo-labels or no signal."""
    pseudo = int(flagged.sum())
    if _MIN_PSEUDO <= pseudo <= len(flagged) - _MIN_PSEUDO:
        weights = np.array([max(0.0, _auroc(flagged, r) - 0.5) ** 2 for r in ranks])
    else:
        weights = np.ones(len(ranks))
    if weights.sum() <= 1e-12:
        weights = np.ones(len(ranks))
    out: np.ndarray = weights / weights.sum()
    return out


def combine(raw: Mapping[str, np.ndarray], calibrated: Mapping[str, np.ndarray], n_rows: int,
            budget: int | None = None) -> Combined:
    """Combine detector scores (see the module docstring) and flag rows (own threshold or
    ``budget``). ``raw`` and ``calibrated`` hold the same detectors, one score per row each."""
    names = tuple(calibrated)
    if not names:
        raise InputError("no detector could run on this data")
    if set(raw) != set(names):
        raise ValueError("'raw' and 'calibrated' must name the same detectors")
    cal = np.stack([np.asarray(calibrated[n], dtype=np.float64) for n in names], axis=1)
    evidence = cal.max(axis=1)
    flagged = evidence >= THRESHOLD
    ranks = [rankdata(np.asarray(raw[n], dtype=np.float64)) for n in names]
    pseudo = int(flagged.sum())
    weights = _weights(flagged, ranks)
    units = np.stack([(r - 1.0) / max(n_rows, 1) for r in ranks], axis=1)  # in [0, 1)
    T = np.clip(units @ weights, 0.0, 1.0 - 1e-9)
    # how close the strongest evidence came to flagging the row leads, the weighted rank breaks
    # ties: a group detector's sub-threshold probability still lifts its whole group
    order = _LEAD * np.minimum(evidence / THRESHOLD, 1.0) + (1.0 - _LEAD) * T
    score = 0.5 * (flagged + np.clip(order, 0.0, 1.0 - 1e-9))
    # the detector behind a row: the strongest flag for flagged rows, else the largest
    # weighted rank
    top = np.where(flagged, cal.argmax(axis=1), (units * weights).argmax(axis=1))
    if budget is not None:
        # stable: ties broken by row order, so the same scores give the same flagged rows
        order = np.argsort(-score, kind="stable")[:budget]
        flagged = np.zeros(n_rows, dtype=bool)
        flagged[order] = True
        threshold = float(score[order].min()) if budget else 1.0
    else:
        threshold = THRESHOLD
    return Combined(score=score, flagged=flagged, top=top, names=names, threshold=threshold,
                    weights={n: round(float(w), 4) for n, w in zip(names, weights, strict=True)},
                    pseudo=pseudo)


@dataclass(frozen=True)
class Combination:
    """The combination fitted on a sample of the rows, applied to any chunk of them: each
    detector's calibration (``kinds``; the fitted tail ``nulls``, alarms set for ``n_rows``
    rows), the sample's sorted raw scores (a new row's rank is its position among them) and the
    ``weights`` the sample's flagged rows gave each detector. On the sample itself it gives what
    :func:`combine` gives up to floating-point rounding of the ranks."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    nulls: tuple[TailNull | None, ...]
    sorted_raw: tuple[np.ndarray, ...]
    weights: np.ndarray
    pseudo: int
    n_rows: int

    def calibrated(self, raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Each detector's scores of a chunk on the [0, 1] scale."""
        return {n: calibrate(raw[n], kind, null)
                for n, kind, null in zip(self.names, self.kinds, self.nulls, strict=True)}

    def units(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        """``(rows, detectors)``: each score's mid-rank among the sample's scores, in [0, 1)."""
        cols = []
        for n, ref in zip(self.names, self.sorted_raw, strict=True):
            s = np.asarray(raw[n], dtype=np.float64)
            below = np.searchsorted(ref, s, side="left")
            ties = np.searchsorted(ref, s, side="right") - below
            cols.append(np.clip((below + np.maximum(ties - 1, 0) / 2.0) / max(len(ref), 1),
                                0.0, 1.0 - 1e-9))
        return np.stack(cols, axis=1)

    def apply(self, raw: Mapping[str, np.ndarray],
              calibrated: Mapping[str, np.ndarray] | None = None) -> Combined:
        """Combined score, flags and the detector behind each row of a chunk (no budget: a
        budget is a top-k over all chunks, see :func:`poisonguard.scan.scan`);
        ``calibrated``: :meth:`calibrated` of ``raw`` when the caller has it already."""
        cal_map = self.calibrated(raw) if calibrated is None else calibrated
        cal = np.stack([cal_map[n] for n in self.names], axis=1)
        evidence = cal.max(axis=1)
        flagged = evidence >= THRESHOLD
        units = self.units(raw)
        T = np.clip(units @ self.weights, 0.0, 1.0 - 1e-9)
        order = _LEAD * np.minimum(evidence / THRESHOLD, 1.0) + (1.0 - _LEAD) * T
        score = 0.5 * (flagged + np.clip(order, 0.0, 1.0 - 1e-9))
        top = np.where(flagged, cal.argmax(axis=1), (units * self.weights).argmax(axis=1))
        return Combined(score=score, flagged=flagged, top=top, names=self.names,
                        threshold=THRESHOLD,
                        weights={n: round(float(w), 4)
                                 for n, w in zip(self.names, self.weights, strict=True)},
                        pseudo=self.pseudo)


def fit_combination(raw: Mapping[str, np.ndarray], kinds: Mapping[str, str],
                    n_rows: int) -> Combination:
    """Fit the combination on the sample's raw scores (``kinds``: each detector's calibration;
    ``n_rows``: the rows the scan will score, which sets the tail alarms)."""
    names = tuple(raw)
    if not names:
        raise InputError("no detector could run on this data")
    nulls = tuple(tail_alarm(np.asarray(raw[n], dtype=np.float64), n_rows=n_rows)
                  if kinds[n] == "tail" else None for n in names)
    cal = np.stack([calibrate(raw[n], kinds[n], null) for n, null in zip(names, nulls, strict=True)],
                   axis=1)
    flagged = cal.max(axis=1) >= THRESHOLD
    ranks = [rankdata(np.asarray(raw[n], dtype=np.float64)) for n in names]
    return Combination(names=names, kinds=tuple(kinds[n] for n in names), nulls=nulls,
                       sorted_raw=tuple(np.sort(np.asarray(raw[n], dtype=np.float64)) for n in names),
                       weights=_weights(flagged, ranks), pseudo=int(flagged.sum()),
                       n_rows=int(n_rows))
