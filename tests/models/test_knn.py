"""k-nearest-neighbour graph: exact path against scikit-learn, approximate index recall."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.neighbors import NearestNeighbors

from poisonguard.models import knn
from poisonguard.models.knn import nearest_neighbors


def _standardise(E: np.ndarray) -> np.ndarray:
    sd = E.std(axis=0)
    return (E - E.mean(axis=0)) / np.where(sd > 1e-12, sd, 1.0)


def _hidden_layer(n: int, seed: int = 0) -> np.ndarray:
    """A (n, 64) ReLU layer over make_classification data, like the proxy MLP's embedding."""
    X, _ = make_classification(n_samples=n, n_features=20, n_informative=10, n_redundant=5,
                               n_classes=4, n_clusters_per_class=3, random_state=seed)
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(20, 64)) / np.sqrt(20), rng.normal(scale=0.5, size=64)
    return np.maximum(X @ W + b, 0.0).astype(np.float32)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(a, b)) for a, b in zip(found, truth, strict=True)])
                 / truth.shape[1])


def _no_self(neighbors: knn.Neighbors) -> bool:
    return not np.any(neighbors.indices == np.arange(len(neighbors.indices))[:, None])


def test_exact_path_matches_scikit_learn_brute_force_with_duplicates() -> None:
    rng = np.random.default_rng(0)
    E = rng.normal(size=(200, 6))
    E = np.vstack([E, E[:10], E[:3]])  # rows 200-209 copy 0-9, 210-212 copy 0-2
    k = 5
    found = nearest_neighbors(E, k)
    assert found.exact and found.indices.shape == (len(E), k) and _no_self(found)
    sk_d, sk_i = NearestNeighbors(n_neighbors=k + 2, algorithm="brute").fit(_standardise(E)).kneighbors()
    # scikit-learn leaves each row out of its own list when asked without X
    np.testing.assert_allclose(found.distances, sk_d[:, :k], atol=1e-6)
    for row in range(len(E)):
        d, i = np.round(sk_d[row], 9), sk_i[row]
        if d[k - 1] == d[k]:  # a tie at the cut: either row may be kept
            continue
        order = np.lexsort((i, d))[:k]  # ties (copies of a row) by index
        assert found.indices[row].tolist() == i[order].tolist(), row
    # a duplicated row lists its copies first, at distance 0, never itself
    assert found.indices[0, :2].tolist() == [200, 210] and found.distances[0, :2].tolist() == [0.0, 0.0]
    assert found.indices[200, :2].tolist() == [0, 210]


def test_k_is_capped_and_distances_are_sorted() -> None:
    found = nearest_neighbors(np.random.default_rng(1).normal(size=(6, 3)), 10)
    assert found.k == 5 and _no_self(found)
    assert np.all(np.diff(found.distances, axis=1) >= 0)


def test_approximate_index_recall_and_determinism(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knn, "EXACT_UP_TO", 1000)
    E = _hidden_layer(25000)
    E[-40:] = E[7]  # a block of identical rows
    found = nearest_neighbors(E, 10, random_state=3)
    assert not found.exact and found.indices.shape == (25000, 10) and _no_self(found)
    queries = np.random.default_rng(2).choice(len(E), size=600, replace=False)
    Z = _standardise(E.astype(np.float64))
    truth = NearestNeighbors(n_neighbors=11).fit(Z).kneighbors(Z[queries], return_distance=False)
    truth = np.array([[j for j in row if j != q][:10] for row, q in zip(truth, queries, strict=True)])
    keep = ~np.isin(queries, [7, *range(len(E) - 40, len(E))])  # ties there: any copies will do
    assert _recall(found.indices[queries[keep]], truth[keep]) >= 0.9
    copies = [7, *range(len(E) - 40, len(E))]
    assert np.isin(found.indices[copies], copies).all() and (found.distances[copies] == 0).all()
    again = nearest_neighbors(E, 10, random_state=3)
    assert again.indices.tobytes() == found.indices.tobytes()
    assert again.distances.tobytes() == found.distances.tobytes()


def test_approximate_index_with_tiny_cells_and_k_larger_than_a_cell(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(knn, "EXACT_UP_TO", 0)
    E = _hidden_layer(300, seed=1)  # ~17 cells of ~17 rows
    found = nearest_neighbors(E, 60)
    assert not found.exact and found.k == 60 and _no_self(found)
    assert (found.indices >= 0).all() and np.all(np.diff(found.distances, axis=1) >= 0)
    assert all(len(np.unique(row)) == 60 for row in found.indices)
    exact = NearestNeighbors(n_neighbors=60).fit(_standardise(E.astype(np.float64))).kneighbors(
        return_distance=False)
    assert _recall(found.indices, exact) >= 0.9
    two = nearest_neighbors(E[:3], 5)
    assert two.k == 2 and _no_self(two)
