"""Canary model monitoring: quiet on clean batches, alerts on a drop, running baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from poisonguard import Dataset, InputError
from poisonguard.datasets import load_dataset
from poisonguard.monitor import CanaryMonitor, History, Profile


@pytest.fixture(scope="module")
def cancer() -> tuple[Profile, Dataset]:
    ds = load_dataset("breast_cancer")
    order = np.random.default_rng(0).permutation(ds.n_rows)
    return Profile.fit(ds.take(order[:284]), random_state=0), ds.take(order[284:])


def _batch(pool: Dataset, n: int, seed: int) -> Dataset:
    return pool.take(np.random.default_rng(seed).choice(pool.n_rows, n, replace=False))


def _flip(batch: Dataset, rate: float, seed: int) -> Dataset:
    rng = np.random.default_rng(seed)
    y = batch.y.copy()
    hit = rng.random(len(y)) < rate
    y[hit] = 1 - y[hit]
    return batch.replace(y=y)


def test_clean_batches_do_not_alert_and_flipped_labels_do(cancer: tuple[Profile, Dataset],
                                                          tmp_path: Path) -> None:
    """A history of 10 clean batches of 100 rows, then 20 % of the labels flipped."""
    profile, pool = cancer
    monitor = CanaryMonitor(random_state=0)
    history = History(tmp_path / "h.sqlite")
    for seed in range(10):
        previous = [r.accuracy for r in history.rows(kind="canary") if not r.alarm and r.accuracy]
        result = monitor.check(profile, _batch(pool, 100, seed), previous=previous)
        history.record(result, batch=f"day {seed}")
        assert result.baseline_from == ("reference" if seed == 0 else "history")
    assert not any(r.alarm for r in history.rows())
    previous = [r.accuracy for r in history.rows() if r.accuracy is not None]
    bad = monitor.check(profile, _flip(_batch(pool, 100, 99), 0.2, 0), previous=previous)
    assert bad.alert and bad.drop >= 0.1 and bad.p_value < 0.01
    assert bad.baseline == float(np.median(previous[-5:]))
    assert bad.verdict().endswith(": alert")


def test_a_small_dip_in_a_small_batch_is_not_an_alert(cancer: tuple[Profile, Dataset]) -> None:
    profile, pool = cancer
    batch = _batch(pool, 20, 0)
    y = batch.y.copy()
    y[:3] = 1 - y[:3]
    result = CanaryMonitor(random_state=0).check(profile, batch.replace(y=y), previous=[0.97])
    assert result.drop >= 0.1 and result.p_value > 0.01 and not result.alert  # too few rows to tell


def test_images_are_scored_through_the_embedding() -> None:
    digits = load_dataset("digits")
    profile = Profile.fit(digits.take(range(0, 1797, 2)), components=20)
    result = CanaryMonitor(random_state=0).check(profile, digits.take(range(1, 1797, 2)))
    assert result.accuracy > 0.85 and not result.alert


def test_same_seed_same_result(cancer: tuple[Profile, Dataset]) -> None:
    profile, pool = cancer
    batch = _batch(pool, 80, 0)
    assert CanaryMonitor(model="mlp", random_state=1).check(profile, batch) == CanaryMonitor(
        model="mlp", random_state=1).check(profile, batch)


@pytest.mark.parametrize("kwargs,match", [({"model": "cnn"}, "'model' must be one of logreg, mlp"),
                                          ({"max_drop": 2.0}, "'max_drop'"),
                                          ({"window": 0}, "'window' must be a positive integer")])
def test_bad_parameters_are_named(cancer: tuple[Profile, Dataset], kwargs: dict[str, object],
                                  match: str) -> None:
    profile, pool = cancer
    with pytest.raises(InputError, match=match):
        CanaryMonitor(**kwargs).check(profile, _batch(pool, 10, 0))  # type: ignore[arg-type]


def test_a_single_label_reference_is_refused() -> None:
    wine = load_dataset("wine")
    one = wine.take(wine.y == 0)
    with pytest.raises(InputError, match="single label"):
        CanaryMonitor().check(Profile.fit(one), one)
