"""The checked ``predict_proba`` every reader hands out, and the checks that what a caller says
about a model (classes, modality, input shape) agrees with what its file says."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from poisonguard.dataset import Dataset, Modality
from poisonguard.errors import InputError

__all__ = ["BATCH", "Query", "check_modality", "class_labels", "same_classes", "shape_for",
           "softmax"]

BATCH = 2048  # rows per forward pass


class Query:
    """``predict_proba`` of a loaded model: checks the inputs (shape, finite), runs ``raw`` in
    batches and checks that it returned probabilities. ``encode`` turns a clean
    :class:`Dataset` into the model's input space (see
    :func:`~poisonguard.audits.load.inputs_for`)."""

    def __init__(self, raw: Callable[[Any], np.ndarray], *, shape: tuple[int, ...],
                 n_classes: int, where: str, text: bool = False,
                 encode: Callable[[Dataset], Any] | None = None) -> None:
        self.raw, self.shape, self.n_classes, self.where = raw, shape, n_classes, where
        self.text, self.encode = text, encode

    def __call__(self, X: Any) -> np.ndarray:
        if self.text:
            arr = np.asarray(X, dtype=object)
            if arr.ndim != 1 or not all(isinstance(v, str) for v in arr):
                raise InputError(f"{self.where}: a text model takes a 1-D array of strings "
                                 f"(got shape {arr.shape})")
        else:
            arr = np.asarray(X, dtype=np.float64)
            if arr.shape[1:] != self.shape:
                raise InputError(f"{self.where}: the model takes inputs of shape "
                                 f"{list(self.shape)} (got {list(arr.shape[1:])})")
            if not np.all(np.isfinite(arr)):
                raise InputError(f"{self.where}: model inputs hold values that are not finite")
        parts = [np.asarray(self.raw(arr[i:i + BATCH]), dtype=np.float64)
                 for i in range(0, len(arr), BATCH)]
        out = np.concatenate(parts) if parts else np.zeros((0, self.n_classes))
        if out.shape != (len(arr), self.n_classes):
            raise InputError(f"{self.where}: the model returned shape {list(out.shape)} for "
                             f"{len(arr)} inputs; expected ({len(arr)}, {self.n_classes})")
        if not np.all(np.isfinite(out)) or out.min(initial=0.0) < -1e-6 or (
                len(out) and not np.allclose(out.sum(axis=1), 1.0, atol=1e-3)):
            raise InputError(f"{self.where}: the model's outputs are not probabilities")
        return out


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits ``z``."""
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def class_labels(values: Sequence[Any], where: str) -> np.ndarray:
    """Class labels as an array: all integers or all strings, unique, at least one."""
    vals = list(values)
    if not vals:
        raise InputError(f"{where}: no classes given")
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in vals):
        arr = np.asarray(vals, dtype=np.int64)
    elif all(isinstance(v, str) for v in vals):
        arr = np.asarray(vals, dtype=str)
    else:
        raise InputError(f"{where}: classes must all be integers or all strings")
    if len(np.unique(arr)) != len(arr):
        raise InputError(f"{where}: classes are not unique")
    return arr


def same_classes(found: np.ndarray, given: Sequence[Any] | None, where: str) -> np.ndarray:
    """``found`` (the model's own classes); ``given`` must agree with them when set."""
    if given is not None:
        want = class_labels(given, "--classes")
        if want.shape != found.shape or [str(v) for v in want] != [str(v) for v in found]:
            raise InputError(f"--classes {','.join(map(str, want))}: the model {where} has "
                             f"classes {','.join(map(str, found))}")
    return found


def check_modality(found: Modality, given: Modality | None, where: str) -> Modality:
    """``found`` (the model's own modality); ``given`` must agree with it when set."""
    if given is not None and given != found:
        raise InputError(f"{where}: a {found} model, but {given} inputs were given")
    return found


def shape_for(found: tuple[int, ...], given: tuple[int, ...] | None, where: str) -> tuple[int, ...]:
    """The input shape: the model's own, or ``given`` when it has the same number of values
    and the model takes flat rows (an image model over flattened pixels)."""
    if given is None or tuple(given) == found:
        return found
    given = tuple(int(s) for s in given)
    if len(found) == 1 and int(np.prod(given)) == found[0]:
        return given
    raise InputError(f"{where}: the model takes inputs of shape {list(found)}, the data has "
                     f"{list(given)}")
