"""Activation clustering: precise on feature backdoors, quiet on clean data, edge cases."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from poisonguard import Dataset
from poisonguard.attacks import get_attack
from poisonguard.datasets import load_dataset, make_tabular
from poisonguard.detectors import get_detector
from poisonguard.detectors.clusters import Clusters, split_class
from poisonguard.evaluation.metrics import detection_metrics
from poisonguard.evidence import Evidence


@cache
def _backdoor(rate: float) -> tuple[Evidence, np.ndarray]:
    res = get_attack("backdoor")(rate=rate).poison(load_dataset("breast_cancer"),
                                                   rng=np.random.default_rng(0))
    return Evidence(res.dataset, random_state=0), res.mask


@pytest.mark.parametrize("rate", [0.01, 0.1])
def test_flags_feature_backdoor_precisely(rate: float) -> None:
    ev, mask = _backdoor(rate)
    scores = get_detector("clusters").suspicion(ev)
    out = detection_metrics(mask, scores, scores >= 0.5)
    assert out["precision"] >= 0.9 and out["recall"] >= 0.9
    assert out["auroc"] >= 0.95


@pytest.mark.parametrize("case", ["breast_cancer", "tabular"])
def test_quiet_on_clean_data(case: str) -> None:
    ds = load_dataset("breast_cancer") if case == "breast_cancer" else make_tabular(
        n_rows=300, random_state=0)
    scores = Clusters().suspicion(Evidence(ds, random_state=0))
    assert (scores >= 0.5).mean() <= 0.01
    assert np.median(scores) == 0.0


def test_explain_gives_cluster_share() -> None:
    ev, _ = _backdoor(0.1)
    det = Clusters()
    scores = det.suspicion(ev)
    rows = np.concatenate([np.flatnonzero(scores >= 0.5)[:2], np.flatnonzero(scores == 0.0)[:1]])
    lines = det.explain(ev, rows)
    assert all("cluster of class" in line and "silhouette" in line for line in lines[:2])
    assert "no split-off" in lines[2]


def test_tiny_and_constant_classes() -> None:
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(70, 3)), np.ones((2, 3))])
    ev = Evidence(Dataset(X, np.array([0] * 70 + [1, 1])), random_state=0)
    scores = Clusters().suspicion(ev)
    assert scores.shape == (72,) and np.all((scores >= 0) & (scores <= 1))
    assert split_class(np.zeros((25, 5))) is None
    assert split_class(np.ones((2, 5))) is None
