"""Label flipping: random, class-pair, and greedy (influence on a surrogate's loss)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone

from poisonguard._validation import check_choice
from poisonguard.attacks._base import (
    Attack,
    PoisonResult,
    check_class,
    modify,
    other_label,
    register,
)
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.models import fit_quiet, make_model
from poisonguard.models._influence import flip_gain, influence_direction, with_bias

__all__ = ["LabelFlip"]

STRATEGIES = ("random", "class", "greedy")


@register
class LabelFlip(Attack):
    """Flip the labels of a budget of rows.

    ``random`` flips uniformly chosen rows to another class (``target_class`` if given);
    ``class`` relabels rows of ``source_class`` as ``target_class`` ("stop sign labelled
    yield"); ``greedy`` retrains a surrogate (any scikit-learn classifier, default logistic
    regression) over ``rounds`` and each round makes the flips whose first-order influence on
    the clean training loss of a softmax-linear model is largest.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.datasets import load_dataset
    >>> res = LabelFlip(rate=0.1).poison(load_dataset("iris"), rng=np.random.default_rng(0))
    >>> res.n_poisoned, res.dataset.n_rows
    (15, 150)
    """

    name = "label-flip"
    family = "availability"
    summary = "flip labels: random, source->target class, or greedy against a surrogate"

    def __init__(self, *, rate: float | None = None, count: int | None = None,
                 strategy: str = "random", source_class: Any = None, target_class: Any = None,
                 model: Any = "logreg", rounds: int = 5, random_state: int = 0) -> None:
        self.rate = rate
        self.count = count
        self.strategy = strategy
        self.source_class = source_class
        self.target_class = target_class
        self.model = model
        self.rounds = rounds
        self.random_state = random_state

    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        check_choice("strategy", self.strategy, STRATEGIES)
        target = None if self.target_class is None else check_class(
            dataset, self.target_class, "target_class")
        if self.strategy == "class":
            source = check_class(dataset, dataset.classes[-1] if self.source_class is None
                                 else self.source_class, "source_class")
            target = dataset.classes[0] if target is None else target
            if source == target:
                raise InputError(f"'source_class' and 'target_class' are both {source!r}")
            pool = np.flatnonzero(dataset.y == source)
            n = self.budget(dataset, len(pool), what=f"rows of class {source!r}")
            rows = np.sort(rng.choice(pool, n, replace=False))
            return modify(self, dataset, rows, y_rows=np.full(n, target, dtype=dataset.y.dtype))
        pool = np.flatnonzero(dataset.y != target) if target is not None else np.arange(
            dataset.n_rows)
        n = self.budget(dataset, len(pool), what="rows of another class than the target")
        if self.strategy == "random":
            rows = np.sort(rng.choice(pool, n, replace=False))
            new = (np.full(n, target, dtype=dataset.y.dtype) if target is not None
                   else other_label(dataset, dataset.y[rows], rng))
            return modify(self, dataset, rows, y_rows=new)
        return self._greedy(dataset, pool, n, target)

    def _greedy(self, dataset: Dataset, pool: np.ndarray, n: int, target: Any) -> PoisonResult:
        if self.rounds < 1:
            raise InputError(f"'rounds' must be a positive integer (got {self.rounds})")
        model = make_model(self.model, dataset, random_state=self.random_state)
        F = with_bias(model.steps[0][1].fit(dataset.X, dataset.y).transform(dataset.X))
        clf = model.steps[-1][1]
        classes = dataset.classes
        truth = np.searchsorted(classes, dataset.y)
        y = np.array(dataset.y, copy=True)
        flipped = np.zeros(dataset.n_rows, dtype=bool)
        eligible = np.zeros(dataset.n_rows, dtype=bool)
        eligible[pool] = True
        per_round = np.diff(np.linspace(0, n, self.rounds + 1).round().astype(int))
        for k in per_round[per_round > 0]:
            proba = fit_quiet(clone(clf), F, y).predict_proba(F)
            V = influence_direction(F, proba, truth, float(getattr(clf, "C", 1.0)))
            gain = flip_gain(F, V, truth)
            if target is not None:
                best = np.full(dataset.n_rows, np.searchsorted(classes, target))
            else:
                best = gain.argmax(axis=1)
            score = np.where(eligible & ~flipped, gain[np.arange(dataset.n_rows), best], -np.inf)
            rows = np.argsort(-score, kind="stable")[:k]
            y[rows] = classes[best[rows]]
            flipped[rows] = True
        rows = np.flatnonzero(flipped)
        return modify(self, dataset, rows, y_rows=y[rows])

