"""``outlier``: isolated or abnormally crowded rows in embedding space."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from poisonguard import Dataset
from poisonguard.attacks import get_attack
from poisonguard.datasets import load_dataset
from poisonguard.detectors import calibrate
from poisonguard.detectors.outlier import Outlier, knn_distance, local_outlier_factor
from poisonguard.evaluation.metrics import detection_metrics
from poisonguard.evidence import Evidence

# models/proxies.py asks MLPClassifier for a batch of 64 rows even on smaller data
SMALL_DATA = pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")


@cache
def attacked(attack: str) -> tuple[Evidence, np.ndarray]:
    res = get_attack(attack)(rate=0.05).poison(load_dataset("wine"), rng=np.random.default_rng(0))
    return Evidence(res.dataset, random_state=0), res.mask


def _graph(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.abs(points[:, None] - points[None, :])
    np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, axis=1)


def test_lof_is_about_one_inside_a_cluster_and_large_for_a_lone_point() -> None:
    points = np.r_[np.linspace(0.0, 1.0, 20), 10.0]
    idx, dist = _graph(points, 3)
    lof = local_outlier_factor(idx, dist)
    assert np.argmax(lof) == 20 and lof[20] > 5
    assert np.all(np.abs(lof[3:17] - 1.0) < 0.2)
    assert np.argmax(knn_distance(dist)) == 20


def test_lof_stays_finite_on_exact_copies() -> None:
    idx, dist = _graph(np.zeros(6), 2)
    assert np.all(np.isfinite(local_outlier_factor(idx, dist)))


@pytest.mark.parametrize(("attack", "floor"), [("feature-collision", 0.95), ("backdoor", 0.9),
                                               ("availability", 0.75)])
def test_quality_floor_on_wine(attack: str, floor: float) -> None:
    # measured on wine: feature-collision 0.999, backdoor 0.976, availability 0.844
    ev, mask = attacked(attack)
    assert detection_metrics(mask, Outlier().suspicion(ev))["auroc"] >= floor


def test_collided_poisons_are_crowded_not_isolated() -> None:
    ev, mask = attacked("feature-collision")
    scores = Outlier().suspicion(ev)
    top = np.argsort(-scores, kind="stable")[: int(mask.sum())]
    assert mask[top].mean() >= 0.8
    assert all(r.startswith("crowded: ") for r in Outlier().explain(ev, top[mask[top]]))
    # without the crowded score the collided rows look ordinary
    assert detection_metrics(mask, Outlier(crowding=False).suspicion(ev))["auroc"] < 0.5


def test_quiet_on_clean_data_and_reasons_for_isolated_rows() -> None:
    ev = Evidence(load_dataset("wine"), random_state=0)
    scores = Outlier().suspicion(ev)
    assert (calibrate(scores, "tail") >= 0.5).mean() <= 0.08  # measured: 10 of 178
    (reason,) = Outlier().explain(ev, np.array([int(np.argmax(scores))]))
    assert reason.startswith("isolated: ") and "LOF" in reason and "forest z=" in reason


def test_forest_is_optional_and_seeded() -> None:
    ev, _ = attacked("backdoor")
    assert set(Outlier(forest=False).components(ev)) == {"knn", "lof"}
    again = Evidence(ev.dataset, random_state=0)
    assert Outlier().suspicion(ev).tobytes() == Outlier().suspicion(again).tobytes()


@SMALL_DATA
@pytest.mark.parametrize("X", [np.zeros((4, 3)), np.array([[0.0], [1.0], [2.0], [50.0]])])
def test_tiny_and_constant_data_give_finite_scores(X: np.ndarray) -> None:
    ev = Evidence(Dataset(X, [0, 1, 0, 1]), random_state=0)
    scores = Outlier().suspicion(ev)
    assert scores.shape == (4,) and np.all(np.isfinite(scores))
    assert len(Outlier().explain(ev, np.arange(4))) == 4
