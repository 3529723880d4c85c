"""Availability (indiscriminate) poisoning: inject crafted rows that raise overall error."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression

from poisonguard.attacks._base import Attack, PoisonResult, inject, register
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.models import NumericCodec, fit_quiet
from poisonguard.models._influence import flip_gain, influence_direction, with_bias

__all__ = ["Availability"]


@register
class Availability(Attack):
    """Inject mislabelled rows crafted to raise a linear surrogate's loss on the clean data.

    The surrogate is a logistic regression on standardised features. Each injected row starts
    from the real row whose relabelling has the largest first-order influence on the clean
    loss (the greedy flip score), takes that wrong label, and then climbs the same influence
    by projected sign-gradient ascent on its features inside the data's per-feature bounds.
    The surrogate is retrained with the crafted rows and with their unmoved seeds, and the set
    that raises the clean loss more is injected (first-order steps can overshoot).
    """

    name = "availability"
    family = "availability"
    summary = "indiscriminate: inject mislabelled points that maximise influence on the loss"
    modalities = ("tabular", "image")

    def __init__(self, *, rate: float | None = None, count: int | None = None, steps: int = 10,
                 step_size: float = 0.01, C: float = 1.0) -> None:
        self.rate = rate
        self.count = count
        self.steps = steps
        self.step_size = step_size
        self.C = C

    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        if self.steps < 0 or not 0.0 < self.step_size <= 1.0 or self.C <= 0:
            raise InputError(f"'steps' must be >= 0, 'step_size' in (0, 1] and 'C' > 0 "
                             f"(got {self.steps}, {self.step_size}, {self.C})")
        n = self.budget(dataset)
        codec = NumericCodec.fit(dataset)
        Z = codec.encode(dataset.X)
        mean, std = Z.mean(axis=0), Z.std(axis=0) + 1e-9
        U = with_bias((Z - mean) / std)
        clf = fit_quiet(LogisticRegression(C=self.C, max_iter=3000, fit_intercept=False), U,
                        dataset.y)
        classes = clf.classes_
        W = clf.coef_ if len(classes) > 2 else np.vstack([-clf.coef_ / 2, clf.coef_ / 2])
        truth = np.searchsorted(classes, dataset.y)
        proba = softmax(U @ W.T, axis=1)
        V = influence_direction(U, proba, truth, self.C)
        gain = flip_gain(U, V, truth)
        best = gain.max(axis=1)
        order = np.argsort(-best, kind="stable")
        seeds = order[np.arange(n) % dataset.n_rows]  # the most damaging flips first
        wrong = gain[seeds].argmax(axis=1)
        start = U[seeds, :-1]
        u = start.copy()
        lo, hi = (codec.lo - mean) / std, (codec.hi - mean) / std
        step = self.step_size * (hi - lo)
        for _ in range(self.steps):
            u = np.clip(u + step * np.sign(_influence_grad(u, wrong, W, V)), lo, hi)
        if self.steps and _clean_loss(U, dataset.y, u, classes[wrong], self.C) < _clean_loss(
                U, dataset.y, start, classes[wrong], self.C):
            u = start  # the first-order step overshot: retraining says the seeds hurt more
        rows = codec.decode(u * std + mean)
        return inject(self, dataset, rows, classes[wrong], np.full(n, -1), rng)


def _clean_loss(U: np.ndarray, y: np.ndarray, u: np.ndarray, labels: np.ndarray, C: float) -> float:
    """Log loss on the clean rows ``U`` of a surrogate retrained with rows ``(u, labels)`` added."""
    clf = LogisticRegression(C=C, max_iter=3000, fit_intercept=False)
    fit_quiet(clf, np.vstack([U, with_bias(u)]), np.concatenate([y, labels]))
    proba = clf.predict_proba(U)
    return float(-np.log(proba[np.arange(len(y)), np.searchsorted(clf.classes_, y)] + 1e-12).mean())


def _influence_grad(u: np.ndarray, c: np.ndarray, W: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Gradient in ``u`` of the clean-loss increase from adding rows ``(u, c)``.

    The increase is ``-(p(u) - e_c) . (V u~)`` with ``u~ = (u, 1)`` and ``p = softmax(W u~)``.
    """
    ub = with_bias(u)
    p = softmax(ub @ W.T, axis=1)  # (m, K)
    a = ub @ V.T  # (m, K)
    m = len(u)
    e = np.zeros_like(p)
    e[np.arange(m), c] = 1.0
    # d/du of -(p - e).a = -(J_p^T a) - (V^T (p - e)); J_p = diag(p) W - p p^T W
    pa = (p * a).sum(axis=1, keepdims=True)
    grad_p_term = (p * a) @ W - pa * (p @ W)  # (m, D+1)
    grad = -(grad_p_term + (p - e) @ V)
    out: np.ndarray = grad[:, :-1]
    return out
