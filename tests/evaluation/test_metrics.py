"""poisonguard.evaluation.metrics: accuracy, backdoor success, group accuracy, the split."""

from __future__ import annotations

import math

import numpy as np
import pytest

from poisonguard.attacks import Backdoor, PatchTrigger
from poisonguard.datasets import load_dataset
from poisonguard.errors import InputError
from poisonguard.evaluation import accuracy, attack_success_rate, group_accuracy, split
from poisonguard.models import make_model


@pytest.fixture(scope="module")
def digits_split():
    return split(load_dataset("digits"), test_size=0.3, random_state=0)


@pytest.fixture(scope="module")
def clean_model(digits_split):
    train, _ = digits_split
    return make_model("logreg", train, random_state=0).fit(train.X, train.y)


def test_split_is_stratified_disjoint_and_seeded():
    ds = load_dataset("wine")
    train, test = split(ds, test_size=0.3, random_state=1)
    assert (train.n_rows, test.n_rows) == (125, 53)
    assert not set(train.ids) & set(test.ids)
    assert set(train.ids) | set(test.ids) == set(ds.ids)
    for k in ds.classes:  # class shares kept within one row
        assert abs((test.y == k).sum() - 0.3 * (ds.y == k).sum()) <= 1
    again, _ = split(ds, test_size=0.3, random_state=1)
    other, _ = split(ds, test_size=0.3, random_state=2)
    assert list(again.ids) == list(train.ids)
    assert list(other.ids) != list(train.ids)
    assert list(train.ids) == sorted(train.ids, key=int)  # input order kept


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 1.5, True, "0.3"])
def test_split_rejects_bad_test_size(bad):
    with pytest.raises(InputError, match="'test_size'"):
        split(load_dataset("iris"), test_size=bad)


def test_clean_model_is_accurate_on_digits(digits_split, clean_model):
    _, test = digits_split
    assert accuracy(clean_model, test) > 0.9


def test_backdoor_success_on_digits_at_five_percent(digits_split, clean_model):
    train, test = digits_split
    res = Backdoor(rate=0.05).poison(train, rng=np.random.default_rng(0))
    victim = make_model("logreg", res.dataset, random_state=0).fit(res.dataset.X, res.dataset.y)
    assert res.trigger is not None
    assert attack_success_rate(victim, res.trigger, test) > 0.9
    assert attack_success_rate(clean_model, res.trigger, test) < 0.2
    assert accuracy(clean_model, test) - accuracy(victim, test) < 0.02


def test_attack_success_needs_rows_outside_the_target(digits_split, clean_model):
    _, test = digits_split
    trigger = PatchTrigger(2, 5, 5, 16.0, 3)
    with pytest.raises(InputError, match="target class 3"):
        attack_success_rate(clean_model, trigger, test.take(test.y == 3))


def test_group_accuracy(digits_split, clean_model):
    _, test = digits_split
    everyone = np.ones(test.n_rows, dtype=bool)
    assert group_accuracy(clean_model, test, everyone) == accuracy(clean_model, test)
    sevens = test.y == 7
    assert group_accuracy(clean_model, test, sevens) == accuracy(clean_model, test.take(sevens))
    assert math.isnan(group_accuracy(clean_model, test, ~everyone))
    with pytest.raises(InputError, match="one value per test row"):
        group_accuracy(clean_model, test, everyone[:-1])
