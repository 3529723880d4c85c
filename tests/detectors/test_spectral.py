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
