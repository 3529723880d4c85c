"""``dpa`` and ``fa``: certified partition ensembles against training-set poisoning.

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

**Finite Aggregation** (Wang, Levine & Feizi, 2022; ``spread = d > 1``). Rows are hashed into
``k d`` buckets and there are ``k d`` base models; bucket ``j`` feeds the ``d`` models
``(j + s_t) mod k d`` (fixed distinct offsets ``s_0 = 0, s_1, ...``), so every model still sees
about ``1 / k`` of the rows, and one poisoned row reaches ``d`` models through one bucket. For a
rival ``c'``, corrupting bucket ``j`` can lower the margin ``n_c - n_c' - [c' < c]`` by at most
its *power*: 2 for each of its models voting ``c``, 1 for each voting neither ``c`` nor ``c'``
(or abstaining). The prediction is certified against ``r`` inserted or removed rows when the
``r`` most powerful buckets together stay within the margin (a sound bound: models shared by
two buckets are counted twice), and against ``r`` changed rows with the ``2 r`` most powerful.
With ``d = 1`` this is exactly the DPA certificate.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from poisonguard.defenses._base import Certificate, register
from poisonguard.defenses.robust import RobustLinear

__all__ = ["FiniteAggregation", "PartitionEnsemble", "bucket_radius", "certificate_radius",
           "copies_into_parts", "partition_index", "spread_offsets"]

_ABSTAIN = -1


def partition_index(X: Any, y: Any, n_partitions: int) -> np.ndarray:
    """The part (``0 .. n_partitions - 1``) of every row of ``(X, y)``: the first 8 bytes of the
    row's SHA-256 (content only: features and label), as an integer, modulo ``n_partitions``."""
    from poisonguard.provenance.hashing import RowChunk, row_hashes

    if sparse.issparse(X):
        return _sparse_partition_index(X, y, n_partitions)
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


def copies_into_parts(x: np.ndarray, label: Any, parts: Any, n_parts: int,
                      rng: np.random.Generator, jitter: float = 1e-3) -> np.ndarray:
    """One copy of the row ``x`` (labelled ``label``, jittered by ``N(0, jitter)``) hashing into
    each part of ``parts``, in that order: the rows an attacker inserts to reach chosen parts
    (the strongest insertion against 1-NN base models, used to audit certificates)."""
    wanted = {int(b) for b in parts}
    found: dict[int, np.ndarray] = {}
    while len(found) < len(wanted):
        cand = x + rng.normal(0.0, jitter, size=(4 * n_parts, x.size))
        for row, p in zip(cand, partition_index(cand, np.full(len(cand), label), n_parts),
                          strict=True):
            if int(p) in wanted and int(p) not in found:
                found[int(p)] = row
    return np.stack([found[int(b)] for b in parts]) if len(wanted) else np.zeros((0, x.size))


def _sparse_partition_index(X: Any, y: Any, n_partitions: int) -> np.ndarray:
    """Sparse rows (e.g. TF-IDF): SHA-256 of the label and the row's non-zero (column, value)
    pairs in column order, explicit zeros dropped."""
    import hashlib

    csr = sparse.csr_matrix(X, dtype=np.float64, copy=True)
    csr.eliminate_zeros()
    csr.sort_indices()
    out = np.empty(csr.shape[0], dtype=np.int64)
    for i, label in enumerate(np.asarray(y).tolist()):
        a, b = csr.indptr[i], csr.indptr[i + 1]
        digest = hashlib.sha256(b"poisonguard-sparse-row\0" + str(label).encode() + b"\0"
                                + csr.indices[a:b].astype("<i8").tobytes()
                                + csr.data[a:b].astype("<f8").tobytes()).digest()
        out[i] = int.from_bytes(digest[:8], "big") % n_partitions
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


def spread_offsets(n_buckets: int, spread: int) -> np.ndarray:
    """The ``spread`` distinct offsets ``s_t`` (``s_0 = 0``) by which bucket ``j`` feeds models
    ``(j + s_t) mod n_buckets``: fixed for a given ``(n_buckets, spread)``, spread out by a
    seeded permutation."""
    if spread > n_buckets:
        raise ValueError(f"spread {spread} exceeds the {n_buckets} buckets")
    rng = np.random.default_rng([n_buckets, spread])
    rest = rng.permutation(np.arange(1, n_buckets))[:spread - 1]
    return np.concatenate([[0], np.sort(rest)]).astype(np.int64)


def _counts(model_votes: np.ndarray, n_classes: int) -> np.ndarray:
    """Votes per class, shape ``(n, n_classes)``, from each model's vote (-1 abstains)."""
    return np.stack([(model_votes == c).sum(axis=1) for c in range(n_classes)], axis=1).astype(
        np.int64)


def bucket_radius(model_votes: np.ndarray, n_classes: int, offsets: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(prediction, radius, radius_changed)`` from each model's vote (class code, -1 for an
    abstention), shape ``(n, n_models)``, with bucket ``j`` feeding models ``(j + offsets) mod
    n_models`` (module docstring)."""
    n, m = model_votes.shape
    counts = _counts(model_votes, n_classes)
    pred = counts.argmax(axis=1)
    own = counts[np.arange(n), pred]
    radius = np.full(n, m, dtype=np.int64)
    changed = np.full(n, m, dtype=np.int64)
    for rival in range(n_classes):
        margin = own - counts[:, rival] - (rival < pred).astype(np.int64)
        weight = np.where(model_votes == pred[:, None], 2,
                          np.where(model_votes == rival, 0, 1))
        power = np.zeros((n, m), dtype=np.int64)
        for off in offsets:  # bucket j reaches model (j + off) mod m
            power += np.roll(weight, -int(off), axis=1)
        spent = np.cumsum(-np.sort(-power, axis=1), axis=1)
        fits = (spent <= margin[:, None]).sum(axis=1)  # buckets within the margin
        is_rival = rival != pred
        radius = np.where(is_rival, np.minimum(radius, fits), radius)
        changed = np.where(is_rival, np.minimum(changed, fits // 2), changed)
    return pred, radius, changed


def _take(X: Any, idx: np.ndarray) -> Any:
    if isinstance(X, pd.DataFrame):
        return X.iloc[idx]
    if sparse.issparse(X):
        return X[idx]
    return np.asarray(X)[idx]


class _Aggregation(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Shared by DPA and FA: ``n_partitions * spread`` hash buckets and base models, bucket ``j``
    feeding models ``(j + s_t) mod n_models``."""

    name: ClassVar[str]
    n_partitions: int
    estimator: Any
    n_jobs: int | None

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # TF-IDF features stay sparse
        return tags

    def _spread(self) -> int:
        return 1

    def fit(self, X: Any, y: Any) -> Any:
        from joblib import Parallel, delayed  # type: ignore[import-untyped]

        for what, value in (("n_partitions", self.n_partitions), ("spread", self._spread())):
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{what} must be a positive integer (got {value!r})")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X, y = self._check(X, y)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        n_models = int(self.n_partitions) * int(self._spread())
        self.offsets_ = spread_offsets(n_models, int(self._spread()))
        self.partition_ = partition_index(X, y, n_models)  # the bucket of every row
        base = self.estimator if self.estimator is not None else RobustLinear(loss="ce")
        members = [np.flatnonzero(np.isin(self.partition_, (i - self.offsets_) % n_models))
                   for i in range(n_models)]

        def fit_part(idx: np.ndarray) -> Any:
            if len(idx) == 0:
                return _ABSTAIN
            found = np.unique(codes[idx])
            if len(found) == 1:
                return int(found[0])
            return clone(base).fit(_take(X, idx), y[idx])

        self.estimators_ = Parallel(n_jobs=self.n_jobs)(delayed(fit_part)(idx) for idx in members)
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
            return validate_data(self, X, y, reset=fitting, accept_sparse="csr") if fitting \
                else validate_data(self, X, reset=False, accept_sparse="csr")
        if fitting:
            y = np.asarray(y)
            if y.ndim != 1 or len(y) != len(X):
                raise ValueError(f"y should be a 1d array with one label per row of X "
                                 f"({len(X)} rows)")
            self.n_features_in_ = X.shape[1] if isinstance(X, pd.DataFrame) else 1
            return X, y
        return X

    def model_votes(self, X: Any) -> np.ndarray:
        """Each base model's vote (class code; -1 abstains), shape ``(n, n_models)``."""
        X = self._check(X)
        n = X.shape[0] if sparse.issparse(X) else len(X)
        out = np.empty((n, len(self.estimators_)), dtype=np.int64)
        for i, est in enumerate(self.estimators_):
            if isinstance(est, int):
                out[:, i] = est
                continue
            out[:, i] = np.searchsorted(self.classes_, est.predict(X))
        return out

    def votes(self, X: Any) -> np.ndarray:
        """Vote counts, shape ``(n, n_classes)``, in :attr:`classes_` order."""
        return _counts(self.model_votes(X), len(self.classes_))

    def predict(self, X: Any) -> np.ndarray:
        votes = self.votes(X)
        out: np.ndarray = self.classes_[votes.argmax(axis=1)]
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Vote shares (uniform where every model abstains)."""
        v = self.votes(X).astype(np.float64)
        total = v.sum(axis=1, keepdims=True)
        out: np.ndarray = np.where(total > 0, v / np.maximum(total, 1.0), 1.0 / v.shape[1])
        return out

    def certify(self, X: Any) -> Certificate:
        """Prediction and certified radii per input (module docstring)."""
        mv = self.model_votes(X)
        pred, radius, changed = bucket_radius(mv, len(self.classes_), self.offsets_)
        return Certificate(prediction=self.classes_[pred], radius=radius,
                           radius_changed=changed, votes=_counts(mv, len(self.classes_)))


@register
class PartitionEnsemble(_Aggregation):
    """Deep Partition Aggregation: one ``estimator`` per hash part, majority vote, certified.

    Parameters
    ----------
    estimator : scikit-learn classifier, default ``RobustLinear(loss="ce")``
        Fitted once per part (a clone); the default standardises its features and never warns
        about convergence.
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


@register
class FiniteAggregation(_Aggregation):
    """Finite Aggregation: ``n_partitions * spread`` buckets and models, each model trained on
    ``spread`` buckets (about ``1 / n_partitions`` of the rows), majority vote, certified.

    Parameters
    ----------
    estimator : scikit-learn classifier, default ``RobustLinear(loss="ce")``
    n_partitions : int, default 50
        The share of rows each model sees is ``1 / n_partitions``, as in DPA.
    spread : int, default 8
        Buckets per model (``d``); the ensemble has ``n_partitions * spread`` models.
    n_jobs : int or None
    """

    name: ClassVar[str] = "fa"
    summary: ClassVar[str] = "certified: overlapping hash buckets, majority vote"
    papers: ClassVar[tuple[str, ...]] = (
        "Wang, Levine, Feizi. Improved Certified Defenses against Data Poisoning with "
        "(Deterministic) Finite Aggregation. ICML 2022",)

    def __init__(self, estimator: Any = None, n_partitions: int = 50, spread: int = 8,
                 n_jobs: int | None = None) -> None:
        self.estimator = estimator
        self.n_partitions = n_partitions
        self.spread = spread
        self.n_jobs = n_jobs

    def _spread(self) -> int:
        return self.spread
