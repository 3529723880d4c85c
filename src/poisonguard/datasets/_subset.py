"""Seeded stratified row subsets, shared by every loader's ``n_rows`` option."""

from __future__ import annotations

from typing import Any

import numpy as np

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["check_n_rows", "check_seed", "stratified_index", "subset"]


def check_n_rows(n_rows: Any, total: int | None = None) -> int:
    """Return ``n_rows`` as an int in ``[1, total]``, else raise a one-line :class:`InputError`."""
    if isinstance(n_rows, bool) or not isinstance(n_rows, int | np.integer) or n_rows < 1:
        raise InputError(f"'n_rows' must be a positive integer (got {n_rows!r})")
    if total is not None and n_rows > total:
        raise InputError(f"'n_rows' must be at most {total}, the size of the data set "
                         f"(got {n_rows})")
    return int(n_rows)


def check_seed(random_state: Any) -> int:
    """Return ``random_state`` as an int, else raise a one-line :class:`InputError`."""
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise InputError(f"'random_state' must be an integer seed (got {random_state!r})")
    return int(random_state)


def stratified_index(y: np.ndarray, n_rows: int, random_state: int) -> np.ndarray:
    """Sorted positions of ``n_rows`` rows drawn without replacement, class shares kept.

    Each class gets ``n_rows * share`` rows rounded down; the rows left over go to the
    classes with the largest remainders (ties: smaller label first). The result depends only
    on ``y``, ``n_rows`` and ``random_state``.
    """
    n_rows = check_n_rows(n_rows, len(y))
    rng = np.random.default_rng(check_seed(random_state))
    classes, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    quota = counts * n_rows / len(y)
    take = np.floor(quota).astype(np.int64)
    left = n_rows - int(take.sum())
    if left:
        order = np.lexsort((np.arange(len(classes)), -(quota - take)))
        take[order[:left]] += 1
    picked = [rng.permutation(np.flatnonzero(inverse == k))[: take[k]]
              for k in range(len(classes))]
    return np.sort(np.concatenate(picked))


def subset(ds: Dataset, n_rows: int | None, random_state: int) -> Dataset:
    """``ds`` itself when ``n_rows`` is None, else a stratified subset keeping the row ids."""
    if n_rows is None:
        return ds
    return ds.take(stratified_index(ds.y, n_rows, random_state))
