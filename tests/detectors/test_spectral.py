"""Spectral signatures: quality floors on seeded backdoors, scale across classes, edge cases."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from poisonguard import Dataset
from poisonguard.attacks import get_attack
from poisonguard.datasets import load_dataset
from poisonguard.detectors import get_detector
from poisonguard.detectors.spectral import Spectral, whiten_class
from poisonguard.evaluation.metrics import detection_metrics
from poisonguard.evidence import Evidence


@cache
def _backdoor(name: str, rate: float, n_rows: int | None = None) -> tuple[Evidence, np.ndarray]:
    ds = load_dataset(name, n_rows=n_rows, random_state=0) if n_rows else load_dataset(name)
    res = get_attack("backdoor")(rate=rate).poison(ds, rng=np.random.default_rng(0))
    return Evidence(res.dataset, random_state=0), res.mask


def test_finds_patch_backdoor_on_digits() -> None:
    ev, mask = _backdoor("digits", 0.05, 900)
    scores = get_detector("spectral").suspicion(ev)
    assert detection_metrics(mask, scores)["auroc"] >= 0.9


@pytest.mark.parametrize("rate", [0.01, 0.05, 0.1])
def test_finds_feature_backdoor_on_breast_cancer(rate: float) -> None:
    ev, mask = _backdoor("breast_cancer", rate)
    scores = get_detector("spectral").suspicion(ev)
    out = detection_metrics(mask, scores)
    assert out["auroc"] >= 0.95
    assert out["recall_at_fpr05"] >= 0.9


def test_robust_beats_classic_on_patch_backdoor() -> None:
    ev, mask = _backdoor("digits", 0.05, 900)
    robust = detection_metrics(mask, Spectral().suspicion(ev))["auroc"]
    classic = detection_metrics(mask, Spectral(robust=False).suspicion(ev))["auroc"]
    assert robust > classic


def test_explain_names_the_class() -> None:
    ev, mask = _backdoor("breast_cancer", 0.05)
    rows = np.flatnonzero(mask)[:2]
    lines = Spectral().explain(ev, rows)
    assert len(lines) == 2 and all("robust SDs" in line and "class" in line for line in lines)


def test_tiny_classes_and_constant_rows_score_zero() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(70, 3)), np.ones((2, 3))])
    y = np.array([0] * 70 + [1, 1])
    ev = Evidence(Dataset(X, y), random_state=0)
    for det in (Spectral(), Spectral(robust=False)):
        scores = det.suspicion(ev)
        assert scores.shape == (72,) and np.all(np.isfinite(scores))
        assert np.all(scores[70:] == 0.0)


def test_whiten_class_handles_constant_and_small_input() -> None:
    assert whiten_class(np.zeros((20, 4))).coords.shape == (20, 0)
    assert whiten_class(np.ones((3, 4))).coords.shape == (3, 0)
    white = whiten_class(np.random.default_rng(1).normal(size=(40, 6)))
    assert white.coords.shape[0] == 40 and white.core.sum() >= 20


def _fitted_on_part(rate: float) -> tuple[Evidence, Dataset, np.ndarray, np.ndarray]:
    """A patch backdoor of digits: evidence fitted on a seeded 70 % of the rows, the other 30 %,
    and the poison mask of each part."""
    ds = load_dataset("digits", n_rows=900, random_state=0)
    res = get_attack("backdoor")(rate=rate).poison(ds, rng=np.random.default_rng(0))
    perm = np.random.default_rng(1).permutation(ds.n_rows)
    fit_rows, new_rows = np.sort(perm[:630]), np.sort(perm[630:])
    ev = Evidence(res.dataset.take(fit_rows), random_state=0, classes=res.dataset.classes)
    return ev, res.dataset.take(new_rows), res.mask[fit_rows], res.mask[new_rows]


def test_new_backdoored_rows_score_beyond_the_fitted_clean_rows() -> None:
    """Rows the state was not fitted on are whitened with their class's fitted core: every new
    triggered row (measured: 8.0 and up) lies beyond the 95th percentile of the fitted clean
    rows (4.2), and the new rows rank as well as the fitted ones."""
    ev, new, fit_mask, new_mask = _fitted_on_part(0.05)
    det = Spectral()
    state = det.fit(ev)
    own = det.score(ev.view(), state).suspicion
    scored = det.score(ev.view(new), state)
    assert new_mask.sum() >= 10
    assert scored.suspicion[new_mask].min() > np.quantile(own[~fit_mask], 0.95)
    assert detection_metrics(new_mask, scored.suspicion)["auroc"] >= 0.95
    top = np.argsort(-scored.suspicion, kind="stable")[:1]
    line = det.reasons(ev.view(new), scored, top)[0]
    assert "robust SDs" in line and "fitted rows of that class" in line


@pytest.mark.parametrize("robust", [True, False])
def test_new_rows_are_scored_with_their_given_labels_class(robust: bool) -> None:
    """A new copy of a fitted row scores as the row does; the same images labelled 6 instead of
    0 are scored against class 6's core and lie beyond every fitted row of class 6 (robust:
    4.7 and up against at most 3.6)."""
    ds = load_dataset("digits", n_rows=900, random_state=0)
    ev = Evidence(ds, random_state=0)
    det = Spectral(robust=robust)
    state = det.fit(ev)
    own = det.score(ev.view(), state).suspicion
    X, y = np.asarray(ds.X), np.asarray(ds.y)
    rows = np.flatnonzero(y == 0)[:10]
    copies = det.score(ev.view(Dataset(X[rows], y[rows])), state).suspicion
    np.testing.assert_allclose(copies, own[rows], rtol=1e-9, atol=1e-12)
    if robust:
        flipped = det.score(ev.view(Dataset(X[rows], np.full(10, 6, dtype=y.dtype))), state)
        assert flipped.suspicion.min() > own[y == 6].max()
