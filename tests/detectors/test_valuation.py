"""``valuation``: KNN-Shapley values on the neighbour graph."""

from __future__ import annotations

from functools import cache
from itertools import combinations
from math import comb

import numpy as np
import pytest

from poisonguard import Dataset
from poisonguard.attacks import get_attack
from poisonguard.datasets import load_dataset
from poisonguard.detectors import calibrate, get_detector
from poisonguard.detectors.valuation import KnnShapley, knn_shapley
from poisonguard.evaluation.metrics import detection_metrics
from poisonguard.evidence import Evidence

# models/proxies.py asks MLPClassifier for a batch of 64 rows even on smaller data
SMALL_DATA = pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")


@cache
def flipped(name: str) -> tuple[Evidence, np.ndarray]:
    res = get_attack("label-flip")(rate=0.1).poison(load_dataset(name), rng=np.random.default_rng(0))
    return Evidence(res.dataset, random_state=0), res.mask


def _brute_force(match: np.ndarray, big_k: int) -> np.ndarray:
    """Shapley values of the neighbours (nearest first) of one validation point, by subsets."""
    k = len(match)

    def utility(subset: tuple[int, ...]) -> float:
        return float(sum(match[j] for j in sorted(subset)[:big_k])) / big_k

    values = np.zeros(k)
    for i in range(k):
        others = [j for j in range(k) if j != i]
        for size in range(k):
            for subset in combinations(others, size):
                gain = utility((*subset, i)) - utility(subset)
                values[i] += gain / (k * comb(k - 1, size))
    return values


@pytest.mark.parametrize("big_k", [1, 2, 3, 5])
def test_recursion_matches_the_shapley_definition(big_k: int) -> None:
    rng = np.random.default_rng(big_k)
    n, k = 6, 5
    indices = np.array([np.roll(np.delete(np.arange(n), i), -i)[:k] for i in range(n)])
    labels = rng.integers(0, 2, n)
    expected = np.zeros(n)
    for v in range(n):
        np.add.at(expected, indices[v], _brute_force(labels[indices[v]] == labels[v], big_k))
    np.testing.assert_allclose(knn_shapley(indices, labels, big_k), expected, atol=1e-12)


def test_values_add_up_to_the_neighbour_accuracy() -> None:
    ev, _ = flipped("wine")
    idx, labels = ev.neighbors.indices, ev.labels
    accuracy = (labels[idx[:, :5]] == labels[:, None]).sum() / 5
    assert knn_shapley(idx, labels, 5).sum() == pytest.approx(accuracy)


def test_finds_random_label_flips_on_wine_and_breast_cancer() -> None:
    # measured: wine 0.975, breast_cancer 0.960 (digits 0.999)
    for name in ("wine", "breast_cancer"):
        ev, mask = flipped(name)
        assert detection_metrics(mask, KnnShapley().suspicion(ev))["auroc"] >= 0.93, name


def test_quiet_on_clean_data() -> None:
    ev = Evidence(load_dataset("wine"), random_state=0)
    flagged = calibrate(get_detector("valuation").suspicion(ev), "tail") >= 0.5
    assert flagged.sum() <= 2  # measured: 0


def test_explain_names_the_value_and_the_disagreement() -> None:
    ev, _ = flipped("wine")
    scores = KnnShapley().suspicion(ev)
    row = int(np.argmax(scores))
    (reason,) = KnnShapley().explain(ev, np.array([row]))
    assert reason.startswith(f"KNN-Shapley value {-scores[row]:+.3f}")
    assert "rows it is a nearest neighbour of" in reason


@SMALL_DATA
def test_tiny_data_and_a_class_with_one_row() -> None:
    X = np.array([[0.0], [0.1], [0.2], [5.0]])
    ev = Evidence(Dataset(X, [0, 0, 0, 1]), random_state=0)
    scores = KnnShapley(n_neighbors=50).suspicion(ev)
    assert scores.shape == (4,) and np.all(np.isfinite(scores))
    assert knn_shapley(np.empty((3, 0), dtype=np.int64), np.array([0, 1, 0]), 5).tolist() == [0, 0, 0]
