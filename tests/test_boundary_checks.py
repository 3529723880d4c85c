"""The boundary checks every entry point shares: one wording for one mistake."""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard._validation import check_flag_budget, resolve_flag_budget
from poisonguard.errors import InputError


@pytest.mark.parametrize(("value", "want"), [("10", 10), ("0.05", 0.05), (3, 3), (0.5, 0.5),
                                             (np.int64(7), 7), ("1", 1)])
def test_flag_budget_reads_counts_and_fractions(value: object, want: float) -> None:
    got = check_flag_budget(value)
    assert got == want and type(got) is type(want)


@pytest.mark.parametrize(("value", "message"), [
    ("abc", r"--budget must be a row count \(e.g. 10\) or a fraction in \(0, 1\) \(got 'abc'\)"),
    ("nan", "--budget must be a row count"), (True, "--budget must be a row count"),
    ("0", r"--budget must be > 0 \(got 0\)"), (-2, r"--budget must be > 0 \(got -2\)"),
    ("2.5", r"--budget of 1 or more must be a whole number of rows \(got 2.5\)"),
])
def test_flag_budget_mistakes_name_the_option(value: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_flag_budget(value, "--budget")


def test_flag_budget_as_rows() -> None:
    assert resolve_flag_budget(None, 100) is None
    assert resolve_flag_budget(0.001, 100) == 1  # a fraction rounds to at least one row
    assert resolve_flag_budget(0.25, 100) == 25
    with pytest.raises(InputError, match="'budget' of 101 rows exceeds the 100 rows scanned"):
        resolve_flag_budget(101, 100)


@pytest.mark.parametrize(("have", "want", "said"), [
    (["a", "b"], ["a", "b"], None),
    (["a", "c"], ["a", "b"], "missing 'b'; unexpected 'c'"),
    (["a"], ["a", "b", "c"], "missing 'b', 'c'"),
    (["b", "a"], ["a", "b"], "same columns in another order"),
    (["a", "a", "b"], ["a", "b", "b"], "a column appears twice"),
    ([f"x{i}" for i in range(8)], [], "unexpected 'x0', 'x1', 'x2', 'x3', 'x4'"),
])
def test_column_difference_says_what_differs(have: list[str], want: list[str],
                                             said: str | None) -> None:
    from poisonguard._validation import column_difference

    assert column_difference(have, want) == said
