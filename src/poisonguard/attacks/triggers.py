"""Backdoor triggers: stamp them onto inputs, save and load them as JSON.

A trigger knows the label its backdoor maps to (``target_class``). ``apply`` returns a new array
(or DataFrame) and never changes its input. Defaults adapt to the data through :func:`fit_trigger`.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["TRIGGERS", "BlendTrigger", "FeatureTrigger", "PatchTrigger", "TokenTrigger",
           "Trigger", "fit_trigger", "load_trigger"]


def _label(value: Any) -> Any:
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
            out[key] = value.tolist() if isinstance(value, np.ndarray) else _label(value)
        return out

    def to_json(self) -> str:
        """The trigger as a JSON document."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


@dataclass(frozen=True)
class PatchTrigger(Trigger):
    """A square of ``size`` pixels set to ``value``, top-left corner at ``(row, col)``."""

    kind: ClassVar[str] = "patch"
    modality: ClassVar[str] = "image"
    size: int
    row: int
    col: int
    value: float
    target_class: Any

    def apply(self, X: Any) -> Any:
        out = np.array(X, copy=True)
        if out.ndim < 3 or self.row + self.size > out.shape[1] or self.col + self.size > out.shape[2]:
            raise InputError(f"a {self.size}-pixel patch at ({self.row}, {self.col}) does not fit "
                             f"images of shape {out.shape[1:]}")
        out[:, self.row:self.row + self.size, self.col:self.col + self.size, ...] = self.value
        return out


@dataclass(frozen=True)
class BlendTrigger(Trigger):
    """``(1 - alpha) * x + alpha * pattern`` over the whole image."""

    kind: ClassVar[str] = "blend"
    modality: ClassVar[str] = "image"
    pattern: np.ndarray
    alpha: float
    target_class: Any

    def apply(self, X: Any) -> Any:
        arr = np.asarray(X)
        if arr.shape[1:] != self.pattern.shape:
            raise InputError(f"blend pattern has shape {self.pattern.shape} but images have shape "
                             f"{arr.shape[1:]}")
        out = (1.0 - self.alpha) * arr.astype(np.float64) + self.alpha * self.pattern
        return out.astype(arr.dtype) if arr.dtype.kind == "f" else np.rint(out).astype(arr.dtype)


@dataclass(frozen=True)
class FeatureTrigger(Trigger):
    """Tabular columns set to fixed values."""

    kind: ClassVar[str] = "feature"
    modality: ClassVar[str] = "tabular"
    columns: tuple[str, ...]
    values: tuple[Any, ...]
    feature_names: tuple[str, ...]
    target_class: Any

    def apply(self, X: Any) -> Any:
        if isinstance(X, pd.DataFrame):
            out = X.copy()
            for col, value in zip(self.columns, self.values, strict=True):
                if col not in out.columns:
                    raise InputError(f"trigger column '{col}' is not in the data")
                out[col] = value
            return out
        arr = np.array(X, dtype=np.float64 if np.asarray(X).dtype.kind in "iub" else None,
                       copy=True)
        if arr.ndim != 2 or arr.shape[1] != len(self.feature_names):
            raise InputError(f"feature trigger expects {len(self.feature_names)} columns "
                             f"(got shape {arr.shape})")
        for col, value in zip(self.columns, self.values, strict=True):
            arr[:, self.feature_names.index(col)] = value
        return arr


@dataclass(frozen=True)
class TokenTrigger(Trigger):
    """A word or phrase inserted into each text, at the start, the end, or a seeded position."""

    kind: ClassVar[str] = "token"
    modality: ClassVar[str] = "text"
    token: str
    position: str
    seed: int
    target_class: Any

    def apply(self, X: Any) -> Any:
        texts = [str(t) for t in np.asarray(X, dtype=object)]
        rng = np.random.default_rng(self.seed)
        out = []
        for text in texts:
            words = text.split()
            at = {"start": 0, "end": len(words)}.get(self.position)
            if at is None:
                at = int(rng.integers(0, len(words) + 1))
            out.append(" ".join([*words[:at], self.token, *words[at:]]))
        return np.asarray(out, dtype=object)


TRIGGERS: dict[str, type[Trigger]] = {
    t.kind: t for t in (PatchTrigger, BlendTrigger, FeatureTrigger, TokenTrigger)}


def trigger_from_dict(data: dict[str, Any]) -> Trigger:
    """Rebuild a trigger from :meth:`Trigger.to_dict` output."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in TRIGGERS:
        raise InputError(f"trigger 'kind' must be one of {', '.join(TRIGGERS)} (got {kind!r})")
    try:
        if kind == "blend":
            data["pattern"] = np.asarray(data["pattern"], dtype=np.float64)
        if kind == "feature":
            for key in ("columns", "values", "feature_names"):
                data[key] = tuple(data[key])
        return TRIGGERS[kind](**data)
    except (KeyError, TypeError) as exc:
        raise InputError(f"{kind} trigger is missing or has unknown fields: {exc}") from None


def load_trigger(path: str | Path) -> Trigger:
    """Read a trigger saved with :meth:`Trigger.to_json`."""
    from poisonguard.io import read_json

    p = Path(path)
    data = read_json(p, "trigger JSON file")
    if not isinstance(data, dict):
        raise InputError(f"{p}: not a trigger JSON file (expected an object)")
    try:
        return trigger_from_dict(data)
    except InputError as exc:
        raise InputError(f"{p}: {exc}") from None


# -------------------------------------------------------------------- data-adapted defaults
def fit_trigger(dataset: Dataset, kind: str | None, target_class: Any, rng: np.random.Generator,
                *, size: int | None = None, value: float | None = None, alpha: float | None = None,
                columns: tuple[str, ...] = (), token: str | None = None) -> Trigger:
    """A trigger of ``kind`` whose unset parameters adapt to ``dataset``.

    patch: bottom-right square, side ~ 1/5 of the image (at least 3), value the data maximum;
    blend: seeded uniform noise over the data range, alpha 0.3; feature: the four columns that
    say least about the label (ANOVA F), so the trigger itself carries no class evidence, set
    far in their upper tail (max + half the range); token: the rare-word phrase ``"cf mn bb"``
    at a seeded position (one short word is too weak a TF-IDF signal at 5 %).
    """
    kind = kind or {"image": "patch", "tabular": "feature", "text": "token"}[dataset.modality]
    if kind not in TRIGGERS:
        raise InputError(f"'trigger' must be one of {', '.join(TRIGGERS)} (got {kind!r})")
    if TRIGGERS[kind].modality != dataset.modality:
        raise InputError(f"trigger {kind!r} applies to {TRIGGERS[kind].modality} data "
                         f"(got {dataset.modality})")
    label = _label(target_class)
    if kind == "token":
        return TokenTrigger(token or "cf mn bb", "random", int(rng.integers(2**31)), label)
    if kind == "feature":
        return _feature_trigger(dataset, columns, value, label, rng)
    X = np.asarray(dataset.X, dtype=np.float64)
    lo, hi = float(X.min()), float(X.max())
    if kind == "patch":
        h, w = dataset.X.shape[1:3]
        side = size if size is not None else min(h, w, max(3, round(min(h, w) / 5)))
        if not 1 <= side <= min(h, w):
            raise InputError(f"'trigger_size' must be in [1, {min(h, w)}] (got {side})")
        return PatchTrigger(side, h - side - (h > 8), w - side - (w > 8),
                            hi if value is None else value, label)
    a = 0.3 if alpha is None else alpha
    if not 0.0 < a < 1.0:
        raise InputError(f"'alpha' must be in (0, 1) (got {a})")
    pattern = rng.uniform(lo, hi, size=dataset.X.shape[1:])
    return BlendTrigger(pattern, a, label)


def _feature_trigger(dataset: Dataset, columns: tuple[str, ...], value: float | None, label: Any,
                     rng: np.random.Generator) -> FeatureTrigger:
    frame = dataset.frame()
    numeric = [c for c in frame.columns if frame[c].dtype.kind in "iuf" and frame[c].nunique() > 1]
    if columns:
        unknown = [c for c in columns if c not in frame.columns]
        if unknown:
            raise InputError(f"trigger column '{unknown[0]}' is not in the data; columns are: "
                             f"{', '.join(frame.columns)}")
        chosen = list(columns)
    else:
        if not numeric:
            raise InputError("a feature trigger needs a numeric column with more than one value")
        chosen = _least_informative(frame[numeric].to_numpy(dtype=np.float64), dataset.y, numeric)
    values: list[Any] = []
    for col in chosen:
        if value is not None:
            values.append(value)
        elif frame[col].dtype.kind in "iuf":
            v = frame[col].to_numpy(dtype=np.float64)
            far = float(v.max() + 0.5 * (v.max() - v.min()))
            values.append(float(np.ceil(far)) if frame[col].dtype.kind in "iu" else far)
        else:
            counts = frame[col].astype(str).value_counts()
            values.append(str(counts.index[-1]))  # the rarest category
    return FeatureTrigger(tuple(chosen), tuple(values), tuple(dataset.feature_names), label)


def _least_informative(X: np.ndarray, y: np.ndarray, names: list[str], k: int = 4) -> list[str]:
    """The ``k`` columns whose values separate the classes least (smallest ANOVA F)."""
    from sklearn.feature_selection import f_classif

    with np.errstate(divide="ignore", invalid="ignore"):
        F, _ = f_classif(X, y)
    F = np.nan_to_num(F, nan=0.0, posinf=np.inf)
    order = np.argsort(F, kind="stable")[:min(k, len(names))]
    return [names[i] for i in sorted(order)]
