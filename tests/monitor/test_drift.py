"""Drift checks: false-alarm and detection floors on seeded real data, gates, corrections."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poisonguard import Dataset, InputError
from poisonguard.datasets import load_dataset
from poisonguard.monitor import DriftMonitor, Profile, adjust_p_values

N_CLEAN = 100


def _split(name: str, seed: int = 0) -> tuple[Profile, Dataset]:
    """Profile of a seeded half of ``name``; the other half is the pool batches come from."""
    ds = load_dataset(name)
    order = np.random.default_rng(seed).permutation(ds.n_rows)
    half = ds.n_rows // 2
    return Profile.fit(ds.take(order[:half]), random_state=seed), ds.take(order[half:])


def _batch(pool: Dataset, n: int, seed: int) -> Dataset:
    return pool.take(np.random.default_rng(seed).choice(pool.n_rows, n, replace=False))


@pytest.fixture(scope="module")
def cancer() -> tuple[Profile, Dataset]:
    return _split("breast_cancer")


# ----------------------------------------------------------------- false alarms
def test_clean_batches_rarely_alarm(cancer: tuple[Profile, Dataset]) -> None:
    """<= 5 of 100 clean breast_cancer batches (100 rows each) alarm; measured: 0."""
    profile, pool = cancer
    monitor = DriftMonitor(random_state=0)
    alarms = [monitor.check(profile, _batch(pool, 100, seed)).drift for seed in range(N_CLEAN)]
    assert sum(alarms) <= 5


def test_clean_image_and_mixed_batches_rarely_alarm() -> None:
    """Digits (through the stored embedding) and a mixed numeric / categorical table."""
    profile, pool = _split("digits")
    monitor = DriftMonitor(random_state=0)
    assert sum(monitor.check(profile, _batch(pool, 300, s)).drift for s in range(10)) == 0
    rng = np.random.default_rng(0)
    n = 2000
    frame = pd.DataFrame({"x": rng.normal(size=n), "n": rng.poisson(3, n),
                          "city": rng.choice(["oslo", "rome", "lima", "pune"], n, p=[.4, .3, .2, .1])})
    mixed = Dataset(frame, (frame["x"] > 0).astype(int))
    profile = Profile.fit(mixed.take(np.arange(1000)))
    pool = mixed.take(np.arange(1000, n))
    assert sum(monitor.check(profile, _batch(pool, 200, s)).drift for s in range(20)) <= 1


def test_a_large_batch_does_not_alarm_on_a_trivial_shift() -> None:
    """10k rows shifted by 0.1 SD: the KS test is significant, but under its effect gate."""
    rng = np.random.default_rng(0)
    names = [f"f{j}" for j in range(5)]
    profile = Profile.fit(Dataset(rng.normal(size=(20_000, 5)), rng.integers(0, 2, 20_000),
                                  feature_names=names))
    X = rng.normal(size=(10_000, 5))
    X[:, 0] += 0.1
    report = DriftMonitor().check(profile, Dataset(X, rng.integers(0, 2, 10_000), feature_names=names))
    ks = next(t for t in report.tests if t.test == "ks" and t.feature == "f0")
    assert ks.p_adjusted < 0.01 and ks.effect < ks.gate and not ks.alarm
    assert not report.drift


# ----------------------------------------------------------------- detection
def _shift(batch: Dataset, column: int, sd: float) -> Dataset:
    X = batch.X.copy()
    X[:, column] += sd
    return batch.replace(X=X)


def _scale(batch: Dataset, column: int, factor: float) -> Dataset:
    X = batch.X.copy()
    X[:, column] *= factor
    return batch.replace(X=X)


def test_a_one_sd_shift_in_one_feature_alarms_and_names_it(cancer: tuple[Profile, Dataset]) -> None:
    profile, pool = cancer
    sd = float(profile.sample["mean radius"].std())
    monitor = DriftMonitor(random_state=0)
    reports = [monitor.check(profile, _shift(_batch(pool, 100, s), 0, sd)) for s in range(10)]
    assert all(r.drift for r in reports)
    assert all(r.drifted_features[0] == "mean radius" for r in reports)
    assert all(set(r.drifted_features) == {"mean radius"} for r in reports)


@pytest.mark.parametrize("case", ["scale a feature x1.5", "noise of 1 SD", "drop a class"])
def test_real_shifts_alarm(cancer: tuple[Profile, Dataset], case: str) -> None:
    profile, pool = cancer
    sd = profile.sample.to_numpy().std(axis=0)
    monitor = DriftMonitor(random_state=0)
    found = []
    for s in range(10):
        batch = _batch(pool, 100, s)
        if case == "scale a feature x1.5":
            batch = _scale(batch, 3, 1.5)
        elif case == "noise of 1 SD":
            batch = batch.replace(X=batch.X + np.random.default_rng(s).normal(size=batch.X.shape) * sd)
        else:
            rest = pool.take(pool.y == 1)
            batch = _batch(rest, 100, s)
        report = monitor.check(profile, batch)
        found.append(report.drift)
        if case == "drop a class":
            assert report.summary()["label_shift"]
        if case == "scale a feature x1.5":
            assert "mean area" in report.drifted_features
    assert all(found)


def test_a_dropped_class_alarms_in_a_small_batch() -> None:
    """Wine, 40-row batches without class 0: the label test carries its own share of alpha."""
    profile, pool = _split("wine")
    rest = pool.take(pool.y != 0)
    monitor = DriftMonitor(random_state=0)
    reports = [monitor.check(profile, _batch(rest, 40, s)) for s in range(10)]
    assert all(r.summary()["label_shift"] for r in reports)


def test_categorical_shift_and_new_categories() -> None:
    rng = np.random.default_rng(1)
    n = 1500
    frame = pd.DataFrame({"x": rng.normal(size=n),
                          "city": rng.choice(["oslo", "rome", "lima"], n, p=[.5, .3, .2])})
    ds = Dataset(frame, rng.integers(0, 2, n))
    profile = Profile.fit(ds.take(np.arange(1000)))
    batch = ds.take(np.arange(1000, n))
    city = batch.X["city"].to_numpy().copy()
    city[: len(city) // 3] = "quito"  # unseen in the reference: counted as (other)
    report = DriftMonitor().check(profile, batch.replace(X=batch.X.assign(city=city)))
    assert report.drifted_features == ("city",)
    chi2 = next(t for t in report.tests if t.feature == "city")
    assert chi2.test == "chi2" and dict((b, s) for b, _, s in chi2.shares)["(other)"] > 0.3


def test_image_shift_alarms() -> None:
    profile, pool = _split("digits")
    batch = _batch(pool, 300, 0)
    report = DriftMonitor().check(profile, batch.replace(X=np.clip(batch.X * 1.6, 0, 16)))
    assert report.drift and report.drifted_features


# ----------------------------------------------------------------- parameters
def test_gates_and_alpha_are_parameters(cancer: tuple[Profile, Dataset]) -> None:
    profile, pool = cancer
    batch = _shift(_batch(pool, 100, 0), 0, float(profile.sample["mean radius"].std()))
    assert DriftMonitor().check(profile, batch).drift
    strict = DriftMonitor(ks_gate=1.0, psi_gate=100.0, auc_gate=1.0).check(profile, batch)
    assert not strict.drift and any(t.p_adjusted < 0.01 for t in strict.tests)
    assert not DriftMonitor(alpha=0.0).check(profile, batch).drift
    holm = DriftMonitor(correction="holm", multivariate=False).check(profile, batch)
    assert holm.drift and all(t.test != "classifier" for t in holm.tests)


@pytest.mark.parametrize("kwargs,match", [
    ({"alpha": 1.5}, "'alpha' must be a number in"),
    ({"ks_gate": -0.1}, "'ks_gate'"),
    ({"auc_gate": 0.4}, "'auc_gate'"),
    ({"correction": "bonferroni"}, "'correction' must be one of bh, holm"),
    ({"classifier_rows": 5}, "'classifier_rows'"),
])
def test_bad_parameters_are_named(cancer: tuple[Profile, Dataset], kwargs: dict[str, object],
                                  match: str) -> None:
    profile, pool = cancer
    with pytest.raises(InputError, match=match):
        DriftMonitor(**kwargs).check(profile, _batch(pool, 50, 0))  # type: ignore[arg-type]


def test_a_tiny_batch_skips_the_classifier_with_a_note(cancer: tuple[Profile, Dataset]) -> None:
    profile, pool = cancer
    report = DriftMonitor().check(profile, _batch(pool, 5, 0))
    assert all(t.test != "classifier" for t in report.tests)
    assert "domain classifier skipped" in report.notes[0]


# ----------------------------------------------------------------- outputs
def test_same_seed_same_report_and_json_layout(cancer: tuple[Profile, Dataset], tmp_path: Path) -> None:
    profile, pool = cancer
    batch = _batch(pool, 120, 3)
    a = DriftMonitor(random_state=5).check(profile, batch)
    b = DriftMonitor(random_state=5).check(profile, batch)
    assert a == b
    doc = json.loads(a.to_json(tmp_path / "drift.json").read_text())
    assert list(doc)[:2] == ["drift", "tests"] and doc["drift"] is False
    assert {t["test"] for t in doc["tests"]} == {"ks", "psi", "label", "classifier"}
    assert doc["gates"] == {"ks": 0.1, "psi": 0.2, "chi2": 0.1, "label": 0.1, "classifier": 0.6}


def test_html_names_the_alarms_and_escapes_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = ["<b>bold</b>", "plain"]
    ref = Dataset(rng.normal(size=(500, 2)), rng.integers(0, 2, 500), feature_names=names)
    X = rng.normal(size=(300, 2))
    X[:, 0] += 2
    report = DriftMonitor().check(Profile.fit(ref), Dataset(X, rng.integers(0, 2, 300), feature_names=names))
    page = report.to_html(tmp_path / "drift.html").read_text()
    assert 'id="verdict">drift<' in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<b>bold</b>" not in page and "<script" not in page


# ----------------------------------------------------------------- corrections
def test_adjusted_p_values_match_the_definitions() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjust_p_values(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    np.testing.assert_allclose(adjust_p_values(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    weighted = adjust_p_values(np.array([0.01, 0.01]), "bh", np.array([3.0, 1.0]))
    # weights rescaled to average 1: 1.5 and 0.5; then BH on p / w = 0.0067, 0.02
    np.testing.assert_allclose(weighted, [0.01 / 1.5 * 2, 0.02])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=30), st.sampled_from(["bh", "holm"]))
def test_adjusting_never_lowers_a_p_value_and_keeps_the_order(values: list[float], method: str) -> None:
    p = np.array(values)
    adj = adjust_p_values(p, method)  # type: ignore[arg-type]
    assert np.all(adj >= p - 1e-12) and np.all(adj <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adj[order]) >= -1e-12)


@pytest.mark.slow
def test_a_10k_by_30_check_takes_under_two_seconds() -> None:
    rng = np.random.default_rng(0)
    cov = np.corrcoef(rng.normal(size=(30, 60)))
    profile = Profile.fit(Dataset(rng.multivariate_normal(np.zeros(30), cov, 50_000),
                                  rng.integers(0, 3, 50_000)))
    batch = Dataset(rng.multivariate_normal(np.zeros(30), cov, 10_000), rng.integers(0, 3, 10_000))
    monitor = DriftMonitor()
    monitor.check(profile, batch)  # imports
    start = time.perf_counter()
    report = monitor.check(profile, batch)
    assert time.perf_counter() - start < 2.0
    assert not report.drift


# ------------------------------------------------------------------------- missing values
def _holes(n: int, seed: int, missing: float) -> Dataset:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n),
                          "color": rng.choice(["red", "blue"], n).astype(object)})
    frame.loc[rng.random(n) < missing, "x"] = np.nan
    frame.loc[rng.random(n) < 0.1, "color"] = None
    return Dataset(frame, rng.integers(0, 2, n), name=f"holes{seed}")


def test_missing_values_are_checked_and_a_surge_of_them_alarms() -> None:
    profile = Profile.fit(_holes(1000, 0, 0.1), random_state=0)
    clean = DriftMonitor(random_state=0).check(profile, _holes(400, 1, 0.1))
    assert not clean.drift
    psi = next(t for t in clean.tests if t.test == "psi" and t.feature == "x")
    assert psi.shares[-1][0] == "(missing)" and 0.05 < psi.shares[-1][2] < 0.15
    ks = next(t for t in clean.tests if t.test == "ks" and t.feature == "x")
    assert np.isfinite(ks.statistic) and ks.p_value > 0.01  # the present values, no NaN
    surge = DriftMonitor(random_state=0).check(profile, _holes(400, 2, 0.6))
    assert surge.drift and "x" in surge.drifted_features
