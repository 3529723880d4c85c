"""The defence contract and its registry.

A defence is a scikit-learn classifier: parameters only in ``__init__``, data checked in
``fit``, fitted state ending in ``_``, ``predict`` / ``predict_proba``. Certifying defences add
``certify(X) -> Certificate``: per input, the prediction and how many poisoned training rows it
provably tolerates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from poisonguard._registry import Registry

__all__ = ["DEFENSES", "Certificate", "get_defense", "register"]

DEFENSES: Registry[type[Any]] = Registry("defence")
"""Every defence class by name (see :class:`~poisonguard._registry.Registry`)."""


def register(cls: type[Any]) -> type[Any]:
    """Class decorator adding a defence to :data:`DEFENSES` under its ``name``."""
    return DEFENSES.register(cls)


def get_defense(name: str, **params: Any) -> Any:
    """A defence instance by name; unknown names are an error listing the known ones."""
    return DEFENSES.get(name)(**params)


@dataclass(frozen=True)
class Certificate:
    """Per input: the ``prediction``, the ``votes`` behind it, and how many training rows an
    attacker may ``insert or remove`` (``radius``) — or ``change`` (``radius_changed``; one
    changed row is one removal plus one insertion) — without changing it."""

    prediction: np.ndarray
    radius: np.ndarray
    radius_changed: np.ndarray
    votes: np.ndarray

    def certified_accuracy(self, y: Any, radius: int = 0, *, changed: bool = False) -> float:
        """Share of inputs predicted right *and* certified at ``radius`` or more."""
        r = self.radius_changed if changed else self.radius
        ok = (np.asarray(y) == self.prediction) & (r >= radius)
        return float(ok.mean()) if len(ok) else float("nan")
