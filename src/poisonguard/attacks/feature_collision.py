"""Feature collision (Poison Frogs): targeted clean-label poisoning."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neural_network import MLPClassifier

from poisonguard.attacks._base import Attack, PoisonResult, Target, register, set_rows
from poisonguard.attacks._targeted import plan_target
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.models import NumericCodec, fit_quiet

__all__ = ["FeatureCollision"]


class _ReluFeatures:
    """The hidden layer of a one-layer ReLU MLP trained on standardised codes, with gradients."""

    def __init__(self, Z: np.ndarray, y: np.ndarray, hidden: int, random_state: int) -> None:
        self.mean = Z.mean(axis=0)
        self.std = Z.std(axis=0) + 1e-9
        mlp = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=300, random_state=random_state)
        fit_quiet(mlp, (Z - self.mean) / self.std, y)
        self.W, self.b = mlp.coefs_[0], mlp.intercepts_[0]

    def __call__(self, u: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.maximum(u @ self.W + self.b, 0.0)
        return out

    def grad_distance(self, u: np.ndarray, ft: np.ndarray) -> np.ndarray:
        """Gradient of ``||f(u) - ft||^2`` with respect to each row of ``u`` (standardised)."""
        pre = u @ self.W + self.b
        out: np.ndarray = (2.0 * (np.maximum(pre, 0.0) - ft) * (pre > 0)) @ self.W.T
        return out


@register
class FeatureCollision(Attack):
    """Make one target input be classified as ``base_class`` with correctly labelled poisons.

    Base-class rows nearest the target in a surrogate's feature space (the hidden layer of a
    ReLU MLP) are moved so that their features collide with the target's, while a proximal
    term keeps them near their base inputs (forward-backward splitting, weight ``beta``); a
    watermark of the target (``opacity``) starts them off. Labels stay correct. ``target`` is
    one input row; when omitted a seeded row of another class is taken out of the data and
    used as the target.
    """

    name = "feature-collision"
    family = "targeted"
    summary = "targeted clean-label (Poison Frogs): base-class rows collide with a target"
    modalities = ("tabular", "image")

    def __init__(self, *, rate: float | None = None, count: int | None = None,
                 target: Any = None, base_class: Any = None, beta: float = 0.01,
                 opacity: float = 0.3, steps: int = 200, lr: float = 0.05, hidden: int = 64,
                 random_state: int = 0) -> None:
        self.rate = rate
        self.count = count
        self.target = target
        self.base_class = base_class
        self.beta = beta
        self.opacity = opacity
        self.steps = steps
        self.lr = lr
        self.hidden = hidden
        self.random_state = random_state

    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        if not 0.0 <= self.opacity < 1.0 or self.beta < 0 or self.lr <= 0:
            raise InputError("'opacity' must be in [0, 1), 'beta' >= 0 and 'lr' > 0 "
                             f"(got {self.opacity}, {self.beta}, {self.lr})")
        plan = plan_target(self, dataset, rng, many=False)
        dataset, keep, base, target_X, pool, n = (plan.dataset, plan.keep, plan.base, plan.target_X,
                                                  plan.pool, plan.n)
        codec = NumericCodec.fit(dataset)
        Z = codec.encode(dataset.X)
        net = _ReluFeatures(Z, dataset.y, self.hidden, self.random_state)
        u_all = (Z - net.mean) / net.std
        u_t = (codec.encode(target_X) - net.mean) / net.std
        f_t = net(u_t)
        dist = np.linalg.norm(net(u_all[pool]) - f_t, axis=1)
        rows = np.sort(pool[np.argsort(dist, kind="stable")[:n]])
        u_base = u_all[rows]
        u = (1 - self.opacity) * u_base + self.opacity * u_t
        lo, hi = (codec.lo - net.mean) / net.std, (codec.hi - net.mean) / net.std
        for _ in range(self.steps):
            u = u - self.lr * net.grad_distance(u, f_t)
            u = np.clip((u + self.lr * self.beta * u_base) / (1 + self.lr * self.beta), lo, hi)
        X_rows = codec.decode(u * net.std + net.mean)
        mask = np.zeros(dataset.n_rows, dtype=bool)
        mask[rows] = True
        out = dataset.replace(X=set_rows(dataset.X, rows, X_rows))
        return self.result(out, mask, keep, target=Target(target_X, base, plan.target_ids))
