"""Hand-built scan reports for rendering tests: no detector or proxy model involved."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from poisonguard.dataset import Dataset
from poisonguard.scan import ScanReport

DETECTORS = ("label", "neighbors")

MakeReport = Callable[..., ScanReport]


def _features(modality: str, n: int, rng: np.random.Generator) -> Any:
    if modality == "image":
        return rng.integers(0, 256, size=(n, 12, 12, 3), dtype=np.uint8)
    if modality == "text":
        words = np.array(["free", "prize", "meeting", "lunch", "call", "now", "win", "today"])
        return np.array([" ".join(rng.choice(words, size=6)) for _ in range(n)], dtype=object)
    return rng.normal(size=(n, 8))


def make_report(modality: str = "tabular", *, n: int = 300, sources: bool = False,
                evil: str | None = None, budget: int | None = None, seed: int = 0) -> ScanReport:
    """A report over random data: detector scores skewed low, a tail of flagged rows.

    ``evil`` is put into the top row's label, id, reason and source and into the data name.
    """
    rng = np.random.default_rng(seed)
    X = _features(modality, n, rng)
    y = rng.integers(0, 3, size=n).astype(str).astype(object)
    ids = np.array([f"r{i:04d}" for i in range(n)], dtype=object)
    src = rng.choice(["vendor-a", "vendor-b", "crowd"], size=n).astype(object) if sources else None
    scores = {name: rng.random(n) ** (3 + j) for j, name in enumerate(DETECTORS)}
    combined = np.maximum(*scores.values())
    if budget is None:
        flagged, threshold = combined >= 0.5, 0.5
    else:
        flagged = np.zeros(n, dtype=bool)
        flagged[np.argsort(-combined, kind="stable")[:budget]] = True
        threshold = float(combined[flagged].min())
    top = np.argmax(np.stack(list(scores.values()), axis=1), axis=1)
    reason = np.where(flagged, [f"{DETECTORS[t]}: unusual row" for t in top], "").astype(object)
    top_detector = np.where(flagged, [DETECTORS[t] for t in top], "").astype(object)
    if evil is not None:  # the top row gets ``evil`` as its label, in its id, reason and source
        first = int(np.argmax(combined))
        y[first], ids[first], reason[first] = evil, f"id-{evil}", f"label: {evil}"
        top_detector[first] = "label" if flagged[first] else ""
        if src is not None:
            src[first] = evil
    ds = Dataset(X, y, ids=ids, sources=src, modality=modality,  # type: ignore[arg-type]
                 name=f"{evil}.csv" if evil is not None else f"toy-{modality}")
    table = pd.DataFrame({"row_id": ds.ids, "score": combined, "flagged": flagged,
                          "reason": reason.astype(str), "top_detector": top_detector.astype(str),
                          **scores})
    return ScanReport(dataset=ds, table=table, raw=scores, detectors=DETECTORS,
                      threshold=threshold, budget=budget, skipped={"spectral": "needs torch"},
                      timings={"proxy model": 1.25, "total": 2.5}, notes=("a seeded toy",),
                      versions={"poisonguard": "0.1.0", "numpy": "2.0"}, seed=seed)


@pytest.fixture
def report_factory() -> MakeReport:
    return make_report
