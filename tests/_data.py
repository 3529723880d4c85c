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
