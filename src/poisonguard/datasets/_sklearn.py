"""The small data sets bundled with scikit-learn: digits (as images), breast cancer, wine, iris."""

from __future__ import annotations

from typing import Any

import numpy as np

from poisonguard.dataset import Dataset
from poisonguard.datasets._subset import subset

__all__ = ["load_breast_cancer", "load_digits", "load_iris", "load_wine"]


def _tabular(bunch: Any, name: str, n_rows: int | None, random_state: int) -> Dataset:
    ds = Dataset(np.asarray(bunch.data, dtype=np.float64), np.asarray(bunch.target),
                 feature_names=[str(f) for f in bunch.feature_names], modality="tabular",
                 name=name)
    return subset(ds, n_rows, random_state)


def load_digits(*, n_rows: int | None = None, random_state: int = 0) -> Dataset:
    """Handwritten digits as 8x8 images: X float64 ``(1797, 8, 8)`` in 0..16, labels 0..9.

    ``n_rows`` takes a seeded stratified subset; row ids are the original row numbers.

    Examples
    --------
    >>> ds = load_digits(n_rows=100, random_state=0)
    >>> ds.X.shape, ds.modality, len(ds.classes)
    ((100, 8, 8), 'image', 10)
    """
    from sklearn.datasets import load_digits as _load

    bunch = _load()
    ds = Dataset(np.asarray(bunch.images, dtype=np.float64), np.asarray(bunch.target),
                 modality="image", name="digits")
    return subset(ds, n_rows, random_state)


def load_breast_cancer(*, n_rows: int | None = None, random_state: int = 0) -> Dataset:
    """Wisconsin breast cancer: 569 rows, 30 float features, labels 0 (malignant) / 1 (benign)."""
    from sklearn.datasets import load_breast_cancer as _load

    return _tabular(_load(), "breast_cancer", n_rows, random_state)


def load_wine(*, n_rows: int | None = None, random_state: int = 0) -> Dataset:
    """Wine cultivars: 178 rows, 13 float features, labels 0..2."""
    from sklearn.datasets import load_wine as _load

    return _tabular(_load(), "wine", n_rows, random_state)


def load_iris(*, n_rows: int | None = None, random_state: int = 0) -> Dataset:
    """Iris flowers: 150 rows, 4 float features, labels 0..2."""
    from sklearn.datasets import load_iris as _load

    return _tabular(_load(), "iris", n_rows, random_state)
