"""Model monitoring: the accuracy of a reference-trained model on each labelled batch.

The model is one of poisonguard's named models (``logreg``, ``mlp``) trained, seeded, on the
profile's reference sample at check time; nothing is pickled, so the profile alone is
enough. Each batch's labelled rows are the canaries: the check is the model's accuracy on
them. A drop means the batch's labels no longer agree with what the reference taught (label
flips, a new labelling process, concept drift); its drift check says whether the inputs moved.

The baseline is the median accuracy of the last ``window`` earlier checks that did not alert
(the caller passes them, oldest first; :class:`~poisonguard.monitor.History` has them), or,
before any, the model's accuracy on a held-out quarter of the reference sample. Alerting
checks are left out of the baseline, so a lasting drop keeps alerting instead of becoming
the new normal. A check alerts when the accuracy is at least ``max_drop`` below the baseline
and a one-sided binomial test of the batch's correct count against the baseline is below
``alpha``: a small batch does not alert on noise, a large one not on a trivial dip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.monitor.profile import Profile

__all__ = ["CANARY_MODELS", "CanaryMonitor", "CanaryResult"]

CANARY_MODELS = ("logreg", "mlp")


@dataclass(frozen=True)
class CanaryResult:
    """One canary check: ``accuracy`` on the batch against ``baseline`` (from ``baseline_from``:
    ``reference`` or ``history``); ``alert`` when it dropped by at least ``max_drop``,
    significantly at ``alpha``."""

    alert: bool
    accuracy: float
    baseline: float
    baseline_from: str
    p_value: float
    n_rows: int
    model: str
    batch: str
    reference: str
    profile: str
    max_drop: float
    alpha: float

    @property
    def drop(self) -> float:
        """``baseline - accuracy`` (negative when the batch did better)."""
        return self.baseline - self.accuracy

    def verdict(self) -> str:
        """One line, e.g. ``accuracy 0.812 (baseline 0.951, -0.139): alert``."""
        return (f"accuracy {self.accuracy:.3f} (baseline {self.baseline:.3f}, {-self.drop:+.3f})"
                f"{': alert' if self.alert else ''}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, ``alert`` first."""
        return {**asdict(self), "drop": self.drop}


def _fit(model: str, frame: Any, labels: np.ndarray, seed: int) -> Any:
    from poisonguard.models import fit_quiet, make_model

    if len(np.unique(labels)) < 2:
        raise InputError("the profile's reference sample has a single label; a canary model "
                         "needs at least two")
    ds = Dataset(frame.reset_index(drop=True), labels, name="reference sample")
    return fit_quiet(make_model(model, ds, random_state=seed), ds.X, ds.y)


class CanaryMonitor:
    """Accuracy of a model trained on the profile's reference sample, batch by batch.

    Examples
    --------
    >>> from poisonguard.datasets import load_dataset
    >>> from poisonguard.monitor import Profile
    >>> ds = load_dataset("breast_cancer")
    >>> profile = Profile.fit(ds.take(range(0, 569, 2)), random_state=0)
    >>> batch = ds.take(range(1, 569, 2))
    >>> CanaryMonitor(random_state=0).check(profile, batch).alert
    False
    >>> flipped = batch.replace(y=1 - batch.y)
    >>> CanaryMonitor(random_state=0).check(profile, flipped).alert
    True
    """

    def __init__(self, *, model: str = "logreg", max_drop: float = 0.05, alpha: float = 0.01,
                 window: int = 5, random_state: int = 0) -> None:
        self.model = model
        self.max_drop = max_drop
        self.alpha = alpha
        self.window = window
        self.random_state = random_state

    def _validate(self) -> None:
        if self.model not in CANARY_MODELS:
            raise InputError(f"'model' must be one of {', '.join(CANARY_MODELS)} (got {self.model!r})")
        for key, value in (("max_drop", self.max_drop), ("alpha", self.alpha)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise InputError(f"'{key}' must be a number in [0, 1] (got {value!r})")
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise InputError(f"'window' must be a positive integer (got {self.window!r})")

    def reference_accuracy(self, profile: Profile) -> float:
        """The model's accuracy on a seeded held-out quarter of the profile's sample."""
        self._validate()
        n = len(profile.sample)
        order = np.random.default_rng(self.random_state).permutation(n)
        held, train = order[: max(1, n // 4)], order[max(1, n // 4):]
        model = _fit(self.model, profile.sample.iloc[train], profile.sample_labels[train],
                     self.random_state)
        predicted = np.asarray([str(v) for v in model.predict(profile.sample.iloc[held])])
        return float(np.mean(predicted == profile.sample_labels[held]))

    def check(self, profile: Profile, batch: Dataset, *, previous: Sequence[float] = ()) -> CanaryResult:
        """Score ``batch`` (its labels are the canaries); ``previous``: earlier non-alerting
        accuracies, oldest first (empty: the baseline is the reference's held-out accuracy)."""
        from scipy import stats

        self._validate()
        if not isinstance(batch, Dataset):
            raise InputError(f"'batch' must be a Dataset (got {type(batch).__name__})")
        frame = profile.features(batch)
        earlier = [float(a) for a in previous][-self.window:]
        if earlier:
            baseline, source = float(np.median(earlier)), "history"
        else:
            baseline, source = self.reference_accuracy(profile), "reference"
        model = _fit(self.model, profile.sample, profile.sample_labels, self.random_state)
        predicted = np.asarray([str(v) for v in model.predict(frame)])
        correct = int((predicted == np.asarray([str(v) for v in batch.y])).sum())
        accuracy = correct / batch.n_rows
        p = float(stats.binomtest(correct, batch.n_rows, min(baseline, 1.0), alternative="less").pvalue)
        alert = bool(baseline - accuracy >= self.max_drop and p < self.alpha)
        return CanaryResult(alert, accuracy, baseline, source, p, batch.n_rows, self.model,
                            batch.name, profile.name, profile.digest, float(self.max_drop),
                            float(self.alpha))
