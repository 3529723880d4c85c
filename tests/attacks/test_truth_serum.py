"""Truth Serum: mislabelled replicas of target inputs, and the membership leak they cause."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from _data import mixed
from poisonguard import Dataset, InputError
from poisonguard.attacks import Target, TruthSerum
from poisonguard.datasets import load_dataset, make_images, make_tabular, make_text
from poisonguard.evaluation.membership import lira, loss_attack, run_shadow_models
from poisonguard.models import fit_quiet, make_model


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _injected(res: Any) -> np.ndarray:
    return np.flatnonzero(res.mask)


@pytest.mark.parametrize("data", [
    lambda: make_tabular(n_rows=120, random_state=0), mixed,
    lambda: make_images(n_rows=90, random_state=0), lambda: make_text(n_rows=90, random_state=0)])
def test_replicas_copy_the_targets_with_a_wrong_label(data: Any) -> None:
    ds = data()
    X_before, y_before = ds.frame().copy(), ds.y.copy()
    res = TruthSerum(targets=[3, 10, 40], copies=3).poison(ds, rng=_rng())
    assert ds.frame().equals(X_before) and np.array_equal(ds.y, y_before)  # input untouched
    out, rows = res.dataset, _injected(res)
    assert out.n_rows == ds.n_rows + 9 and rows.tolist() == list(range(ds.n_rows, ds.n_rows + 9))
    assert (res.source_index[rows] == -1).all()
    assert res.source_index[: ds.n_rows].tolist() == list(range(ds.n_rows)) and not res.mask[
        : ds.n_rows].any()
    assert out.frame(slice(0, ds.n_rows)).equals(ds.frame()) and np.array_equal(
        out.y[: ds.n_rows], ds.y)
    target = res.target
    assert target is not None and target.ids == ("3", "10", "40")
    assert target.label.tolist() == ds.y[[3, 10, 40]].tolist()  # the true labels
    for k, src in enumerate([3, 10, 40]):
        copies = rows[3 * k: 3 * k + 3]
        assert out.frame().iloc[copies].reset_index(drop=True).equals(
            pd.concat([ds.frame().iloc[[src]]] * 3).reset_index(drop=True))
        assert (out.y[copies] != ds.y[src]).all() and len(set(out.y[copies].tolist())) == 1
    assert res.params["copies"] == 3 and res.attack == "truth-serum"


def test_targets_outside_the_data_are_poisoned_the_same_way() -> None:
    """Membership inference needs the same poison whether or not a target is a member."""
    ds = load_dataset("iris")
    out_rows, in_rows = np.arange(0, 150, 2), np.arange(1, 150, 2)
    rows = np.array([4, 50, 120])  # not in the odd-row half
    target = Target(ds.X[rows], ds.y[rows], ("a", "b", "c"))
    member = TruthSerum(targets=target, copies=2).poison(ds.take(in_rows), rng=_rng(5))
    outsider = TruthSerum(targets=target, copies=2).poison(ds.take(out_rows), rng=_rng(5))
    for res in (member, outsider):
        poison = res.dataset.take(res.mask)
        assert np.array_equal(poison.X, np.repeat(ds.X[rows], 2, axis=0))
        assert res.target is not None and res.target.ids == ("a", "b", "c")
        assert np.array_equal(res.target.label, ds.y[rows])
    assert np.array_equal(member.dataset.take(member.mask).y, outsider.dataset.take(outsider.mask).y)


def test_ids_and_default_targets() -> None:
    ds = make_tabular(n_rows=80, random_state=1).replace(ids=[f"r{i}" for i in range(80)])
    res = TruthSerum(targets=["r7", "r2"]).poison(ds, rng=_rng())
    assert res.target is not None and res.target.ids == ("r7", "r2") and res.n_poisoned == 8
    assert res.dataset.ids[80:].tolist() == [f"poison-{i}" for i in range(8)]
    drawn = TruthSerum(n_targets=5, copies=2).poison(ds, rng=_rng(1))
    assert drawn.target is not None and len(drawn.target.ids) == 5 and drawn.n_poisoned == 10
    again = TruthSerum(n_targets=5, copies=2).poison(ds, rng=_rng(1))
    assert again.target is not None and again.target.ids == drawn.target.ids


@pytest.mark.parametrize(("params", "per_target"), [
    ({"count": 10}, [5, 5]),                       # default 4 copies: 10 // 4 = 2 targets
    ({"count": 3}, [3]),                           # fewer than 4 replicas: one target
    ({"count": 7, "targets": [1, 2, 3]}, [3, 2, 2]),  # the budget spread over the targets
    ({"targets": [1, 2], "copies": 3}, [3, 3]),    # no budget: copies each
    ({"n_targets": 3}, [4, 4, 4]),
    ({"rate": 0.1, "copies": 5}, [5, 5]),          # 10 % of 100 rows
])
def test_budget_targets_and_copies(params: dict[str, Any], per_target: list[int]) -> None:
    ds = make_tabular(n_rows=100, random_state=0)
    res = TruthSerum(**params).poison(ds, rng=_rng())
    assert res.target is not None
    rows = res.dataset.frame().iloc[_injected(res)].to_numpy()
    targets = np.asarray(res.target.X)
    counts = [int((rows == t).all(axis=1).sum()) for t in targets]
    assert counts == per_target


def test_second_label_is_the_most_likely_wrong_class() -> None:
    ds = load_dataset("digits", n_rows=400)
    rows = np.arange(0, 400, 20)
    res = TruthSerum(targets=rows, copies=1).poison(ds, rng=_rng())
    model = fit_quiet(make_model("logreg", ds), ds.X, ds.y)
    proba = model.predict_proba(ds.X[rows])
    proba[np.arange(len(rows)), np.searchsorted(model.classes_, ds.y[rows])] = -1
    assert res.dataset.y[400:].tolist() == model.classes_[proba.argmax(axis=1)].tolist()


@pytest.mark.parametrize(("params", "match"), [
    ({"count": 5, "label": "worst"}, r"'label' must be one of second, random \(got 'worst'\)"),
    ({"count": 5, "copies": 0}, r"'copies' must be a positive integer \(got 0\)"),
    ({"count": 5, "n_targets": 2.5}, r"'n_targets' must be a positive integer \(got 2.5\)"),
    ({}, "a budget is needed: give 'rate' or 'count'"),
    ({"targets": [1, 500]}, r"'targets' row 500 is out of range: the data has 100 rows"),
    ({"targets": ["1", "nope"]}, r"'targets' id 'nope' is not a row id"),
    ({"targets": [3, 3]}, "'targets' names a row more than once"),
    ({"targets": [[1, 2]]}, "'targets' must be row positions, row ids or a Target"),
    ({"targets": [1.5]}, "'targets' must be row positions, row ids or a Target"),
    ({"targets": [1, 2], "n_targets": 3}, "'n_targets' 3 contradicts the 2 'targets'"),
    ({"count": 10, "targets": [1, 2], "copies": 4}, "contradicts 2 targets with 'copies' 4"),
    ({"count": 2, "targets": [1, 2, 3]}, r"budget of 2 rows is impossible .* each of the 3 targets"),
    ({"targets": [1, 2], "copies": 60}, r"budget of 120 rows is impossible"),
    ({"targets": Target(np.zeros((1, 3)), [0])}, r"'targets' inputs must have shape \(n, 10\)"),
    ({"targets": Target(np.zeros((2, 10)), [0])}, "one true label per input"),
    ({"targets": Target(np.zeros((1, 10)), [7])}, "'targets' 7 is not a label in the data"),
])
def test_bad_parameters_are_named(params: dict[str, Any], match: str) -> None:
    ds = make_tabular(n_rows=100, random_state=0)
    with pytest.raises(InputError, match=match):
        TruthSerum(**params).poison(ds, rng=_rng())


def test_dataframe_targets_need_the_columns() -> None:
    ds = mixed()
    good = Target(ds.X.iloc[[0, 1]], ds.y[[0, 1]])
    res = TruthSerum(targets=good, copies=2).poison(ds, rng=_rng())
    assert res.target is not None and res.target.ids == ("target-0", "target-1")
    assert res.dataset.X.dtypes.to_dict() == ds.X.dtypes.to_dict()
    with pytest.raises(InputError, match="DataFrame with the data's columns"):
        TruthSerum(targets=Target(ds.X[["x"]].iloc[[0]], ds.y[[0]])).poison(ds, rng=_rng())


def _lira_on(ds: Dataset, targets: np.ndarray, poison: Dataset | None,
             model: Any = "logreg") -> tuple[float, float, float]:
    run = run_shadow_models(lambda s: make_model(model, ds, random_state=s), ds.X, ds.y,
                            n_models=16, targets=targets, rng=_rng(2),
                            extra=None if poison is None else (poison.X, poison.y))
    online = lira(run)
    return online.tpr_at_1_fpr, online.auc, loss_attack(run).tpr_at_1_fpr


@pytest.fixture(scope="module")
def digits_poison() -> tuple[Dataset, np.ndarray, Dataset]:
    ds = load_dataset("digits", n_rows=900)
    targets = np.sort(_rng(0).choice(ds.n_rows, 32, replace=False))
    res = TruthSerum(targets=targets, copies=4).poison(ds, rng=_rng(1))
    return ds, targets, res.dataset.take(res.mask)


def test_poison_makes_membership_of_the_targets_show(digits_poison: Any) -> None:
    """The potency floor, with our default victim (logistic regression, C=1 on pixels in
    [0, 1]): 16 models on random halves of 900 digits, 32 targets with 4 replicas each (256
    non-member pairs). LiRA's AUC on the targets rises from 0.63 to 0.88 and its TPR at 1 % FPR
    from 0.06 to 0.23."""
    ds, targets, poison = digits_poison
    clean_tpr, clean_auc, _ = _lira_on(ds, targets, None)
    tpr, auc, _ = _lira_on(ds, targets, poison)
    assert clean_auc < 0.7 and auc >= clean_auc + 0.15 and auc >= 0.8
    assert tpr >= 0.15 and tpr >= 2.5 * clean_tpr


def test_an_overfitting_model_gives_every_target_away(digits_poison: Any) -> None:
    """Weakly regularised (C=100): with the poison, LiRA (and even the loss attack) catches
    nearly every member at 1 % FPR; without it, about 6 %."""
    ds, targets, poison = digits_poison
    model = LogisticRegression(C=100.0, max_iter=2000)
    clean_tpr, _, _ = _lira_on(ds, targets, None, model)
    tpr, auc, loss_tpr = _lira_on(ds, targets, poison, model)
    assert clean_tpr < 0.15 and tpr >= 0.9 and auc >= 0.99 and loss_tpr >= 0.8
