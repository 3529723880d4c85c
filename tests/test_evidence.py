"""Evidence in two phases: fitted on some rows, viewed on others.

A view of the fitted rows is the evidence itself; a view of rows the evidence never saw
encodes them with the fitted featuriser, scores them with the fitted proxies and finds their
nearest fitted rows, so a detector can score a chunk it was not fitted on.
"""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.datasets import load_dataset
from poisonguard.errors import InputError
from poisonguard.evidence import Evidence


@pytest.fixture(scope="module")
def halves() -> tuple[Evidence, object, object]:
    ds = load_dataset("breast_cancer")
    order = np.random.default_rng(0).permutation(ds.n_rows)
    fit, other = ds.take(np.sort(order[:300])), ds.take(np.sort(order[300:]))
    return Evidence(fit, random_state=0), fit, other


def test_view_of_fitted_rows_is_the_evidence(halves: tuple[Evidence, object, object]) -> None:
    ev, _, _ = halves
    view = ev.view()
    assert view.in_sample
    assert view.proba is ev.proba
    assert view.neighbors is ev.neighbors
    assert view.embedding is ev.embedding


def test_view_of_new_rows_comes_from_fitted_state(halves: tuple[Evidence, object, object]) -> None:
    ev, _, other = halves
    view = ev.view(other)  # type: ignore[arg-type]
    n = other.n_rows  # type: ignore[attr-defined]
    assert not view.in_sample
    assert view.features.shape == (n, ev.features.shape[1])
    np.testing.assert_allclose(view.proba.sum(axis=1), 1.0)
    # the fitted model predicts rows it never saw about as well as the out-of-fold model
    acc_new = float((view.proba.argmax(axis=1) == view.labels).mean())
    acc_fit = float((ev.proba.argmax(axis=1) == ev.labels).mean())
    assert acc_new >= 0.9 and abs(acc_new - acc_fit) < 0.05
    assert view.embedding.shape == (n, ev.embedding.shape[1])
    assert view.losses.shape == (n, 1)
    nb = view.neighbors
    assert nb.indices.shape == (n, ev.k) and nb.indices.max() < ev.n_rows
    assert np.all(np.diff(nb.distances, axis=1) >= 0)
    # neighbours are found among the fitted rows by the same standardised distance
    fnb = view.feature_neighbors
    assert fnb.indices.shape == (n, ev.feature_k)
    # most new rows' nearest fitted rows share their label
    share = (ev.labels[nb.indices] == view.labels[:, None]).mean()
    assert share >= 0.85


def test_fitted_row_seen_again_is_its_own_nearest(halves: tuple[Evidence, object, object]) -> None:
    ev, fit, _ = halves
    again = ev.view(fit.take(np.arange(20)))  # type: ignore[attr-defined]
    assert not again.in_sample
    np.testing.assert_array_equal(again.neighbors.indices[:, 0], np.arange(20))
    np.testing.assert_allclose(again.neighbors.distances[:, 0], 0.0, atol=1e-5)
    np.testing.assert_allclose(again.embedding, ev.embedding[:20], rtol=1e-5, atol=1e-5)


def test_approximate_index_finds_most_true_neighbours() -> None:
    from poisonguard.models.knn import NeighborIndex

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 16)) * 4
    sample = centres[rng.integers(0, 30, 25_000)] + rng.normal(size=(25_000, 16))
    queries = centres[rng.integers(0, 30, 500)] + rng.normal(size=(500, 16))
    index = NeighborIndex(sample, random_state=0)
    assert not index.exact
    got = index.query(queries, 10)
    Z = (sample - index.mean) / index.scale
    Q = (queries - index.mean) / index.scale
    d2 = (Q**2).sum(1)[:, None] - 2 * Q @ Z.T + (Z**2).sum(1)[None, :]
    truth = np.argsort(d2, axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got.indices, truth, strict=True)])
    assert recall >= 0.9


def test_label_outside_the_fitted_classes_is_named(halves: tuple[Evidence, object, object]) -> None:
    ev, _, other = halves
    from poisonguard.dataset import Dataset

    odd = Dataset(X=np.asarray(other.X)[:3], y=np.array(["x", "x", "x"]))  # type: ignore[attr-defined]
    with pytest.raises(InputError, match="label 'x' is not one of the fitted classes"):
        _ = ev.view(odd).labels
