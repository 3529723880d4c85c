"""Contract suite: every registered detector is pure, deterministic, finite, one score per row."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from _data import mixed
from poisonguard.datasets import load_dataset, make_tabular, make_text
from poisonguard.detectors import DETECTORS, get_detector
from poisonguard.evidence import Evidence

DATA = {
    "image": lambda: load_dataset("digits", n_rows=300, random_state=0),
    "tabular": lambda: make_tabular(n_rows=200, random_state=0),
    "mixed": mixed,
    "text": lambda: make_text(n_rows=200, random_state=0),
}


@cache
def evidence(modality: str) -> Evidence:
    ds = DATA[modality]()
    return Evidence(ds, reference=ds, random_state=0)


@pytest.mark.parametrize("modality", sorted(DATA))
@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_contract(name: str, modality: str) -> None:
    ev = evidence(modality)
    det = get_detector(name)
    assert det.name == name and det.summary and det.requires
    assert det.calibration in ("probability", "tail")
    if det.applies(ev) is not None:
        pytest.skip(f"{name} does not apply: {det.applies(ev)}")
    before = ev.dataset.X.copy() if hasattr(ev.dataset.X, "copy") else ev.dataset.X
    first = np.asarray(det.suspicion(ev), dtype=np.float64)
    again = np.asarray(get_detector(name).suspicion(ev), dtype=np.float64)
    assert first.shape == (ev.n_rows,)
    assert np.all(np.isfinite(first))
    np.testing.assert_array_equal(first, again)
    if det.calibration == "probability":
        assert first.min() >= 0.0 and first.max() <= 1.0
    rows = np.argsort(-first, kind="stable")[:3]
    reasons = det.explain(ev, rows)
    assert len(reasons) == 3 and all(isinstance(r, str) and r for r in reasons)
    if isinstance(before, np.ndarray):
        np.testing.assert_array_equal(ev.dataset.X, before)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_rebuilt_evidence_gives_same_bytes(name: str) -> None:
    ds = make_tabular(n_rows=150, random_state=3)
    a = Evidence(ds, reference=ds, random_state=7)
    b = Evidence(ds, reference=ds, random_state=7)
    det = get_detector(name)
    assert np.asarray(det.suspicion(a)).tobytes() == np.asarray(det.suspicion(b)).tobytes()


@cache
def halves(modality: str) -> tuple[Evidence, object]:
    """Evidence fitted on the first 70 % of the rows, and the other 30 %."""
    ds = DATA[modality]()
    cut = int(0.7 * ds.n_rows)
    fitted = ds.take(np.arange(cut))
    return Evidence(fitted, reference=ds, random_state=0, classes=ds.classes), ds.take(
        np.arange(cut, ds.n_rows))


TWO_PHASE = sorted(name for name, cls in DETECTORS.items() if cls.two_phase)


@pytest.mark.parametrize("modality", sorted(DATA))
@pytest.mark.parametrize("name", TWO_PHASE)
def test_two_phase_scores_rows_it_was_not_fitted_on(name: str, modality: str) -> None:
    """fit on some rows, score others: one finite score per new row, reasons from the payload,
    and scoring the fitted rows through the state gives the one-phase scores."""
    ev, rest = halves(modality)
    det = get_detector(name)
    if det.applies(ev) is not None:
        pytest.skip(f"{name} does not apply: {det.applies(ev)}")
    state = det.fit(ev)
    own = det.score(ev.view(), state)
    np.testing.assert_array_equal(own.suspicion, det.suspicion(ev))
    new = det.score(ev.view(rest), state)  # type: ignore[arg-type]
    assert new.suspicion.shape == (rest.n_rows,)  # type: ignore[attr-defined]
    assert np.all(np.isfinite(new.suspicion))
    if det.calibration == "probability":
        assert new.suspicion.min() >= 0.0 and new.suspicion.max() <= 1.0
    rows = np.argsort(-new.suspicion, kind="stable")[:3]
    reasons = det.reasons(ev.view(rest), new, rows)  # type: ignore[arg-type]
    assert len(reasons) == 3 and all(isinstance(r, str) and r for r in reasons)
    # the state travels to a worker: it survives a pickle round trip with the same scores
    import pickle

    again = det.score(ev.view(rest), pickle.loads(pickle.dumps(state)))  # type: ignore[arg-type]
    np.testing.assert_array_equal(again.suspicion, new.suspicion)


def test_outlier_state_scores_a_far_row_high() -> None:
    """A new row far from every fitted row scores beyond every fitted row; a copy of a fitted
    row scores like it."""
    ds = make_tabular(n_rows=300, random_state=0)
    ev = Evidence(ds, random_state=0)
    det = get_detector("outlier")
    state = det.fit(ev)
    own = det.score(ev.view(), state).suspicion
    X = np.asarray(ds.X, dtype=np.float64)
    far = type(ds)(X=np.vstack([X[0] + 50.0 * X.std(axis=0), X[5]]), y=np.asarray(ds.y)[[0, 5]])
    new = det.score(ev.view(far), state).suspicion
    assert new[0] > own.max()
    assert new[1] < np.quantile(own, 0.99)
