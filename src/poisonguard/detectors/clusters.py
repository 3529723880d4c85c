"""Activation clustering: per class, a small, well-separated cluster of the embedding is suspect.

Chen et al. reduce each class's activations to ~10 dimensions, split them with 2-means and call
the smaller cluster poisoned when it is small (relative size under ~35 %) and the split is clean
(high silhouette). On the proxy embeddings of clean data, plain 2-means on principal components
finds natural sub-styles with silhouettes as high as the poison's (measured: up to 0.40 on clean
digits classes, 0.33-0.38 for a 5-10 % patch backdoor), so the split runs in the robustly whitened
space of :func:`poisonguard.detectors.spectral.whiten_class` instead, where poison sits far from
the class's clean core. The suspect cluster is the one holding fewer core rows (not merely the
smaller one, which matters when half a class is poison).

Calibration is ``"probability"``: each row of the suspect cluster scores

    size(relative size) * sigmoid((silhouette - 0.6) / 0.04) * sigmoid(log(spread / 40) / 0.25)

where ``size`` is 1 up to 35 % and falls linearly to 0 at 50 %, and ``spread`` is the median
whitened squared distance of the cluster over that of the core. Both centres were set on the
measured cases (clean classes: silhouette <= 0.53, spread <= 41 apart from one class of 4 % odd
rows; feature backdoors: silhouette >= 0.71, spread >= 56), so a score >= 0.5 means a confident,
small, far split, and every other row of the class scores 0: the detector stays quiet on classes
without poison and leaves the ranking of diffuse cases to ``spectral``.

With three or more classes the other classes are a null for each class's split: a backdoor's
split is far more spread out than the natural sub-styles every class shows (digits: a noise or
blend trigger's cluster lies 28-32x the core's spread where clean classes reach 3-19), even when
its silhouette and spread stay under the absolute centres above, and when the poison is up to
half of its class. A class whose log spread lies ``_CONTRAST_Z`` robust standard deviations above
the other classes' (median and MAD of the others, the MAD floored at 0.25 in log units), whose
split is clean enough (silhouette >= 0.4) and whose suspect rows are no more mixed with other
labels than the core is (the share of their label-free feature neighbours carrying another label
is at most the core's + 0.05) scores ``sigmoid((z - _CONTRAST_Z) / 0.3)`` when the cluster is
under half of the class; the row's probability is the larger of the two rules. The last condition
separates the two kinds of far split seen on digits: triggered rows are each other's neighbours
(other-label share 0.00-0.03, core 0.01), while a natural sub-style far from its class core sits
on the border with other classes (class 9: 0.43 against 0.14).

Two phases: :meth:`Clusters.fit` keeps, per class of the fitted rows, the class's whitening (from
:func:`~poisonguard.detectors.spectral.whiten_class`), the two fitted 2-means centres, which of
them is the suspect cluster, the cluster's share, silhouette, spread and probability, and which
fitted rows fell in it. A new row is whitened with its *given* label's class state, assigned to
the nearer of that class's two centres (as the fitted rows of a class beyond 20,000 rows are) and
gets the suspect cluster's probability when it lands there, 0 otherwise. The split itself (share,
silhouette, spread, the other-label share of the suspect rows' feature neighbours and the
contrast with other classes) is judged on the fitted rows only: new rows never move it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from poisonguard.detectors._base import Detector, Scores, register
from poisonguard.detectors.spectral import (
    WhitenedClass,
    Whitening,
    whiten_class,
    whitened,
    whitened_rows,
)

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence, View

__all__ = ["ClassSplit", "Clusters", "ClustersState", "contrast_probability", "split_class"]

_MAX_SHARE = 0.35
_ZERO_SHARE = 0.5
_SILHOUETTE = 0.6
_SPREAD = 40.0
_KMEANS_ROWS = 20_000
_CONTRAST_Z = 2.5
_CONTRAST_SILHOUETTE = 0.4
_CONTRAST_MAX_SHARE = 0.5
_LOG_MAD_FLOOR = 0.25
_MIXING_MARGIN = 0.05


@dataclass(frozen=True)
class ClassSplit:
    """The 2-means split of one class: ``suspect`` marks the rows of the suspect cluster,
    ``centers`` ``(2, k)`` are the fitted centres in whitened coordinates and ``suspect_id`` the
    suspect cluster's centre (a row nearer to it than to the other is in the cluster)."""

    suspect: np.ndarray
    share: float
    silhouette: float
    spread: float
    probability: float
    mixing: float = 0.0
    centers: np.ndarray | None = None
    suspect_id: int = 1

    def assign(self, coords: np.ndarray) -> np.ndarray:
        """True for the whitened rows ``coords`` ``(m, k)`` nearer the suspect centre."""
        if self.centers is None:
            return np.zeros(len(coords), dtype=bool)
        d = ((coords[:, None, :] - self.centers[None, :, :]) ** 2).sum(axis=2)
        out: np.ndarray = np.argmin(d, axis=1) == self.suspect_id
        return out


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0))))


def split_class(rows: np.ndarray | WhitenedClass, *, dim: int = 10,
                random_state: int = 0) -> ClassSplit | None:
    """Split one class's embedding ``rows`` (or their :func:`whiten_class`, when already
    computed) in two; ``None`` when it cannot be split."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    white = rows if isinstance(rows, WhitenedClass) else whiten_class(rows, dim)
    Y = white.coords
    if Y.shape[1] == 0 or len(np.unique(np.round(Y, 9), axis=0)) < 3:
        return None
    # 2-means on a seeded sample of at most 20,000 rows, then every row to its nearer centre:
    # the split of a 500,000-row class is the same and costs a fraction
    sample = (np.sort(np.random.default_rng(random_state).choice(len(Y), _KMEANS_ROWS, replace=False))
              if len(Y) > _KMEANS_ROWS else slice(None))
    km = KMeans(n_clusters=2, n_init=10 if len(Y) <= _KMEANS_ROWS else 3,
                random_state=random_state).fit(Y[sample])
    labels = km.predict(Y) if len(Y) > _KMEANS_ROWS else km.labels_
    if len(np.unique(labels)) < 2:
        return None
    core_share = [float(white.core[labels == j].mean()) for j in (0, 1)]
    sizes = np.bincount(labels, minlength=2)
    suspect_id = int(np.argmin(core_share)) if core_share[0] != core_share[1] else int(
        np.argmin(sizes))
    suspect = labels == suspect_id
    share = float(suspect.mean())
    # silhouette is quadratic in rows: a seeded sample of 4,000 keeps large classes cheap
    sil = float(silhouette_score(Y, labels, sample_size=min(len(Y), 4000), random_state=random_state))
    dist = (Y ** 2).sum(axis=1)
    core_median = max(float(np.median(dist[white.core])), 1e-12)
    spread = float(np.median(dist[suspect])) / core_median
    size = float(np.clip((_ZERO_SHARE - share) / (_ZERO_SHARE - _MAX_SHARE), 0.0, 1.0))
    prob = size * _sigmoid((sil - _SILHOUETTE) / 0.04) * _sigmoid(
        np.log(max(spread, 1e-12) / _SPREAD) / 0.25)
    return ClassSplit(suspect=suspect, share=share, silhouette=sil, spread=spread, probability=prob,
                      centers=np.asarray(km.cluster_centers_, dtype=np.float64),
                      suspect_id=suspect_id)


def contrast_probability(splits: dict[int, ClassSplit]) -> dict[int, float]:
    """Per class, the probability from comparing its split with the other classes' splits (the
    module docstring); empty with fewer than three splits."""
    if len(splits) < 3:
        return {}
    codes = list(splits)
    logs = np.log(np.array([max(splits[c].spread, 1e-12) for c in codes]))
    out: dict[int, float] = {}
    for i, code in enumerate(codes):
        found = splits[code]
        others = np.delete(logs, i)
        med = float(np.median(others))
        mad = max(1.4826 * float(np.median(np.abs(others - med))), _LOG_MAD_FLOOR)
        z = (logs[i] - med) / mad
        if (found.silhouette < _CONTRAST_SILHOUETTE or found.share >= _CONTRAST_MAX_SHARE
                or found.mixing > _MIXING_MARGIN):
            out[code] = 0.0
            continue
        out[code] = _sigmoid((z - _CONTRAST_Z) / 0.3)
    return out


@dataclass(frozen=True)
class ClustersState:
    """Per class code of the fitted rows that could be split, its :class:`ClassSplit` (with the
    fitted rows of the suspect cluster) and its :class:`Whitening` (for new rows)."""

    splits: dict[int, ClassSplit] = field(default_factory=dict)
    whitening: dict[int, Whitening | None] = field(default_factory=dict)


@register
class Clusters(Detector):
    """Activation clustering per class; the score is the probability that the row sits in a
    small, well-separated cluster split off from its class (higher = more suspicious; 0 for
    every row of a class without such a cluster). A new row gets the probability of the fitted
    cluster of its class it lies nearest to.

    Examples
    --------
    >>> from poisonguard.datasets import make_tabular
    >>> from poisonguard.evidence import Evidence
    >>> ev = Evidence(make_tabular(n_rows=150, random_state=0))
    >>> scores = Clusters().suspicion(ev)
    >>> bool(scores.max() < 0.5)
    True
    """

    name: ClassVar[str] = "clusters"
    summary: ClassVar[str] = "in a small cluster of its class split off from the rest"
    requires: ClassVar[tuple[str, ...]] = ("embedding", "labels", "feature_neighbors")
    calibration = "probability"
    answers: ClassVar[tuple[str, ...]] = ("backdoor", "subpopulation")
    papers: ClassVar[tuple[str, ...]] = (
        "Chen, Carvalho, Baracaldo, Ludwig, Edwards, Lee, Molloy, Srivastava. Detecting Backdoor "
        "Attacks on Deep Neural Networks by Activation Clustering. SafeAI@AAAI 2019",
    )

    def __init__(self, *, dim: int = 10) -> None:
        self.dim = dim

    def _splits(self, evidence: Evidence) -> dict[int, ClassSplit]:
        def compute() -> dict[int, ClassSplit]:
            out: dict[int, ClassSplit] = {}
            labels = evidence.labels
            other = (labels[evidence.feature_neighbors.indices] != labels[:, None]).mean(axis=1)
            for code in np.unique(labels):
                found = split_class(whitened(evidence, int(code), self.dim),
                                    random_state=evidence.random_state)
                if found is not None:
                    mine = other[labels == code]
                    core = mine[~found.suspect]
                    mixing = float(mine[found.suspect].mean() - (core.mean() if core.size else 0.0))
                    out[int(code)] = replace(found, mixing=mixing)
            for code, prob in contrast_probability(out).items():
                if prob > out[code].probability:
                    out[code] = replace(out[code], probability=prob)
            return out

        return evidence.memo(("clusters", self.dim), compute)

    def fit(self, evidence: Evidence) -> ClustersState:
        """Each class's split (centres, suspect cluster, probability) and whitening."""
        splits = self._splits(evidence)
        return ClustersState(dict(splits), {code: whitened(evidence, code, self.dim).whitening
                                            for code in splits})

    def score(self, view: View, state: ClustersState) -> Scores:
        """Probability in [0, 1] that the row is in a split-off cluster of its class: the fitted
        rows of the suspect cluster, or new rows nearer its centre than the other one. The
        payload keeps the row's label, whether it is in the suspect cluster, and the cluster's
        share of its class, silhouette and spread (NaN for a class without a split)."""
        labels = view.labels
        n = len(labels)
        out = np.zeros(n)
        suspect = np.zeros(n, dtype=bool)
        share, silhouette, spread = (np.full(n, np.nan) for _ in range(3))
        for code, found in state.splits.items():
            idx = np.flatnonzero(labels == code)
            if view.in_sample:
                members = found.suspect
            else:
                members = found.assign(whitened_rows(view, code, self.dim,
                                                     state.whitening.get(code)))
            out[idx[members]] = found.probability
            suspect[idx[members]] = True
            share[idx], silhouette[idx], spread[idx] = found.share, found.silhouette, found.spread
        return Scores(out, {"labels": labels, "suspect": suspect, "share": share,
                            "silhouette": silhouette, "spread": spread})

    def reasons(self, view: View, scores: Scores, rows: np.ndarray) -> list[str]:
        """The cluster's share of its class, its silhouette and how far it lies."""
        p = scores.payload
        lines = []
        for r in np.asarray(rows, dtype=np.int64):
            cls = view.classes[p["labels"][r]]
            if not p["suspect"][r]:
                lines.append(f"class {cls!s} shows no split-off cluster around this row")
                continue
            lines.append(f"in a {100 * p['share'][r]:.0f} % cluster of class {cls!s} split off "
                         f"from the rest (silhouette {p['silhouette'][r]:.2f}, "
                         f"{np.sqrt(p['spread'][r]):.1f}x the core's spread)")
        return lines
