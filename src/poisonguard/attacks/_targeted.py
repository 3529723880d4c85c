"""What the targeted clean-label attacks share: the victim input(s), the attacker's class and
the rows that may be poisoned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.attacks._base import Attack, check_class
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["TargetPlan", "plan_target", "target_inputs"]


@dataclass(frozen=True)
class TargetPlan:
    """``dataset`` without the target row when the target was taken out of it, ``keep`` the
    input rows it holds, ``base`` the attacker's class, ``target_X`` / ``target_ids`` the victim
    input(s), ``pool`` the rows of the base class and ``n`` the rows to poison."""

    dataset: Dataset
    keep: np.ndarray
    base: Any
    target_X: Any
    target_ids: tuple[str, ...]
    pool: np.ndarray
    n: int


def plan_target(attack: Attack, dataset: Dataset, rng: np.random.Generator, *,
                many: bool) -> TargetPlan:
    """The attack's ``base_class`` (default: the first class) and ``target`` (default: a seeded
    row of another class, taken out of the data); ``many``: ``target`` may be a stack of inputs."""
    base_class, target = getattr(attack, "base_class", None), getattr(attack, "target", None)
    base = check_class(dataset, dataset.classes[0] if base_class is None else base_class,
                       "base_class")
    keep = np.arange(dataset.n_rows)
    target_ids: tuple[str, ...] = ()
    if target is None:
        pick = int(rng.choice(np.flatnonzero(dataset.y != base)))
        target_X, target_ids = dataset.take([pick]).X, (str(dataset.ids[pick]),)
        keep = keep[keep != pick]
        dataset = dataset.take(keep)
    else:
        target_X = target_inputs(target, dataset, many=many)
    pool = np.flatnonzero(dataset.y == base)
    n = attack.budget(dataset, len(pool), what=f"rows of the base class {base!r}")
    return TargetPlan(dataset, keep, base, target_X, target_ids, pool, n)


def target_inputs(target: Any, dataset: Dataset, *, many: bool) -> Any:
    """``target`` as input rows of ``dataset``: a frame with its columns, or an array
    ``(k, *input shape)``; one input unless ``many``."""
    if dataset.is_frame:
        rows = target
        if not isinstance(rows, pd.DataFrame):
            rows = [list(rows)] if np.ndim(rows) == 1 else [list(r) for r in rows]
            if any(len(r) != dataset.X.shape[1] for r in rows):
                raise InputError(f"'target' must be rows of {dataset.X.shape[1]} values "
                                 f"(columns {', '.join(map(str, dataset.X.columns))})")
            rows = pd.DataFrame(rows, columns=dataset.X.columns)
        if not many and len(rows) != 1:
            raise InputError(f"'target' must be one row (got {len(rows)})")
        return rows.reset_index(drop=True)
    arr = np.asarray(target)
    if arr.shape == dataset.X.shape[1:]:
        arr = arr[None]
    if (arr.ndim != dataset.X.ndim or arr.shape[1:] != dataset.X.shape[1:] or len(arr) == 0
            or (not many and len(arr) != 1)):
        stack = " or a stack of them" if many else ""
        raise InputError(f"'target' must be one input of shape {dataset.X.shape[1:]}{stack} "
                         f"(got {np.asarray(target).shape})")
    return arr
