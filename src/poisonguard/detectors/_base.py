"""The detector contract, in two phases, and its registry.

``fit(evidence) -> state`` learns what the detector needs from the fitted rows of an
:class:`~poisonguard.evidence.Evidence` (a sample of a large file, or all of a small one);
``score(view, state) -> Scores`` scores any rows from a :class:`~poisonguard.evidence.View` of
them — the fitted rows themselves (``evidence.view()``) or a chunk the evidence never saw
(``evidence.view(chunk)``, on this process or a Dask worker). ``Scores`` holds one finite float
per row (``suspicion``, higher = more suspicious) and a ``payload`` of per-row arrays that
``reasons(view, scores, rows)`` turns into one line per row without recomputing anything. The
state is small and picklable; the detector object keeps nothing (parameters only).
``suspicion(evidence)`` and ``explain(evidence, rows)`` are the one-phase shortcuts (fit and
score the fitted rows). A detector that only implements the shortcuts (``two_phase = False``)
scores the fitted rows and nothing else: a scan of a large file leaves it out, saying so.

``calibration`` tells the ensemble how to put its scores on the common [0, 1] scale:

``"probability"`` the score already is an estimate that the row is poisoned or mislabelled, in
                  [0, 1] (kept as it is);
``"tail"``        an unbounded anomaly score; the ensemble measures how far in the upper tail of
                  the detector's own distribution each row lies (robust z-score).

``answers`` names the attack families a detector is meant for (the catalog reads it), and
``papers`` the references it implements.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from poisonguard._registry import Registry

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence, View

__all__ = ["DEFAULT_DETECTORS", "DETECTORS", "Detector", "Scores", "get_detector", "register"]

Calibration = Literal["probability", "tail"]

DETECTORS: Registry[type[Detector]] = Registry("detector")
"""Every detector class by name (see :class:`~poisonguard._registry.Registry`)."""


def register(cls: type[Detector]) -> type[Detector]:
    """Class decorator adding a detector to :data:`DETECTORS` under its ``name``."""
    return DETECTORS.register(cls)


def get_detector(name: str) -> Detector:
    """A detector instance by name; unknown names are an error listing the known ones."""
    return DETECTORS.get(name)()


@dataclass(frozen=True)
class Scores:
    """One detector's scores of the rows of a view: ``suspicion`` (one finite float per row,
    higher = more suspicious) and ``payload`` (per-row arrays, or anything else, that
    ``reasons`` reads to explain a row)."""

    suspicion: np.ndarray
    payload: Mapping[str, Any] = field(default_factory=dict)

    def take(self, rows: np.ndarray) -> Scores:
        """The scores of ``rows`` only (payload arrays of one entry per row are sliced)."""
        n = len(self.suspicion)
        return Scores(self.suspicion[rows],
                      {k: v[rows] if isinstance(v, np.ndarray) and v.shape[:1] == (n,) else v
                       for k, v in self.payload.items()})


class Detector(ABC):
    """Base class of every detector (see the module docstring for the contract)."""

    name: ClassVar[str]
    summary: ClassVar[str]
    requires: ClassVar[tuple[str, ...]]
    calibration: ClassVar[Calibration] = "tail"
    answers: ClassVar[tuple[str, ...]] = ()
    papers: ClassVar[tuple[str, ...]] = ()
    needs_reference: ClassVar[bool] = False

    two_phase: ClassVar[bool] = True

    def fit(self, evidence: Evidence) -> Any:
        """What scoring needs from the fitted rows (default: nothing)."""
        return None

    def score(self, view: View, state: Any) -> Scores:
        """Scores of the rows of ``view`` with ``state`` from :meth:`fit` on ``view.evidence``."""
        if not self.two_phase and view.in_sample:
            return Scores(np.asarray(self.suspicion(view.evidence), dtype=np.float64))
        raise NotImplementedError(f"detector {self.name!r} scores only the rows it was fitted on")

    def reasons(self, view: View, scores: Scores, rows: np.ndarray) -> list[str]:
        """A one-line reason for each row in ``rows`` (positions in ``view``), read from
        ``scores`` (default: the detector's summary)."""
        if not self.two_phase:
            return self.explain(view.evidence, rows)
        return [self.summary] * len(rows)

    def suspicion(self, evidence: Evidence) -> np.ndarray:
        """One finite score per fitted row of ``evidence``; higher = more suspicious."""
        if not self.two_phase:
            raise NotImplementedError(f"detector {self.name!r} implements neither phase")
        return self.score(evidence.view(), self.fit(evidence)).suspicion

    def explain(self, evidence: Evidence, rows: np.ndarray) -> list[str]:
        """A one-line reason for each fitted row in ``rows``."""
        if not self.two_phase:
            return [self.summary] * len(rows)
        view = evidence.view()
        return self.reasons(view, self.score(view, self.fit(evidence)), rows)

    def neighbor_pool(self, evidence: Evidence) -> int:
        """How many nearest fitted rows scoring a new row reads (``view.nearest``); a chunk's
        view queries the largest pool of the detectors run once (0: none)."""
        return evidence.k if "neighbors" in self.requires else 0

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
