"""Load and save datasets: CSV, Parquet, NPZ, JSON Lines (image and Hugging Face folders are
read by :mod:`poisonguard.formats`). Writes are atomic (temp file + rename).

Errors name the file, and the column, row or line at fault. Nothing is unpickled: NPZ files
are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import errno
import json
import lzma
import math
import os
import stat
import tempfile
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from io import StringIO
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import pandas as pd

from poisonguard.dataset import FEATURE_MAX, Dataset, Modality, Origin
from poisonguard.errors import InputError

__all__ = ["FORMATS", "atomic_path", "atomic_paths", "check_csv_shape", "check_output",
           "check_roles", "check_target", "check_writable", "days_since_epoch", "file_format", "file_stamp",
           "guarded_outputs", "load", "neutralise_formulas", "read_bytes", "read_json",
           "register_input", "report_csv", "save", "save_to", "write_rows", "write_text"]

Format = Literal["csv", "parquet", "npz", "jsonl"]
FORMATS: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet",
                              ".npz": "npz", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_NAMED = [".csv", ".jsonl", ".npz", ".parquet", ".pq"]  # named when an extension is unknown
NUMERIC_SHARE = 0.9  # a column this numeric is numeric: other values in it are errors
DATE_SHARE = 0.95  # a text column this much made of dates in one format is a date column


def file_format(path: str | Path) -> Format:
    """The format named by a path's extension, or an :class:`InputError`."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise InputError(f"{path}: unknown file extension {ext or '(none)'!r}; "
                         f"expected one of {', '.join(_NAMED)}")
    return FORMATS[ext]


# ------------------------------------------------------------------ inputs never overwritten
# One CLI command runs inside ``guarded_outputs()``: every file it reads is registered here, and
# every atomic write checks its target against them (after symlinks, and by inode for hard
# links). Library calls outside such a block are not restricted.
_Input = tuple[Path, Path, "tuple[int, int] | None"]
_INPUTS: ContextVar[list[_Input] | None] = ContextVar("poisonguard_inputs", default=None)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: compare the path as given
        return path.absolute()


@contextmanager
def guarded_outputs() -> Iterator[None]:
    """Within this block (one command), no atomic write may land on a file read in it."""
    token = _INPUTS.set([])
    try:
        yield
    finally:
        _INPUTS.reset(token)


def register_input(path: str | Path) -> None:
    """Record ``path`` as an input of the running command (no-op outside
    :func:`guarded_outputs`)."""
    inputs = _INPUTS.get()
    if inputs is not None:
        p = Path(path)
        inputs.append((p, _resolved(p), _identity(p)))


def check_output(path: str | Path, option: str = "") -> None:
    """Refuse (:class:`InputError`) an output path that is, after symlinks or by inode, one of
    the running command's inputs; ``option`` (e.g. ``--out``) names it in the message."""
    inputs = _INPUTS.get()
    if not inputs:
        return
    target = Path(path)
    resolved, ident = _resolved(target), _identity(target)
    for given, res, iid in inputs:
        if res == resolved or (ident is not None and ident == iid):
            raise InputError(f"{option + ' ' if option else ''}{target}: output would "
                             f"overwrite the input {given}; choose another output path")
        if res in resolved.parents and given.is_dir():  # an image folder's new file is data
            raise InputError(f"{option + ' ' if option else ''}{target}: inside the data folder "
                             f"{given}, which this command reads; write it elsewhere")


_KINDS = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _not_regular(mode: int) -> str | None:
    """What a file that is not a regular file (nor a directory) is, e.g. "a named pipe"."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def check_target(path: str | Path, option: str = "") -> None:
    """Everything a command checks of an output before it starts work: not one of its inputs
    (:func:`check_output`), not a directory, and in a folder that can be made and written
    (:func:`check_writable`)."""
    target = Path(path)
    check_output(target, option)
    if target.is_dir():
        raise InputError(f"{option + ' ' if option else ''}{target}: is a directory, expected a "
                         "file to write")
    check_writable(target, option)


def check_writable(path: str | Path, option: str = "") -> None:
    """Refuse (:class:`InputError`) an output whose folder cannot be made or written, without
    creating anything: the nearest existing ancestor must be a writable folder."""
    target = Path(path)
    where = f"{option} {target}" if option else str(target)
    parent = target.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{where}: cannot write ({parent} is not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{where}: cannot write ({parent}: permission denied)")


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a data file")
    kind = _not_regular(path.stat().st_mode)  # a pipe or /dev/zero would block or never end
    if kind is not None:
        raise InputError(f"{path}: is {kind}, expected a regular data file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: file is not readable (permission denied)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")


def _memory_bytes() -> int:
    """This machine's physical memory: no declared size beyond it is ever allocated."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): assume 64 GiB
        return 2**36


def _size(n: int) -> str:
    """``n`` bytes for people: "72.8 TiB"."""
    for unit, k in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 2**k:
            return f"{n / 2**k:.3g} {unit}"
    return f"{n} bytes"


# ------------------------------------------------------------------------ reading tables
CSV_LINE_MAX = 2**26  # characters in one physical line (64 Mi)
CSV_FIELD_MAX = 2**24  # characters in one cell (16 Mi), also across quoted line breaks


def _bounded_lines(fh: TextIO, path: Path) -> Iterator[str]:
    """The lines of ``fh``, each read with a length bound (a file without line breaks is never
    read whole); a NUL character marks binary data."""
    number = 0
    while line := fh.readline(CSV_LINE_MAX + 1):
        number += 1
        if len(line) > CSV_LINE_MAX:
            raise InputError(f"{path}: line {number} is longer than {CSV_LINE_MAX:,} characters; "
                             "is this a CSV file?")
        if "\0" in line:
            raise InputError(f"{path}: line {number} holds a NUL character (binary data, not "
                             "CSV text)")
        yield line


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line the row starts on, cells)`` of each non-blank row of a CSV file, the header first;
    lines and cells have bounded length (:data:`CSV_LINE_MAX`, :data:`CSV_FIELD_MAX`)."""
    old = csv.field_size_limit(CSV_FIELD_MAX)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(_bounded_lines(fh, path))
            start = 1
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    if "field larger than field limit" in str(exc):
                        raise InputError(f"{path}: line {start}: a field is longer than "
                                         f"{CSV_FIELD_MAX:,} characters (an unclosed quote?)") from None
                    raise InputError(f"{path}: line {reader.line_num}: {exc}") from None
                if row:
                    yield start, row
                start = reader.line_num + 1
    finally:
        csv.field_size_limit(old)


def check_csv_shape(path: Path, *, lines: bool = True) -> list[int]:
    """Refuse ragged rows (every line must have as many fields as the header) and repeated
    column names (pandas would rename them: ``label,label`` becomes ``label, label.1``).

    Returns the line each row starts on (quoted fields may span lines; blank lines are
    skipped); ``lines`` False: nothing is kept (memory stays flat however long the file).
    """
    rows = _csv_rows(path)
    _, header = next(rows, (0, []))
    if not header:
        raise InputError(f"{path}: file is empty")
    _check_unique(header, path, "header")
    width = len(header)
    starts: list[int] = []
    for start, row in rows:
        if len(row) != width:
            raise InputError(f"{path}: line {start} has {len(row)} fields but the "
                             f"header has {width}")
        if lines:
            starts.append(start)
    return starts


def _check_unique(names: Sequence[str], path: Path, where: str) -> None:
    dups = [n for n, k in Counter(names).items() if k > 1]
    if dups:
        shown = ", ".join(repr(n) for n in dups)
        raise InputError(f"{path}: column name {shown} appears more than once in the {where}; "
                         "column names must be unique")


def _check_parquet(path: Path) -> None:
    """From the footer alone: unique column names, no nested (list, struct, map) columns, and
    a row count whose values fit in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as pf:
        schema, meta = pf.schema_arrow, pf.metadata
    _check_unique(schema.names, path, "schema")
    for f in schema:
        kind = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if pa.types.is_nested(kind):
            raise InputError(f"{path}: column '{f.name}' holds nested values ({kind}); nested "
                             "values are not supported as features, labels, ids or sources")
    need = meta.num_rows * max(meta.num_columns, 1) * 8
    if need > _memory_bytes():
        raise InputError(f"{path}: declares {meta.num_rows:,} rows of {meta.num_columns} columns "
                         f"(at least {_size(need)}), more than this machine's memory "
                         f"({_size(_memory_bytes())})")


def _read_table(path: Path, fmt: str, text_cols: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[int]]:
    """The table and, for CSV, the line each row starts on."""
    lines: list[int] = []
    try:
        if fmt == "csv":
            lines = check_csv_shape(path)
            # ids and sources are names, read as text: "007" must not become 7
            df = pd.read_csv(path, keep_default_na=True, dtype=dict.fromkeys(text_cols, str))
        else:
            _check_parquet(path)
            df = pd.read_parquet(path)
    except InputError:
        raise
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path}: cannot read as {fmt}: {first}") from None
    if df.shape[0] == 0:
        raise InputError(f"{path}: file has a header but no rows")
    df.columns = [str(c) for c in df.columns]
    return df, lines if len(lines) == len(df) else []


def file_stamp(path: str | Path) -> tuple[int, int]:
    """``(size, mtime_ns)``: a file rewritten since is a file with another stamp (a stat, not
    a read); a folder's over its files (:func:`poisonguard.formats.folder_stamp`)."""
    if Path(path).is_dir():
        from poisonguard.formats import folder_stamp
        return folder_stamp(Path(path))
    st = Path(path).stat()
    return (st.st_size, st.st_mtime_ns)


def _line(lines: list[int], i: int, offset: int = 0) -> str:
    """Row ``i`` of a table read from its file's row ``offset`` on (and its CSV line, when
    known)."""
    return f"row {offset + i} (line {lines[i]})" if i < len(lines) else f"row {offset + i}"


def days_since_epoch(values: pd.Series) -> np.ndarray:
    """Dates (datetime64, tz-aware ones in UTC) as float days since 1970-01-01; NaT is NaN."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    days = (values - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)
    return np.asarray(days.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def _is_date_format(fmt: str) -> bool:
    """A format with a year and a month ("%Y-%m", "%d/%m/%y", ...), not a time or a year alone."""
    return any(d in fmt for d in ("%Y", "%y")) and any(d in fmt for d in ("%m", "%b", "%B"))


def _date_column(s: pd.Series) -> tuple[np.ndarray, str, int] | None:
    """Days since 1970-01-01 of a text column whose present values are dates in one format:
    the format guessed from up to 50 values that at least :data:`DATE_SHARE` of the present
    values parse with; values that do not parse become missing (counted). None otherwise."""
    from pandas.tseries.api import guess_datetime_format

    present = s[s.notna()]
    head = present.iloc[:1000].astype(str).drop_duplicates().iloc[:50]
    with warnings.catch_warnings():  # guessing warns about day-first formats
        warnings.simplefilter("ignore")
        guesses = [guess_datetime_format(v) for v in head]
    formats = pd.Series([g for g in guesses if g and _is_date_format(g)],
                        dtype=object).value_counts(sort=True)
    if formats.empty:
        return None
    present = present.astype(str)
    for fmt in formats.index[:3]:
        parsed = pd.to_datetime(present, format=str(fmt), errors="coerce", utc="%z" in str(fmt))
        ok = int(parsed.notna().sum())
        if ok >= DATE_SHARE * len(present):
            days = np.full(len(s), np.nan)
            days[np.flatnonzero(s.notna().to_numpy())] = days_since_epoch(parsed)
            return days, str(fmt), len(present) - ok
    return None


def _coerce_columns(df: pd.DataFrame, path: Path, lines: list[int], offset: int = 0
                    ) -> tuple[pd.DataFrame, tuple[tuple[str, str, int], ...]]:
    """Numeric-looking columns become float; a stray word in one is an error naming the row.
    True/False columns become 1.0/0.0 and date columns days since 1970-01-01 (returned as
    ``(column, format, values not read as dates)``); missing values stay missing."""
    out = {}
    dates: list[tuple[str, str, int]] = []
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_bool_dtype(s.dtype):
            out[col] = s.astype(np.float64)
            continue
        if pd.api.types.is_numeric_dtype(s.dtype):
            out[col] = s
            continue
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            out[col] = pd.Series(days_since_epoch(s), index=s.index)
            dates.append((col, "", 0))
            continue
        present = s.notna().to_numpy()
        num = pd.to_numeric(s, errors="coerce")
        ok = num.notna().to_numpy()
        if present.sum() and ok.sum() >= NUMERIC_SHARE * present.sum():
            bad = np.flatnonzero(present & ~ok)
            if bad.size:
                i = int(bad[0])
                raise InputError(f"{path}: {_line(lines, i, offset)}, column '{col}': "
                                 f"{s.iloc[i]!r} is not "
                                 "a number (the column is numeric)")
            out[col] = num
            continue
        as_date = _date_column(s)
        if as_date is not None:
            out[col] = pd.Series(as_date[0], index=s.index)
            dates.append((col, as_date[1], as_date[2]))
        else:
            out[col] = s.astype(object).where(s.notna(), None)
    return pd.DataFrame(out), tuple(dates)


def _inf_check(X: pd.DataFrame, path: Path, lines: list[int], offset: int = 0) -> None:
    """Missing feature values are allowed; infinities and values beyond :data:`FEATURE_MAX`
    (1e300 would overflow the scan's squares) are refused, naming the row and column."""
    for col in X.columns:
        s = X[col]
        if not pd.api.types.is_numeric_dtype(s.dtype):
            continue
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(v)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{path}: {_line(lines, i, offset)}, column '{col}': value is "
                             f"{s.iloc[i]}; "
                             "features must be finite (missing values are allowed)")
        with np.errstate(invalid="ignore"):
            big = np.abs(v) > FEATURE_MAX
        if big.any():
            i = int(np.flatnonzero(big)[0])
            raise InputError(f"{path}: {_line(lines, i, offset)}, column '{col}': value "
                             f"{v[i]:g} is too "
                             f"large to compute with (|value| must be at most {FEATURE_MAX:g})")


def _table_dataset(path: Path, fmt: Literal["csv", "parquet"], label: str, id_col: str | None,
                   source_col: str | None, modality: Modality | None) -> Dataset:
    stamp = file_stamp(path)
    df, lines = _read_table(path, fmt, tuple(c for c in (id_col, source_col) if c is not None))
    return frame_dataset(df, path, fmt, label=label, id_col=id_col, source_col=source_col,
                         modality=modality, lines=lines,
                         stamp=stamp if fmt == "parquet" or lines else None)


def frame_dataset(df: pd.DataFrame, path: Path,
                  fmt: Literal["csv", "parquet", "jsonl", "hf", "frame"], *, label: str,
                  id_col: str | None, source_col: str | None, modality: Modality | None,
                  lines: list[int] | None = None, stamp: tuple[int, int] | None = None,
                  offset: int = 0) -> Dataset:
    """The table ``df`` read from ``path`` (all of it, or its rows from ``offset`` on: a
    partition, whose errors name the file's rows and whose default ids are the file's row
    numbers) as a dataset, with the checks and typing of :func:`load`."""
    lines = lines or []
    columns = list(df.columns)
    for role, col in (("label", label), ("id", id_col), ("source", source_col)):
        if col is not None and col not in columns:
            flag = "--label" if role == "label" else f"--{role}-col"
            raise InputError(f"{path}: no {role} column '{col}' (set {flag}); columns are: "
                             f"{', '.join(columns)}")
    special = {c for c in (label, id_col, source_col) if c is not None}
    feats = [c for c in columns if c not in special]
    if not feats:
        raise InputError(f"{path}: no feature columns besides '{label}'")
    for role, col in (("label", label), ("id", id_col)):
        missing = df[col].isna().to_numpy() if col is not None else ()
        if np.any(missing):
            i = int(np.flatnonzero(missing)[0])
            raise InputError(f"{path}: {_line(lines, i, offset)}, column '{col}': {role} is "
                             "missing")
    X, dates = _coerce_columns(df[feats], path, lines, offset)
    _inf_check(X, path, lines, offset)
    numeric = all(pd.api.types.is_numeric_dtype(X[c].dtype) for c in feats)
    kind = modality or ("text" if len(feats) == 1 and not numeric else "tabular")
    origin = Origin(path=str(path), format=fmt, label=label, id_col=id_col, source_col=source_col,
                    columns=tuple(columns), dtypes=tuple((c, str(df[c].dtype)) for c in feats),
                    dates=dates, stamp=stamp)
    ids = df[id_col].to_numpy() if id_col else (
        np.arange(offset, offset + len(df)).astype(str) if offset else None)
    sources = df[source_col].to_numpy() if source_col else None
    if kind == "text":
        missing = X[feats[0]].isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise InputError(f"{path}: {_line(lines, i, offset)}, column '{feats[0]}': text is "
                             "missing")
        Xv: Any = X[feats[0]].astype(str).to_numpy(dtype=object)
    elif numeric:
        Xv = X.to_numpy(dtype=np.float64)
    else:
        Xv = X
    try:
        return Dataset(Xv, df[label].to_numpy(), ids=ids, sources=sources, modality=kind,
                       feature_names=feats, name=path.stem, origin=origin)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


NPZ_MAX_RATIO = 2000  # deflate, what numpy writes, stays under ~1032:1; more marks a bomb
_OBJECTS = ("holds pickled object arrays, which are never loaded; store strings as fixed-width "
            "unicode arrays")


def _npy_header(fp: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """Shape and dtype from a .npy header, reading no data."""
    fmt = np.lib.format
    version = fmt.read_magic(fp)
    if version == (1, 0):
        shape, _, dtype = fmt.read_array_header_1_0(fp)
    elif version == (2, 0):
        shape, _, dtype = fmt.read_array_header_2_0(fp)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(int(d) for d in shape), dtype


def _npz_members(zf: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    """The archive's arrays by name, each checked against what its headers declare before any
    data is read: every member a .npy array of plain (not object) values, no member that
    inflates more than :data:`NPZ_MAX_RATIO` times, no more than this machine's memory in all,
    and a .npy header whose shape and dtype match the member's size."""
    members: dict[str, zipfile.ZipInfo] = {}
    for info in zf.infolist():
        name = info.filename.removesuffix(".npy")
        if name == info.filename:
            raise InputError(f"{path}: member {info.filename!r} is not a .npy array "
                             "(write the file with numpy.savez)")
        if name in members:
            raise InputError(f"{path}: array {name!r} appears twice in the archive")
        if info.file_size > 2**20 and info.file_size > NPZ_MAX_RATIO * max(info.compress_size, 1):
            raise InputError(f"{path}: array {name!r} would inflate from "
                             f"{_size(info.compress_size)} to {_size(info.file_size)} (more than "
                             f"{NPZ_MAX_RATIO}:1); refused as a zip bomb")
        members[name] = info
    total, memory = sum(i.file_size for i in members.values()), _memory_bytes()
    if total > memory:
        raise InputError(f"{path}: arrays would need {_size(total)}, more than this machine's "
                         f"memory ({_size(memory)})")
    for name, info in members.items():
        with zf.open(info) as fp:
            try:
                shape, dtype = _npy_header(fp)
            except (ValueError, SyntaxError, EOFError) as exc:
                raise InputError(f"{path}: array {name!r} has no valid .npy header "
                                 f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                                 ) from None
            data = info.file_size - fp.tell()
        if dtype.hasobject:
            raise InputError(f"{path}: {_OBJECTS}")
        count = math.prod(shape)
        if dtype.itemsize == 0 and count:
            raise InputError(f"{path}: array {name!r} declares {count:,} values of no size "
                             f"(dtype {dtype})")
        if count * dtype.itemsize != data:
            raise InputError(f"{path}: array {name!r} declares shape {shape} of {dtype} "
                             f"({_size(count * dtype.itemsize)}) but holds {_size(data)}")
    return members


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an npz archive, sizes checked before anything is allocated; nothing is
    unpickled."""
    with path.open("rb") as fh:
        magic = fh.read(6)
        if magic.startswith(b"\x93NUMPY"):
            raise InputError(f"{path}: holds a single .npy array, not an npz archive of "
                             "arrays 'X' and 'y' (write it with numpy.savez)")
        if not magic.startswith(b"PK"):
            raise InputError(f"{path}: not an npz archive (write it with numpy.savez)")
        fh.seek(0)
        try:
            with zipfile.ZipFile(fh) as zf:
                arrays = {}
                for name, info in _npz_members(zf, path).items():
                    with zf.open(info) as fp:
                        arrays[name] = np.lib.format.read_array(fp, allow_pickle=False)
                return arrays
        except InputError:
            raise
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError,
                NotImplementedError, RuntimeError) as exc:  # corrupt, truncated, encrypted
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{path}: cannot read as npz: {first}") from None


def _npz_dataset(path: Path, modality: Modality | None) -> Dataset:
    arrays = _read_npz(path)
    missing = [k for k in ("X", "y") if k not in arrays]
    if missing:
        raise InputError(f"{path}: no array {' or '.join(repr(m) for m in missing)}; arrays are: "
                         f"{', '.join(arrays) or '(none)'}")
    X = arrays["X"]
    names = arrays.get("feature_names")
    origin = Origin(path=str(path), format="npz", npz_keys=tuple(arrays))
    if X.dtype.kind in "US" and X.ndim == 1:
        modality = modality or "text"
    try:
        return Dataset(X, arrays["y"], ids=arrays.get("ids"), sources=arrays.get("sources"),
                       modality=modality, name=path.stem, origin=origin,
                       feature_names=None if names is None else [str(n) for n in names])
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def check_roles(label: str, id_col: str | None, source_col: str | None) -> None:
    """Refuse (:class:`InputError`) one column named for two roles, e.g. ``--label`` and
    ``--source-col`` both ``label``: a column can have only one role."""
    roles = (("--label", label), ("--id-col", id_col), ("--source-col", source_col))
    for i, (flag, col) in enumerate(roles):
        for other, col2 in roles[:i]:
            if col is not None and col == col2:
                raise InputError(f"{other} and {flag} both name column {col!r}; a column can "
                                 "have only one role")


def load(path: str | Path, *, label: str = "label", id_col: str | None = None,
         source_col: str | None = None, modality: Modality | None = None,
         image_size: tuple[int, int] | None = None) -> Dataset:
    """Read a dataset from CSV, Parquet or NPZ, or what :mod:`poisonguard.formats` reads: a JSON
    Lines file (as a table), an image folder or a Hugging Face ``save_to_disk`` folder
    (``image_size`` ``(height, width)`` resizes their images).

    CSV / Parquet: one row per example, the label in column ``label``, optional id and source
    columns; a single string feature column makes a text dataset, string columns otherwise stay
    categorical. Feature values may be missing (empty cells, ``NA``, ``nan``, ...); True/False
    columns become 1/0 and date columns (95 % of their values dates in one format) days since
    1970-01-01, recorded in ``origin.dates``; the file itself is never changed. Infinite
    values, missing labels and ids, and missing text are refused. NPZ: arrays ``X``, ``y``
    and optional ``ids``, ``sources``, ``feature_names``.
    """
    check_roles(label, id_col, source_col)
    p = Path(path)
    from poisonguard import formats

    if (kind := formats.detect(p)) is not None:  # JSON Lines, image and Hugging Face folders
        return formats.load(p, kind, label=label, id_col=id_col, source_col=source_col,
                            modality=modality, image_size=image_size)
    if image_size is not None:
        raise InputError(f"--image-size: {p} holds no encoded images to resize")
    _check_readable(p)
    register_input(p)
    fmt = file_format(p)
    if fmt == "npz":
        return _npz_dataset(p, modality)
    assert fmt != "jsonl"  # formats.detect took it
    return _table_dataset(p, fmt, label, id_col, source_col, modality)


# ------------------------------------------------------------------------------ writing
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM,
                 errno.EIO)


@contextmanager
def _temp_beside(target: Path, mode: int | None = None, *, check: bool = True) -> Iterator[Path]:
    """A new temporary file beside ``target`` (random name, ``O_EXCL``: never a planted
    symlink), removed on the way out unless renamed. ``mode`` None keeps the mode of the file
    being replaced (or the umask's). ``check`` False: the final name is decided later and
    checked then."""
    if check:
        check_output(target)
    if target.is_dir():
        raise InputError(f"{target}: is a directory, expected a file to write")
    fd: int | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix,
                                   dir=target.parent)
        try:
            os.fchmod(fd, _file_mode(target) if mode is None else mode)
        finally:
            os.close(fd)
    except OSError as exc:
        if fd is not None and os.path.lexists(tmp):
            os.unlink(tmp)
        raise InputError(f"{target}: cannot write ({exc.strerror})") from None
    try:
        yield Path(tmp)
    except OSError as exc:
        if exc.errno in _WRITE_ERRORS and exc.filename in (None, tmp, str(tmp)):
            raise InputError(f"{target}: cannot write ({exc.strerror})") from None
        raise
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def _commit(tmp: Path, target: Path) -> None:
    """fsync the bytes, rename onto ``target``, fsync the folder: once this returns, the new
    file is on disk under its name (before, say, a manifest that names it is written)."""
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the bytes are on disk before the name points at them
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError as exc:
        raise InputError(f"{target}: cannot write ({exc.strerror})") from None
    try:
        folder = os.open(target.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(folder)  # the rename itself is durable
    except OSError:
        pass  # not every file system can sync a folder
    finally:
        os.close(folder)


@contextmanager
def atomic_path(path: str | Path, *, mode: int | None = None,
                named: Callable[[Path], Path] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The target may not be an input of the running command (:func:`check_output`); a full disk
    or a read-only place is an :class:`InputError` naming the target. ``mode`` (e.g. ``0o600``
    for a private key) is set before anything is written. ``named``: the final path is chosen
    from the written temporary file (a content-addressed name), then checked like any target;
    ``path`` only places the temporary file.
    """
    target = Path(path)
    with _temp_beside(target, mode, check=named is None) as tmp:
        yield tmp
        if named is not None:
            target = named(tmp)
            check_output(target)
        _commit(tmp, target)


@contextmanager
def atomic_paths(paths: Sequence[str | Path]) -> Iterator[list[Path]]:
    """Write a group of files that belong together (e.g. data and its ground truth).

    Yields one temporary path per target. On success the *last* target (the primary file) is
    removed first, the others are renamed into place, and the primary last: a reader who finds
    the primary file also finds the companions written with it, never an older companion. A
    crash part-way leaves the primary missing rather than paired with the wrong companions.
    """
    targets = [Path(p) for p in paths]
    for i, t in enumerate(targets):
        for u in targets[:i]:
            if _resolved(t) == _resolved(u):
                raise InputError(f"{t}: given for two outputs of one command")
    with ExitStack() as stack:
        tmps = [stack.enter_context(_temp_beside(t)) for t in targets]
        yield tmps
        primary = targets[-1]
        if primary.is_symlink() or primary.exists():
            try:
                primary.unlink()
            except OSError as exc:
                raise InputError(f"{primary}: cannot write ({exc.strerror})") from None
        for tmp, target in zip(tmps, targets, strict=True):
            _commit(tmp, target)


def _file_mode(target: Path) -> int:
    """The mode of the file being replaced, or the one a new file gets under the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_rows(source: str | Path, rows: np.ndarray, target: str | Path) -> Path:
    """Copy rows ``rows`` (positions, in that order) of the data file ``source`` to ``target``
    in the same format, atomically, values untouched: CSV cells as their text, Parquet with its
    schema, NPZ with every per-row array sliced (no rows: a header, or empty arrays)."""
    src, idx = Path(source), np.asarray(rows, dtype=np.int64)
    register_input(src)
    fmt = file_format(src)
    if file_format(target) != fmt:
        raise InputError(f"{target}: must be a .{fmt} file like {src}")
    with atomic_path(target) as tmp:
        if fmt == "csv":
            frame = pd.read_csv(src, dtype=str, keep_default_na=False, na_filter=False)
            frame.iloc[idx].to_csv(tmp, index=False)
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pq.read_table(src).take(pa.array(idx, pa.int64())), tmp)
        elif fmt == "jsonl":
            from poisonguard.formats.jsonl import copy_lines
            copy_lines(src, idx, tmp)
        else:
            with src.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
                n = len(z["y"])
                arrays = {k: (z[k][idx] if z[k].ndim and len(z[k]) == n and k != "feature_names"
                              else z[k]) for k in z.files}
            with tmp.open("wb") as out:
                np.savez(out, **arrays)
    return Path(target)


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file; a missing, unreadable or invalid one raises :class:`InputError` naming
    the file and ``what`` it should have been (e.g. "manifest")."""
    p = Path(path)
    data = read_bytes(p, what)
    if len(data) > JSON_MAX_BYTES:
        raise InputError(f"{p}: not a {what} ({len(data)} bytes; at most {JSON_MAX_BYTES} are read)")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant,
                          parse_float=_finite_float, parse_int=_bounded_int)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: not a {what} (invalid JSON: {exc})") from None
    except RecursionError:
        raise InputError(f"{p}: not a {what} (JSON nested too deeply)") from None
    except ValueError as exc:  # a number out of range: 1e400, a 5,000-digit integer, NaN
        raise InputError(f"{p}: not a {what} ({str(exc).splitlines()[0]})") from None


JSON_MAX_BYTES = 256 * 2**20  # manifests, profiles, checkpoints and triggers are far smaller


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 40:
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits is out of range")
    return int(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def read_bytes(path: str | Path, what: str) -> bytes:
    """A file's bytes; a missing or unreadable one raises :class:`InputError` naming the file
    and ``what`` it should have been."""
    p = Path(path)
    register_input(p)
    try:
        if not stat.S_ISREG(p.stat().st_mode):  # a FIFO or a device never ends
            raise InputError(f"{p}: not a regular file, expected a {what}")
        return p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: no such {what}") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, expected a {what}") from None
    except PermissionError:
        raise InputError(f"{p}: permission denied") from None


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically; returns its path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells that a spreadsheet would run as a formula (starting
    with ``= + - @``, tab or carriage return) begin with a single quote (OWASP's rule). For
    reports meant for people; data copies stay exact."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or isinstance(out[col].dtype, pd.StringDtype):
            values = out[col]
            risky = values.map(lambda v: isinstance(v, str) and v.startswith(_FORMULA_START))
            if risky.any():
                out[col] = values.where(~risky, "'" + values.astype(str))
    return out


def report_csv(frame: pd.DataFrame, path: str | Path, **to_csv: Any) -> Path:
    """Write a report table for people as CSV, atomically, formulas neutralised."""
    return write_text(path, neutralise_formulas(frame).to_csv(index=False, **to_csv))


def _column(values: np.ndarray, dtype: str | None, date_format: str | None) -> Any:
    """A feature column back in the type it had in the file: integers, nullable integers,
    float32 and booleans as such, dates (``date_format``: ``""`` native, else the text format
    they were read in) as dates, numbers read from a text column as text. Values the type
    cannot hold exactly (3.5 in an integer column) keep the column as it is."""
    if values.dtype.kind != "f" or not dtype:
        return values
    present = ~np.isnan(values)
    try:
        if date_format is not None:
            return _dates(values, dtype, date_format)
        target = pd.api.types.pandas_dtype(dtype)
    except (TypeError, ValueError, OverflowError):
        return values
    whole = bool(np.all(values[present] == np.round(values[present])))
    if target.kind in "iub" and not whole:
        return values
    if target.kind in "iu":
        info = np.iinfo(target.numpy_dtype if hasattr(target, "numpy_dtype") else target)
        if present.any() and not info.min <= values[present].min() <= values[present].max() <= info.max:
            return values
    if target.kind == "b" and not np.isin(values[present], (0.0, 1.0)).all():
        return values
    if target.kind in "iubf":
        if isinstance(target, np.dtype) and not present.all():
            return values  # a numpy int / bool column holds no missing values
        return pd.Series(values).astype(target).array
    if pd.api.types.is_string_dtype(target):  # a text column of numbers ("01419" read as 1419)
        return np.array([(str(int(v)) if v == int(v) else repr(float(v))) if ok else None
                         for v, ok in zip(values, present, strict=True)], dtype=object)
    return values


def _dates(days: np.ndarray, dtype: str, date_format: str) -> Any:
    """Days since 1970-01-01 as the dates they were read from (to the microsecond)."""
    micros = np.round(days * 86_400e6)
    stamps = pd.Series(pd.to_datetime(micros, unit="us"))
    if not date_format:  # a native date column: its own unit and time zone
        target = pd.api.types.pandas_dtype(dtype)
        if isinstance(target, pd.DatetimeTZDtype):
            stamps = stamps.dt.tz_localize("UTC").dt.tz_convert(target.tz)
        return stamps.astype(target).array
    if "%z" in date_format or "%Z" in date_format:
        stamps = stamps.dt.tz_localize("UTC")
    text = stamps.dt.strftime(date_format)
    return text.astype(object).where(text.notna(), None).to_numpy()


def _to_frame(ds: Dataset) -> pd.DataFrame:
    origin = ds.origin if ds.origin is not None and ds.origin.format != "npz" else None
    label = origin.label if origin else "label"
    feats = ds.frame()
    if ds.modality == "text" and origin and len(origin.columns):
        special = {origin.label, origin.id_col, origin.source_col}
        names = [c for c in origin.columns if c not in special]
        feats.columns = names[:1] or ["text"]
    dtypes = dict(origin.dtypes) if origin else {}
    dates = {c: fmt for c, fmt, _ in origin.dates} if origin else {}
    cols: dict[str, Any] = {c: _column(feats[c].to_numpy(), dtypes.get(c), dates.get(c))
                            for c in feats.columns}
    cols[label] = ds.y
    id_col = origin.id_col if origin else (None if ds.has_default_ids else "id")
    if id_col:
        cols[id_col] = ds.ids
    source_col = origin.source_col if origin else ("source" if ds.sources is not None else None)
    if source_col and ds.sources is not None:
        cols[source_col] = ds.sources
    order = [c for c in origin.columns if c in cols] if origin else []
    order += [c for c in cols if c not in order]
    return pd.DataFrame({c: cols[c] for c in order})


def _kept_rows(ds: Dataset, fmt: str) -> tuple[Path, np.ndarray] | None:
    """The file and, per row, the row of it to copy as it is (-1: write from the data), when
    ``ds`` is a copy of rows of a file of format ``fmt`` that has not changed since."""
    origin = ds.origin
    if origin is None or origin.file_rows is None or origin.stamp is None or origin.format != fmt:
        return None
    rows = np.asarray(origin.file_rows, dtype=np.int64)
    if len(rows) != ds.n_rows or not (rows >= 0).any():
        return None
    src = Path(origin.path)
    try:
        same = file_stamp(src) == origin.stamp
    except OSError:
        same = False
    if not same:
        raise InputError(f"{src}: changed while the command ran; run it again")
    return src, rows


def _write_csv(frame: pd.DataFrame, tmp: Path, kept: tuple[Path, np.ndarray] | None) -> None:
    """``frame`` as CSV; rows that are unchanged copies of rows of ``kept``'s file keep that
    file's cell text (a reader would turn ``01419`` into 1419 and ``1e3`` into 1000.0)."""
    if kept is None:
        frame.to_csv(tmp, index=False)
        return
    src, rows = kept
    cells = _csv_rows(src)
    _, header = next(cells, (0, []))
    where = [header.index(c) if c in header else -1 for c in frame.columns]
    redo = np.flatnonzero(rows < 0) if min(where) >= 0 else np.arange(len(rows))
    old = csv.field_size_limit(2**31 - 1)  # our own text, as pandas writes it
    try:
        rendered = dict(zip(redo.tolist(), csv.reader(StringIO(
            frame.iloc[redo].to_csv(index=False, header=False))), strict=True))
    finally:
        csv.field_size_limit(old)
    fetch = _row_reader((row for _, row in cells), rows[rows >= 0], src)
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh, lineterminator=os.linesep)  # pandas' own writer and line ends
        out.writerow(frame.columns)
        for i, r in enumerate(rows.tolist()):
            data = rendered.get(i, [])
            if r < 0:
                out.writerow(data)
                continue
            original = fetch(r)
            out.writerow([original[k] if k >= 0 else data[j] for j, k in enumerate(where)])


def _row_reader(rows: Iterator[list[str]], wanted: np.ndarray,
                src: Path) -> Callable[[int], list[str]]:
    """Row ``r`` of ``rows`` on demand: in one pass when ``wanted`` asks for rows in order (as
    attacks keep them), else from a list of all of them."""
    changed = InputError(f"{src}: changed while the command ran; run it again")
    if np.all(np.diff(wanted) > 0):
        numbered = enumerate(rows)

        def next_wanted(r: int) -> list[str]:
            for k, row in numbered:
                if k == r:
                    return row
            raise changed
        return next_wanted
    table = list(rows)

    def any_row(r: int) -> list[str]:
        if r >= len(table):
            raise changed
        return table[r]
    return any_row


def _write_parquet(frame: pd.DataFrame, tmp: Path, kept: tuple[Path, np.ndarray] | None) -> None:
    """``frame`` as Parquet; rows that are unchanged copies of rows of ``kept``'s file keep that
    file's values and column types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if kept is None:
        frame.to_parquet(tmp, index=False)
        return
    src, rows = kept
    data = pa.Table.from_pandas(frame, preserve_index=False)
    orig = pq.read_table(src)
    if rows.max() >= orig.num_rows:
        raise InputError(f"{src}: changed while the command ran; run it again")
    index = pa.array(np.where(rows >= 0, rows, orig.num_rows + np.arange(len(rows))))
    columns = []
    for name in data.column_names:
        new = data.column(name)
        old = orig.column(name) if name in orig.column_names else None
        if old is not None and old.type != new.type:
            try:
                new = new.cast(old.type)  # data rows in the file's type where it holds them
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                try:
                    old = old.cast(new.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    old = None
        columns.append(new if old is None else
                       pa.chunked_array(old.chunks + new.chunks, type=new.type).take(index))
    table = pa.Table.from_arrays(columns, names=data.column_names)
    # pandas' notes on the columns' types: the file's when its schema came through unchanged
    same = table.schema.equals(orig.schema, check_metadata=False)
    pq.write_table(table.replace_schema_metadata((orig if same else data).schema.metadata), tmp)


def _save_npz(ds: Dataset, tmp: Path) -> None:
    X = ds.X
    if ds.modality == "text":
        X = np.asarray(X, dtype=str)
    elif isinstance(X, pd.DataFrame):
        raise InputError(f"{tmp.name}: tabular data with categorical columns cannot be saved as "
                         "npz; save as .csv or .parquet")
    arrays: dict[str, Any] = {"X": X, "y": ds.y}
    keys = ds.origin.npz_keys if ds.origin is not None and ds.origin.format == "npz" else ()
    if "ids" in keys or not ds.has_default_ids:
        arrays["ids"] = ds.ids
    if ds.sources is not None:
        arrays["sources"] = ds.sources
    default_names = tuple(f"x{j}" for j in range(len(ds.feature_names)))
    if "feature_names" in keys or ds.feature_names != default_names:
        arrays["feature_names"] = np.asarray(ds.feature_names, dtype=str)
    with tmp.open("wb") as fh:
        np.savez_compressed(fh, **arrays)


def save(dataset: Dataset, path: str | Path) -> Path:
    """Write ``dataset`` to ``path`` atomically, in the format its extension names.

    When the dataset was loaded from a file of the same kind, the file's columns (label, id,
    source, order) and integer dtypes are kept.
    """
    fmt = file_format(path)
    if dataset.modality == "image" and fmt != "npz":
        raise InputError(f"{path}: image data can only be saved as .npz")
    with atomic_path(path) as tmp:
        save_to(dataset, tmp, fmt=fmt)
    return Path(path)


def save_to(dataset: Dataset, tmp: Path, *, fmt: Format) -> None:
    """Write ``dataset`` in format ``fmt`` to ``tmp`` as it is (not atomic: for a temporary path
    from :func:`atomic_path` or :func:`atomic_paths`)."""
    from poisonguard.formats.jsonl import write_jsonl

    writers: dict[str, Callable[[Path], None]] = {
        "csv": lambda t: _write_csv(_to_frame(dataset), t, _kept_rows(dataset, "csv")),
        "parquet": lambda t: _write_parquet(_to_frame(dataset), t, _kept_rows(dataset, "parquet")),
        "npz": lambda t: _save_npz(dataset, t),
        "jsonl": lambda t: write_jsonl(_to_frame(dataset), t, _kept_rows(dataset, "jsonl")),
    }
    if dataset.modality == "image" and fmt != "npz":
        raise InputError(f"{tmp}: image data can only be saved as .npz")
    writers[fmt](tmp)
