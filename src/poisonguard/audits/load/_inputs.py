"""A clean sample in a model's input space."""

from __future__ import annotations

import numpy as np

from poisonguard.audits._base import AuditedModel
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["inputs_for"]


def inputs_for(model: AuditedModel, data: Dataset) -> Dataset:
    """``data`` with its features in ``model``'s input space (the rows, labels and ids kept):
    a hardened model's own encoding (column order, one-hot columns, missing numbers filled),
    images and rows reshaped to ``model.input_shape``. A mismatch is an :class:`InputError`
    naming the data."""
    if data.modality == "text" or model.modality == "text":
        if data.modality != model.modality:
            raise InputError(f"{data.name}: {data.modality} data, but the model takes "
                             f"{model.modality} inputs")
        return data
    encode = getattr(model.predict_proba, "encode", None)
    if encode is not None:
        X = encode(data)
    elif data.is_frame:
        import pandas as pd

        frame = data.X
        names = list(model.feature_names) or [str(c) for c in frame.columns]
        missing = [c for c in names if c not in frame.columns]
        if missing:
            raise InputError(f"{data.name}: lacks the model's columns {', '.join(missing[:5])}")
        try:
            X = frame[names].apply(pd.to_numeric).to_numpy(dtype=np.float64)
        except (ValueError, TypeError):
            raise InputError(f"{data.name}: the model takes numbers; some of its columns "
                             f"({', '.join(names[:5])}) are not numeric") from None
    else:
        X = np.asarray(data.X, dtype=np.float64)
        names = list(model.feature_names)
        if names and list(data.feature_names) != names and sorted(data.feature_names) == sorted(names):
            X = data.frame()[names].to_numpy(dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if int(np.prod(X.shape[1:])) != int(np.prod(model.input_shape)):
        raise InputError(f"{data.name}: rows of shape {list(X.shape[1:])}, the model takes "
                         f"{list(model.input_shape)}")
    X = X.reshape((len(X), *model.input_shape))
    if not np.all(np.isfinite(X)):
        raise InputError(f"{data.name}: missing or infinite feature values; the model's "
                         "encoding does not say how to fill them")
    feature_names = list(model.feature_names) if len(model.input_shape) == 1 else []
    return Dataset(X, data.y, ids=data.ids, sources=data.sources, modality=model.modality,
                   feature_names=feature_names or None, name=data.name)
