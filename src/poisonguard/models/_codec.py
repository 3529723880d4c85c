"""A reversible numeric encoding of a dataset's features, for attacks that craft rows.

Crafting attacks (availability, clean-label, feature collision) move points in a continuous
space; the codec maps tabular, categorical and image features there and back. Dates are days
since 1970-01-01. Categorical columns are one-hot on the way in and take the largest coordinate
on the way out (a missing value is its own category and decodes to missing). Missing numbers
are encoded as the column's median, so crafted rows never hold missing numbers.
High-cardinality categorical columns (see :func:`~poisonguard.models._tabular.plan_columns`)
are left out of the space: crafted rows take their most frequent value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.models._tabular import (
    MISSING,
    as_categories,
    as_numbers,
    column_medians,
    plan_columns,
)

__all__ = ["NumericCodec", "encode_features"]


@dataclass(frozen=True)
class NumericCodec:
    """Encode a dataset's ``X`` to floats ``(n, p)`` and decode crafted rows back.

    ``lo`` and ``hi`` are the per-coordinate bounds seen in the data: crafted rows stay inside.
    ``fill`` is the median that stands for a missing number, per numeric column (frames) or per
    coordinate (arrays); ``fixed`` the value every crafted row gets in a column left out.
    """

    template: Dataset
    numeric: tuple[str, ...]
    categories: tuple[tuple[str, tuple[Any, ...]], ...]
    lo: np.ndarray
    hi: np.ndarray
    fill: np.ndarray
    fixed: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def fit(cls, dataset: Dataset) -> NumericCodec:
        """Learn the encoding (column kinds, categories, medians, bounds) from ``dataset``."""
        if dataset.modality == "text":
            raise InputError("this attack crafts feature values and needs tabular or image data "
                             "(got text)")
        numeric: tuple[str, ...] = ()
        cats: tuple[tuple[str, tuple[Any, ...]], ...] = ()
        fixed: tuple[tuple[str, Any], ...] = ()
        if dataset.is_frame:
            frame = dataset.X
            plan = {c.name: c for c in plan_columns(frame)}
            numeric = tuple(c for c in frame.columns
                            if frame[c].dtype.kind in "iufb" or plan[c].values == "date")
            rest = [c for c in frame.columns if c not in numeric]
            cats = tuple((c, tuple(np.unique(as_categories(frame[[c]])[:, 0].astype(str)).tolist()))
                         for c in rest if plan[c].kind != "frequency")
            fixed = tuple((c, _most_frequent(frame[c])) for c in rest if plan[c].kind == "frequency")
            raw = as_numbers(frame[list(numeric)])
        else:
            raw = np.asarray(dataset.X, dtype=np.float64).reshape(dataset.n_rows, -1)
        # images never miss a pixel: no medians to compute for them
        fill = column_medians(raw) if dataset.modality == "tabular" else np.zeros(raw.shape[1])
        codec = cls(dataset, numeric, cats, np.zeros(0), np.zeros(0), fill, fixed)
        Z = codec.encode(dataset.X)
        return cls(dataset, numeric, cats, Z.min(axis=0), Z.max(axis=0), fill, fixed)

    def encode(self, X: Any) -> np.ndarray:
        """Rows of ``X`` (same kind as the template's) as a float matrix."""
        return encode_features(X, frame=self.template.is_frame, numeric=self.numeric,
                               categories=self.categories, fill=self.fill)

    def spec(self) -> dict[str, Any]:
        """The encoding as plain JSON values (for :func:`encode_features` without the data)."""
        return {"frame": self.template.is_frame, "numeric": list(self.numeric),
                "categories": [[c, list(v)] for c, v in self.categories],
                "fill": [float(v) for v in self.fill],
                "columns": [str(c) for c in self.template.feature_names]
                if self.template.modality == "tabular" else [],
                "shape": list(np.shape(self.template.X)[1:])}

    def decode(self, Z: np.ndarray) -> Any:
        """Crafted rows back in the template's form: dtype, shape, categories, value range."""
        raw, Z = Z, np.clip(Z, self.lo, self.hi)
        ds = self.template
        if not ds.is_frame:
            return ds.features_like(Z.reshape((Z.shape[0], *ds.X.shape[1:])))
        out: dict[str, Any] = {}
        j = len(self.numeric)
        for k, col in enumerate(self.numeric):
            values = Z[:, k]
            dtype = ds.X[col].dtype
            if dtype.kind in "iu":
                values = np.rint(values).astype(dtype)
            elif pd.api.types.is_datetime64_any_dtype(dtype):
                stamps = pd.Timestamp("1970-01-01") + pd.to_timedelta(values, unit="D")
                tz = getattr(dtype, "tz", None)
                values = (stamps.tz_localize("UTC").tz_convert(tz) if tz else stamps).round("us")
            out[col] = values
        for col, cats in self.categories:
            block = raw[:, j:j + len(cats)]
            picked = np.asarray(cats, dtype=object)[block.argmax(axis=1)]
            out[col] = np.where(picked == MISSING, None, picked)
            j += len(cats)
        for col, value in self.fixed:
            out[col] = np.full(len(Z), value, dtype=object)
        return pd.DataFrame(out)[list(ds.X.columns)]


def encode_features(X: Any, *, frame: bool, numeric: tuple[str, ...] | list[str],
                    categories: Any, fill: np.ndarray) -> np.ndarray:
    """Rows of ``X`` as floats: arrays flattened (missing numbers take ``fill``); tables as
    their ``numeric`` columns (missing: ``fill``) then one-hot ``categories`` (``(column,
    values)`` pairs; a value not among them is all zeros)."""
    if not frame:
        arr = np.asarray(X, dtype=np.float64)
        return _filled(arr.reshape(arr.shape[0], -1), fill)
    table = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    parts = [_filled(as_numbers(table[list(numeric)]), fill)] if len(numeric) else []
    for col, values in categories:
        col_values = as_categories(table[[col]])[:, 0].astype(str)
        parts.append((col_values[:, None] == np.asarray(values)[None, :]).astype(np.float64))
    return np.hstack(parts) if parts else np.zeros((len(table), 0))


def _filled(arr: np.ndarray, fill: np.ndarray) -> np.ndarray:
    missing = np.isnan(arr)
    return np.where(missing, fill[None, :], arr) if missing.any() else arr


def _most_frequent(values: pd.Series) -> Any:
    """The most frequent present value (ties: the smallest as text); None if all are missing."""
    counts = values.dropna().astype(str).value_counts()
    if counts.empty:
        return None
    top = counts[counts == counts.max()].index.min()
    return values[values.astype(str) == top].iloc[0]
