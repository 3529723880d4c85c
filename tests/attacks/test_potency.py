"""Potency floors: each attack does the damage it is for, on seeded real data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from poisonguard import Dataset
from poisonguard.attacks import Availability, Backdoor, CleanLabelBackdoor, FeatureCollision, LabelFlip
from poisonguard.datasets import load_dataset
from poisonguard.models import fit_quiet, make_model


def _split(name: str) -> tuple[Dataset, Dataset]:
    ds = load_dataset(name)
    order = np.random.default_rng(0).permutation(ds.n_rows)
    cut = int(0.7 * ds.n_rows)
    return ds.take(np.sort(order[:cut])), ds.take(np.sort(order[cut:]))


def _fit(ds: Dataset, model: str = "logreg") -> Any:
    return fit_quiet(make_model(model, ds), ds.X, ds.y)


def _acc(model: Any, ds: Dataset) -> float:
    return float((model.predict(ds.X) == ds.y).mean())


@pytest.fixture(scope="module")
def cancer() -> tuple[Dataset, Dataset, float]:
    train, test = _split("breast_cancer")
    return train, test, _acc(_fit(train), test)


@pytest.fixture(scope="module")
def digits() -> tuple[Dataset, Dataset, float]:
    train, test = _split("digits")
    return train, test, _acc(_fit(train), test)


def _drop(case: tuple[Dataset, Dataset, float], attack: Any) -> float:
    train, test, clean = case
    poisoned = attack.poison(train, rng=np.random.default_rng(0)).dataset
    return clean - _acc(_fit(poisoned), test)


def test_greedy_flips_hurt_at_least_twice_as_much_as_random(cancer: Any) -> None:
    random_drop = _drop(cancer, LabelFlip(rate=0.1, strategy="random"))
    greedy_drop = _drop(cancer, LabelFlip(rate=0.1, strategy="greedy"))
    assert greedy_drop >= 0.08
    assert greedy_drop >= 2 * random_drop


def test_availability_beats_random_flips_of_the_same_budget(digits: Any) -> None:
    random_drop = _drop(digits, LabelFlip(rate=0.1, strategy="random"))
    crafted_drop = _drop(digits, Availability(rate=0.1))
    assert crafted_drop >= 0.03
    assert crafted_drop > 2 * random_drop


def _asr(model: Any, result: Any, test: Dataset) -> float:
    trig = result.trigger
    others = test.take(test.y != trig.target_class)
    return float((model.predict(trig.apply_dataset(others).X) == trig.target_class).mean())


def test_patch_backdoor_on_digits(digits: Any) -> None:
    train, test, clean = digits
    res = Backdoor(rate=0.05, trigger="patch").poison(train, rng=np.random.default_rng(0))
    model = _fit(res.dataset)
    assert _asr(model, res, test) >= 0.9
    assert clean - _acc(model, test) <= 0.02
    assert _asr(_fit(train), res, test) <= 0.05  # the clean model ignores the patch


def test_clean_label_backdoor_keeps_labels_and_plants_the_trigger(cancer: Any) -> None:
    train, test, _ = cancer
    res = CleanLabelBackdoor(rate=0.05).poison(train, rng=np.random.default_rng(0))
    assert np.array_equal(res.dataset.y, train.y)
    assert set(train.y[res.mask].tolist()) == {res.trigger.target_class}  # type: ignore[union-attr]
    assert _asr(_fit(res.dataset), res, test) >= 0.8
    assert _asr(_fit(train), res, test) <= 0.1


def test_feature_collision_flips_most_targets(cancer: Any) -> None:
    train, test, _ = cancer
    base = 0
    targets = np.flatnonzero(test.y != base)[:6]
    hits = 0
    for i in targets:
        res = FeatureCollision(count=20, target=test.X[i], base_class=base).poison(
            train, rng=np.random.default_rng(0))
        assert np.array_equal(res.dataset.y, train.y)  # clean-label: no label changes
        hits += int(_fit(res.dataset, "mlp").predict(test.X[i:i + 1])[0] == base)
    assert hits >= 4


def test_subpopulation_breaks_one_cluster_and_spares_the_rest(digits: Any) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    from poisonguard.attacks import Subpopulation
    from poisonguard.models import featurizer

    train, test, _ = digits
    res = Subpopulation(rate=0.05).poison(train, rng=np.random.default_rng(0))
    assert res.group is not None and 5 <= res.group.sum() <= res.n_poisoned
    enc = featurizer(train).fit(train.X)
    in_group = KNeighborsClassifier(n_neighbors=1).fit(enc.transform(train.X), res.group).predict(
        enc.transform(test.X)).astype(bool)
    clean, poisoned = _fit(train), _fit(res.dataset)

    def acc(model: Any, mask: np.ndarray) -> float:
        return float((model.predict(test.X[mask]) == test.y[mask]).mean())

    assert in_group.sum() >= 5
    assert acc(clean, in_group) - acc(poisoned, in_group) >= 0.3
    assert acc(clean, ~in_group) - acc(poisoned, ~in_group) <= 0.03
