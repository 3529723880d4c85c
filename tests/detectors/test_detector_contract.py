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
