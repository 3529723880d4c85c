"""Load and save datasets: CSV, Parquet, NPZ. Writes are atomic (temp file + rename).

Errors name the file, and the column, row or line at fault. Nothing is unpickled: NPZ files
are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import stat
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from poisonguard.dataset import Dataset, Modality, Origin
from poisonguard.errors import InputError

__all__ = ["FORMATS", "atomic_path", "atomic_paths", "check_output", "days_since_epoch", "file_format",
           "guarded_outputs", "load", "neutralise_formulas", "read_bytes", "read_json",
           "register_input", "report_csv", "save", "save_to", "write_rows", "write_text"]

FORMATS: dict[str, Literal["csv", "parquet", "npz"]] = {
    ".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npz": "npz"}
NUMERIC_SHARE = 0.9  # a column this numeric is numeric: other values in it are errors
DATE_SHARE = 0.95  # a text column this much made of dates in one format is a date column


def file_format(path: str | Path) -> Literal["csv", "parquet", "npz"]:
    """The format named by a path's extension, or an :class:`InputError`."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise InputError(f"{path}: unknown file extension {ext or '(none)'!r}; "
                         f"expected one of {', '.join(sorted(FORMATS))}")
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


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a data file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: file is not readable (permission denied)")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: file is empty")


# ------------------------------------------------------------------------ reading tables
def _check_csv_shape(path: Path) -> list[int]:
    """Refuse ragged rows: every line must have as many fields as the header.

    Returns the line each row starts on (quoted fields may span lines; blank lines are skipped).
    """
    starts: list[int] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise InputError(f"{path}: file is empty")
        width = len(header)
        start = reader.line_num + 1
        for row in reader:
            if row and len(row) != width:
                raise InputError(f"{path}: line {start} has {len(row)} fields but the "
                                 f"header has {width}")
            if row:
                starts.append(start)
            start = reader.line_num + 1
    return starts


def _read_table(path: Path, fmt: str, text_cols: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[int]]:
    """The table and, for CSV, the line each row starts on."""
    lines: list[int] = []
    try:
        if fmt == "csv":
            lines = _check_csv_shape(path)
            # ids and sources are names, read as text: "007" must not become 7
            df = pd.read_csv(path, keep_default_na=True, dtype=dict.fromkeys(text_cols, str))
        else:
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


def _line(lines: list[int], i: int) -> str:
    return f"row {i} (line {lines[i]})" if i < len(lines) else f"row {i}"


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


def _coerce_columns(df: pd.DataFrame, path: Path, lines: list[int]
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
                raise InputError(f"{path}: {_line(lines, i)}, column '{col}': {s.iloc[i]!r} is not "
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


def _inf_check(X: pd.DataFrame, path: Path, lines: list[int]) -> None:
    """Missing feature values are allowed; infinities are refused, naming the row and column."""
    for col in X.columns:
        s = X[col]
        if not pd.api.types.is_numeric_dtype(s.dtype):
            continue
        bad = np.isinf(s.to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"{path}: {_line(lines, i)}, column '{col}': value is {s.iloc[i]}; "
                             "features must be finite (missing values are allowed)")


def _table_dataset(path: Path, fmt: Literal["csv", "parquet"], label: str, id_col: str | None,
                   source_col: str | None, modality: Modality | None) -> Dataset:
    df, lines = _read_table(path, fmt, tuple(c for c in (id_col, source_col) if c is not None))
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
            raise InputError(f"{path}: {_line(lines, i)}, column '{col}': {role} is missing")
    X, dates = _coerce_columns(df[feats], path, lines)
    _inf_check(X, path, lines)
    numeric = all(pd.api.types.is_numeric_dtype(X[c].dtype) for c in feats)
    kind = modality or ("text" if len(feats) == 1 and not numeric else "tabular")
    origin = Origin(path=str(path), format=fmt, label=label, id_col=id_col, source_col=source_col,
                    columns=tuple(columns), dtypes=tuple((c, str(df[c].dtype)) for c in feats),
                    dates=dates)
    ids = df[id_col].to_numpy() if id_col else None
    sources = df[source_col].to_numpy() if source_col else None
    if kind == "text":
        missing = X[feats[0]].isna().to_numpy()
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise InputError(f"{path}: {_line(lines, i)}, column '{feats[0]}': text is missing")
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


def _npz_dataset(path: Path, modality: Modality | None) -> Dataset:
    try:
        with path.open("rb") as fh:  # ours to close, also when numpy fails on a corrupt zip
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise InputError(f"{path}: holds a single .npy array, not an npz archive of "
                                 "arrays 'X' and 'y' (write it with numpy.savez)")
            with z:
                arrays = {k: z[k] for k in z.files}
    except InputError:
        raise
    except ValueError as exc:
        if "Object arrays" in str(exc):
            raise InputError(f"{path}: holds pickled object arrays, which are never loaded; "
                             "store strings as fixed-width unicode arrays") from None
        if "pickle" in str(exc):  # neither .npy nor zip: numpy could only unpickle it
            raise InputError(f"{path}: not an npz archive (write it with numpy.savez)") from None
        raise InputError(f"{path}: cannot read as npz: {exc}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: cannot read as npz: {exc}") from None
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


def load(path: str | Path, *, label: str = "label", id_col: str | None = None,
         source_col: str | None = None, modality: Modality | None = None) -> Dataset:
    """Read a dataset from CSV, Parquet or NPZ.

    CSV / Parquet: one row per example, the label in column ``label``, optional id and source
    columns; a single string feature column makes a text dataset, string columns otherwise stay
    categorical. Feature values may be missing (empty cells, ``NA``, ``nan``, ...); True/False
    columns become 1/0 and date columns (95 % of their values dates in one format) days since
    1970-01-01, recorded in ``origin.dates``; the file itself is never changed. Infinite
    values, missing labels and ids, and missing text are refused. NPZ: arrays ``X``, ``y``
    and optional ``ids``, ``sources``, ``feature_names``.
    """
    p = Path(path)
    _check_readable(p)
    register_input(p)
    fmt = file_format(p)
    if fmt == "npz":
        return _npz_dataset(p, modality)
    return _table_dataset(p, fmt, label, id_col, source_col, modality)


# ------------------------------------------------------------------------------ writing
_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM,
                 errno.EIO)


@contextmanager
def _temp_beside(target: Path, mode: int | None = None) -> Iterator[Path]:
    """A new temporary file beside ``target`` (random name, ``O_EXCL``: never a planted
    symlink), removed on the way out unless renamed. ``mode`` None keeps the mode of the file
    being replaced (or the umask's)."""
    check_output(target)
    if target.is_dir():
        raise InputError(f"{target}: is a directory, expected a file to write")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix,
                                   dir=target.parent)
        os.fchmod(fd, _file_mode(target) if mode is None else mode)
    except OSError as exc:
        raise InputError(f"{target}: cannot write ({exc.strerror})") from None
    finally:
        if "fd" in locals():
            os.close(fd)
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
    try:
        os.replace(tmp, target)
    except OSError as exc:
        raise InputError(f"{target}: cannot write ({exc.strerror})") from None


@contextmanager
def atomic_path(path: str | Path, *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The target may not be an input of the running command (:func:`check_output`); a full disk
    or a read-only place is an :class:`InputError` naming the target. ``mode`` (e.g. ``0o600``
    for a private key) is set before anything is written.
    """
    target = Path(path)
    with _temp_beside(target, mode) as tmp:
        yield tmp
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


def _column(values: np.ndarray, dtype: str | None) -> Any:
    if dtype and dtype.startswith(("int", "Int", "uint")) and values.dtype.kind == "f" and np.all(
            values == np.round(values)):
        return values.astype(np.int64)
    return values


def _to_frame(ds: Dataset) -> pd.DataFrame:
    origin = ds.origin if ds.origin is not None and ds.origin.format != "npz" else None
    label = origin.label if origin else "label"
    feats = ds.frame()
    if ds.modality == "text" and origin and len(origin.columns):
        special = {origin.label, origin.id_col, origin.source_col}
        names = [c for c in origin.columns if c not in special]
        feats.columns = names[:1] or ["text"]
    dtypes = dict(origin.dtypes) if origin else {}
    cols: dict[str, Any] = {c: _column(feats[c].to_numpy(), dtypes.get(c)) for c in feats.columns}
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


def save_to(dataset: Dataset, tmp: Path, *, fmt: Literal["csv", "parquet", "npz"]) -> None:
    """Write ``dataset`` in format ``fmt`` to ``tmp`` as it is (not atomic: for a temporary path
    from :func:`atomic_path` or :func:`atomic_paths`)."""
    writers: dict[str, Callable[[Path], None]] = {
        "csv": lambda t: _to_frame(dataset).to_csv(t, index=False),
        "parquet": lambda t: _to_frame(dataset).to_parquet(t, index=False),
        "npz": lambda t: _save_npz(dataset, t),
    }
    if dataset.modality == "image" and fmt != "npz":
        raise InputError(f"{tmp}: image data can only be saved as .npz")
    writers[fmt](tmp)
