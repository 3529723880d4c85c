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


def test_new_rows_of_the_fitted_poison_cluster_get_its_probability() -> None:
    """Fitted on a seeded 70 % of a 10 % feature backdoor of breast_cancer, the state assigns
    each of the other rows to its class's nearer fitted centre: every new triggered row gets
    the probability of the fitted poison cluster (measured 0.85), the new clean rows stay
    under 0.5, and a new copy of a fitted row scores exactly as it does."""
    ds = load_dataset("breast_cancer")
    res = get_attack("backdoor")(rate=0.1).poison(ds, rng=np.random.default_rng(0))
    perm = np.random.default_rng(1).permutation(ds.n_rows)
    cut = int(0.7 * ds.n_rows)
    fit_rows, new_rows = np.sort(perm[:cut]), np.sort(perm[cut:])
    ev = Evidence(res.dataset.take(fit_rows), random_state=0, classes=res.dataset.classes)
    det = Clusters()
    state = det.fit(ev)
    own = det.score(ev.view(), state).suspicion
    cluster_prob = own[res.mask[fit_rows]]
    assert cluster_prob.min() >= 0.5 and np.unique(cluster_prob).size == 1
    new = res.dataset.take(new_rows)
    scored = det.score(ev.view(new), state)
    new_mask = res.mask[new_rows]
    assert new_mask.sum() >= 10
    np.testing.assert_array_equal(scored.suspicion[new_mask], cluster_prob[0])
    assert scored.suspicion[~new_mask].max() < 0.5
    line = det.reasons(ev.view(new), scored, np.flatnonzero(new_mask)[:1])[0]
    assert "cluster of class" in line and "silhouette" in line
    copies = ev.dataset.take(np.arange(40))
    np.testing.assert_array_equal(det.score(ev.view(copies), state).suspicion, own[:40])
