"""Dirty-label backdoor: stamp a trigger on rows of other classes and relabel them."""

from __future__ import annotations

from typing import Any

import numpy as np

from poisonguard.attacks._base import (
    Attack,
    PoisonResult,
    check_class,
    inject,
    modify,
    register,
    take_rows,
)
from poisonguard.attacks.triggers import Trigger, fit_trigger
from poisonguard.dataset import Dataset

__all__ = ["Backdoor", "trigger_for"]


def trigger_for(attack: Any, dataset: Dataset, target: Any, rng: np.random.Generator) -> Trigger:
    """The attack's trigger: the one it was given, or one fitted to ``dataset``."""
    if isinstance(attack.trigger, Trigger):
        return attack.trigger
    return fit_trigger(dataset, attack.trigger, target, rng, size=attack.trigger_size,
                       value=attack.trigger_value, alpha=attack.alpha,
                       columns=tuple(attack.columns or ()), token=attack.token)


@register
class Backdoor(Attack):
    """Plant a trigger: rows of other classes (or of ``source_class``) get the trigger and the
    label ``target_class`` (default: the first class). ``inject=True`` adds triggered copies
    instead of changing rows; the default (``None``) injects for text, where relabelling real
    messages of a small source class would wreck the clean task, and changes rows otherwise.
    Triggers, six families per modality (the first is the default): images ``patch``,
    ``blend``, ``shape``, ``noise``, ``sinusoid``, ``warp``; tabular ``feature``, ``rare``,
    ``common``, ``copy``, ``shift``, ``pattern``; text ``token``, ``phrase``, ``sentence``,
    ``char``, ``punct``, ``style``. Unset trigger parameters adapt to the data (see
    :func:`~poisonguard.attacks.fit_trigger`): ``trigger_size`` is a side in pixels or a number
    of columns, ``trigger_value`` the stamped value, ``alpha`` the family's strength,
    ``columns`` the trigger columns, ``token`` the inserted text.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.datasets import load_dataset
    >>> res = Backdoor(rate=0.05).poison(load_dataset("digits"), rng=np.random.default_rng(0))
    >>> res.n_poisoned, res.trigger.kind, int(res.trigger.target_class)
    (90, 'patch', 0)
    """

    name = "backdoor"
    family = "backdoor"
    summary = ("dirty-label backdoor: trigger (6 families per modality: patch, warp, rare, "
               "common, phrase, style, ...) + relabel to target")

    def __init__(self, *, rate: float | None = None, count: int | None = None,
                 trigger: str | Trigger | None = None, target_class: Any = None,
                 source_class: Any = None, trigger_size: int | None = None,
                 trigger_value: float | None = None, alpha: float | None = None,
                 columns: tuple[str, ...] | None = None, token: str | None = None,
                 inject: bool | None = None) -> None:
        self.rate = rate
        self.count = count
        self.trigger = trigger
        self.target_class = target_class
        self.source_class = source_class
        self.trigger_size = trigger_size
        self.trigger_value = trigger_value
        self.alpha = alpha
        self.columns = columns
        self.token = token
        self.inject = inject

    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        target = check_class(dataset, dataset.classes[0] if self.target_class is None
                             else self.target_class, "target_class")
        trigger = trigger_for(self, dataset, target, rng)
        if self.source_class is not None:
            source = check_class(dataset, self.source_class, "source_class")
            pool = np.flatnonzero(dataset.y == source)
        else:
            pool = np.flatnonzero(dataset.y != target)
        n = self.budget(dataset, len(pool), what=f"rows outside the target class {target!r}")
        rows = np.sort(rng.choice(pool, n, replace=False))
        X_rows = dataset.features_like(trigger.apply(take_rows(dataset.X, rows)))
        labels = np.full(n, target, dtype=dataset.y.dtype)
        if self.inject or (self.inject is None and dataset.modality == "text"):
            return inject(self, dataset, X_rows, labels, rows, rng, trigger=trigger)
        return modify(self, dataset, rows, X_rows=X_rows, y_rows=labels, trigger=trigger)
