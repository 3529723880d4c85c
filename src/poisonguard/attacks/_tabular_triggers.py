"""Tabular triggers on numeric columns of an array or DataFrame.

Two mechanisms: set columns to fixed values (``feature``: far beyond the range; ``rare``: a high
value in columns that rarely leave their mode; ``common``: ordinary values whose combination
is unusual; ``copy``: the values of one real row) or shift them by fixed offsets (``shift``: a
few columns by a few standard deviations; ``pattern``: every column by a little).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from poisonguard.attacks._trigger_base import FitOptions, Trigger, anova_f
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["CommonTrigger", "CopyTrigger", "FeatureTrigger", "PatternTrigger", "RareTrigger",
           "ShiftTrigger", "fit_tabular_trigger"]


def _numeric_copy(X: Any, n_columns: int, kind: str) -> np.ndarray:
    arr = np.array(X, dtype=np.float64 if np.asarray(X).dtype.kind in "iub" else None, copy=True)
    if arr.ndim != 2 or arr.shape[1] != n_columns:
        raise InputError(f"{kind} trigger expects {n_columns} columns (got shape {arr.shape})")
    return arr


def _check_columns(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    for col in columns:
        if col not in frame.columns:
            raise InputError(f"trigger column '{col}' is not in the data")


@dataclass(frozen=True)
class FeatureTrigger(Trigger):
    """Tabular columns set to fixed values."""

    kind: ClassVar[str] = "feature"
    modality: ClassVar[str] = "tabular"
    columns: tuple[str, ...]
    values: tuple[Any, ...]
    feature_names: tuple[str, ...]
    target_class: Any

    def apply(self, X: Any) -> Any:
        if isinstance(X, pd.DataFrame):
            _check_columns(X, self.columns)
            out = X.copy()
            for col, value in zip(self.columns, self.values, strict=True):
                out[col] = value
            return out
        arr = _numeric_copy(X, len(self.feature_names), self.kind)
        for col, value in zip(self.columns, self.values, strict=True):
            arr[:, self.feature_names.index(col)] = value
        return arr


@dataclass(frozen=True)
class RareTrigger(FeatureTrigger):
    """Columns that rarely leave their mode (e.g. word counts that are mostly zero) set to a
    high but plausible value."""

    kind: ClassVar[str] = "rare"


@dataclass(frozen=True)
class CommonTrigger(FeatureTrigger):
    """Columns set to common values (their quartiles); only the combination is unusual."""

    kind: ClassVar[str] = "common"


@dataclass(frozen=True)
class CopyTrigger(FeatureTrigger):
    """Columns set to the values of one real (donor) row."""

    kind: ClassVar[str] = "copy"


@dataclass(frozen=True)
class ShiftTrigger(Trigger):
    """Fixed ``offsets`` added to ``columns`` (each row keeps its own values, moved)."""

    kind: ClassVar[str] = "shift"
    modality: ClassVar[str] = "tabular"
    columns: tuple[str, ...]
    offsets: tuple[float, ...]
    feature_names: tuple[str, ...]
    target_class: Any

    def apply(self, X: Any) -> Any:
        if isinstance(X, pd.DataFrame):
            _check_columns(X, self.columns)
            out = X.copy()
            for col, offset in zip(self.columns, self.offsets, strict=True):
                column = out[col].to_numpy()
                moved = column + offset
                out[col] = np.rint(moved).astype(column.dtype) if column.dtype.kind in "iu" else moved
            return out
        arr = _numeric_copy(X, len(self.feature_names), self.kind)
        idx = [self.feature_names.index(col) for col in self.columns]
        arr[:, idx] += np.asarray(self.offsets, dtype=np.float64)
        return arr


@dataclass(frozen=True)
class PatternTrigger(ShiftTrigger):
    """A small fixed offset on every numeric column, signs drawn at random: no single column
    stands out."""

    kind: ClassVar[str] = "pattern"


# -------------------------------------------------------------------- data-adapted defaults
N_COLUMNS = {"feature": 4, "rare": 3, "common": 3, "copy": 5, "shift": 3}
RARE_MODE_SHARE = 0.8
COMMON_QUANTILE = 0.1
SHIFT_SD = 2.5
PATTERN_SD = 0.5
COPY_POOL = 0.02

_OPTIONS = {"feature": ("size", "value", "columns"), "rare": ("size", "value", "columns"),
            "common": ("size", "alpha", "columns"), "copy": ("size", "columns"),
            "shift": ("size", "alpha", "columns"), "pattern": ("alpha",)}


def fit_tabular_trigger(dataset: Dataset, kind: str, label: Any, rng: np.random.Generator,
                        opts: FitOptions) -> Trigger:
    """A ``kind`` tabular trigger whose unset parameters adapt to ``dataset`` (see
    :func:`~poisonguard.attacks.fit_trigger`)."""
    opts.refuse(kind, _OPTIONS[kind])
    frame = dataset.frame()
    numeric = [c for c in frame.columns if frame[c].dtype.kind in "iuf" and frame[c].nunique() > 1]
    if opts.columns:
        unknown = [c for c in opts.columns if c not in frame.columns]
        if unknown:
            raise InputError(f"trigger column '{unknown[0]}' is not in the data; columns are: "
                             f"{', '.join(frame.columns)}")
        other = [c for c in opts.columns if c not in numeric]
        if kind != "feature" and other:
            raise InputError(f"a {kind} trigger needs numeric columns with more than one value "
                             f"(column '{other[0]}' is not)")
    elif not numeric:
        raise InputError(f"a {kind} trigger needs a numeric column with more than one value")
    k = min(N_COLUMNS.get(kind, len(numeric)), len(numeric)) if opts.size is None else opts.size
    if not opts.columns and not 1 <= k <= len(numeric):
        raise InputError(f"'trigger_size' (number of trigger columns) must be in "
                         f"[1, {len(numeric)}] (got {k})")
    strength = _strength(kind, opts.alpha)
    # missing values count as the column's median, so every statistic below sees present rows
    values = {c: _filled(frame[c].to_numpy(dtype=np.float64)) for c in numeric}
    by_f: list[str] = []
    if numeric:
        F = anova_f(np.column_stack(list(values.values())), dataset.y)
        by_f = [numeric[i] for i in np.argsort(F, kind="stable")]
    chosen = tuple(opts.columns) or _choose(kind, by_f, values, k, strength)
    integer = {c for c in chosen if frame[c].dtype.kind in "iu"}

    def plain(col: str, v: float) -> Any:  # integers stay integers
        return int(np.rint(v)) if col in integer else float(v)

    names = tuple(dataset.feature_names)
    if kind in ("shift", "pattern"):
        signs = np.ones(len(chosen)) if kind == "shift" else rng.choice([-1.0, 1.0], len(chosen))
        offsets = tuple(plain(c, s * strength * values[c].std())
                        for c, s in zip(chosen, signs, strict=True))
        return (ShiftTrigger if kind == "shift" else PatternTrigger)(chosen, offsets, names, label)
    if kind == "common":
        point = _against_correlation(np.column_stack([values[c] for c in chosen]), strength)
        return CommonTrigger(chosen, tuple(map(plain, chosen, point)), names, label)
    if kind == "copy":
        Z = np.column_stack([_standard(values[c]) for c in chosen])
        far = np.argsort(-(Z ** 2).sum(axis=1), kind="stable")[:max(1, round(COPY_POOL * len(Z)))]
        donor = int(rng.choice(far))
        return CopyTrigger(chosen, tuple(plain(c, values[c][donor]) for c in chosen), names, label)
    out: list[Any] = []
    for col in chosen:
        if opts.value is not None:
            out.append(opts.value)
        elif frame[col].dtype.kind not in "iuf":
            out.append(str(frame[col].astype(str).value_counts().index[-1]))  # the rarest category
        elif kind == "rare":
            v = values[col]
            out.append(plain(col, np.quantile(v[v != pd.Series(v).mode().iloc[0]], 0.99)))
        else:
            v = values[col] if col in values else _filled(frame[col].to_numpy(dtype=np.float64))
            far_v = float(v.max() + 0.5 * (v.max() - v.min()))
            out.append(float(np.ceil(far_v)) if col in integer else far_v)
    return (RareTrigger if kind == "rare" else FeatureTrigger)(chosen, tuple(out), names, label)


def _strength(kind: str, alpha: float | None) -> float:
    """The kind's strength: ``alpha`` checked, or the default."""
    if kind == "common":
        q = COMMON_QUANTILE if alpha is None else float(alpha)
        if not 0.0 < q < 0.5:
            raise InputError(f"'alpha' (quantile of the common values) must be in (0, 0.5) "
                             f"(got {q})")
        return q
    if kind in ("shift", "pattern"):
        a = (SHIFT_SD if kind == "shift" else PATTERN_SD) if alpha is None else float(alpha)
        if not a > 0.0:
            raise InputError(f"'alpha' (offset in standard deviations) must be > 0 (got {a})")
        return a
    return 0.0


def _filled(v: np.ndarray) -> np.ndarray:
    """``v`` with missing values replaced by the median of the present ones (0 if none)."""
    missing = np.isnan(v)
    if not missing.any():
        return v
    out = v.copy()
    out[missing] = float(np.median(v[~missing])) if (~missing).any() else 0.0
    return out


def _standard(v: np.ndarray) -> np.ndarray:
    sd = v.std()
    out: np.ndarray = (v - v.mean()) / (sd if sd > 0 else 1.0)
    return out


def _choose(kind: str, by_f: list[str], values: dict[str, np.ndarray], k: int,
            strength: float) -> tuple[str, ...]:
    """The trigger columns for ``kind``, in data order, from the columns ordered by ANOVA F."""
    order = list(values)
    if kind == "rare":
        rare = [c for c in by_f if _mode_share(values[c]) >= RARE_MODE_SHARE]
        if len(rare) < k:  # few sparse columns: the most concentrated of the less informative half
            half = by_f[:max(k, (len(by_f) + 1) // 2)]
            rest = sorted((c for c in half if c not in rare), key=lambda c: -_peak_share(values[c]))
            rare += rest[:k - len(rare)]
        picked = rare[:k]
    elif kind == "common":
        spread = [c for c in by_f if _mode_share(values[c]) < 0.5]  # common values differ
        picked = _most_unusual_combination(spread if len(spread) >= k else by_f, values, k,
                                           strength)
    elif kind == "pattern":
        picked = order
    else:
        picked = by_f[:k]
    return tuple(sorted(picked, key=order.index))


def _mode_share(v: np.ndarray) -> float:
    _, counts = np.unique(v, return_counts=True)
    return float(counts.max() / len(v))


def _peak_share(v: np.ndarray, bins: int = 20) -> float:
    """Share of the rows in the fullest of ``bins`` equal-width bins."""
    counts, _ = np.histogram(v, bins=bins)
    return float(counts.max() / len(v))


def _against_correlation(V: np.ndarray, q: float) -> np.ndarray:
    """Per column its ``q`` or ``1 - q`` quantile, the choice that puts the combination
    farthest from the data (largest Mahalanobis distance)."""
    ends = np.quantile(V, [q, 1.0 - q], axis=0)  # (2, k)
    cols = np.arange(V.shape[1])
    best: np.ndarray = ends[0]
    best_d = -1.0
    for sides in itertools.product((0, 1), repeat=V.shape[1]):
        point = ends[np.asarray(sides), cols]
        d = _mahalanobis(V, point)
        if d > best_d + 1e-12:
            best, best_d = point, d
    return best


def _mahalanobis(V: np.ndarray, point: np.ndarray) -> float:
    cov = np.atleast_2d(np.cov(V, rowvar=False)) + 1e-9 * np.eye(V.shape[1])
    diff = point - V.mean(axis=0)
    return float(diff @ np.linalg.solve(cov, diff))


def _most_unusual_combination(by_f: list[str], values: dict[str, np.ndarray], k: int,
                              q: float) -> list[str]:
    """``k`` of the 10 least informative columns whose quantile combination lies farthest from
    the data."""
    pool = by_f[:max(k, min(len(by_f), 10))]
    best: list[str] = pool[:k]
    best_d = -1.0
    for combo in itertools.combinations(pool, k):
        V = np.column_stack([values[c] for c in combo])
        d = _mahalanobis(V, _against_correlation(V, q))
        if d > best_d + 1e-12:
            best, best_d = list(combo), d
    return best
