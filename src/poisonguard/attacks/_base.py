"""The attack contract: ``Attack.poison(dataset, *, rng) -> PoisonResult``, and its registry."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from poisonguard._registry import Registry
from poisonguard._validation import check_rng, resolve_budget
from poisonguard.attacks.triggers import Trigger
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["ATTACKS", "Attack", "PoisonResult", "Target", "get_attack", "register"]


@dataclass(frozen=True)
class Target:
    """The victim inputs of a targeted attack and the label the attacker wants them to get."""

    X: Any
    label: Any
    ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class PoisonResult:
    """A poisoned copy of a dataset with its ground truth.

    ``mask`` is True for every poisoned row; ``source_index`` is the row of the input each
    output row came from (-1 for rows the attack injected). Backdoors carry their ``trigger``,
    targeted attacks their ``target``, subpopulation attacks the ``group`` they aimed at (a mask
    over the input's rows).
    """

    dataset: Dataset
    mask: np.ndarray
    source_index: np.ndarray
    attack: str
    params: Mapping[str, Any] = field(default_factory=dict)
    trigger: Trigger | None = None
    target: Target | None = None
    group: np.ndarray | None = None

    @property
    def n_poisoned(self) -> int:
        """Number of poisoned rows."""
        return int(self.mask.sum())

    def truth(self) -> pd.DataFrame:
        """Ground truth table: ``row_id, poisoned, source_index``."""
        return pd.DataFrame({"row_id": self.dataset.ids, "poisoned": self.mask.astype(int),
                             "source_index": self.source_index})


ATTACKS: Registry[type[Attack]] = Registry("attack")
"""Every attack class by name (see :class:`~poisonguard._registry.Registry`)."""


def register(cls: type[Attack]) -> type[Attack]:
    """Class decorator adding an attack to :data:`ATTACKS` under its ``name``."""
    return ATTACKS.register(cls)


def get_attack(name: str) -> type[Attack]:
    """The attack class registered as ``name``; unknown names are an error listing the known ones."""
    return ATTACKS.get(name)


class Attack(ABC):
    """Base class: constructors store keyword parameters, :meth:`poison` takes the data.

    Subclasses set ``name``, ``family``, ``summary`` and ``modalities`` and implement
    :meth:`_poison`. Budgets are ``rate`` (fraction of rows) or ``count``.
    """

    name: ClassVar[str]
    family: ClassVar[str]
    summary: ClassVar[str]
    modalities: ClassVar[tuple[str, ...]] = ("tabular", "image", "text")
    adaptive: ClassVar[bool] = False  # an evasive variant: left out of a red team unless named
    rate: float | None
    count: int | None

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters by name (as scikit-learn estimators do)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {p: getattr(self, p) for p in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in _plain_params(self).items())
        return f"{type(self).__name__}({args})"

    def poison(self, dataset: Dataset, *, rng: np.random.Generator) -> PoisonResult:
        """Return a poisoned copy of ``dataset`` and the ground truth; ``dataset`` is untouched."""
        check_rng(rng)
        if not isinstance(dataset, Dataset):
            raise InputError(f"'dataset' must be a poisonguard Dataset (got {type(dataset).__name__})")
        if dataset.modality not in self.modalities:
            raise InputError(f"attack {self.name!r} supports {', '.join(self.modalities)} data "
                             f"(got {dataset.modality})")
        if len(dataset.classes) < 2:
            raise InputError(f"the data has a single class ({dataset.classes.tolist()[0]!r}); poisoning "
                             "needs at least two")
        return self._poison(dataset, rng)

    @abstractmethod
    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        """Attack-specific work on validated input."""

    def budget(self, dataset: Dataset, available: int | None = None, *, what: str = "rows") -> int:
        """Rows to poison; an error when fewer than that are ``available`` to the attack."""
        n = resolve_budget(self.rate, self.count, dataset.n_rows)
        if available is None:  # injections: at most as many rows as the data has
            available, what = dataset.n_rows, "rows in the data (injections may at most double it)"
        if n > available:
            raise InputError(f"budget of {n} rows is impossible for {self.name!r}: only "
                             f"{available} {what} are available")
        return n

    def result(self, ds: Dataset, mask: np.ndarray, source_index: np.ndarray, *,
               trigger: Trigger | None = None, target: Target | None = None) -> PoisonResult:
        """Package a poisoned dataset with this attack's name and parameters."""
        params = _plain_params(self)
        mask = np.asarray(mask, dtype=bool)
        mask.flags.writeable = False
        src = np.asarray(source_index, dtype=np.int64)
        src.flags.writeable = False
        return PoisonResult(ds, mask, src, self.name, params, trigger, target)


def _plain_params(attack: Attack) -> dict[str, Any]:
    """Parameters that are plain values (numpy scalars made Python); arrays and models left out."""
    out = {}
    for key, value in attack.get_params().items():
        value = value.item() if isinstance(value, np.generic) else value
        if isinstance(value, str | int | float | bool | tuple | type(None)):
            out[key] = value
    return out


# --------------------------------------------------------------------- shared building blocks
def check_class(dataset: Dataset, value: Any, param: str) -> Any:
    """``value`` as one of the dataset's labels (ints given as strings are converted)."""
    classes = dataset.classes
    for cand in (value, _maybe_int(value)):
        if cand is not None and cand in set(classes.tolist()):
            return classes.tolist()[classes.tolist().index(cand)]  # a plain Python value
    raise InputError(f"'{param}' {value!r} is not a label in the data; labels are: "
                     f"{', '.join(map(str, classes))}")


def _maybe_int(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


def set_rows(X: Any, rows: np.ndarray, values: Any) -> Any:
    """A copy of ``X`` with ``rows`` replaced by ``values``."""
    if isinstance(X, pd.DataFrame):
        out = X.copy()
        new = values if isinstance(values, pd.DataFrame) else pd.DataFrame(values, columns=X.columns)
        for col in X.columns:
            column = out[col].to_numpy(copy=True)
            if column.dtype.kind != "O" and new[col].dtype != column.dtype:
                column = column.astype(np.result_type(column.dtype, new[col].dtype))
            column[rows] = new[col].to_numpy()
            out[col] = column
        return out
    out_arr = np.array(X, copy=True)
    out_arr[rows] = values
    return out_arr


def append_rows(X: Any, values: Any) -> Any:
    """``X`` with ``values`` appended as new rows."""
    if isinstance(X, pd.DataFrame):
        new = values if isinstance(values, pd.DataFrame) else pd.DataFrame(values, columns=X.columns)
        return pd.concat([X, new.astype(X.dtypes.to_dict())], ignore_index=True)
    return np.concatenate([np.asarray(X), np.asarray(values, dtype=np.asarray(X).dtype)], axis=0)


def take_rows(X: Any, rows: np.ndarray) -> Any:
    """Rows of ``X`` (array or DataFrame) as a copy."""
    if isinstance(X, pd.DataFrame):
        return X.iloc[rows].reset_index(drop=True)
    return np.array(X[rows], copy=True)


def modify(attack: Attack, ds: Dataset, rows: np.ndarray, *, X_rows: Any = None,
           y_rows: Any = None, trigger: Trigger | None = None,
           target: Target | None = None) -> PoisonResult:
    """Result of an attack that changes ``rows`` in place (features and/or labels)."""
    X = ds.X if X_rows is None else set_rows(ds.X, rows, X_rows)
    y = ds.y
    if y_rows is not None:
        y = np.array(ds.y, copy=True)
        y[rows] = y_rows
    mask = np.zeros(ds.n_rows, dtype=bool)
    mask[rows] = True
    return attack.result(ds.replace(X=X, y=y), mask, np.arange(ds.n_rows), trigger=trigger,
                         target=target)


def inject(attack: Attack, ds: Dataset, X_new: Any, y_new: Any, source_index: np.ndarray,
           rng: np.random.Generator, *, trigger: Trigger | None = None) -> PoisonResult:
    """Result of an attack that appends rows; ``source_index`` is -1 for rows made from scratch.

    New rows get the next row numbers as ids (or ``poison-<k>`` when ids are not row numbers)
    and, when the data has sources, the source of the row they copy or a random existing one.
    """
    n, k = ds.n_rows, len(source_index)
    if ds.has_default_ids:
        new_ids = np.arange(n, n + k).astype(str)
    else:
        taken = set(ds.ids.tolist())
        new_ids = np.asarray([f"poison-{i}" for i in range(k)])
        if taken.intersection(new_ids.tolist()):
            new_ids = np.asarray([f"poison-{attack.name}-{i}" for i in range(k)])
    sources = None
    if ds.sources is not None:
        picked = rng.integers(0, n, size=k)
        origin = np.where(source_index >= 0, source_index, picked)
        sources = np.concatenate([ds.sources, ds.sources[origin]])
    y = np.concatenate([ds.y, np.asarray(y_new, dtype=ds.y.dtype)])
    out = ds.replace(X=append_rows(ds.X, X_new), y=y, ids=np.concatenate([ds.ids, new_ids]),
                     sources=sources)
    mask = np.concatenate([np.zeros(n, dtype=bool), np.ones(k, dtype=bool)])
    return attack.result(out, mask, np.concatenate([np.arange(n), source_index]), trigger=trigger)


def other_label(dataset: Dataset, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each label, a different class drawn uniformly from the rest."""
    classes = dataset.classes
    idx = np.searchsorted(classes, labels)
    shift = rng.integers(1, len(classes), size=len(labels))
    out: np.ndarray = classes[(idx + shift) % len(classes)]
    return out
