"""Row hashes: SHA-256 over a canonical, format-independent encoding of each row.

A row is encoded as the magic bytes ``b"PG\\x01"`` followed by cells, in this order: the id (a
string; null when the manifest is keyed by content, i.e. without an id column), the source (a
string, or null), the label, then the features in the order of their column names (sorted by
code point, so moving a column is not a change). Each cell is self-delimiting:

* a number (any integer, float or boolean value, or a string that spells a finite number in
  canonical form: ``12``, ``-0.5``, ``1e-07``, ``True``/``False``; not ``00123``, `` 5`` or
  ``1.50``, which stay strings): ``0x01`` + the IEEE-754 float64, big-endian, with ``-0.0``
  written as ``0.0``;
* null (a missing cell, NaN, or a string pandas reads as missing: ``""``, ``NA``, ``NaN``...):
  nine zero bytes;
* any other string: ``0x02`` + its UTF-8 length as 4 bytes big-endian + the UTF-8 bytes;
* a list (a Parquet list, or any array or tuple in a cell): ``0x03`` + its length as 8 bytes
  big-endian + each element as a cell, recursively;
* a struct (a dict in a cell): ``0x04`` + its number of fields as 8 bytes big-endian + for each
  field, sorted by name, the name as a string cell and the value as a cell, recursively.

Nested values are thus hashed element by element, never through their printed form (numpy
prints ``...`` past 1,000 elements, which would let an edit to a long list pass unseen); they
may be nested at most 64 levels deep.

Only the typed values enter the hash, never the file's bytes, so the same table saved as CSV
and as Parquet gives the same row hashes (CSV writes floats exactly since Python 3.1), and a
CSV read in chunks types every value as a whole-file read would. Integers beyond 2**53 are not
exact in float64 and may collide with a neighbour; ids are strings and always exact. Dates are
hashed as their text, which differs between a CSV and a Parquet datetime column. Images and
other arrays are flattened in C order, one cell per value.
"""

from __future__ import annotations

import csv
import hashlib
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.errors import InputError

__all__ = ["MAGIC", "MAX_DEPTH", "RowChunk", "chunk_from_frame", "dataset_chunks", "file_sha256",
           "require_regular_file", "row_hashes", "rows_per_chunk", "table_chunks"]

MAGIC = b"PG\x01"
_NULL = b"\x00" * 9
_CHUNK_ROWS = 100_000
_CHUNK_BYTES = 32 * 2**20  # float64 cells hashed at a time: bounded memory whatever the width
MAX_DEPTH = 64  # levels of nesting a cell may have (lists of lists of ...)


@dataclass(frozen=True)
class RowChunk:
    """Consecutive rows of a table split into roles. ``features`` is in column-name order;
    ``ids``/``sources`` are strings (``sources`` may hold None for a missing source)."""

    start: int
    ids: np.ndarray | None
    sources: np.ndarray | None
    labels: np.ndarray
    features: tuple[tuple[str, np.ndarray], ...]

    @property
    def n_rows(self) -> int:
        return len(self.labels)


def require_regular_file(path: str | Path, what: str) -> Path:
    """``path`` when it is a regular file (or a link to one); an :class:`InputError` naming it
    otherwise, before anything reads it: a FIFO or ``/dev/zero`` would never end."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{p}: no such {what}") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read the {what} ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{p}: is a directory, expected a {what}")
    if not stat.S_ISREG(mode):
        raise InputError(f"{p}: not a regular file (a pipe, device or socket), expected a {what}")
    return p


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a regular file's bytes, hex (read in 1 MiB blocks); an :class:`InputError`
    naming anything else (checked on the opened file, so a swapped-in FIFO is refused too)."""
    p = Path(path)
    try:  # O_NONBLOCK: opening a FIFO returns at once, and fstat then refuses it
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(f"{p}: is a directory, expected a data file" if stat.S_ISDIR(mode)
                         else f"{p}: not a regular file, expected a data file")
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def rows_per_chunk(width: int, chunk_rows: int = _CHUNK_ROWS) -> int:
    """Rows to take at a time when a row has ``width`` cells: at most ``chunk_rows``, and at
    most :data:`_CHUNK_BYTES` of float64 cells, so memory is bounded by bytes (rows x width),
    not by a row count (60 rows of 655,360 values are 300 MiB)."""
    return max(1, min(chunk_rows, _CHUNK_BYTES // (8 * max(width, 1))))


def _string_cell(s: str) -> bytes:
    raw = s.encode("utf-8")
    return b"\x02" + len(raw).to_bytes(4, "big") + raw


def _numeric_block(values: np.ndarray) -> np.ndarray:
    """``(m, k)`` numbers (NaN = null) as ``(m, 9 k)`` bytes."""
    m, k = values.shape
    v = np.asarray(values, dtype=np.float64) + 0.0  # -0.0 + 0.0 == +0.0
    null = np.isnan(v)
    out = np.empty((m, k, 9), dtype=np.uint8)
    out[:, :, 0] = np.where(null, 0, 1)
    out[:, :, 1:] = np.where(null, 0.0, v).astype(">f8").view(np.uint8).reshape(m, k, 8)
    out[:, :, 1:][null] = 0
    return out.reshape(m, 9 * k)


# what pandas reads as a missing value in a CSV cell (its default na_values), and as booleans
_NA_STRINGS = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan",
                         "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a",
                         "nan", "null"})
_BOOL_STRINGS = {"True": 1.0, "False": 0.0, "TRUE": 1.0, "FALSE": 0.0, "true": 1.0, "false": 0.0}


def _canonical_number(text: str) -> float | None:
    """The number a string spells in canonical form ("12", "-0.5", "1e-07"), else None:
    "00123", " 5" and "1.50" stay strings, so editing one is a change."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not np.isfinite(value):
        return None
    if text == repr(value):
        return value
    if text.lstrip("-").isdigit() and (text.lstrip("-") == "0" or not text.lstrip("-").startswith("0")):
        return value if text != "-0" else None
    return None


def _cell(value: Any, depth: int = 0) -> bytes:
    """One value as a cell (module docstring), typed the way a CSV reader types it (so a chunk
    that pandas typed otherwise hashes alike); lists and structs element by element."""
    number: float | None = None
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA \
            or value is pd.NaT:
        return _NULL
    if isinstance(value, (bool, np.bool_, int, np.integer, float, np.floating)):
        number = float(value)
    elif isinstance(value, str):
        if value in _NA_STRINGS:
            return _NULL
        number = _BOOL_STRINGS.get(value, _canonical_number(value))
    elif isinstance(value, (np.ndarray, list, tuple, Mapping)):
        return _nested_cell(value, depth)
    else:  # dates and other objects: their text
        value = str(value)
    if number is not None:
        return bytes(_numeric_block(np.array([[number]]))[0].tobytes())
    return _string_cell(str(value))


def _nested_cell(value: np.ndarray | list[Any] | tuple[Any, ...] | Mapping[Any, Any],
                 depth: int) -> bytes:
    """A list (``0x03``) or a struct (``0x04``): its length, then its elements as cells."""
    if depth >= MAX_DEPTH:
        raise InputError(f"a value is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, Mapping):
        fields = sorted(((str(k), v) for k, v in value.items()), key=lambda kv: kv[0])
        return b"".join([b"\x04", len(fields).to_bytes(8, "big"),
                         *(_string_cell(k) + _cell(v, depth + 1) for k, v in fields)])
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return _cell(value.item(), depth)
    head = b"\x03" + len(value).to_bytes(8, "big")
    if isinstance(value, np.ndarray) and value.ndim == 1 and _is_numeric(value):
        # the same bytes as one numeric cell per element, in one step
        return head + bytes(_numeric_block(value.reshape(1, -1))[0].tobytes())
    return b"".join([head, *(_cell(v, depth + 1) for v in value)])


def _object_cells(values: np.ndarray) -> list[bytes]:
    """One cell per value of an object column: numbers, nulls, strings, lists and structs."""
    return [_cell(value) for value in values]


def _is_numeric(values: np.ndarray) -> bool:
    return values.dtype.kind in "iufb"


def row_hashes(chunk: RowChunk) -> np.ndarray:
    """SHA-256 of every row of ``chunk`` as an ``(m, 32)`` uint8 array (module docstring);
    wide rows are hashed a few at a time (:func:`rows_per_chunk`), so the encoded cells held
    at once stay bounded whatever the chunk's size."""
    m = chunk.n_rows
    width = 1 + sum(values.size for _, values in chunk.features) // max(m, 1)
    step = rows_per_chunk(width, max(m, 1))
    if step >= m:
        return _row_hashes(chunk)
    return np.concatenate([_row_hashes(_rows(chunk, start, min(start + step, m)))
                           for start in range(0, m, step)])


def _rows(chunk: RowChunk, start: int, stop: int) -> RowChunk:
    """Rows ``start:stop`` of ``chunk`` (views)."""
    part = slice(start, stop)
    return RowChunk(chunk.start + start, None if chunk.ids is None else chunk.ids[part],
                    None if chunk.sources is None else chunk.sources[part], chunk.labels[part],
                    tuple((name, values[part]) for name, values in chunk.features))


def _row_hashes(chunk: RowChunk) -> np.ndarray:
    m = chunk.n_rows
    prefix = [MAGIC] * m
    for role in (chunk.ids, chunk.sources):
        cells = [_NULL] * m if role is None else [
            _NULL if v is None else _string_cell(str(v)) for v in role]
        prefix = [a + b for a, b in zip(prefix, cells, strict=True)]
    # features: runs of numeric columns become one fixed-width block, other columns cell by cell
    parts: list[np.ndarray | list[bytes]] = []
    columns = [("label", chunk.labels), *chunk.features]
    run: list[np.ndarray] = []
    for _, values in columns:
        if _is_numeric(values):
            run.append(np.asarray(values, dtype=np.float64).reshape(m, -1))
            continue
        if run:
            parts.append(_numeric_block(np.concatenate(run, axis=1)))
            run = []
        parts.append(_object_cells(np.asarray(values, dtype=object)))
    if run:
        parts.append(_numeric_block(np.concatenate(run, axis=1)))
    out = np.empty((m, 32), dtype=np.uint8)
    if len(parts) == 1 and isinstance(parts[0], np.ndarray):  # the common all-numeric table
        block = parts[0]
        width = block.shape[1]
        buf = block.tobytes()
        digests = [hashlib.sha256(prefix[i] + buf[i * width:(i + 1) * width]).digest()
                   for i in range(m)]
    else:
        pieces: list[list[bytes]] = []
        for part in parts:
            if isinstance(part, np.ndarray):
                width = part.shape[1]
                buf = part.tobytes()
                pieces.append([buf[i * width:(i + 1) * width] for i in range(m)])
            else:
                pieces.append(part)
        digests = [hashlib.sha256(b"".join([prefix[i], *(p[i] for p in pieces)])).digest()
                   for i in range(m)]
    out[:] = np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(m, 32)
    return out


def chunk_from_frame(frame: pd.DataFrame, start: int, *, label: str, id_col: str | None,
                     source_col: str | None, where: str) -> RowChunk:
    """Split a table chunk into roles (``where`` names the file in errors)."""
    ids = None
    if id_col is not None:
        raw = frame[id_col]
        if raw.isna().any():
            i = int(np.flatnonzero(raw.isna().to_numpy())[0])
            raise InputError(f"{where}: row {start + i}, column '{id_col}': id is missing")
        ids = raw.astype(str).to_numpy(dtype=object)
    sources = None
    if source_col is not None:
        raw = frame[source_col]
        sources = np.asarray(np.where(raw.isna(), None, raw.astype(str)), dtype=object)
    special = {c for c in (label, id_col, source_col) if c is not None}
    names = sorted(c for c in frame.columns if c not in special)
    feats = tuple((str(c), _column_values(frame[c])) for c in names)
    return RowChunk(start, ids, sources, _column_values(frame[label]), feats)


def _column_order(frame: pd.DataFrame) -> tuple[list[tuple[str, int]], bool]:
    """``(name, position)`` of a frame's columns in name order, and whether every column is a
    plain numeric one (numpy integers, floats or booleans)."""
    kinds = set(frame.dtypes)
    numeric = bool(kinds) and all(isinstance(d, np.dtype) and d.kind in "iufb" for d in kinds)
    return sorted((str(c), j) for j, c in enumerate(frame.columns)), numeric


def _frame_features(frame: pd.DataFrame, order: list[tuple[str, int]],
                    numeric: bool) -> tuple[tuple[str, np.ndarray], ...]:
    """A frame's columns in ``order`` (:func:`_column_order`), as :func:`_column_values` gives
    them; an all-numeric frame (an image's pixels, a wide NPZ) is converted in one step."""
    if numeric:
        values = frame.to_numpy(dtype=np.float64)
        return tuple((name, values[:, j]) for name, j in order)
    return tuple((name, _column_values(frame.iloc[:, j])) for name, j in order)


def _column_values(series: pd.Series) -> np.ndarray:
    """Numeric columns as float64 (NaN = null), anything else as objects."""
    out: np.ndarray
    if pd.api.types.is_bool_dtype(series.dtype) and not series.isna().any():
        out = series.to_numpy(dtype=np.float64)
    elif pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        out = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        out = series.to_numpy(dtype=object)
    return out


def _check_columns(columns: list[str], where: str, label: str, id_col: str | None,
                   source_col: str | None) -> None:
    for role, col in (("label", label), ("id", id_col), ("source", source_col)):
        if col is not None and col not in columns:
            flag = "--label" if role == "label" else f"--{role}-col"
            raise InputError(f"{where}: no {role} column '{col}' (set {flag}); columns are: "
                             f"{', '.join(columns)}")


def table_chunks(path: str | Path, fmt: str, *, label: str, id_col: str | None,
                 source_col: str | None, chunk_rows: int = _CHUNK_ROWS) -> Iterator[RowChunk]:
    """Stream a CSV or Parquet file as :class:`RowChunk` s of at most ``chunk_rows`` rows (fewer
    when rows are wide: :func:`rows_per_chunk`). One column named for two roles is refused, as
    :func:`poisonguard.io.load` refuses it."""
    from poisonguard.io import check_roles, register_input

    check_roles(label, id_col, source_col)
    p = Path(path)
    register_input(p)
    text = {c: str for c in (id_col, source_col) if c is not None}
    start = 0
    if fmt == "csv":
        from poisonguard.io import check_csv_shape

        try:
            # ragged rows are refused as scan refuses them (pandas would fill short rows with
            # nulls); the check streams the file and its list of row lines is freed here
            check_csv_shape(p, lines=False)
            header = list(pd.read_csv(p, nrows=0).columns)
            _check_columns(header, str(p), label, id_col, source_col)
            reader = pd.read_csv(p, chunksize=rows_per_chunk(len(header), chunk_rows),
                                 dtype=text)
            for frame in reader:
                yield chunk_from_frame(frame, start, label=label, id_col=id_col,
                                       source_col=source_col, where=str(p))
                start += len(frame)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
                csv.Error) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{p}: cannot read as CSV: {first}") from None
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(p)
            columns = list(pf.schema_arrow.names)
            _check_columns(columns, str(p), label, id_col, source_col)
            for batch in pf.iter_batches(batch_size=rows_per_chunk(len(columns), chunk_rows)):
                frame = batch.to_pandas()
                yield chunk_from_frame(frame, start, label=label, id_col=id_col,
                                       source_col=source_col, where=str(p))
                start += len(frame)
        except (pa.ArrowException, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{p}: cannot read as Parquet: {first}") from None


def dataset_chunks(ds: Any, *, keyed: bool, chunk_rows: int = _CHUNK_ROWS) -> Iterator[RowChunk]:
    """A loaded :class:`poisonguard.Dataset` (NPZ files, built-in data sets) as chunks of at
    most ``chunk_rows`` rows (fewer when rows are wide: :func:`rows_per_chunk`)."""
    step = rows_per_chunk(int(np.prod(np.shape(ds.X)[1:])), chunk_rows)
    plan: tuple[list[tuple[str, int]], bool] | None = None  # the same for every chunk
    for start in range(0, ds.n_rows, step):
        stop = min(start + step, ds.n_rows)
        frame = ds.frame(slice(start, stop))
        if plan is None:
            plan = _column_order(frame)
        feats = _frame_features(frame, *plan)
        labels = np.asarray(ds.y[start:stop])
        labels = labels.astype(np.float64) if _is_numeric(labels) else labels.astype(object)
        yield RowChunk(start, np.asarray(ds.ids[start:stop], dtype=object) if keyed else None,
                       None if ds.sources is None else np.asarray(ds.sources[start:stop],
                                                                  dtype=object),
                       labels, feats)
