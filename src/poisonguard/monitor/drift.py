"""Drift tests of a batch against a :class:`~poisonguard.monitor.profile.Profile`.

Tests, per check:

* numeric column: two-sample Kolmogorov-Smirnov of the present values against the profile's
  sample (effect: the KS statistic D) and PSI over the reference's decile bins (effect: PSI;
  its p-value is the chi-square test of homogeneity of the binned reference and batch counts),
  with one more bin, ``(missing)``, when either side has missing values;
* categorical column: chi-square test of homogeneity over the kept categories and ``(other)``
  (effect: total variation distance, TVD);
* label: the same chi-square and TVD over the labels (a label unseen in the reference counts);
* multivariate: a domain classifier (30 gradient-boosted trees of at most 15 leaves, seeded,
  single-threaded: OpenMP threads only contend on small fits) tells up to ``classifier_rows``
  reference-sample rows from as many batch rows (a seeded subsample) in 2-fold cross-fitting;
  effect: the mean out-of-fold AUC. Each fold's one-sided Mann-Whitney test of
  the batch rows' scores over the reference rows' is exact given the other fold, but pooled
  out-of-fold scores are not (their AUC varies about 1.5 times more than the test assumes, and
  alarmed 12 % of clean batches at p < 0.05), so the p-value is Bonferroni over the two folds.

All p-values of one check are adjusted together (Benjamini-Hochberg by default, or Holm),
weighted so that the per-column tests share half of the level, the label test a quarter and
the domain classifier a quarter (renormalised over the families present): one label test among
60 column tests would otherwise need p < alpha / 62 to count, and a dropped class in a small
batch went unseen. Under no drift at all the chance of any alarm stays at most ``alpha``. A
test alarms only when its adjusted p-value is below ``alpha`` and its effect reaches its gate,
so a large batch does not alarm on a trivial shift and a small one does not alarm on noise.
The batch drifts when any test alarms. Every test is computed from :class:`BatchStats`, counts
that add up over runs of rows, so a batch read as partitions on other machines
(:mod:`poisonguard.monitor.partitioned`) gets the report of the batch loaded whole. Defaults
(``alpha`` 0.01, KS D 0.1, PSI 0.2, TVD 0.1, AUC 0.6) are set for a false-alarm rate well under
5 % over batches of the reference's distribution; see ``tests/monitor/test_drift.py`` for the measured floors.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.monitor.profile import MISSING_BIN, ColumnProfile, Profile

__all__ = ["BatchStats", "DriftMonitor", "DriftReport", "DriftTest", "adjust_p_values", "ks_counts",
           "ks_from_counts", "ks_points", "reference_points"]

LABEL = "(label)"
ALL = "(all features)"
MIN_CLASSIFIER_ROWS = 20  # per side; fewer and the domain classifier is skipped
Shares = tuple[tuple[str, float, float], ...]
FAMILY_SHARE = {"columns": 0.5, "label": 0.25, "classifier": 0.25}  # of the level, by family


def relative(test: DriftTest) -> float:
    """A test's effect over its gate (how far past the gate it is)."""
    return test.effect / test.gate if test.gate > 0 else math.inf


def _family(test: str) -> str:
    return test if test in ("label", "classifier") else "columns"


@dataclass(frozen=True)
class DriftTest:
    """One test of a check: ``test`` is ks, psi, chi2, label or classifier; ``feature`` the
    column (``(label)``, ``(all features)``). ``alarm`` = ``p_adjusted < alpha`` and
    ``effect >= gate``. ``shares``: per bin or category, its reference and batch share."""

    test: str
    feature: str
    statistic: float
    p_value: float
    p_adjusted: float
    effect: float
    gate: float
    alarm: bool
    shares: Shares = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; ``shares`` as ``[bin, reference, batch]`` triples."""
        out = asdict(self)
        out["shares"] = [list(s) for s in self.shares]
        return out


@dataclass(frozen=True)
class DriftReport:
    """What one check found: ``drift`` (any test alarmed) and every test, in profile order.

    Examples
    --------
    >>> from poisonguard.datasets import load_dataset
    >>> from poisonguard.monitor import DriftMonitor, Profile
    >>> ds = load_dataset("breast_cancer")
    >>> profile = Profile.fit(ds.take(range(0, 569, 2)), random_state=0)
    >>> report = DriftMonitor(random_state=0).check(profile, ds.take(range(1, 569, 2)))
    >>> report.drift, len(report.tests)
    (False, 62)
    """

    drift: bool
    tests: tuple[DriftTest, ...]
    batch: str
    reference: str
    profile: str
    n_reference: int
    n_batch: int
    alpha: float
    correction: str
    gates: tuple[tuple[str, float], ...]
    notes: tuple[str, ...] = ()

    @property
    def alarms(self) -> tuple[DriftTest, ...]:
        """The tests that alarmed, largest effect relative to its gate first."""
        hits = [t for t in self.tests if t.alarm]
        return tuple(sorted(hits, key=lambda t: -relative(t)))

    @property
    def drifted_features(self) -> tuple[str, ...]:
        """Columns with an alarming per-column test, strongest first (no label, no ``(all)``)."""
        return tuple(dict.fromkeys(t.feature for t in self.alarms if t.test in ("ks", "psi", "chi2")))

    def summary(self) -> dict[str, Any]:
        """Counts and names for a one-line verdict."""
        return {"drift": self.drift, "batch": self.batch, "rows": self.n_batch,
                "tests": len(self.tests), "alarms": len(self.alarms),
                "drifted_features": list(self.drifted_features),
                "label_shift": any(t.alarm for t in self.tests if t.test == "label"),
                "multivariate": any(t.alarm for t in self.tests if t.test == "classifier")}

    def to_dict(self) -> dict[str, Any]:
        """``drift`` first, then ``tests``, then what was compared and how."""
        return {"drift": self.drift, "tests": [t.to_dict() for t in self.tests],
                "summary": self.summary(), "batch": self.batch, "reference": self.reference,
                "profile": self.profile, "n_reference": self.n_reference,
                "n_batch": self.n_batch, "alpha": self.alpha, "correction": self.correction,
                "gates": dict(self.gates), "notes": list(self.notes)}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically)."""
        from poisonguard.io import write_text

        return write_text(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    def to_html(self, path: str | Path) -> Path:
        """Write a self-contained HTML page (atomically)."""
        from poisonguard.io import write_text
        from poisonguard.report.monitor import render_drift

        return write_text(path, render_drift(self))


def adjust_p_values(p_values: np.ndarray, method: Literal["bh", "holm"] = "bh",
                    weights: np.ndarray | None = None) -> np.ndarray:
    """Benjamini-Hochberg (false discovery rate) or Holm (family-wise) adjusted p-values.

    ``weights`` (positive, rescaled to average 1) give some tests a larger share of the level:
    the weighted procedures of Genovese, Roeder and Wasserman (2006) and Holm (1979).

    Examples
    --------
    >>> adjust_p_values(np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    w = np.ones(m) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != m or (w <= 0).any():
        raise InputError(f"'weights' must be {m} positive numbers (got {w.tolist()})")
    if m == 0:
        return p.copy()
    w = w * m / w.sum()
    q = p / w
    order = np.argsort(q, kind="stable")
    ranked = q[order]
    if method == "bh":
        adj = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    elif method == "holm":
        left = np.cumsum(w[order][::-1])[::-1]  # weight of the hypotheses not yet rejected
        adj = np.maximum.accumulate(ranked * left)
    else:
        raise InputError(f"'correction' must be one of bh, holm (got {method!r})")
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def _present(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    out: np.ndarray = values[~np.isnan(values)]
    return out


def ks_points(ref: np.ndarray) -> np.ndarray:
    """The distinct present values of a reference sample, sorted: where a batch is counted for
    :func:`ks_from_counts`."""
    out: np.ndarray = np.unique(_present(ref))
    return out


def ks_counts(points: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``(2, len(points))``: the present ``values`` below each point and at or below it (sums
    over the partitions of a batch are the batch's)."""
    present = np.sort(_present(values))
    return np.vstack([np.searchsorted(present, points, side="left"),
                      np.searchsorted(present, points, side="right")]).astype(np.int64)


def ks_from_counts(ref: np.ndarray, points: np.ndarray, below: np.ndarray, n: int) -> tuple[
        float, float]:
    """Two-sample KS statistic and p-value of the present ``ref`` values against a batch of
    ``n`` present values known only by ``below`` (:func:`ks_counts`), exactly as
    ``scipy.stats.ks_2samp`` gives them on the values: method ``auto`` (exact) up to 2000
    values a side, ``asymp`` beyond (exact is slow there); (0, 1) when a side has none.

    Between two consecutive reference points the reference's empirical CDF is constant and the
    batch's is monotone, so the largest gap is at a point or just before one: the ECDFs there
    are counts, and the statistic is the same float ``ks_2samp`` computes. In the exact regime
    the p-value is that of a stand-in batch with the same counts (same gaps, so the same
    statistic), on ``ks_2samp`` itself.
    """
    from scipy import stats

    ref = np.sort(_present(ref))
    m = len(ref)
    if not m or not n:
        return 0.0, 1.0
    if max(m, n) <= 2000:
        res = stats.ks_2samp(ref, _stand_in(points, below, n), method="auto")
        return float(res.statistic), float(res.pvalue)
    lt, le = below
    gaps = np.r_[np.searchsorted(ref, points, side="right") / m - le / n,
                 np.searchsorted(ref, points, side="left") / m - lt / n]
    low, high = np.clip(-gaps.min(), 0, 1), gaps.max()
    d = float(low if low > high else high)
    big, small = sorted([float(m), float(n)], reverse=True)  # as ks_2samp's "asymp" method
    p = np.clip(stats.kstwo.sf(d, np.round(big * small / (big + small))), 0, 1)
    return d, float(p)


def _stand_in(points: np.ndarray, below: np.ndarray, n: int) -> np.ndarray:
    """``n`` values with the counts ``below`` at ``points``: the values at a point on it, those
    between two points (or beyond the ends) on the next float past the lower one."""
    lt, le = below
    gaps = np.r_[lt[0], lt[1:] - le[:-1], n - le[-1]]  # before, between and after the points
    at = le - lt
    slots = np.r_[np.nextafter(points[0], -np.inf), np.nextafter(points, np.inf)]
    out: np.ndarray = np.r_[np.repeat(slots, gaps), np.repeat(points, at)]
    return out


def _counts_test(names: list[str], ref: np.ndarray, batch: np.ndarray) -> tuple[
        float, float, float, float, Shares]:
    """Chi-square of homogeneity, TVD, PSI (bins smoothed by half a row) and the shares."""
    from scipy import stats

    ref, batch = np.asarray(ref, dtype=np.float64), np.asarray(batch, dtype=np.float64)
    p, q = ref / ref.sum(), batch / batch.sum()
    shares = tuple((n, round(float(a), 6), round(float(b), 6)) for n, a, b in zip(names, p, q, strict=True))
    tvd = 0.5 * float(np.abs(p - q).sum())
    ps, qs = (ref + 0.5) / (ref.sum() + 0.5 * len(ref)), (batch + 0.5) / (batch.sum() + 0.5 * len(batch))
    psi = float(((qs - ps) * np.log(qs / ps)).sum())
    used = (ref + batch) > 0
    if used.sum() < 2:
        return 0.0, 1.0, tvd, psi, shares
    res = stats.chi2_contingency(np.vstack([ref[used], batch[used]]), correction=False)
    return float(res.statistic), float(res.pvalue), tvd, psi, shares


def _encode(frame: pd.DataFrame, columns: tuple[ColumnProfile, ...]) -> np.ndarray:
    out = np.empty((len(frame), len(columns)))
    for j, col in enumerate(columns):
        if col.kind == "numeric":
            out[:, j] = frame[col.name].to_numpy(dtype=np.float64)
        else:
            out[:, j] = col.codes(frame[col.name].to_numpy())
    return out


def _domain_auc(profile: Profile, rows: np.ndarray, seed: int) -> tuple[float, float]:
    """Out-of-fold AUC of reference-vs-batch trees on the encoded batch ``rows`` and as many
    reference-sample rows, and its one-sided Mann-Whitney p-value."""
    from scipy import stats
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    m = len(rows)
    X = np.vstack([_encode(profile.sample.iloc[:m], profile.columns), rows])
    y = np.r_[np.zeros(m), np.ones(m)]
    cats = np.array([c.kind == "categorical" for c in profile.columns])
    aucs, p_values = [], []
    for train, test in StratifiedKFold(2, shuffle=True, random_state=seed).split(X, y):
        clf = HistGradientBoostingClassifier(
            max_iter=30, learning_rate=0.2, max_leaf_nodes=15, early_stopping=False,  # 0.2 s at 10k x 30
            min_samples_leaf=max(3, min(20, m // 10)),  # the default 20 cannot split a small batch
            categorical_features=cats if cats.any() else None, random_state=seed)
        with threadpool_limits(1):
            clf.fit(X[train], y[train])
            scores = clf.predict_proba(X[test])[:, 1]
        batch_scores, ref_scores = scores[y[test] == 1], scores[y[test] == 0]
        res = stats.mannwhitneyu(batch_scores, ref_scores, alternative="greater", method="asymptotic")
        aucs.append(float(res.statistic) / (len(batch_scores) * len(ref_scores)))
        p_values.append(float(res.pvalue))
    # each fold's test is exact given its training fold; the folds are dependent: Bonferroni
    return float(np.mean(aucs)), min(1.0, 2.0 * min(p_values))


@dataclass(frozen=True, eq=False)
class BatchStats:
    """What the tests of a check need of a batch, or of a run of its rows: per profile column
    the rows per bin or category (``bins``), the missing numeric values (``missing``) and the
    KS counts at the column's reference points (``below``, :func:`ks_counts`; empty for a
    categorical column); the rows per label; and the batch's rows drawn for the domain
    classifier, encoded (``rows``). Statistics of consecutive runs of rows add up (``+``) to
    those of the whole."""

    n_rows: int
    bins: tuple[np.ndarray, ...]
    missing: tuple[int, ...]
    below: tuple[np.ndarray, ...]
    labels: tuple[tuple[str, int], ...]
    rows: np.ndarray

    @classmethod
    def of(cls, profile: Profile, points: tuple[np.ndarray, ...], frame: pd.DataFrame,
           y: np.ndarray, pick: np.ndarray) -> BatchStats:
        """The statistics of ``frame`` (:meth:`Profile.features` of a batch) and its labels
        ``y``; ``pick``: the positions of its rows for the domain classifier, ascending."""
        bins, missing, below = [], [], []
        for col, at in zip(profile.columns, points, strict=True):
            values = frame[col.name].to_numpy()
            bins.append(col.bin_counts(values).astype(np.int64))
            if col.kind == "numeric":
                values = np.asarray(values, dtype=np.float64)
                missing.append(int(np.isnan(values).sum()))
                below.append(ks_counts(at, values))
            else:
                missing.append(0)
                below.append(np.zeros((2, 0), dtype=np.int64))
        names, counts = np.unique(np.asarray(y).astype(str), return_counts=True)
        return cls(len(frame), tuple(bins), tuple(missing), tuple(below),
                   tuple((str(v), int(c)) for v, c in zip(names, counts, strict=True)),
                   _encode(frame.iloc[pick], profile.columns))

    def __add__(self, other: BatchStats) -> BatchStats:
        """The statistics of this run of rows followed by ``other``."""
        labels = dict(self.labels)
        for name, count in other.labels:
            labels[name] = labels.get(name, 0) + count
        return BatchStats(self.n_rows + other.n_rows,
                          tuple(a + b for a, b in zip(self.bins, other.bins, strict=True)),
                          tuple(a + b for a, b in zip(self.missing, other.missing, strict=True)),
                          tuple(a + b for a, b in zip(self.below, other.below, strict=True)),
                          tuple(sorted(labels.items())), np.vstack([self.rows, other.rows]))


def reference_points(profile: Profile) -> tuple[np.ndarray, ...]:
    """Per profile column, the points a batch is counted at for the KS test (:func:`ks_points`
    of the profile sample's column; none for a categorical column)."""
    return tuple(ks_points(profile.sample[c.name].to_numpy()) if c.kind == "numeric"
                 else np.empty(0) for c in profile.columns)


class DriftMonitor:
    """Checks batches against a profile; the gates and the test level are its parameters.

    ``alpha`` is the level of the adjusted p-values; a test alarms only when its effect also
    reaches its gate: KS D >= ``ks_gate``, PSI >= ``psi_gate``, TVD >= ``tvd_gate``
    (categorical columns and the label), domain-classifier AUC >= ``auc_gate``.

    Examples
    --------
    >>> from poisonguard.datasets import load_dataset
    >>> from poisonguard.monitor import Profile
    >>> ds = load_dataset("wine")
    >>> profile = Profile.fit(ds.take(range(0, 178, 2)), random_state=0)
    >>> shifted = ds.take(range(1, 178, 2))
    >>> X = shifted.X.copy(); X[:, 0] += 2 * ds.X[:, 0].std()
    >>> report = DriftMonitor(random_state=0).check(profile, shifted.replace(X=X))
    >>> report.drift, report.drifted_features
    (True, ('alcohol',))
    """

    def __init__(self, *, alpha: float = 0.01, correction: Literal["bh", "holm"] = "bh",
                 ks_gate: float = 0.1, psi_gate: float = 0.2, tvd_gate: float = 0.1,
                 auc_gate: float = 0.6, multivariate: bool = True, classifier_rows: int = 2000,
                 random_state: int = 0) -> None:
        self.alpha = alpha
        self.correction = correction
        self.ks_gate = ks_gate
        self.psi_gate = psi_gate
        self.tvd_gate = tvd_gate
        self.auc_gate = auc_gate
        self.multivariate = multivariate
        self.classifier_rows = classifier_rows
        self.random_state = random_state

    def gates(self) -> dict[str, float]:
        """The effect gate of each kind of test."""
        return {"ks": self.ks_gate, "psi": self.psi_gate, "chi2": self.tvd_gate,
                "label": self.tvd_gate, "classifier": self.auc_gate}

    def _validate(self) -> None:
        for key, value, low, high in (("alpha", self.alpha, 0.0, 1.0), ("ks_gate", self.ks_gate, 0.0, 1.0),
                                      ("psi_gate", self.psi_gate, 0.0, math.inf),
                                      ("tvd_gate", self.tvd_gate, 0.0, 1.0),
                                      ("auc_gate", self.auc_gate, 0.5, 1.0)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise InputError(f"'{key}' must be a number in [{low:g}, {high:g}] (got {value!r})")
        if self.correction not in ("bh", "holm"):
            raise InputError(f"'correction' must be one of bh, holm (got {self.correction!r})")
        if not isinstance(self.classifier_rows, int) or self.classifier_rows < MIN_CLASSIFIER_ROWS:
            raise InputError(f"'classifier_rows' must be an integer >= {MIN_CLASSIFIER_ROWS} "
                             f"(got {self.classifier_rows!r})")

    def check(self, profile: Profile, batch: Dataset) -> DriftReport:
        """Test ``batch`` against ``profile``; raises :class:`InputError` on a schema mismatch."""
        self._validate()
        if not isinstance(batch, Dataset):
            raise InputError(f"'batch' must be a Dataset (got {type(batch).__name__})")
        frame = profile.features(batch)
        stats = BatchStats.of(profile, reference_points(profile), frame, batch.y,
                              self.pick(profile, len(frame)))
        return self.report(profile, stats, batch.name)

    def pick(self, profile: Profile, n_rows: int) -> np.ndarray:
        """The positions, ascending, of the rows of an ``n_rows`` batch that the domain
        classifier sees (seeded by ``random_state``; none when it is off or skipped)."""
        if not self.multivariate or min(n_rows, len(profile.sample)) < MIN_CLASSIFIER_ROWS:
            return np.empty(0, dtype=np.int64)
        m = min(self.classifier_rows, len(profile.sample), n_rows)
        rng = np.random.default_rng(self.random_state)
        out: np.ndarray = np.sort(rng.permutation(n_rows)[:m])
        return out

    def report(self, profile: Profile, stats: BatchStats, batch: str) -> DriftReport:
        """The tests of a batch called ``batch`` from its statistics (:class:`BatchStats`, with
        the rows :meth:`pick` chose), adjusted together and gated."""
        rows: list[tuple[str, str, float, float, float, Shares]] = []  # test, feature, stat, p, effect
        for col, at, counts, missing, below in zip(profile.columns, reference_points(profile),
                                                   stats.bins, stats.missing, stats.below,
                                                   strict=True):
            names, ref_counts = col.bin_names(), np.asarray(col.counts)
            if col.kind == "numeric" and (col.missing or missing):  # one more bin of the PSI
                names, ref_counts = [*names, MISSING_BIN], np.r_[ref_counts, col.missing]
                counts = np.r_[counts, missing]
            chi2, p, tvd, psi, shares = _counts_test(names, ref_counts, counts)
            if col.kind == "numeric":
                d, p_ks = ks_from_counts(profile.sample[col.name].to_numpy(), at, below,
                                         int(stats.n_rows - missing))
                rows += [("ks", col.name, d, p_ks, d, ()), ("psi", col.name, chi2, p, psi, shares)]
            else:
                rows.append(("chi2", col.name, chi2, p, tvd, shares))
        seen, ref = dict(stats.labels), dict(profile.labels)
        names = sorted(set(ref) | set(seen))
        chi2, p, tvd, _, shares = _counts_test(
            names, np.array([ref.get(n, 0) for n in names]), np.array([seen.get(n, 0) for n in names]))
        rows.append(("label", LABEL, chi2, p, tvd, shares))
        notes = []
        if len(stats.rows):
            m = len(self.pick(profile, stats.n_rows))
            if len(stats.rows) != m:
                raise InputError(f"'stats' holds {len(stats.rows)} classifier rows where this "
                                 f"monitor draws {m} of {stats.n_rows}: take the rows pick() gives")
            auc, p = _domain_auc(profile, stats.rows, self.random_state)
            rows.append(("classifier", ALL, auc, p, auc, ()))
        elif self.multivariate:
            notes.append(f"domain classifier skipped: needs at least {MIN_CLASSIFIER_ROWS} rows "
                         f"(batch has {stats.n_rows}, profile sample {len(profile.sample)})")
        gates = self.gates()
        families = [_family(r[0]) for r in rows]
        weights = np.array([FAMILY_SHARE[f] / families.count(f) for f in families])
        adjusted = adjust_p_values(np.array([r[3] for r in rows]), self.correction, weights)
        tests = tuple(DriftTest(t, f, s, p, float(q), e, gates[t],
                                bool(q < self.alpha and e >= gates[t]), sh)
                      for (t, f, s, p, e, sh), q in zip(rows, adjusted, strict=True))
        return DriftReport(any(t.alarm for t in tests), tests, batch, profile.name,
                           profile.digest, profile.n_rows, stats.n_rows, float(self.alpha),
                           self.correction, tuple(gates.items()), tuple(notes))
