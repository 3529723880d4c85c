"""Models already in memory: a ``torch.nn.Module`` returning logits, or any object with
``predict_proba``."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from poisonguard.audits._base import AuditedModel
from poisonguard.audits.load._query import Query, class_labels, same_classes, shape_for
from poisonguard.audits.load._torch import torch_raw
from poisonguard.dataset import Modality
from poisonguard.errors import InputError

__all__ = ["as_audited"]


def as_audited(obj: Any, *, modality: Modality | None = None,
               input_shape: Sequence[int] | None = None,
               classes: Sequence[Any] | None = None) -> AuditedModel:
    """An :class:`AuditedModel` for a model in memory.

    A ``torch.nn.Module`` mapping ``(n, *input_shape)`` float tensors to logits (it is put in
    eval mode; ``input_shape`` is required; classes default to ``0 .. k-1``); or any object
    with ``predict_proba`` (scikit-learn style: its ``classes_``, ``n_features_in_`` and
    ``feature_names_in_`` are used when present, and given values must agree with them).
    ``modality`` defaults to image for inputs of two or more dimensions, tabular otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)
    >>> m = as_audited(LogisticRegression().fit(X, y))
    >>> m.input_shape, m.classes.tolist(), m.predict_proba(X[:2]).shape
    ((3,), [0, 1], (2, 2))
    """
    shape = None if input_shape is None else tuple(int(s) for s in input_shape)
    torch = importlib.import_module("torch") if "torch" in _loaded() else None
    if torch is not None and isinstance(obj, torch.nn.Module):
        if shape is None:
            raise InputError("a torch module needs input_shape (one input's shape)")
        obj.eval()
        first = next(iter(obj.parameters()), None)
        with torch.no_grad():
            x = torch.zeros((1, *shape), dtype=first.dtype if first is not None else torch.float32,
                            device=first.device if first is not None else "cpu")
            k = int(obj(x).shape[1])
        labels = class_labels(classes, "classes") if classes is not None else np.arange(k)
        if len(labels) != k:
            raise InputError(f"classes: {len(labels)} given, the module returns {k} logits")
        return AuditedModel(
            predict_proba=Query(torch_raw(obj, shape), shape=shape, n_classes=k,
                                where="the torch module"),
            classes=labels, modality=modality or ("image" if len(shape) >= 2 else "tabular"),
            input_shape=shape, module=obj)
    if not callable(getattr(obj, "predict_proba", None)):
        raise InputError(f"cannot audit a {type(obj).__name__}: expected a torch.nn.Module "
                         "or an object with predict_proba")
    where = f"the {type(obj).__name__}"
    own = getattr(obj, "classes_", None)
    if own is not None:
        labels = same_classes(class_labels(np.asarray(own).tolist(), where), classes, where)
    elif classes is not None:
        labels = class_labels(classes, "classes")
    else:
        raise InputError(f"{where} has no classes_; give classes")
    if modality == "text":
        if shape not in (None, ()):
            raise InputError(f"{where}: a text model takes strings, not inputs of shape {shape}")
        return AuditedModel(
            predict_proba=Query(lambda X: obj.predict_proba(list(X)), shape=(),
                                n_classes=len(labels), where=where, text=True),
            classes=labels, modality="text", input_shape=())
    n_in = getattr(obj, "n_features_in_", None)
    if n_in is not None:
        in_shape = shape_for((int(n_in),), shape, where)
    elif shape is not None:
        in_shape = shape
    else:
        raise InputError(f"{where} does not say how many features it takes; give input_shape")
    names = tuple(str(c) for c in getattr(obj, "feature_names_in_", ()))

    def query(arr: np.ndarray) -> np.ndarray:
        """scikit-learn style models take flat rows (a frame when fitted on one); others the
        inputs as shaped."""
        rows = arr.reshape(len(arr), -1) if n_in is not None else arr
        if names:
            import pandas as pd

            rows = pd.DataFrame(rows, columns=list(names))
        out: np.ndarray = obj.predict_proba(rows)
        return out

    return AuditedModel(
        predict_proba=Query(query, shape=in_shape, n_classes=len(labels), where=where),
        classes=labels, modality=modality or ("image" if len(in_shape) >= 2 else "tabular"),
        input_shape=in_shape, feature_names=names)


def _loaded() -> set[str]:
    """Top-level modules already imported (a torch module can only exist if torch is)."""
    import sys

    return {name.split(".")[0] for name in sys.modules}
