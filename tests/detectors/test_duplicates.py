"""``duplicates``: exact and near copies, above all with conflicting labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from poisonguard import Dataset
from poisonguard.datasets import load_dataset, make_text
from poisonguard.detectors.duplicates import Duplicates, exact_groups, normalise_text
from poisonguard.evaluation.metrics import detection_metrics
from poisonguard.evidence import Evidence

WINE = load_dataset("wine")


def _with_copies(ds: Dataset, rows: np.ndarray, labels: np.ndarray, noise: float = 0.0,
                 sources: bool = False) -> tuple[Evidence, np.ndarray]:
    """``ds`` plus copies of ``rows`` carrying ``labels``; returns the evidence and the mask."""
    X = np.asarray(ds.X, dtype=np.float64)
    copies = X[rows] + noise * X.std(axis=0) * np.random.default_rng(0).normal(size=X[rows].shape)
    n, m = ds.n_rows, len(rows)
    src = np.r_[np.full(n, "vendor"), np.full(m, "web")] if sources else None
    out = Dataset(np.r_[X, copies], np.r_[ds.y, labels], ids=[f"a{i}" for i in range(n + m)],
                  sources=src, feature_names=ds.feature_names)
    return Evidence(out, random_state=0), np.r_[np.zeros(n, dtype=bool), np.ones(m, dtype=bool)]


def _flipped(rows: np.ndarray) -> np.ndarray:
    return (WINE.y[rows] + 1) % 3


def test_quiet_on_data_without_copies() -> None:
    # also measured: breast_cancer, digits, synthetic text; text is checked below
    assert not Duplicates().suspicion(Evidence(WINE, random_state=0)).any()


def test_conflicting_exact_copies_on_wine() -> None:
    rows = np.arange(0, 178, 20)  # 9 rows copied with another label (measured AUROC 0.978)
    ev, mask = _with_copies(WINE, rows, _flipped(rows))
    scores = Duplicates().suspicion(ev)
    assert detection_metrics(mask, scores)["auroc"] >= 0.95
    # a pair with two labels: both rows are suspicious, neither more than the other
    np.testing.assert_array_equal(scores[mask], 0.7)
    np.testing.assert_array_equal(scores[rows], 0.7)
    assert np.count_nonzero(scores) == 2 * len(rows)
    reason = Duplicates().explain(ev, np.array([178]))[0]
    assert reason == (f"exact duplicate of row 0 (id 'a0') with label {WINE.y[0]} instead of "
                      f"{_flipped(rows)[0]}")


def test_minority_majority_and_plain_copies() -> None:
    rows = np.array([0, 0, 0, 5, 5])  # row 0: three copies, two relabelled; row 5: two plain copies
    labels = np.r_[_flipped(np.array([0, 0])), WINE.y[0], WINE.y[5], WINE.y[5]]
    ev, _ = _with_copies(WINE, rows, labels)
    scores = Duplicates().suspicion(ev)
    assert scores[0] == pytest.approx(0.7)  # 2 of 4 copies keep the label: a tie
    assert scores[178] == pytest.approx(0.7) and scores[180] == pytest.approx(0.7)
    assert scores[5] == pytest.approx(0.2)  # plain copy in a group of three: 0.15 + 0.05
    ev, _ = _with_copies(WINE, np.array([0, 0, 0]), np.repeat(_flipped(np.array([0])), 3))
    scores = Duplicates().suspicion(ev)
    assert scores[0] == pytest.approx(0.9)  # the lone label among four copies
    np.testing.assert_allclose(scores[178:], 0.4)
    assert "(1 of 4 copies labelled" in Duplicates().explain(ev, np.array([0]))[0]


def test_copies_from_another_source_score_higher() -> None:
    rows = np.array([3, 7])
    ev, mask = _with_copies(WINE, rows, _flipped(rows), sources=True)
    scores = Duplicates().suspicion(ev)
    np.testing.assert_allclose(scores[mask], 0.75)
    assert "the copy comes from source 'vendor', this row from 'web'" in Duplicates().explain(
        ev, np.array([178]))[0]


def test_near_copies_with_another_label() -> None:
    rows = np.arange(0, 178, 20)
    ev, mask = _with_copies(WINE, rows, _flipped(rows), noise=0.01)
    scores = Duplicates().suspicion(ev)
    assert detection_metrics(mask, scores)["auroc"] >= 0.95  # measured 0.978
    np.testing.assert_allclose(scores[mask], 0.6)
    assert Duplicates().explain(ev, np.array([178]))[0].startswith("near duplicate of row 0")
    assert not Duplicates(near=0.0).suspicion(ev).any()


def test_text_copies_compare_normalised_strings() -> None:
    ds = make_text(n_rows=200, random_state=0)
    other = "neg" if ds.y[0] == "pos" else "pos"
    text = np.concatenate([ds.X, ["  " + str(ds.X[0]).upper().replace(" ", "\t ")]])
    ev = Evidence(Dataset(text, np.concatenate([ds.y, [other]])), random_state=0)
    scores = Duplicates().suspicion(ev)
    assert scores[0] == scores[200] == pytest.approx(0.7) and np.count_nonzero(scores) == 2
    assert normalise_text("  Héllo\u00a0 WORLD ") == "héllo world"


def test_frames_with_categories_and_images() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=80), "color": rng.choice(["red", "blue"], 80)})
    frame.loc[1] = frame.loc[0]
    y = np.arange(80) % 2
    y[:2] = [0, 1]
    scores = Duplicates().suspicion(Evidence(Dataset(frame, y), random_state=0))
    assert scores[0] == scores[1] == pytest.approx(0.7)
    # in one continuous dimension some rows are near copies by chance: plain ones stay mild
    assert scores[2:].max() <= 0.15
    images = load_dataset("digits", n_rows=100, random_state=0).X.copy()
    images[1] = images[0]
    groups = exact_groups(images, "image")
    assert groups[0] == groups[1] >= 0 and np.count_nonzero(groups >= 0) == 2


def test_exact_groups_compare_values_not_bytes() -> None:
    X = np.array([[0.0, 1.0], [-0.0, 1.0], [0.0, 2.0], [1.0, 2.0]])
    assert exact_groups(X, "tabular").tolist() == [0, 0, -1, -1]
    assert exact_groups(np.array([[1], [1], [2]]), "tabular").tolist() == [0, 0, -1]


def test_new_rows_are_compared_with_the_fitted_rows_and_their_own_chunk() -> None:
    """Fitted on 120 wine rows, a chunk the evidence never saw: its copies of fitted rows and of
    each other are found and scored by the same table as the fitted rows' copies."""
    import pickle

    X, y = np.asarray(WINE.X, dtype=np.float64), np.asarray(WINE.y)
    order = np.random.default_rng(0).permutation(WINE.n_rows)
    fit, rest = order[:120], order[120:]
    Xf, yf = np.r_[X[fit], X[fit[:1]]], np.r_[y[fit], y[fit[:1]]]  # fitted row 0 has a copy
    ev = Evidence(Dataset(Xf, yf, ids=[f"f{i}" for i in range(121)],
                          feature_names=WINE.feature_names), random_state=0)
    det = Duplicates()
    state = pickle.loads(pickle.dumps(det.fit(ev)))
    new_X = np.r_[X[rest[:3]], X[fit[[5, 0, 6]]], X[fit[7]][None] + 0.01 * X.std(axis=0),
                  X[rest[0]][None]]
    new_y = np.r_[y[rest[:3]], _flipped(fit[[5, 0]]), y[fit[6]], _flipped(fit[[7]]),
                  _flipped(rest[:1])]
    chunk = Dataset(new_X, new_y, ids=[f"n{i}" for i in range(8)], feature_names=WINE.feature_names)
    view = ev.view(chunk)
    scores = det.score(view, state)
    np.testing.assert_allclose(scores.suspicion, [0.7, 0.0, 0.0,  # a copy of new row 7
                                                  0.7,  # another label than its fitted copy
                                                  0.9,  # the lone label among three copies
                                                  0.15,  # a plain copy
                                                  0.6,  # a near copy with another label
                                                  0.7])
    lines = det.reasons(view, scores, np.array([0, 1, 3, 4, 5, 6]))
    assert lines == [
        f"exact duplicate of row 'n7' with label {_flipped(rest[:1])[0]} instead of {y[rest[0]]}",
        "no exact or near copy of this row",
        f"exact duplicate of row 'f5' with label {y[fit[5]]} instead of {_flipped(fit[[5]])[0]}",
        f"exact duplicate of row 'f0' with label {y[fit[0]]} instead of {_flipped(fit[[0]])[0]} "
        f"(1 of 3 copies labelled {_flipped(fit[[0]])[0]})",
        f"exact duplicate of row 'f6', same label {y[fit[6]]}",
        f"near duplicate of row 'f7' with label {y[fit[7]]} instead of {_flipped(fit[[7]])[0]}"]
    # the fitted rows keep their own scores: only the copy inside the sample is seen there
    own = det.score(ev.view(), state).suspicion
    assert np.flatnonzero(own).tolist() == [0, 120] and own[0] == pytest.approx(0.15)


def test_new_rows_from_another_source_score_higher() -> None:
    X, y = np.asarray(WINE.X, dtype=np.float64), np.asarray(WINE.y)
    ev = Evidence(Dataset(X[:100], y[:100], sources=np.full(100, "vendor"),
                          feature_names=WINE.feature_names), random_state=0)
    chunk = Dataset(X[[3, 4]], np.r_[_flipped(np.array([3])), y[4]], sources=["web", "web"],
                    feature_names=WINE.feature_names)
    det = Duplicates()
    view = ev.view(chunk)
    scores = det.score(view, det.fit(ev))
    np.testing.assert_allclose(scores.suspicion, [0.75, 0.2])
    assert det.reasons(view, scores, np.array([1]))[0] == (
        f"exact duplicate of row '4', same label {y[4]}; the copy comes from source 'vendor', "
        "this row from 'web'")
