"""Nested cells (Parquet lists and structs) are hashed element by element: values that differ
hash differently, however long the list, and ``verify`` names the row whose list changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from poisonguard.cli import main
from poisonguard.errors import InputError
from poisonguard.provenance.hashing import MAX_DEPTH, RowChunk, row_hashes

# scalars the canonical typing keeps apart: integers exact in float64, finite floats, strings
# that read neither as a number nor as missing, and null
scalars = st.one_of(st.none(), st.integers(-(2**53), 2**53),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(max_size=8).map(lambda s: "s" + s))
nested = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=20)


def canon(value: Any) -> Any:
    """What the hash is meant to tell apart: numbers by value (``1`` is ``1.0``, ``-0.0`` is
    ``0.0``), lists by their elements, structs by their named fields."""
    if isinstance(value, bool | int | float):
        return ("n", float(value) + 0.0)
    if isinstance(value, list):
        return ("l", tuple(canon(v) for v in value))
    if isinstance(value, dict):
        return ("d", tuple(sorted((k, canon(v)) for k, v in value.items())))
    return ("s", value)


def digest(*values: Any) -> list[bytes]:
    column = np.empty(len(values), dtype=object)
    column[:] = list(values)
    chunk = RowChunk(0, None, None, np.zeros(len(values)), (("x", column),))
    return [bytes(h) for h in row_hashes(chunk)]


def as_arrays(value: Any) -> Any:
    """Lists of plain numbers as numpy arrays, as Parquet list columns come back."""
    if isinstance(value, list):
        if value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return np.asarray(value, dtype=np.float64)
        return [as_arrays(v) for v in value]
    if isinstance(value, dict):
        return {k: as_arrays(v) for k, v in value.items()}
    return value


@settings(max_examples=300, deadline=None)
@given(nested, nested)
def test_distinct_nested_values_hash_differently(a: Any, b: Any) -> None:
    ha, hb = digest(a, b)
    assert (ha == hb) == (canon(a) == canon(b))


@settings(max_examples=100, deadline=None)
@given(nested)
def test_an_array_hashes_as_the_list_of_its_elements(value: Any) -> None:
    assert digest(value) == digest(as_arrays(value))


@pytest.mark.parametrize(("a", "b"), [
    ([1, 2], [[1, 2]]), ([], None), ([None], []), ({"a": 1}, ["a", 1]), (["ab"], ["a", "b"]),
    ({"a": [1]}, {"a": 1}), ([1, [2, 3]], [[1, 2], 3]), (list(range(2000)),
                                                        [*range(1500), -1, *range(1501, 2000)]),
])
def test_lookalikes_hash_differently(a: Any, b: Any) -> None:
    ha, hb = digest(a, b)
    assert ha != hb


def test_nesting_is_bounded() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(InputError, match="nested more than"):
        digest(deep)


def _parquet(path: Path, values: list[list[int]], structs: list[dict[str, Any]]) -> None:
    table = pa.table({"id": [f"r{i}" for i in range(len(values))],
                      "seq": pa.array(values, pa.list_(pa.int64())),
                      "meta": pa.array(structs),
                      "label": [i % 2 for i in range(len(values))]})
    pq.write_table(table, path)


def test_verify_catches_a_change_far_into_a_long_list(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    values = [rng.integers(0, 1000, 2000).tolist() for _ in range(6)]
    structs = [{"vendor": f"v{i % 2}", "tags": ["a", "b"], "score": float(i)} for i in range(6)]
    data, m = tmp_path / "seq.parquet", tmp_path / "seq.json"
    _parquet(data, values, structs)
    assert main(["manifest", str(data), "--id-col", "id", "--out", str(m)]) == 0
    assert main(["verify", str(data), str(m)]) == 0
    str_before = str(pd.read_parquet(data)["seq"][3])
    values[3][1500] += 1  # an edit numpy does not print: "[.. ... ..]" is the same text
    _parquet(data, values, structs)
    assert str(pd.read_parquet(data)["seq"][3]) == str_before
    capsys.readouterr()
    assert main(["verify", str(data), str(m)]) == 3
    assert "changed (1): r3" in capsys.readouterr().out  # the rows on stdout, one error line
    values[3][1500] -= 1
    structs[4]["tags"] = ["a", "c"]  # and a field inside a struct
    _parquet(data, values, structs)
    assert main(["verify", str(data), str(m)]) == 3
    assert "changed (1): r4" in capsys.readouterr().out
    assert json.loads(m.read_text())["rows"] == 6
