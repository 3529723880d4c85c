"""``dpa``: Deep Partition Aggregation, a certified defence against training-set poisoning.

The training rows are split into ``n_partitions`` disjoint parts by the SHA-256 of each row's
content (features and label, hashed as :mod:`poisonguard.provenance.hashing` hashes rows), one
base model is fitted per part, and the ensemble predicts the class with the most votes (ties go
to the class that sorts first). A row lands in one part whatever else is in the data set, so
the split is reproducible and does not move when rows are added or removed.

**Certificate** (Levine & Feizi, 2021). Inserting or removing one training row changes one
part, hence at most one vote: it can take a vote from the predicted class ``c`` and give it to
a rival ``c'``, closing the gap by two. With ``n_c`` votes for ``c``, the prediction survives any
``r`` insertions or removals while ``n_c - r >= n_c' + r + [c' < c]`` for every rival, so

    ``radius = floor(min over c' != c of (n_c - n_c' - [c' < c]) / 2)``.

A *changed* row is a removal from its old part plus an insertion into its new one: two votes,
``radius_changed = floor(min(...) / 4)``. A part with no rows abstains; a part with one class
votes for it without fitting.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from poisonguard.defenses._base import Certificate, register

__all__ = ["PartitionEnsemble", "certificate_radius", "partition_index"]

_ABSTAIN = -1


def partition_index(X: Any, y: Any, n_partitions: int) -> np.ndarray:
    """The part (``0 .. n_partitions - 1``) of every row of ``(X, y)``: the first 8 bytes of the
    row's SHA-256 (content only: features and label), as an integer, modulo ``n_partitions``."""
    from poisonguard.provenance.hashing import RowChunk, row_hashes

    labels = np.asarray(y)
    labels = (labels.astype(np.float64) if labels.dtype.kind in "biuf"
              else labels.astype(str).astype(object))
    if isinstance(X, pd.DataFrame):
        features = tuple((str(c), X[c].to_numpy()) for c in X.columns)
    else:
        arr = np.asarray(X)
        if arr.ndim == 1:  # one text (or value) per row
            features = (("x0", arr.astype(object) if arr.dtype.kind in "OUS" else arr),)
        else:
            flat = arr.reshape(len(arr), -1)
            features = tuple((f"x{j}", flat[:, j]) for j in range(flat.shape[1]))
    digests = row_hashes(RowChunk(0, None, None, labels, features))
    head = digests[:, :8].copy().view(">u8").ravel()
    out: np.ndarray = (head % np.uint64(n_partitions)).astype(np.int64)
    return out


def certificate_radius(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(prediction, radius, radius_changed)`` for vote counts ``votes`` of shape
    ``(n, n_classes)`` (module docstring): ties go to the lower class index."""
    votes = np.asarray(votes, dtype=np.int64)
    n, k = votes.shape
    pred = votes.argmax(axis=1)  # first maximum: the lower class index wins a tie
    own = votes[np.arange(n), pred]
    lower = np.arange(k)[None, :] < pred[:, None]
    margin = own[:, None] - votes - lower.astype(np.int64)
    margin[np.arange(n), pred] = np.iinfo(np.int64).max
    gap = margin.min(axis=1) if k > 1 else own
    gap = np.maximum(gap, 0)
    return pred, gap // 2, gap // 4


def _take(X: Any, idx: np.ndarray) -> Any:
    if isinstance(X, pd.DataFrame):
        return X.iloc[idx]
    return np.asarray(X)[idx]


@register
class PartitionEnsemble(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Deep Partition Aggregation: one ``estimator`` per hash part, majority vote, certified.

    Parameters
    ----------
    estimator : scikit-learn classifier, default ``LogisticRegression(max_iter=1000)``
        Fitted once per part (a clone).
    n_partitions : int, default 50
        More parts certify larger radii and give each base model fewer rows.
    n_jobs : int or None
        Parts fitted in parallel (joblib).

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> model = PartitionEnsemble(n_partitions=10).fit(X[:1500], y[:1500])
    >>> cert = model.certify(X[1500:])
    >>> round(cert.certified_accuracy(y[1500:], radius=2), 2) > 0.5
    True
    """

    name: ClassVar[str] = "dpa"
    summary: ClassVar[str] = "certified: one model per hash partition, majority vote"
    papers: ClassVar[tuple[str, ...]] = (
        "Levine, Feizi. Deep Partition Aggregation: Provable Defense against General Poisoning "
        "Attacks. ICLR 2021",)

    def __init__(self, estimator: Any = None, n_partitions: int = 50,
                 n_jobs: int | None = None) -> None:
        self.estimator = estimator
        self.n_partitions = n_partitions
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any) -> PartitionEnsemble:
        from joblib import Parallel, delayed  # type: ignore[import-untyped]

        if isinstance(self.n_partitions, bool) or not isinstance(self.n_partitions, int | np.integer) \
                or self.n_partitions < 1:
            raise ValueError(f"n_partitions must be a positive integer (got {self.n_partitions!r})")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X, y = self._check(X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.partition_ = partition_index(X, y, int(self.n_partitions))
        base = self.estimator if self.estimator is not None else LogisticRegression(max_iter=1000)
        parts = [np.flatnonzero(self.partition_ == p) for p in range(int(self.n_partitions))]

        def fit_part(idx: np.ndarray) -> Any:
            if len(idx) == 0:
                return _ABSTAIN
            found = np.unique(codes[idx])
            if len(found) == 1:
                return int(found[0])
            return clone(base).fit(_take(X, idx), y[idx])

        self.estimators_ = Parallel(n_jobs=self.n_jobs)(delayed(fit_part)(idx) for idx in parts)
        self.n_abstaining_ = sum(1 for e in self.estimators_ if isinstance(e, int) and e < 0)
        return self

    def _check(self, X: Any, y: Any = None) -> Any:
        """Numeric arrays through scikit-learn's validation; tables (pandas) and 1-D texts are
        passed to the base estimator as they are (its own pipeline encodes them)."""
        fitting = y is not None
        if not fitting:
            check_is_fitted(self, "estimators_")
        raw = isinstance(X, pd.DataFrame) or (
            isinstance(X, list | tuple | np.ndarray) and np.asarray(X).ndim == 1
            and np.asarray(X).dtype.kind in "OUS")
        if not raw:
            return validate_data(self, X, y, reset=fitting) if fitting else validate_data(
                self, X, reset=False)
        if fitting:
            y = np.asarray(y)
            if y.ndim != 1 or len(y) != len(X):
                raise ValueError(f"y should be a 1d array with one label per row of X "
                                 f"({len(X)} rows)")
            self.n_features_in_ = X.shape[1] if isinstance(X, pd.DataFrame) else 1
            return X, y
        return X

    def votes(self, X: Any) -> np.ndarray:
        """Vote counts, shape ``(n, n_classes)``, in :attr:`classes_` order."""
        X = self._check(X)
        n, k = len(X), len(self.classes_)
        out = np.zeros((n, k), dtype=np.int64)
        index = {c: i for i, c in enumerate(self.classes_)}
        for est in self.estimators_:
            if isinstance(est, int):
                if est >= 0:
                    out[:, est] += 1
                continue
            pred = est.predict(X)
            codes = np.fromiter((index[p] for p in pred), dtype=np.int64, count=n)
            out[np.arange(n), codes] += 1
        return out

    def predict(self, X: Any) -> np.ndarray:
        votes = self.votes(X)
        out: np.ndarray = self.classes_[votes.argmax(axis=1)]
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Vote shares (uniform where every part abstains)."""
        v = self.votes(X).astype(np.float64)
        total = v.sum(axis=1, keepdims=True)
        out: np.ndarray = np.where(total > 0, v / np.maximum(total, 1.0), 1.0 / v.shape[1])
        return out

    def certify(self, X: Any) -> Certificate:
        """Prediction and certified radii per input (module docstring)."""
        v = self.votes(X)
        pred, radius, changed = certificate_radius(v)
        return Certificate(prediction=self.classes_[pred], radius=radius,
                           radius_changed=changed, votes=v)
