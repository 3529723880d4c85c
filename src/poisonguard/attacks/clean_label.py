"""Clean-label backdoor: triggered target-class rows made hard to learn, labels untouched."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from poisonguard._validation import check_choice
from poisonguard.attacks._base import Attack, PoisonResult, check_class, modify, register, take_rows
from poisonguard.attacks.backdoor import trigger_for
from poisonguard.attacks.triggers import Trigger
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.models import NumericCodec, fit_quiet
from poisonguard.models._linear import LinearSurrogate

__all__ = ["CleanLabelBackdoor"]


@register
class CleanLabelBackdoor(Attack):
    """Poison only rows of ``target_class``, keeping their labels: first make them hard to
    learn, then add the trigger, so the model leans on the trigger to fit them.

    ``method="adversarial"`` moves each row against a logistic surrogate (projected sign
    gradient, L-infinity radius ``eps`` times each feature's range; for text, the words that
    most signal the target class are removed); ``"interpolate"`` blends each row with a row of
    another class by ``eps``.
    """

    name = "clean-label-backdoor"
    family = "backdoor"
    summary = "clean-label backdoor: hard-to-learn target-class rows + trigger, labels unchanged"

    def __init__(self, *, rate: float | None = None, count: int | None = None,
                 trigger: str | Trigger | None = None, target_class: Any = None,
                 method: str = "adversarial", eps: float = 0.25, steps: int = 20,
                 trigger_size: int | None = None, trigger_value: float | None = None,
                 alpha: float | None = None, columns: tuple[str, ...] | None = None,
                 token: str | None = None) -> None:
        self.rate = rate
        self.count = count
        self.trigger = trigger
        self.target_class = target_class
        self.method = method
        self.eps = eps
        self.steps = steps
        self.trigger_size = trigger_size
        self.trigger_value = trigger_value
        self.alpha = alpha
        self.columns = columns
        self.token = token

    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        check_choice("method", self.method, ("adversarial", "interpolate"))
        if not 0.0 < self.eps <= 1.0:
            raise InputError(f"'eps' must be in (0, 1] (got {self.eps})")
        target = check_class(dataset, dataset.classes[0] if self.target_class is None
                             else self.target_class, "target_class")
        trigger = trigger_for(self, dataset, target, rng)
        pool = np.flatnonzero(dataset.y == target)
        n = self.budget(dataset, len(pool), what=f"rows of the target class {target!r}")
        rows = np.sort(rng.choice(pool, n, replace=False))
        if dataset.modality == "text":
            hard = _drop_signal_words(dataset, rows, target, self.eps)
        else:
            hard = self._perturb(dataset, rows, target, rng)
        X_rows = dataset.features_like(trigger.apply(hard))
        return modify(self, dataset, rows, X_rows=X_rows, trigger=trigger)

    def _perturb(self, dataset: Dataset, rows: np.ndarray, target: Any,
                 rng: np.random.Generator) -> Any:
        codec = NumericCodec.fit(dataset)
        Z = codec.encode(dataset.X)
        radius = self.eps * (codec.hi - codec.lo)
        z0 = Z[rows]
        if self.method == "interpolate":
            others = rng.choice(np.flatnonzero(dataset.y != target), len(rows))
            return codec.decode((1 - self.eps) * z0 + self.eps * Z[others])
        surrogate = LinearSurrogate(Z, dataset.y)
        cls = surrogate.index(np.full(len(rows), target, dtype=dataset.y.dtype))
        z = z0.copy()
        for _ in range(self.steps):
            grad = surrogate.grad_log_proba(z, cls)
            z = np.clip(z - 2.5 * radius / self.steps * np.sign(grad), z0 - radius, z0 + radius)
            z = np.clip(z, codec.lo, codec.hi)
        return codec.decode(z)


def _drop_signal_words(dataset: Dataset, rows: np.ndarray, target: Any, eps: float) -> Any:
    """Texts of ``rows`` without the share ``eps`` of their words that most signal ``target``."""
    vec = TfidfVectorizer(token_pattern=r"\S+", lowercase=True)
    F = vec.fit_transform(dataset.X)
    clf = fit_quiet(LogisticRegression(max_iter=2000), F, dataset.y == target)
    weight = dict(zip(vec.get_feature_names_out(), clf.coef_[0], strict=True))
    out = []
    for text in take_rows(dataset.X, rows):
        words = str(text).split()
        scores = np.asarray([weight.get(w.lower(), 0.0) for w in words])
        k = int(np.ceil(eps * len(words)))
        drop = set(np.argsort(-scores)[:k][scores[np.argsort(-scores)[:k]] > 0].tolist())
        out.append(" ".join(w for i, w in enumerate(words) if i not in drop))
    return np.asarray(out, dtype=object)
