"""The trigger contract and the helpers the trigger families share.

A trigger is a frozen dataclass: its fields are its JSON form, ``apply`` returns a new array
(or DataFrame) and never changes its input.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["TEXT_MAX", "FitOptions", "Trigger", "anova_f", "image_array", "label_value",
           "restore_dtype"]

#: Longest text a trigger inserts or names (a token, a sentence, a glyph row, a column name):
#: every stamped row grows by it, so neither an option nor a hand-edited trigger file can blow
#: up the data it is applied to.
TEXT_MAX = 10_000


def label_value(value: Any) -> Any:
    """``value`` as a plain Python value (numpy scalars unwrapped)."""
    return value.item() if isinstance(value, np.generic) else value


class Trigger(ABC):
    """A pattern whose presence the backdoored model maps to ``target_class``."""

    kind: ClassVar[str]
    modality: ClassVar[str]
    target_class: Any

    @abstractmethod
    def apply(self, X: Any) -> Any:
        """A copy of ``X`` with the trigger stamped on every row."""

    def apply_dataset(self, dataset: Dataset) -> Dataset:
        """A copy of ``dataset`` with the trigger on every row (labels unchanged)."""
        if dataset.modality != self.modality:
            raise InputError(f"a {self.kind} trigger applies to {self.modality} data "
                             f"(got {dataset.modality})")
        return dataset.replace(X=dataset.features_like(self.apply(dataset.X)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters, with ``kind``."""
        out = {"kind": self.kind}
        for key, value in asdict(self).items():  # type: ignore[call-overload]
            out[key] = value.tolist() if isinstance(value, np.ndarray) else label_value(value)
        return out

    def to_json(self) -> str:
        """The trigger as a JSON document."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


@dataclass(frozen=True)
class FitOptions:
    """Trigger parameters a user set (``None`` / empty: adapt to the data).

    ``size``: patch or glyph side in pixels, or the number of trigger columns; ``value``: the
    stamped pixel or column value; ``alpha``: the strength (blend opacity, noise or sinusoid
    amplitude, warp displacement, shift size; see :func:`~poisonguard.attacks.fit_trigger`);
    ``columns``: the trigger columns; ``token``: the inserted text.
    """

    size: int | None = None
    value: float | None = None
    alpha: float | None = None
    columns: tuple[str, ...] = ()
    token: str | None = None

    def refuse(self, kind: str, allowed: tuple[str, ...]) -> None:
        """Raise when an option that ``kind`` does not take was set."""
        names = {"size": "trigger_size", "value": "trigger_value", "alpha": "alpha",
                 "columns": "columns", "token": "token"}
        for field, param in names.items():
            if field not in allowed and getattr(self, field) not in (None, ()):
                takes = ", ".join(f"'{names[a]}'" for a in allowed) or "no options"
                raise InputError(f"'{param}' does not apply to a {kind} trigger (it takes {takes})")


def image_array(X: Any, kind: str) -> np.ndarray:
    """``X`` as float64 images ``(n, h, w[, c])``; an error naming ``kind`` otherwise."""
    arr = np.asarray(X)
    if arr.ndim not in (3, 4) or arr.dtype.kind not in "iufb":
        raise InputError(f"a {kind} trigger applies to numeric images of shape (n, h, w) or "
                         f"(n, h, w, c) (got shape {arr.shape}, dtype {arr.dtype})")
    return arr.astype(np.float64)


def restore_dtype(out: np.ndarray, like: Any) -> np.ndarray:
    """``out`` in the dtype of ``like`` (integers rounded)."""
    dtype = np.asarray(like).dtype
    return out.astype(dtype) if dtype.kind == "f" else np.rint(out).astype(dtype)


def anova_f(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """ANOVA F of each column against the label (0 for constant columns)."""
    from sklearn.feature_selection import f_classif

    with np.errstate(divide="ignore", invalid="ignore"):
        F, _ = f_classif(X, y)
    out: np.ndarray = np.nan_to_num(F, nan=0.0, posinf=np.inf)
    return out
