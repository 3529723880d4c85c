"""Boundary checks shared by every public entry point.

Messages follow one pattern: "'name' must be <expected> (got <value>)".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from poisonguard.errors import InputError

__all__ = ["check_choice", "check_flag_budget", "check_rng", "column_difference", "resolve_budget",
           "resolve_flag_budget"]


def check_choice(name: str, value: str, choices: tuple[str, ...] | list[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a one-line :class:`InputError`."""
    if value not in choices:
        raise InputError(f"'{name}' must be one of {', '.join(choices)} (got {value!r})")
    return value


def check_in(name: str, value: Any, low: float, high: float, *, closed_low: bool = False,
             closed_high: bool = True) -> float:
    """A finite number in the interval from ``low`` to ``high`` (open at ``low`` and closed at
    ``high`` unless said otherwise), else a one-line :class:`InputError` naming ``name``."""
    ok = isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool) \
        and math.isfinite(value)
    if ok:
        ok = (low <= value if closed_low else low < value) and (
            value <= high if closed_high else value < high)
    if not ok:
        brackets = ("[" if closed_low else "(") + f"{low:g}, {high:g}" + ("]" if closed_high else ")")
        raise InputError(f"'{name}' must be in {brackets} (got {value!r})")
    return float(value)


def check_whole(name: str, value: Any, low: int, high: int) -> int:
    """A whole number in ``[low, high]``, else a one-line :class:`InputError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise InputError(f"'{name}' must be a whole number in [{low}, {high}] (got {value!r})")
    return int(value)


def check_rng(rng: Any) -> np.random.Generator:
    """Require a :class:`numpy.random.Generator`; seeds belong to the caller."""
    if not isinstance(rng, np.random.Generator):
        raise InputError(
            f"'rng' must be a numpy.random.Generator, e.g. np.random.default_rng(0) "
            f"(got {type(rng).__name__})"
        )
    return rng


def resolve_budget(rate: float | None, count: int | None, n_rows: int, *, what: str = "rows") -> int:
    """Turn a fraction (``rate``) or a number (``count``) of rows into a row count.

    ``rate`` is a fraction of ``n_rows`` in (0, 1]; ``count`` a positive integer. Exactly one
    of them may be given. The count is ``round(rate * n_rows)``, at least 1.
    """
    if rate is not None and count is not None:
        raise InputError("give either 'rate' or 'count', not both")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
            raise InputError(f"'count' must be a positive integer (got {count!r})")
        return int(count)
    if rate is None:
        raise InputError("a budget is needed: give 'rate' (fraction of rows) or 'count'")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate):
        raise InputError(f"'rate' must be a number in (0, 1] (got {rate!r})")
    if not 0.0 < float(rate) <= 1.0:
        raise InputError(f"'rate' must be in (0, 1] (got {rate})")
    return max(1, round(float(rate) * n_rows))


def check_flag_budget(value: Any, option: str = "'budget'") -> float | int:
    """A flag budget as given: a row count (a whole number >= 1) or a fraction in (0, 1); text
    (a command-line value) is read as a number first. ``option`` names it in the error."""
    raw = value
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not math.isfinite(float(value)):
        raise InputError(f"{option} must be a row count (e.g. 10) or a fraction in (0, 1) "
                         f"(got {raw!r})")
    b = float(value)
    if b <= 0:
        raise InputError(f"{option} must be > 0 (got {raw})")
    if b < 1:
        return b
    if b != int(b):
        raise InputError(f"{option} of 1 or more must be a whole number of rows (got {raw})")
    return int(b)


def resolve_flag_budget(budget: Any, n_rows: int, option: str = "'budget'") -> int | None:
    """A flag budget (:func:`check_flag_budget`; ``None``: none) as a row count of ``n_rows``:
    a fraction rounds to at least one row, a count may not exceed the rows."""
    if budget is None:
        return None
    b = check_flag_budget(budget, option)
    if isinstance(b, float):
        return max(1, round(b * n_rows))
    if b > n_rows:
        raise InputError(f"{option} of {b} rows exceeds the {n_rows} rows scanned")
    return b


def column_difference(have: Sequence[object], want: Sequence[object]) -> str | None:
    """How the columns ``have`` differ from the expected ``want`` — ``missing 'a', 'b';
    unexpected 'c'`` (at most five names each), ``same columns in another order`` or ``a column
    appears twice`` — or ``None`` when they are the same, in the same order."""
    have, want = [str(c) for c in have], [str(c) for c in want]
    if have == want:
        return None
    missing = [c for c in want if c not in have]
    extra = [c for c in have if c not in want]
    parts = ([f"missing {', '.join(map(repr, missing[:5]))}"] if missing else []) + (
        [f"unexpected {', '.join(map(repr, extra[:5]))}"] if extra else [])
    if parts:
        return "; ".join(parts)
    if len(set(have)) < len(have) or len(set(want)) < len(want):
        return "a column appears twice"
    return "same columns in another order"
