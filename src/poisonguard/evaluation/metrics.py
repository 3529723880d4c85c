"""Metrics against ground truth: accuracy, backdoor success, group accuracy, and the split.

Pure functions over a fitted model (anything with ``predict`` taking ``dataset.X``) and a
:class:`~poisonguard.dataset.Dataset`; nothing is fitted or changed here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from poisonguard.attacks.triggers import Trigger
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["accuracy", "attack_success_rate", "detection_metrics", "group_accuracy", "split"]


def _predict(model: Any, dataset: Dataset) -> np.ndarray:
    return np.asarray(model.predict(dataset.X))


def accuracy(model: Any, dataset: Dataset) -> float:
    """Share of ``dataset`` rows that the fitted ``model`` labels correctly.

    Examples
    --------
    >>> from poisonguard.datasets import load_dataset
    >>> from poisonguard.models import make_model
    >>> train, test = split(load_dataset("iris"), random_state=0)
    >>> model = make_model("logreg", train).fit(train.X, train.y)
    >>> round(accuracy(model, test), 2)
    0.98
    """
    return float(np.mean(_predict(model, dataset) == dataset.y))


def attack_success_rate(model: Any, trigger: Trigger, test: Dataset) -> float:
    """Share of triggered test rows (true label not the target) predicted as the target class.

    Raises
    ------
    InputError
        Every test row already has the trigger's target class.
    """
    keep = test.y != trigger.target_class
    if not keep.any():
        raise InputError(f"every test row has the trigger's target class {trigger.target_class!r}; "
                         "attack success needs rows of other classes")
    triggered = trigger.apply_dataset(test.take(keep))
    return float(np.mean(_predict(model, triggered) == trigger.target_class))


def group_accuracy(model: Any, test: Dataset, mask: Any) -> float:
    """Accuracy of ``model`` on the rows of ``test`` where ``mask`` is True (NaN if none)."""
    m = np.asarray(mask, dtype=bool)
    if m.shape != (test.n_rows,):
        raise InputError(f"'mask' must have one value per test row ({test.n_rows}) "
                         f"(got shape {m.shape})")
    if not m.any():
        return float("nan")
    return accuracy(model, test.take(m))


def split(dataset: Dataset, test_size: float = 0.3, random_state: int = 0) -> tuple[Dataset, Dataset]:
    """A seeded ``(train, test)`` split, stratified by label when every class allows it.

    Row ids are kept and rows stay in input order.
    """
    if isinstance(test_size, bool) or not isinstance(test_size, int | float) or not (
            0.0 < float(test_size) < 1.0):
        raise InputError(f"'test_size' must be a fraction in (0, 1) (got {test_size!r})")
    _, counts = np.unique(dataset.y, return_counts=True)
    n_test = round(float(test_size) * dataset.n_rows)
    stratify = dataset.y if counts.min() >= 2 and len(counts) <= n_test <= dataset.n_rows - len(
        counts) else None
    if not 1 <= n_test < dataset.n_rows:
        raise InputError(f"'test_size' {test_size} leaves {n_test} of {dataset.n_rows} rows for "
                         "testing; both splits need rows")
    train, test = train_test_split(np.arange(dataset.n_rows), test_size=n_test,
                                   random_state=random_state, stratify=stratify)
    return dataset.take(np.sort(train)), dataset.take(np.sort(test))


def detection_metrics(truth: Any, scores: Any, flagged: Any = None) -> dict[str, float]:
    """How well ``scores`` (higher = more suspicious) and a ``flagged`` set find ``truth``.

    ``auroc`` and ``average_precision`` of the scores (NaN when ``truth`` has one class);
    ``recall_at_fpr05``: the share of poisoned rows scored above the 95th percentile of the
    clean rows' scores. With ``flagged``: ``precision``, ``recall``, ``f1``, ``fpr`` and
    ``n_flagged`` of the flagged set.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    t = np.asarray(truth, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    out: dict[str, float] = {"auroc": float("nan"), "average_precision": float("nan"),
                             "recall_at_fpr05": float("nan")}
    if t.any() and not t.all():
        out["auroc"] = float(roc_auc_score(t, s))
        out["average_precision"] = float(average_precision_score(t, s))
        cut = np.quantile(s[~t], 0.95)
        out["recall_at_fpr05"] = float((s[t] > cut).mean())
    if flagged is not None:
        f = np.asarray(flagged, dtype=bool)
        tp = int((f & t).sum())
        precision = tp / f.sum() if f.any() else 0.0
        recall = tp / t.sum() if t.any() else 0.0
        out["precision"] = float(precision)
        out["recall"] = float(recall)
        out["f1"] = float(2 * precision * recall / (precision + recall)) if tp else 0.0
        out["fpr"] = float((f & ~t).sum() / max((~t).sum(), 1))
        out["n_flagged"] = float(f.sum())
    return out
