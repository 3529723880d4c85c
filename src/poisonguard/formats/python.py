"""Data sets from Python objects, without writing a file: a pandas DataFrame
(:func:`from_frame`, read as a CSV file with the same columns is) and a map-style
``torch.utils.data.Dataset`` of ``(x, y)`` pairs (:func:`from_torch`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.dataset import Dataset, Modality
from poisonguard.errors import DependencyError, InputError

__all__ = ["TORCH_MAX_ROWS", "from_frame", "from_torch"]

TORCH_MAX_ROWS = 10_000_000  # items read from a torch dataset unless max_rows says otherwise


def from_frame(frame: Any, *, label: str = "label", id_col: str | None = None,
               source_col: str | None = None, modality: Modality | None = None,
               name: str = "frame") -> Dataset:
    """A DataFrame as a :class:`Dataset`, typed and checked as :func:`poisonguard.io.load`
    reads a CSV file with the same columns (errors name ``name``, the row and the column).

    Examples
    --------
    >>> import pandas as pd
    >>> ds = from_frame(pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": ["x", "y", "x"]}))
    >>> ds.modality, ds.classes.tolist(), ds.feature_names
    ('tabular', ['x', 'y'], ('a',))
    """
    import pandas as pd

    from poisonguard.io import _check_unique, check_roles, frame_dataset

    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{name}: from_frame takes a pandas DataFrame (got "
                         f"{type(frame).__name__})")
    check_roles(label, id_col, source_col)
    df = frame.reset_index(drop=True)
    df.columns = [str(c) for c in df.columns]
    _check_unique(list(df.columns), Path(name), "frame")
    if not len(df):
        raise InputError(f"{name}: the frame has no rows")
    return frame_dataset(df, Path(name), "frame", label=label, id_col=id_col,
                         source_col=source_col, modality=modality)


def _values(x: Any, torch: Any) -> Any:
    """An item's features as numpy (a tensor detached and moved to the CPU) or a string."""
    if isinstance(x, str):
        return x
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _label(y: Any, torch: Any, i: int) -> Any:
    if isinstance(y, torch.Tensor):
        if y.numel() != 1:
            raise InputError(f"item {i}: the label is a tensor of shape {tuple(y.shape)}, not one "
                             "value")
        return y.item()
    if isinstance(y, (str, int, np.integer, float, np.floating, bool, np.bool_)):
        return y
    raise InputError(f"item {i}: the label is a {type(y).__name__}, not a number or a string")


def _pair(item: Any, i: int) -> tuple[Any, Any]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise InputError(f"item {i}: expected an (x, y) pair, got {type(item).__name__}"
                         + (f" of {len(item)}" if isinstance(item, (tuple, list)) else ""))
    return item[0], item[1]


def from_torch(dataset: Any, *, max_rows: int = TORCH_MAX_ROWS, name: str = "torch") -> Dataset:
    """A map-style ``torch.utils.data.Dataset`` whose items are ``(x, y)`` pairs as a
    :class:`Dataset`: ``x`` a 1-D tensor (tabular), an ``(h, w)``, ``(c, h, w)`` or ``(h, w, c)``
    image with ``c`` 1 or 3 (stored ``(h, w)`` or ``(h, w, 3)``) or a string (text); ``y`` a
    number, a one-value tensor or a string. Every ``x`` must have the first one's shape; the
    items' values are checked against this machine's memory before they are gathered, and at
    most ``max_rows`` items are read."""
    try:
        import torch
    except ImportError:
        raise DependencyError("from_torch needs torch: pip install 'poisonguard[torch]'") from None
    from poisonguard.io import _memory_bytes, _size

    try:
        n = len(dataset)
    except TypeError:
        raise InputError(f"{name}: has no length (an IterableDataset?); from_torch reads "
                         "map-style datasets") from None
    if n == 0:
        raise InputError(f"{name}: the dataset has no items")
    if n > max_rows:
        raise InputError(f"{name}: has {n:,} items, more than max_rows={max_rows:,}")
    x0 = _values(_pair(dataset[0], 0)[0], torch)
    text = isinstance(x0, str)
    shape = () if text else tuple(x0.shape)
    if not text and (x0.dtype.kind not in "iufb" or len(shape) not in (1, 2, 3)):
        raise InputError(f"item 0: x has shape {shape} of {x0.dtype}; expected numbers of 1 "
                         "(tabular), 2 or 3 (image) dimensions, or a string")
    need = n * (8 if text else int(x0.nbytes))
    if need > _memory_bytes():
        raise InputError(f"{name}: {n:,} items of {_size(int(need / n))} need {_size(need)}, more "
                         f"than this machine's memory ({_size(_memory_bytes())})")
    X: Any = np.empty(n, dtype=object) if text else np.empty((n, *shape), dtype=x0.dtype)
    y = []
    for i in range(n):
        x, label = _pair(dataset[i], i)
        xi = _values(x, torch)
        if text != isinstance(xi, str) or (not text and tuple(xi.shape) != shape):
            got = "a string" if isinstance(xi, str) else f"shape {tuple(xi.shape)}"
            want = "a string" if text else f"shape {shape}"
            raise InputError(f"item {i}: x is {got} but item 0 is {want}")
        X[i] = xi
        y.append(_label(label, torch, i))
    modality: Modality = "text" if text else ("tabular" if len(shape) == 1 else "image")
    if len(shape) == 3 and shape[0] in (1, 3) and shape[2] not in (1, 3):
        X = np.moveaxis(X, 1, -1)  # torch's (c, h, w) to (h, w, c)
    if modality == "image" and X.ndim == 4 and X.shape[-1] == 1:
        X = X[..., 0]
    return Dataset(X, np.asarray(y), modality=modality, name=name)
