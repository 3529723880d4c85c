"""DP-SGD: the accountant's epsilon meets the target, accuracy grows with the budget, the
same seed gives the same model, and group privacy is reported for k poisoned rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

pytest.importorskip("opacus")

from poisonguard.defenses import DPSGDClassifier, get_defense


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, ...]:
    X, y = load_digits(return_X_y=True)
    return tuple(train_test_split(X, y, test_size=0.3, random_state=0))


def test_budget_accuracy_and_reproducibility(digits: tuple[np.ndarray, ...]) -> None:
    Xtr, Xte, ytr, yte = digits
    scores = {}
    for eps in (1.0, 3.0, math.inf):
        model = get_defense("dp-sgd", epsilon=eps, epochs=15).fit(Xtr, ytr)
        scores[eps] = model.score(Xte, yte)
        if math.isfinite(eps):
            assert eps - 0.05 <= model.epsilon_ <= eps + 1e-6
            assert model.noise_multiplier_ > 0 and 0 < model.delta_ < 1 / len(Xtr)
    # measured (15 epochs): 0.90 at epsilon 1, 0.93 at 3, 0.96 without privacy
    assert scores[1.0] >= 0.7 and scores[3.0] >= 0.88 and scores[math.inf] >= 0.95
    assert scores[1.0] < scores[math.inf]
    again = DPSGDClassifier(epsilon=3.0, epochs=15).fit(Xtr, ytr)
    first = DPSGDClassifier(epsilon=3.0, epochs=15).fit(Xtr, ytr)
    assert np.array_equal(again.predict_proba(Xte), first.predict_proba(Xte))


def test_group_privacy_for_k_rows(digits: tuple[np.ndarray, ...]) -> None:
    Xtr, _, ytr, _ = digits
    model = DPSGDClassifier(epsilon=1.0, epochs=3).fit(Xtr, ytr)
    eps, delta = model.epsilon_, model.delta_
    assert model.group_privacy(0) == (0.0, 0.0)
    assert model.group_privacy(1) == pytest.approx((eps, delta))
    assert model.group_privacy(3) == pytest.approx((3 * eps, 3 * math.exp(2 * eps) * delta))
    assert model.group_privacy(10_000)[1] == 1.0  # the bound says nothing there
    with pytest.raises(ValueError, match="k must be >= 0"):
        model.group_privacy(-1)


def test_bad_parameters_are_named(digits: tuple[np.ndarray, ...]) -> None:
    Xtr, _, ytr, _ = digits
    for params, message in (({"epsilon": 0.0}, "epsilon must be positive"),
                            ({"delta": 1.5}, "delta must be in"),
                            ({"epochs": 0}, "epochs must be at least 1")):
        with pytest.raises(ValueError, match=message):
            DPSGDClassifier(**params).fit(Xtr[:50], ytr[:50])  # type: ignore[arg-type]


@parametrize_with_checks([DPSGDClassifier(epsilon=math.inf, epochs=15, batch_size=16)])
def test_sklearn_contract(estimator: DPSGDClassifier, check: object) -> None:
    check(estimator)  # type: ignore[operator]
