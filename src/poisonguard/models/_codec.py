"""A reversible numeric encoding of a dataset's features, for attacks that craft rows.

Crafting attacks (availability, clean-label, feature collision) move points in a continuous
space; the codec maps tabular, categorical and image features there and back. Categorical
columns are one-hot on the way in and take the largest coordinate on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["NumericCodec"]


@dataclass(frozen=True)
class NumericCodec:
    """Encode a dataset's ``X`` to floats ``(n, p)`` and decode crafted rows back.

    ``lo`` and ``hi`` are the per-coordinate bounds seen in the data: crafted rows stay inside.
    """

    template: Dataset
    numeric: tuple[str, ...]
    categories: tuple[tuple[str, tuple[Any, ...]], ...]
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def fit(cls, dataset: Dataset) -> NumericCodec:
        """Learn the encoding (column kinds, categories, bounds) from ``dataset``."""
        if dataset.modality == "text":
            raise InputError("this attack crafts feature values and needs tabular or image data "
                             "(got text)")
        numeric: tuple[str, ...] = ()
        cats: tuple[tuple[str, tuple[Any, ...]], ...] = ()
        if dataset.is_frame:
            frame = dataset.X
            numeric = tuple(c for c in frame.columns if frame[c].dtype.kind in "iufb")
            cats = tuple((c, tuple(sorted(frame[c].astype(str).unique())))
                         for c in frame.columns if c not in numeric)
        codec = cls(dataset, numeric, cats, np.zeros(0), np.zeros(0))
        Z = codec.encode(dataset.X)
        return cls(dataset, numeric, cats, Z.min(axis=0), Z.max(axis=0))

    def encode(self, X: Any) -> np.ndarray:
        """Rows of ``X`` (same kind as the template's) as a float matrix."""
        if not self.template.is_frame:
            arr = np.asarray(X, dtype=np.float64)
            return arr.reshape(arr.shape[0], -1)
        frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
        parts = [frame[list(self.numeric)].to_numpy(dtype=np.float64)] if self.numeric else []
        for col, values in self.categories:
            col_values = frame[col].astype(str).to_numpy()
            parts.append((col_values[:, None] == np.asarray(values)[None, :]).astype(np.float64))
        return np.hstack(parts) if parts else np.zeros((len(frame), 0))

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
            if ds.X[col].dtype.kind in "iu":
                values = np.rint(values).astype(ds.X[col].dtype)
            out[col] = values
        for col, cats in self.categories:
            block = raw[:, j:j + len(cats)]
            out[col] = np.asarray(cats, dtype=object)[block.argmax(axis=1)]
            j += len(cats)
        return pd.DataFrame(out)[list(ds.X.columns)]
