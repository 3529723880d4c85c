"""The detector contract: ``Detector.suspicion(evidence) -> scores``, and its registry.

A detector is a small, pure scorer: it reads fields of an :class:`~poisonguard.evidence.Evidence`
(named in ``requires``), keeps no fitted state, and returns one finite float per row, higher
meaning more suspicious. ``calibration`` tells the ensemble how to put its scores on the common
[0, 1] scale:

``"probability"`` the score already is an estimate that the row is poisoned or mislabelled, in
                  [0, 1] (kept as it is);
``"tail"``        an unbounded anomaly score; the ensemble measures how far in the upper tail of
                  the detector's own distribution each row lies (robust z-score).

``explain(evidence, rows)`` gives a one-line reason for each of ``rows`` (the flagged ones).
``answers`` names the attack families a detector is meant for (the catalog reads it), and
``papers`` the references it implements.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

from poisonguard.errors import InputError

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence

__all__ = ["DEFAULT_DETECTORS", "DETECTORS", "Detector", "get_detector", "register"]

Calibration = Literal["probability", "tail"]

DETECTORS: dict[str, type[Detector]] = {}


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator adding a detector to :data:`DETECTORS` under its ``name``."""
    if cls.name in DETECTORS:
        raise RuntimeError(f"detector {cls.name!r} registered twice")
    DETECTORS[cls.name] = cls
    return cls


def get_detector(name: str) -> Detector:
    """A detector instance by name; unknown names are an error listing the known ones."""
    if name not in DETECTORS:
        raise InputError(f"unknown detector {name!r}; known: {', '.join(sorted(DETECTORS))}")
    return DETECTORS[name]()


class Detector(ABC):
    """Base class of every detector (see the module docstring for the contract)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    calibration: ClassVar[Calibration] = "tail"
    answers: ClassVar[tuple[str, ...]] = ()
    papers: ClassVar[tuple[str, ...]] = ()
    needs_reference: ClassVar[bool] = False

    @abstractmethod
    def suspicion(self, evidence: Evidence) -> np.ndarray:
        """One finite score per row of ``evidence.dataset``; higher = more suspicious."""

    def explain(self, evidence: Evidence, rows: np.ndarray) -> list[str]:
        """A one-line reason for each row in ``rows`` (default: the detector's summary)."""
        return [self.summary] * len(rows)

    def applies(self, evidence: Evidence) -> str | None:
        """``None`` when the detector can run on this evidence, else why not (one line)."""
        if self.needs_reference and evidence.reference is None:
            return "needs a trusted reference (--reference)"
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# Run by ``scan`` when no detectors are named; ``validation`` joins when a reference is given.
# ``neighbors`` is left out: ``label`` already weighs the neighbours' labels against the noise
# rates it estimates, while a raw disagreement share cannot tell a flipped label from classes
# that overlap (alone it flagged 12.8 % of clean Fashion-MNIST rows; without it the default
# scan's false-positive rate there fell from 0.16 to 0.07, on digits it stayed under 0.02).
DEFAULT_DETECTORS: tuple[str, ...] = ("label", "outlier", "duplicates", "spectral", "clusters",
                                      "association", "influence", "valuation", "validation")
