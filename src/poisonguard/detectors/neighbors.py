"""``neighbors``: how many of a row's nearest neighbours carry another label."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from poisonguard.detectors._base import Calibration, Detector, register

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence, Neighbors

__all__ = ["NeighborDisagreement", "neighbor_label_distribution"]


def neighbor_label_distribution(evidence: Evidence, smoothing: float = 1.0,
                                neighbors: Neighbors | None = None) -> np.ndarray:
    """``(n, n_classes)``: the labels of each row's neighbours (``neighbors``, by default
    ``evidence.neighbors``) as a distribution, with ``smoothing`` pseudo-counts spread by the
    class frequencies (so no class gets exactly 0)."""
    labels, n_classes = evidence.labels, len(evidence.classes)
    nb = (evidence.neighbors if neighbors is None else neighbors).indices
    counts = np.zeros((len(labels), n_classes))
    np.add.at(counts, (np.repeat(np.arange(len(labels)), nb.shape[1]), labels[nb].ravel()), 1.0)
    prior = np.bincount(labels, minlength=n_classes) / len(labels)
    out: np.ndarray = (counts + smoothing * prior) / (nb.shape[1] + smoothing)
    return out


@register
class NeighborDisagreement(Detector):
    """Squared share of the ``k`` nearest neighbours (embedding space) whose label differs.

    The square keeps the ranking and puts the alarm (0.5) at about 7 of 10 neighbours
    disagreeing: at a plain majority this detector alone flagged 1.5-2.5 % of clean digits rows,
    which the ``label`` detector (model and neighbours together) already judges better.
    """

    name = "neighbors"
    two_phase = False  # scores only the rows it was fitted on (one-phase shortcuts)
    summary = "most nearest neighbours carry another label"
    requires = ("neighbors", "labels")
    calibration: ClassVar[Calibration] = "probability"
    answers = ("availability", "subpopulation", "backdoor")
    papers = ("Wilson. Asymptotic Properties of Nearest Neighbor Rules Using Edited Data. "
              "IEEE SMC 1972",)

    def suspicion(self, evidence: Evidence) -> np.ndarray:
        labels = evidence.labels
        nb = evidence.neighbors.indices
        out: np.ndarray = (labels[nb] != labels[:, None]).mean(axis=1) ** 2
        return out

    def explain(self, evidence: Evidence, rows: np.ndarray) -> list[str]:
        labels, classes = evidence.labels, evidence.classes
        nb = evidence.neighbors.indices[rows]
        out = []
        for row, neigh in zip(rows, nb, strict=True):
            values, counts = np.unique(labels[neigh], return_counts=True)
            top = values[np.argmax(counts)]
            out.append(f"{int((labels[neigh] != labels[row]).sum())} of {len(neigh)} nearest rows "
                       f"are not labelled {classes[labels[row]]} (most: {classes[top]})")
        return out
