"""JSON Lines (``.jsonl``, ``.ndjson``): one JSON object per line, read as a table.

Each non-blank line is an object whose fields are the columns (the union of every line's
fields, in the order they first appear; a field a line lacks is missing there). The label is
field ``--label``, the id ``--id-col``, the source ``--source-col``; the other fields are the
features, typed and checked as CSV columns are (:func:`poisonguard.io.frame_dataset`): one
string field makes text data (``{"text": "...", "label": "spam"}``), several make a table.
Errors name the line. Lines are at most :data:`LINE_MAX` characters, UTF-8, without NUL; a
line that is not a JSON object, repeats a key, holds NaN / Infinity, an integer of more than 40
digits, or a nested value (an object or a list) in a field is refused naming the line and field.

Rows written back to a ``.jsonl`` file that are unchanged copies of rows of the file read keep
that line's bytes (:func:`write_jsonl`, :func:`copy_lines`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.dataset import Dataset, Modality
from poisonguard.errors import InputError

__all__ = ["LINE_MAX", "copy_lines", "jsonl_chunks", "load_jsonl", "records", "write_jsonl"]

LINE_MAX = 2**26  # bytes in one line (64 MiB), as CSV lines
_BOM = b"\xef\xbb\xbf"


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` of every line, its line break (``\\n``) removed, read with a
    length bound (a file without line breaks is never read whole)."""
    with path.open("rb") as fh:
        number = 0
        while raw := fh.readline(LINE_MAX + 1):
            number += 1
            if len(raw) > LINE_MAX:
                raise InputError(f"{path}: line {number} is longer than {LINE_MAX:,} bytes; is "
                                 "this a JSON Lines file?")
            if b"\0" in raw:
                raise InputError(f"{path}: line {number} holds a NUL byte (binary data, not JSON "
                                 "Lines text)")
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM):]
            yield number, raw.removesuffix(b"\n")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in the object")
        out[key] = value
    return out


def _parse(path: Path, number: int, raw: bytes) -> dict[str, Any]:
    from poisonguard.io import _bounded_int, _finite_float, _no_constant

    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique,
                         parse_constant=_no_constant, parse_float=_finite_float,
                         parse_int=_bounded_int)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: line {number}: not UTF-8 text ({exc.reason} at byte "
                         f"{exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: line {number}: not valid JSON ({exc.msg} at column "
                         f"{exc.colno})") from None
    except RecursionError:
        raise InputError(f"{path}: line {number}: JSON nested too deeply") from None
    except ValueError as exc:  # a repeated key, NaN, a number out of range
        raise InputError(f"{path}: line {number}: {str(exc).splitlines()[0]}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{path}: line {number}: expected a JSON object {{...}}, got "
                         f"{type(obj).__name__ if obj is not None else 'null'}")
    for key, value in obj.items():
        if isinstance(value, dict | list):
            kind = "an object" if isinstance(value, dict) else "a list"
            raise InputError(f"{path}: line {number}, field {key!r}: holds {kind}; nested values "
                             "are not supported as features, labels, ids or sources")
    return obj


def records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of every non-blank line (checks in the module docstring)."""
    for number, raw in _lines(path):
        if raw.strip():
            yield number, _parse(path, number, raw)


class _Columns:
    """Objects gathered into columns (a field missing from a line is None there), their cells
    bounded by this machine's memory."""

    def __init__(self, path: Path, fields: list[str] | None = None) -> None:
        from poisonguard.io import _memory_bytes

        self.path, self.budget = path, _memory_bytes() // 8
        self.columns: dict[str, list[Any]] = {f: [] for f in fields or []}
        self.n = 0

    def add(self, number: int, obj: dict[str, Any]) -> None:
        for key in obj:
            if key not in self.columns:
                if (len(self.columns) + 1) * (self.n + 1) > self.budget:
                    raise InputError(f"{self.path}: line {number}: {len(self.columns) + 1:,} "
                                     f"fields over {self.n + 1:,} rows are more than this "
                                     "machine's memory holds")
                self.columns[key] = [None] * self.n
        for key, col in self.columns.items():
            col.append(obj.get(key))
        self.n += 1

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({k: pd.Series(v, dtype=object).infer_objects()
                             for k, v in self.columns.items()})


def _open(path: Path) -> None:
    """The checks every reader makes of the file before reading it."""
    from poisonguard.io import _check_readable, _memory_bytes, _size, register_input

    _check_readable(path)
    register_input(path)
    if path.stat().st_size > _memory_bytes():
        raise InputError(f"{path}: {_size(path.stat().st_size)} of text, more than this "
                         f"machine's memory ({_size(_memory_bytes())})")


def load_jsonl(path: str | Path, *, label: str = "label", id_col: str | None = None,
               source_col: str | None = None, modality: Modality | None = None) -> Dataset:
    """A JSON Lines file as a :class:`Dataset` (module docstring)."""
    from poisonguard.io import file_stamp, frame_dataset

    p = Path(path)
    _open(p)
    stamp = file_stamp(p)
    table, lines = _Columns(p), []
    for number, obj in records(p):
        table.add(number, obj)
        lines.append(number)
    if not table.n:
        raise InputError(f"{p}: no rows (every line is blank)")
    return frame_dataset(table.frame(), p, "jsonl", label=label, id_col=id_col,
                         source_col=source_col, modality=modality, lines=lines, stamp=stamp)


def jsonl_chunks(path: str | Path, *, label: str, id_col: str | None, source_col: str | None,
                 chunk_rows: int = 100_000) -> Iterator[Any]:
    """The rows of a JSON Lines file as :class:`~poisonguard.provenance.hashing.RowChunk` s of
    at most ``chunk_rows`` rows, every chunk with all the file's fields (two passes)."""
    from poisonguard.provenance.hashing import _check_columns, chunk_from_frame, rows_per_chunk

    p = Path(path)
    _open(p)
    fields: dict[str, None] = {}
    for _, obj in records(p):
        fields.update(dict.fromkeys(obj))
    if not fields:
        raise InputError(f"{p}: no rows (every line is blank)")
    names = list(fields)
    _check_columns(names, str(p), label, id_col, source_col)
    step, start = rows_per_chunk(len(names), chunk_rows), 0
    table = _Columns(p, names)
    for number, obj in records(p):
        table.add(number, obj)
        if table.n == step:
            yield chunk_from_frame(table.frame(), start, label=label, id_col=id_col,
                                   source_col=source_col, where=str(p))
            start, table = start + table.n, _Columns(p, names)
    if table.n:
        yield chunk_from_frame(table.frame(), start, label=label, id_col=id_col,
                               source_col=source_col, where=str(p))


def _plain(value: Any) -> Any:
    """A cell as a JSON value: numpy numbers as numbers, missing values as null, dates as ISO
    text, anything else as text."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)


def _originals(src: Path) -> list[bytes]:
    """The non-blank lines of a JSON Lines file, as bytes."""
    return [raw for _, raw in _lines(src) if raw.strip()]


def write_jsonl(frame: pd.DataFrame, tmp: Path, kept: tuple[Path, np.ndarray] | None) -> None:
    """``frame`` as JSON Lines; rows that are unchanged copies of rows of ``kept``'s file keep
    that file's line."""
    src, rows = kept if kept is not None else (None, np.full(len(frame), -1))
    originals = _originals(src) if src is not None else []
    names = [str(c) for c in frame.columns]
    with tmp.open("wb") as fh:
        for i, values in enumerate(frame.itertuples(index=False, name=None)):
            r = int(rows[i])
            if r >= 0:
                if r >= len(originals):
                    raise InputError(f"{src}: changed while the command ran; run it again")
                fh.write(originals[r] + b"\n")
                continue
            obj = {k: _plain(v) for k, v in zip(names, values, strict=True)}
            fh.write(json.dumps(obj, ensure_ascii=False, allow_nan=False).encode() + b"\n")


def copy_lines(src: Path, rows: np.ndarray, tmp: Path) -> None:
    """Rows ``rows`` (positions, in that order) of a JSON Lines file, their lines as they are."""
    originals = _originals(src)
    with tmp.open("wb") as fh:
        for r in rows.tolist():
            if r >= len(originals):
                raise InputError(f"{src}: changed while the command ran; run it again")
            fh.write(originals[r] + b"\n")
