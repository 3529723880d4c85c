"""``neighbors``: how many of a row's nearest neighbours carry another label.

Fitted rows are scored against their ``k`` nearest *other* fitted rows (``evidence.neighbors``);
a row the evidence never saw against its ``k`` nearest fitted rows (``view.neighbors``), whose
labels are the fitted rows' own (``view.evidence.labels``). Nothing is learnt from the fitted
rows as a whole, so the state is empty and a new row gets exactly the score a fitted row with
the same neighbours would get.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from poisonguard.detectors._base import Calibration, Detector, Scores, register

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence, Neighbors, View

__all__ = ["NeighborDisagreement", "neighbor_label_distribution"]


def neighbor_label_distribution(evidence: Evidence | View, smoothing: float = 1.0,
                                neighbors: Neighbors | None = None) -> np.ndarray:
    """``(n, n_classes)``: the labels of each row's neighbours (``neighbors``, by default the
    rows' ``neighbors``) as a distribution, with ``smoothing`` pseudo-counts spread by the class
    frequencies of the fitted rows (so no class gets exactly 0).

    ``evidence`` is an :class:`~poisonguard.evidence.Evidence` (its fitted rows) or a
    :class:`~poisonguard.evidence.View` of any rows: neighbour indices point into the fitted
    rows, so the neighbours' labels and the prior always come from the fitted rows."""
    fitted = getattr(evidence, "evidence", evidence)  # a View's fitted Evidence, or itself
    labels, n_classes = fitted.labels, len(fitted.classes)
    nb = (evidence.neighbors if neighbors is None else neighbors).indices
    n = nb.shape[0]
    counts = np.zeros((n, n_classes))
    np.add.at(counts, (np.repeat(np.arange(n), nb.shape[1]), labels[nb].ravel()), 1.0)
    prior = np.bincount(labels, minlength=n_classes) / len(labels)
    out: np.ndarray = (counts + smoothing * prior) / (nb.shape[1] + smoothing)
    return out


def _most_common(values: np.ndarray) -> np.ndarray:
    """The most frequent entry of each row of ``values`` (the smallest one among ties),
    ``(n,)``, in ``O(n k)`` memory."""
    if values.shape[1] == 0:
        return np.zeros(len(values), dtype=np.int64)
    counts = np.empty(values.shape, dtype=np.int64)
    for j in range(values.shape[1]):
        counts[:, j] = (values == values[:, j:j + 1]).sum(axis=1)
    best = counts == counts.max(axis=1, keepdims=True)
    out: np.ndarray = np.where(best, values, np.iinfo(np.int64).max).min(axis=1)
    return out


@register
class NeighborDisagreement(Detector):
    """Squared share of the ``k`` nearest neighbours (embedding space) whose label differs.

    The square keeps the ranking and puts the alarm (0.5) at about 7 of 10 neighbours
    disagreeing: at a plain majority this detector alone flagged 1.5-2.5 % of clean digits rows,
    which the ``label`` detector (model and neighbours together) already judges better.
    A new row is scored against its ``k`` nearest fitted rows; the state is empty.
    """

    name = "neighbors"
    summary = "most nearest neighbours carry another label"
    requires = ("neighbors", "labels")
    calibration: ClassVar[Calibration] = "probability"
    answers = ("availability", "subpopulation", "backdoor")
    papers = ("Wilson. Asymptotic Properties of Nearest Neighbor Rules Using Edited Data. "
              "IEEE SMC 1972",)

    def fit(self, evidence: Evidence) -> None:
        """Nothing: a row's score reads only its neighbours' labels."""
        return None

    def score(self, view: View, state: None) -> Scores:
        """The squared share of disagreeing neighbours; the payload keeps the row's label, the
        number of disagreeing neighbours, the neighbours' most common label and ``k``."""
        labels = view.labels
        nb = view.neighbors.indices
        theirs = view.evidence.labels[nb]
        differ = theirs != labels[:, None]
        out: np.ndarray = differ.mean(axis=1) ** 2
        return Scores(out, {"label": labels, "differ": differ.sum(axis=1),
                            "top": _most_common(theirs), "k": int(nb.shape[1])})

    def reasons(self, view: View, scores: Scores, rows: np.ndarray) -> list[str]:
        p, classes = scores.payload, view.classes
        return [f"{int(p['differ'][row])} of {p['k']} nearest rows are not labelled "
                f"{classes[p['label'][row]]} (most: {classes[p['top'][row]]})"
                for row in np.asarray(rows, dtype=np.int64)]
