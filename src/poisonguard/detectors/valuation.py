"""``valuation``: KNN-Shapley data values on the evidence's neighbour graph.

Jia et al. (2019) give the exact Shapley value of every training row for the utility "a
``K``-nearest-neighbour classifier predicts the validation point's label" by one recursion
over the training rows sorted by distance to the validation point. Here every row acts as a
validation point for its own ``k`` graph neighbours (leave-one-out: a row is never in its own
training set), the training set of that game being those ``k`` neighbours, nearest first.
A row's value is the sum of its Shapley values over every row whose neighbour list holds it:
how much it helps the nearest-neighbour predictions of the rows around it. Rows that hurt
them (a wrong label among rows of another class) get a negative value; the score is minus the
value. ``O(n k)`` given the graph.

Restricting each game to the ``k`` graph neighbours is the truncation that makes this local:
rows farther than the ``k``-th neighbour would add terms of order ``1 / k`` that mostly cancel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from poisonguard.detectors._base import Calibration, Detector, register

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence

__all__ = ["KnnShapley", "knn_shapley"]


def knn_shapley(indices: np.ndarray, labels: np.ndarray, n_neighbors: int) -> np.ndarray:
    """KNN-Shapley value ``(n,)`` of every row, each row a validation point for its neighbours.

    ``indices`` is the ``(n, k)`` neighbour graph (nearest first, no self loops), ``labels`` the
    integer labels and ``n_neighbors`` the ``K`` of the valued classifier (clipped to ``k``).
    Higher = more useful; negative = hurts its neighbours' predictions.

    Examples
    --------
    >>> import numpy as np
    >>> nb = np.array([[2, 1], [2, 0], [0, 1]])  # row 2 (label 1) is nearest to rows 0 and 1
    >>> knn_shapley(nb, np.array([0, 0, 1]), 1).tolist()
    [0.5, 0.5, -1.0]
    """
    idx = np.asarray(indices, dtype=np.int64)
    lab = np.asarray(labels)
    n, k = idx.shape
    if k == 0:
        return np.zeros(n)
    big_k = int(min(max(n_neighbors, 1), k))
    match = (lab[idx] == lab[:, None]).astype(np.float64)
    s = np.empty_like(match)
    s[:, k - 1] = match[:, k - 1] / k
    for i in range(k - 2, -1, -1):  # position i holds the (i + 1)-th nearest neighbour
        rank = i + 1
        s[:, i] = s[:, i + 1] + (match[:, i] - match[:, i + 1]) / big_k * min(big_k, rank) / rank
    out: np.ndarray = np.bincount(idx.ravel(), weights=s.ravel(), minlength=n)
    return out


@register
class KnnShapley(Detector):
    """Minus the KNN-Shapley value of each row on the neighbour graph: higher = the row hurts
    the nearest-neighbour predictions of the rows around it more. Unbounded ("tail").

    Examples
    --------
    >>> from poisonguard.datasets import load_dataset
    >>> from poisonguard.evidence import Evidence
    >>> ev = Evidence(load_dataset("wine"), random_state=0)
    >>> KnnShapley().suspicion(ev).shape
    (178,)
    """

    name = "valuation"
    two_phase = False  # scores only the rows it was fitted on (one-phase shortcuts)
    summary = "negative KNN-Shapley value: the row hurts its neighbours' predictions"
    requires = ("neighbors", "labels")
    calibration: ClassVar[Calibration] = "tail"
    answers = ("availability", "targeted", "subpopulation")
    papers = (
        "Jia, Dao, Wang, Hubis, Gurel, Li, Zhang, Spanos, Song. Efficient Task-Specific Data "
        "Valuation for Nearest Neighbor Algorithms. VLDB 2019",
        "Ghorbani, Zou. Data Shapley: Equitable Valuation of Data for Machine Learning. ICML 2019",
    )

    def __init__(self, *, n_neighbors: int = 5) -> None:
        self.n_neighbors = n_neighbors

    def values(self, evidence: Evidence) -> np.ndarray:
        """KNN-Shapley value of every row (higher = more useful)."""
        return knn_shapley(evidence.neighbors.indices, evidence.labels, self.n_neighbors)

    def suspicion(self, evidence: Evidence) -> np.ndarray:
        """Minus the KNN-Shapley value; higher = more suspicious."""
        out: np.ndarray = -self.values(evidence)
        return out

    def explain(self, evidence: Evidence, rows: np.ndarray) -> list[str]:
        values = self.values(evidence)
        idx, labels, classes = evidence.neighbors.indices, evidence.labels, evidence.classes
        holders = np.bincount(idx.ravel(), minlength=evidence.n_rows)
        differs = (labels[idx] != labels[:, None]).ravel()  # neighbour lists where the label differs
        hurt = np.bincount(idx.ravel(), weights=differs, minlength=evidence.n_rows).astype(np.int64)
        median = float(np.median(values))
        out = []
        for row in np.asarray(rows, dtype=np.int64):
            out.append(f"KNN-Shapley value {values[row]:+.3f} (median {median:+.3f}): "
                       f"label {classes[labels[row]]} differs from {hurt[row]} of the "
                       f"{holders[row]} rows it is a nearest neighbour of")
        return out
