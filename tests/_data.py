"""Small data sets shared by the contract suites (importable because tests/conftest.py exists)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from poisonguard import Dataset


def mixed() -> Dataset:
    """200 rows: a numeric, an integer and a categorical column, a label that needs both kinds
    of column, and two sources."""
    rng = np.random.default_rng(0)
    n = 200
    color = rng.choice(["red", "green", "blue"], n)
    x = rng.normal(size=n)
    y = ((x > 0) ^ (color == "red")).astype(int)
    frame = pd.DataFrame({"x": x, "age": rng.integers(18, 90, n), "color": color})
    return Dataset(frame, y, sources=rng.choice(["a", "b"], n), name="mixed")


def fitted_and_flipped(name: str) -> tuple[object, object, np.ndarray]:
    """Evidence fitted on a seeded 70 % of the built-in data set ``name``, the other 30 % with
    every tenth label moved to the next class, and that flip mask: how the two-phase tests
    score rows the evidence never saw."""
    from poisonguard.datasets import load_dataset
    from poisonguard.evidence import Evidence

    ds = load_dataset(name)
    order = np.random.default_rng(0).permutation(ds.n_rows)
    cut = int(0.7 * ds.n_rows)
    ev = Evidence(ds.take(np.sort(order[:cut])), random_state=0, classes=ds.classes)
    new = ds.take(np.sort(order[cut:]))
    flip = np.arange(new.n_rows) % 10 == 0
    classes = np.asarray(ds.classes)
    y = np.asarray(new.y).copy()
    y[flip] = classes[(np.searchsorted(classes, y[flip]) + 1) % len(classes)]
    return ev, Dataset(np.asarray(new.X), y), flip
