"""``neighbors``: the share of a row's nearest neighbours labelled otherwise, for fitted rows
and for rows the evidence never saw."""

from __future__ import annotations

from functools import cache

import numpy as np

from poisonguard import Dataset
from poisonguard.datasets import load_dataset
from poisonguard.detectors import get_detector
from poisonguard.detectors.neighbors import neighbor_label_distribution
from poisonguard.evidence import Evidence


@cache
def _fitted() -> tuple[Dataset, Evidence]:
    ds = load_dataset("digits").take(np.arange(1200))
    return ds, Evidence(ds, random_state=0)


def test_fitted_rows_score_the_squared_disagreement() -> None:
    _, ev = _fitted()
    score = get_detector("neighbors").suspicion(ev)
    nb = ev.neighbors.indices
    expected = (ev.labels[nb] != ev.labels[:, None]).mean(axis=1) ** 2
    np.testing.assert_array_equal(score, expected)


def test_new_copies_are_judged_by_their_fitted_twins_labels() -> None:
    """A new exact copy of a fitted row whose neighbours all share its label scores 0 under
    that label and 1 under another (its twin at distance 0 and the twin's neighbours, all
    fitted rows, disagree); the reason counts them from the payload."""
    ds, ev = _fitted()
    det = get_detector("neighbors")
    state = det.fit(ev)
    own = det.score(ev.view(), state).suspicion
    rows = np.flatnonzero(own == 0)[:50]
    X, y = np.asarray(ds.X)[rows], np.asarray(ds.y)[rows]
    same = det.score(ev.view(Dataset(X, y)), state).suspicion
    view = ev.view(Dataset(X, (y + 1) % 10))
    other = det.score(view, state)
    assert (same == 0).mean() >= 0.95  # measured: all 50
    assert (other.suspicion == 1).mean() >= 0.95  # measured: all 50
    (reason,) = det.reasons(view, other, np.array([0]))
    assert reason == f"10 of 10 nearest rows are not labelled {(y[0] + 1) % 10} (most: {y[0]})"


def test_label_distribution_of_new_rows_counts_fitted_labels() -> None:
    """For rows outside the fitted sample the neighbours' labels and the prior are the fitted
    rows' own (the new rows' labels never enter)."""
    _, ev = _fitted()
    rest = load_dataset("digits").take(np.arange(1200, 1300))
    view = ev.view(rest)
    nb = view.feature_neighbors.indices
    q = neighbor_label_distribution(view, neighbors=view.feature_neighbors)
    prior = np.bincount(ev.labels, minlength=10) / ev.n_rows
    counts = np.stack([np.bincount(ev.labels[row], minlength=10) for row in nb])
    np.testing.assert_allclose(q, (counts + prior) / (nb.shape[1] + 1.0))
    np.testing.assert_allclose(q.sum(axis=1), 1.0)
    relabelled = ev.view(Dataset(np.asarray(rest.X), (np.asarray(rest.y) + 1) % 10))
    np.testing.assert_array_equal(
        neighbor_label_distribution(relabelled, neighbors=relabelled.feature_neighbors), q)
