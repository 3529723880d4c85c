"""Subpopulation poisoning: make one group fail while the rest of the data holds."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from poisonguard._validation import check_choice
from poisonguard.attacks._base import (
    Attack,
    PoisonResult,
    check_class,
    inject,
    modify,
    register,
    take_rows,
)
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.models import featurizer

__all__ = ["Subpopulation", "select_group"]


def select_group(dataset: Dataset, where: str | None, n_clusters: int, budget: int,
                 rng: np.random.Generator, cluster: int | None = None) -> np.ndarray:
    """Boolean mask of the attacked group: the rows matching ``where`` (a pandas query over
    feature columns and ``label``), or one k-means cluster of the encoded features (the given
    ``cluster``, else the largest cluster of at most half the budget, so that every group row
    gets two mislabelled copies; failing that the largest within the budget).
    """
    if where is not None:
        frame = dataset.frame().assign(label=dataset.y)
        try:
            hit = frame.eval(where, engine="python")
        except Exception as exc:  # pandas raises many types for a bad expression
            raise InputError(f"'where' {where!r} cannot be evaluated: {exc}; quote names with "
                             f"spaces in backticks; columns are: {', '.join(frame.columns)}") from None
        mask = np.asarray(hit, dtype=bool) if isinstance(hit, pd.Series | np.ndarray) else None
        if mask is None or mask.shape != (dataset.n_rows,):
            raise InputError(f"'where' {where!r} must give one True/False per row")
        if not mask.any():
            raise InputError(f"'where' {where!r} matches no row")
        return mask
    F = featurizer(dataset).fit_transform(dataset.X, dataset.y)
    labels = KMeans(n_clusters=n_clusters, n_init=4, random_state=int(rng.integers(2**31))
                    ).fit_predict(F)
    if cluster is not None:
        if not 0 <= cluster < n_clusters:
            raise InputError(f"'cluster' must be in [0, {n_clusters}) (got {cluster})")
        return np.asarray(labels == cluster)
    sizes = np.bincount(labels, minlength=n_clusters)
    pick = _pick_cluster(sizes, budget)
    return np.asarray(labels == pick)


def _pick_cluster(sizes: np.ndarray, budget: int) -> int:
    for cap in (budget // 2, budget):
        fitting = np.flatnonzero((sizes >= min(5, cap)) & (sizes <= cap) & (sizes > 0))
        if fitting.size:
            return int(fitting[np.argmax(sizes[fitting])])
    return int(np.argmin(np.where(sizes > 0, sizes, np.iinfo(np.int64).max)))


@register
class Subpopulation(Attack):
    """Collapse accuracy on one group: a ``where`` filter or a feature-space cluster (k-means
    with ``n_clusters``).

    ``method="inject"`` (default) adds label-flipped copies of group rows; ``"flip"`` flips
    the labels of group rows. Flipped rows take ``target_class`` or, per row, the group's most
    common other label among its classes (so the group learns one wrong answer).
    """

    name = "subpopulation"
    family = "subpopulation"
    summary = "make one group (filter or cluster) fail via flipped or injected mislabelled rows"

    def __init__(self, *, rate: float | None = None, count: int | None = None,
                 where: str | None = None, n_clusters: int = 20, cluster: int | None = None,
                 method: str = "inject", target_class: Any = None) -> None:
        self.rate = rate
        self.count = count
        self.where = where
        self.n_clusters = n_clusters
        self.cluster = cluster
        self.method = method
        self.target_class = target_class

    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        check_choice("method", self.method, ("inject", "flip"))
        n = self.budget(dataset)
        k = self.n_clusters
        if k < 2 or k > dataset.n_rows:
            raise InputError(f"'n_clusters' must be in [2, {dataset.n_rows}] (got {k})")
        group = np.flatnonzero(select_group(dataset, self.where, k, n, rng, self.cluster))
        if self.method == "flip" and n > len(group):
            raise InputError(f"budget of {n} rows is impossible for {self.name!r} with "
                             f"method 'flip': the group has only {len(group)} rows")
        if self.method == "flip":
            rows = np.sort(rng.choice(group, n, replace=False))
        else:  # every group row gets a mislabelled copy before any gets a second one
            rows = np.sort(np.resize(rng.permutation(group), n))
        labels = self._wrong_labels(dataset, dataset.y[rows])
        if self.method == "flip":
            result = modify(self, dataset, rows, y_rows=labels)
        else:
            result = inject(self, dataset, take_rows(dataset.X, rows), labels, rows, rng)
        in_group = np.zeros(dataset.n_rows, dtype=bool)
        in_group[group] = True
        in_group.flags.writeable = False
        return replace(result, group=in_group)

    def _wrong_labels(self, dataset: Dataset, labels: np.ndarray) -> np.ndarray:
        classes = dataset.classes
        if self.target_class is not None:
            target = check_class(dataset, self.target_class, "target_class")
            if np.all(labels == target):
                raise InputError(f"every group row already has the target class {target!r}")
            return np.full(len(labels), target, dtype=dataset.y.dtype)
        counts = pd.Series(labels).value_counts()
        # each row goes to the most common group label that is not its own, else the next class
        out = []
        for lab in labels:
            others = [c for c in counts.index if c != lab]
            if others:
                out.append(others[0])
            else:
                out.append(classes[(np.searchsorted(classes, lab) + 1) % len(classes)])
        return np.asarray(out, dtype=dataset.y.dtype)
