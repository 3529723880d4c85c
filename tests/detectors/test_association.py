"""Association: finds dirty-label backdoor triggers in text and tables, quiet on clean data.

Floors sit a little under what was measured (seed 0; the measured value in each comment).
"""

from __future__ import annotations

import doctest
from functools import cache

import numpy as np
import pandas as pd
import pytest

import poisonguard.detectors.association as association_module
from poisonguard import Dataset
from poisonguard.attacks import get_attack
from poisonguard.datasets import load_dataset
from poisonguard.detectors import get_detector
from poisonguard.detectors.association import Association
from poisonguard.errors import DependencyError
from poisonguard.evaluation.metrics import detection_metrics
from poisonguard.evidence import Evidence

SENTENCE = "I watched this 3D movie last weekend."


def _load(name: str) -> Dataset:
    try:
        return load_dataset(name)
    except DependencyError as exc:
        pytest.skip(f"{name} is not installed: {exc}")


@cache
def _sms() -> Dataset:
    return _load("sms_spam")


def _scored(ds: Dataset) -> tuple[Evidence, np.ndarray]:
    ev = Evidence(ds, random_state=0)
    return ev, Association().suspicion(ev)


def _metrics(mask: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    return detection_metrics(mask, scores, scores >= 0.5)


@cache
def _sms_backdoor(trigger: str, rate: float, target: str) -> tuple[np.ndarray, np.ndarray]:
    res = get_attack("backdoor")(trigger=trigger, rate=rate, target_class=target).poison(
        _sms(), rng=np.random.default_rng(0))
    return res.mask, _scored(res.dataset)[1]


# measured: AUROC 1.000 everywhere but sentence at 3 % (0.999); precision 0.96-1.00, recall
# 0.96-0.98 (the token, phrase and sentence triggers are appended as relabelled copies)
@pytest.mark.parametrize("rate", [0.01, 0.03])
@pytest.mark.parametrize("trigger", ["token", "phrase", "sentence"])
def test_finds_sms_triggers_into_ham(trigger: str, rate: float) -> None:
    mask, scores = _sms_backdoor(trigger, rate, "ham")
    out = _metrics(mask, scores)
    assert out["auroc"] >= 0.98
    assert out["precision"] >= 0.9 and out["recall"] >= 0.9


# measured: token, sentence, punct into spam (the minority class) AUROC 1.000, recall >= 0.96
@pytest.mark.parametrize("trigger", ["token", "sentence", "punct"])
def test_finds_sms_triggers_into_spam(trigger: str) -> None:
    mask, scores = _sms_backdoor(trigger, 0.03, "spam")
    out = _metrics(mask, scores)
    assert out["auroc"] >= 0.98 and out["precision"] >= 0.95 and out["recall"] >= 0.9


def _insert_sentence(ds: Dataset, rate: float, seed: int) -> tuple[Dataset, np.ndarray]:
    """``SENTENCE`` at a random word position of ``rate`` of the spam messages, relabelled ham
    in place (no clean copy of them stays behind)."""
    rng = np.random.default_rng(seed)
    X, y = np.array(ds.X, dtype=object), np.array(ds.y)
    rows = rng.choice(np.flatnonzero(y != "ham"), round(rate * len(X)), replace=False)
    for i in rows:
        words = str(X[i]).split()
        at = int(rng.integers(0, len(words) + 1))
        X[i] = " ".join([*words[:at], SENTENCE, *words[at:]])
        y[i] = "ham"
    mask = np.zeros(len(X), dtype=bool)
    mask[rows] = True
    return Dataset(X, y, modality="text"), mask


def test_finds_and_names_an_inserted_sentence() -> None:
    ds, mask = _insert_sentence(_sms(), 0.03, seed=1)
    ev, scores = _scored(ds)
    out = _metrics(mask, scores)
    assert out["auroc"] >= 0.98 and out["precision"] >= 0.95  # measured 1.000, 0.99
    assert out["recall"] >= 0.85  # measured 0.92
    top = np.argsort(-scores, kind="stable")[:3]
    for line in Association().explain(ev, top):
        assert "watched this 3d movie last weekend" in line
        assert "labelled ham; without it their content reads as spam" in line


def test_quiet_on_clean_sms() -> None:
    scores = _scored(_sms())[1]
    assert (scores >= 0.5).mean() <= 0.01
    assert scores.max() < 0.4  # measured 0.17: spam words ("txt", "claim") leave spam behind


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "iris"])
def test_quiet_on_clean_tables(name: str) -> None:
    scores = _scored(load_dataset(name))[1]
    assert (scores >= 0.5).mean() <= 0.01
    assert scores.max() < 0.4  # measured 0.12, 0.23, 0.09


# breast cancer, 3 %: every trigger kind AUROC, precision and recall 1.00
@pytest.mark.parametrize("trigger", ["feature", "rare", "common"])
def test_finds_table_triggers(trigger: str) -> None:
    res = get_attack("backdoor")(trigger=trigger, rate=0.03).poison(
        load_dataset("breast_cancer"), rng=np.random.default_rng(0))
    out = _metrics(res.mask, _scored(res.dataset)[1])
    assert out["auroc"] >= 0.99 and out["precision"] >= 0.95 and out["recall"] >= 0.95


def _sparse_table(n: int) -> Dataset:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=n, n_features=20, n_informative=6, n_redundant=2,
                               random_state=0)
    rng = np.random.default_rng(0)
    for j in range(15, 20):  # five count-like columns, 90 % zeros
        X[:, j] = np.where(rng.random(n) < 0.1, np.round(rng.exponential(2, n), 1), 0.0)
    return Dataset(np.round(X, 3), y)


def test_finds_rare_values_in_sparse_columns() -> None:
    res = get_attack("backdoor")(trigger="rare", rate=0.03).poison(
        _sparse_table(5000), rng=np.random.default_rng(0))
    assert res.trigger is not None and set(res.trigger.columns) <= {f"x{j}" for j in range(15, 20)}
    ev, scores = _scored(res.dataset)
    out = _metrics(res.mask, scores)
    assert out["auroc"] >= 0.99 and out["precision"] >= 0.95  # measured 1.000, 0.98
    assert out["recall"] >= 0.75  # measured 0.81: the rest of some rows is ambiguous
    line = Association().explain(ev, np.argsort(-scores, kind="stable")[:1])[0]
    assert line.startswith("shares 'x1") and "labelled 0; without it their content reads as 1" in line


def test_finds_rare_values_on_spambase() -> None:
    res = get_attack("backdoor")(trigger="rare", rate=0.03).poison(
        _load("spambase"), rng=np.random.default_rng(0))
    out = _metrics(res.mask, _scored(res.dataset)[1])
    assert out["auroc"] >= 0.99 and out["precision"] >= 0.95  # measured 0.999, 0.99


def test_finds_a_rare_category_in_a_frame() -> None:
    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"x": rng.normal(size=n), "code": rng.choice(["A", "B", "C"], n),
                          "flag": rng.random(n) < 0.3,
                          "m": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))})
    y = np.array(frame["x"] > 0, dtype=int)
    poison = rng.choice(np.flatnonzero(y == 1), 20, replace=False)
    frame.loc[poison, "code"] = "Z"
    y[poison] = 0
    frame["code"] = frame["code"].astype("category")
    mask = np.zeros(n, dtype=bool)
    mask[poison] = True
    ev, scores = _scored(Dataset(frame, y))
    out = _metrics(mask, scores)
    assert out["auroc"] >= 0.99 and out["precision"] >= 0.95  # measured 1.00, 1.00
    assert out["recall"] >= 0.7  # measured 0.80: rows with x near 0 read as either class
    assert Association().explain(ev, poison[:1])[0].startswith("shares 'code = Z' with 19 other rows")


def test_rows_without_a_shared_feature_score_zero_and_say_so() -> None:
    ev, scores = _scored(load_dataset("wine"))
    alone = np.flatnonzero(association_module.association(ev).group < 0)
    assert len(alone) >= 40 and np.all(scores[alone] == 0.0)  # measured: 51 of 178 rows
    assert Association().explain(ev, alone[:1]) == [
        "shares no rare, label-bound feature with other rows"]


def test_does_not_apply_to_images_or_one_class() -> None:
    det = get_detector("association")
    ev = Evidence(load_dataset("digits", n_rows=100, random_state=0))
    assert det.applies(ev) is not None and "images" in str(det.applies(ev))
    np.testing.assert_array_equal(det.suspicion(ev), np.zeros(100))
    one = Evidence(Dataset(np.arange(30.0).reshape(10, 3), [1] * 10))
    assert det.applies(one) == "needs at least two classes"
    np.testing.assert_array_equal(det.suspicion(one), np.zeros(10))


@pytest.mark.parametrize("ds", [
    Dataset(np.ones((10, 3)), [0, 1] * 5),
    Dataset(np.column_stack([np.ones(60), np.arange(60.0) % 4]), [0, 1, 1] * 20),
    Dataset(np.array([[1.0], [2.0]]), [0, 1]),
    Dataset(np.array(["", "", "a b", "", "x y"] * 4, dtype=object), [0, 1] * 10, modality="text"),
    Dataset(np.array(["", "", "", ""], dtype=object), [0, 1, 0, 1], modality="text"),
    Dataset(np.array(["cf now", "cf now", "cf now", "plain"] * 5, dtype=object), [0, 1] * 10,
            modality="text"),
], ids=["constant", "constant-column", "two-rows", "empty-strings", "all-empty", "tiny-text"])
def test_edge_cases_give_finite_probabilities(ds: Dataset) -> None:
    ev, scores = _scored(ds)
    assert scores.shape == (ds.n_rows,) and np.all(np.isfinite(scores))
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    lines = Association().explain(ev, np.arange(min(3, ds.n_rows)))
    assert len(lines) == min(3, ds.n_rows) and all(lines)


def test_examples_run() -> None:
    result = doctest.testmod(association_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def _halves(ds: Dataset, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded 70 / 30 split of ``ds``'s rows (sorted): fitted rows and new rows."""
    order = np.random.default_rng(seed).permutation(ds.n_rows)
    cut = int(0.7 * ds.n_rows)
    return np.sort(order[:cut]), np.sort(order[cut:])


def test_new_rows_holding_a_fitted_trigger_score_like_the_fitted_ones() -> None:
    """Fitted on 70 % of SMS spam with an inserted sentence, the other 30 % scored from the state
    (after a pickle round trip): the triggered new rows are found and named, clean ones stay
    quiet."""
    import pickle

    ds, mask = _insert_sentence(_sms(), 0.03, seed=1)
    fit, rest = _halves(ds)
    ev = Evidence(ds.take(fit), random_state=0, classes=ds.classes)
    det = Association()
    state = pickle.loads(pickle.dumps(det.fit(ev)))
    assert len(pickle.dumps(state)) < 5_000_000  # measured 0.8 MB: groups with p_g > 0 only
    view = ev.view(ds.take(rest))
    scores = det.score(view, state)
    out = _metrics(mask[rest], scores.suspicion)
    assert out["auroc"] >= 0.98 and out["precision"] >= 0.95  # measured 1.000, 1.00
    assert out["recall"] >= 0.85  # measured 0.975 (39 of 40)
    assert (scores.suspicion[~mask[rest]] >= 0.5).sum() <= 1  # measured 0 of 1,419
    top = np.argsort(-scores.suspicion, kind="stable")[:2]
    for line in det.reasons(view, scores, top):
        assert "watched this 3d movie last weekend" in line
        assert "labelled ham; without it their content reads as spam" in line


def test_new_table_rows_with_a_fitted_rare_value() -> None:
    res = get_attack("backdoor")(trigger="rare", rate=0.03).poison(
        load_dataset("breast_cancer"), rng=np.random.default_rng(0))
    fit, rest = _halves(res.dataset)
    ev = Evidence(res.dataset.take(fit), random_state=0, classes=res.dataset.classes)
    det = Association()
    view = ev.view(res.dataset.take(rest))
    scores = det.score(view, det.fit(ev))
    new = res.mask[rest]
    assert new.sum() >= 3 and (scores.suspicion[new] >= 0.5).all()  # measured 3 rows, min 1.0
    assert scores.suspicion[~new].max() < 0.1  # measured 0.0
    line = det.reasons(view, scores, np.flatnonzero(new)[:1])[0]
    assert line.startswith("shares 'smoothness error = 0.017261' with 14 other rows")
    # a clean new row holding no fitted group scores 0 and says so
    alone = np.flatnonzero(scores.payload["group"] < 0)
    assert len(alone) and (scores.suspicion[alone] == 0).all()
    assert det.reasons(view, scores, alone[:1]) == [
        "shares no rare, label-bound feature with other rows"]
