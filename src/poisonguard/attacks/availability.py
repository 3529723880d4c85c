"""Availability (indiscriminate) poisoning: inject crafted rows that raise overall error."""

from __future__ import annotations

import numpy as np

from poisonguard.attacks._base import Attack, PoisonResult, inject, register
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.models import NumericCodec
from poisonguard.models._linear import LinearSurrogate

__all__ = ["Availability"]


@register
class Availability(Attack):
    """Inject mislabelled high-leverage rows crafted against a linear surrogate.

    Each injected row starts from a real row, takes the class the surrogate ranks next to the
    row's own, and climbs that label's loss by projected gradient ascent inside the data's
    per-feature bounds: a point deep in the wrong region with the wrong label, which drags the
    decision boundary furthest.
    """

    name = "availability"
    family = "availability"
    summary = "indiscriminate: inject mislabelled points pushed by gradient ascent on the loss"
    modalities = ("tabular", "image")

    def __init__(self, *, rate: float | None = None, count: int | None = None, steps: int = 30,
                 step_size: float = 0.1) -> None:
        self.rate = rate
        self.count = count
        self.steps = steps
        self.step_size = step_size

    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        if self.steps < 0 or not 0.0 < self.step_size <= 1.0:
            raise InputError(f"'steps' must be >= 0 and 'step_size' in (0, 1] "
                             f"(got {self.steps}, {self.step_size})")
        n = self.budget(dataset)
        codec = NumericCodec.fit(dataset)
        Z = codec.encode(dataset.X)
        surrogate = LinearSurrogate(Z, dataset.y)
        seeds = rng.choice(dataset.n_rows, n, replace=n > dataset.n_rows)
        z = Z[seeds].copy()
        own = surrogate.index(dataset.y[seeds])
        ranked = surrogate.log_proba(z)
        ranked[np.arange(n), own] = -np.inf
        wrong = ranked.argmax(axis=1)
        step = self.step_size * (codec.hi - codec.lo)
        for _ in range(self.steps):
            grad = surrogate.grad_log_proba(z, wrong)
            z = np.clip(z - step * np.sign(grad), codec.lo, codec.hi)
        return inject(self, dataset, codec.decode(z), surrogate.classes[wrong],
                      np.full(n, -1), rng)
