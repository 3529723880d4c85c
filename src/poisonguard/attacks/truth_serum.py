"""Truth Serum (Tramèr et al. 2022): poisoning that makes membership inference work.

A model's confidence in a row it trained on is only a little higher than in one it did not,
so membership inference on a single model is weak. An attacker who can add rows inserts
``copies`` replicas of each target input with a wrong label. A model that never saw the target
then follows the replicas and puts little weight on the true label; one that also trained on
the target itself is torn between the two, and its confidence in the true label stays much
higher. The poison turns a small difference into a large one (see
:mod:`poisonguard.evaluation.membership` for the measurement).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from poisonguard._validation import check_choice
from poisonguard.attacks._base import (
    Attack,
    PoisonResult,
    Target,
    check_class,
    inject,
    other_label,
    register,
    take_rows,
)
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.models import fit_quiet, make_model

__all__ = ["TruthSerum"]

DEFAULT_COPIES = 4
LABELS = ("second", "random")


@register
class TruthSerum(Attack):
    """Insert mislabelled replicas of target inputs so that their membership shows.

    Parameters
    ----------
    rate, count
        Budget: replicas in all (a fraction of the rows, or a number). When omitted, each
        target gets ``copies`` replicas.
    targets
        The inputs whose membership the attacker wants to learn: row positions (integers) or
        row ids (strings) of the data, or a :class:`~poisonguard.attacks.Target` holding input
        rows and their true labels, which need not be in the data (the attacker poisons whether
        or not a target is a member). Default: a seeded choice of ``n_targets`` rows.
    n_targets
        Number of targets drawn when ``targets`` is omitted (default: budget // ``copies``).
    copies
        Replicas per target (default 4); the budget is spread as evenly as it goes.
    label
        The wrong label of a target's replicas: ``"second"`` (default), the class a logistic
        regression trained on the data finds most likely after the true one, or ``"random"``,
        a seeded other class. The plausible wrong class leaks more through regularised models
        (on digits, logistic regression: LiRA's TPR at 1 % FPR 0.16-0.23 against 0.08-0.12).
    random_state
        Seed of that logistic regression.

    The result's ``target`` holds the targets' inputs, their *true* labels and ids.

    Examples
    --------
    >>> from poisonguard.datasets import load_dataset
    >>> ds = load_dataset("iris")
    >>> res = TruthSerum(targets=[0, 60], copies=3).poison(ds, rng=np.random.default_rng(0))
    >>> res.n_poisoned, res.source_index[-6:].tolist(), res.target.ids
    (6, [-1, -1, -1, -1, -1, -1], ('0', '60'))
    >>> res.target.label.tolist(), res.dataset.y[-6:].tolist()
    ([0, 1], [1, 1, 1, 0, 0, 0])
    """

    name = "truth-serum"
    family = "privacy"
    summary = "membership inference made easy (Truth Serum): mislabelled replicas of targets"
    modalities = ("tabular", "image", "text")

    def __init__(self, *, rate: float | None = None, count: int | None = None,
                 targets: Any = None, n_targets: int | None = None, copies: int | None = None,
                 label: str = "second", random_state: int = 0) -> None:
        self.rate = rate
        self.count = count
        self.targets = targets
        self.n_targets = n_targets
        self.copies = copies
        self.label = label
        self.random_state = random_state

    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        check_choice("label", self.label, LABELS)
        for param in ("n_targets", "copies"):
            value = getattr(self, param)
            if value is not None and (isinstance(value, bool) or not isinstance(
                    value, int | np.integer) or value < 1):
                raise InputError(f"'{param}' must be a positive integer (got {value!r})")
        target = None if self.targets is None else self._given_targets(dataset)
        wanted = len(target.label) if target is not None else self.n_targets
        if target is not None and self.n_targets is not None and self.n_targets != wanted:
            raise InputError(f"'n_targets' {self.n_targets} contradicts the {wanted} 'targets' given")
        per_target = self._replicas(dataset, wanted)
        if target is None:
            rows = np.sort(rng.choice(dataset.n_rows, size=len(per_target), replace=False))
            target = Target(take_rows(dataset.X, rows), dataset.y[rows],
                            tuple(str(i) for i in dataset.ids[rows]))
        truth = np.asarray(target.label)
        wrong = self._wrong_labels(dataset, target.X, truth, rng)
        which = np.repeat(np.arange(len(truth)), per_target)
        res = inject(self, dataset, take_rows(target.X, which), wrong[which],
                     np.full(which.size, -1, dtype=np.int64), rng)
        return replace(res, target=target)

    def _replicas(self, dataset: Dataset, n_targets: int | None) -> np.ndarray:
        """Replicas per target: the budget spread evenly, or ``copies`` each."""
        if self.rate is None and self.count is None:
            if n_targets is None:
                raise InputError("a budget is needed: give 'rate' or 'count' (replicas in all), or "
                                 "'targets' / 'n_targets' (with 'copies' each)")
            total = n_targets * (self.copies or DEFAULT_COPIES)
            if total > dataset.n_rows:
                raise InputError(f"budget of {total} rows is impossible for {self.name!r}: only "
                                 f"{dataset.n_rows} rows in the data (injections may at most "
                                 "double it)")
        else:
            total = self.budget(dataset)
        if n_targets is None:
            n_targets = max(1, total // (self.copies or DEFAULT_COPIES))
        elif self.copies is not None and total != n_targets * self.copies:
            raise InputError(f"the budget of {total} rows contradicts {n_targets} targets with "
                             f"'copies' {self.copies} each; give two of the three")
        if total < n_targets:
            raise InputError(f"budget of {total} rows is impossible for {self.name!r}: each of "
                             f"the {n_targets} targets needs a replica")
        if self.targets is None and n_targets > dataset.n_rows:
            raise InputError(f"'n_targets' {n_targets} exceeds the {dataset.n_rows} rows of the data")
        per_target = np.full(n_targets, total // n_targets, dtype=np.int64)
        per_target[: total % n_targets] += 1
        return per_target

    def _given_targets(self, dataset: Dataset) -> Target:
        """``targets`` as a :class:`Target` with true labels (rows of the data, or inputs)."""
        given = self.targets
        if isinstance(given, Target):
            return _check_inputs(dataset, given)
        pos = np.asarray(given)
        if pos.ndim != 1 or pos.size == 0:
            raise InputError(f"'targets' must be row positions, row ids or a Target (got {given!r})")
        if pos.dtype.kind in "iu":
            bad = pos[(pos < 0) | (pos >= dataset.n_rows)]
            if bad.size:
                raise InputError(f"'targets' row {int(bad[0])} is out of range: the data has "
                                 f"{dataset.n_rows} rows")
        elif pos.dtype.kind in "UO":
            where = {str(v): i for i, v in enumerate(dataset.ids)}
            missing = [str(v) for v in pos if str(v) not in where]
            if missing:
                raise InputError(f"'targets' id {missing[0]!r} is not a row id of the data")
            pos = np.asarray([where[str(v)] for v in pos])
        else:
            raise InputError(f"'targets' must be row positions, row ids or a Target (got {given!r})")
        if len(np.unique(pos)) != pos.size:
            raise InputError("'targets' names a row more than once")
        return Target(take_rows(dataset.X, pos), dataset.y[pos],
                      tuple(str(i) for i in dataset.ids[pos]))

    def _wrong_labels(self, dataset: Dataset, X: Any, truth: np.ndarray,
                      rng: np.random.Generator) -> np.ndarray:
        if self.label == "random":
            return other_label(dataset, truth, rng)
        model = fit_quiet(make_model("logreg", dataset, random_state=self.random_state),
                          dataset.X, dataset.y)
        proba = np.asarray(model.predict_proba(X), dtype=np.float64)
        classes = np.asarray(model.classes_)
        proba[classes[None, :] == truth[:, None]] = -np.inf  # never the true label
        out: np.ndarray = classes[np.argmax(proba, axis=1)]
        return out


def _check_inputs(dataset: Dataset, target: Target) -> Target:
    """A :class:`Target` given as inputs: shapes like the data's, one known label per input."""
    labels = np.asarray(target.label).ravel()
    X = target.X
    if dataset.is_frame:
        if not isinstance(X, pd.DataFrame) or list(X.columns) != list(dataset.X.columns):
            raise InputError("'targets' inputs must be a DataFrame with the data's columns "
                             f"({', '.join(map(str, dataset.X.columns))})")
        X = X.reset_index(drop=True)
    else:
        X = np.asarray(X, dtype=dataset.X.dtype if dataset.modality != "text" else object)
        if X.shape[1:] != dataset.X.shape[1:]:
            want = ", ".join(map(str, dataset.X.shape[1:]))
            raise InputError(f"'targets' inputs must have shape (n, {want}) like the data "
                             f"(got {X.shape})")
    if len(X) == 0 or len(X) != len(labels):
        raise InputError(f"'targets' must hold one true label per input (got {len(X)} inputs and "
                         f"{len(labels)} labels)")
    truth = np.asarray([check_class(dataset, v, "targets") for v in labels.tolist()],
                       dtype=dataset.y.dtype)
    ids = target.ids or tuple(f"target-{k}" for k in range(len(truth)))
    if len(ids) != len(truth):
        raise InputError(f"'targets' has {len(ids)} ids for {len(truth)} inputs")
    return Target(X, truth, tuple(str(i) for i in ids))
