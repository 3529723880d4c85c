"""The self-test plants every family whatever the labels are called."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_classification

from poisonguard import Dataset
from poisonguard.selftest import self_test


def test_class_pair_flips_are_planted_on_two_text_labels() -> None:
    X, y = make_classification(400, n_features=8, random_state=0)
    ds = Dataset(X, np.where(y == 1, "pos", "neg"))
    rows = {r.family: r for r in self_test(ds, rate=0.03, random_state=0).rows}
    pair = rows["class-pair flips"]
    assert pair.skipped == "" and pair.planted == 12  # 3 % of 400, from the larger class
    assert pair.auroc >= 0.7  # measured on these rows: AUROC 0.74, recall 0.25
