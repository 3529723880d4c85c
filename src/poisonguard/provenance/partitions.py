"""Data as partitions of consecutive rows: what an engine (:mod:`poisonguard.engine`) hashes.

DATA is a CSV, Parquet, NPZ or JSON Lines file, a built-in data set's name, a folder of Parquet
files, or an image or Hugging Face folder (:mod:`poisonguard.formats`; these two are one source
whose rows :func:`poisonguard.formats.row_chunks` gives, never split into partitions).
Rows are numbered partition by partition, then in order within a partition, so every engine
numbers, types and hashes the same rows alike:

* a folder: its ``*.parquet`` files in the order of their names, sorted by code point as Python
  sorts strings (``part-10`` comes before ``part-9``: pad numbers to keep them in order), each
  file's rows in file order. Names starting with ``.`` or ``_`` (``_SUCCESS``, ``.crc`` files)
  are skipped; any other file or a subfolder is refused, so no rows go unhashed unseen;
* a Parquet file: runs of consecutive row groups of about ``partition_rows`` rows;
* a CSV file: runs of rows, a whole number of hashing chunks each (found by one pass over its
  records); each run is read with the header in front of it, in the same chunks as the whole
  file is, so pandas types every value as it does in a whole-file read. A file that pass cannot
  split (not UTF-8, a NUL, a line over the length limit) is one partition.

Each partition is hashed into a :class:`HashedRows` with the row hashing of
:mod:`poisonguard.provenance.hashing`, wherever it runs. A folder's manifest records format
``parquet-folder``, its name and total bytes, and no file SHA-256: its Merkle root covers the
rows of every file.
"""

from __future__ import annotations

import csv
import io as _io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from poisonguard.errors import InputError
from poisonguard.provenance.hashing import (
    RowChunk,
    _check_columns,  # the same refusal, naming the option, as a whole-file read
    chunk_from_frame,
    require_regular_file,
    row_hashes,
    rows_per_chunk,
    table_chunks,
)

if TYPE_CHECKING:
    from poisonguard.dataset import Dataset

__all__ = ["HashedRows", "Partition", "Roles", "Source", "hash_chunks", "hash_partition",
           "open_source", "plan", "plan_csv", "plan_parquet", "read_partition"]


@dataclass(frozen=True)
class Roles:
    """The columns' roles and the rows hashed at a time (``chunk_rows``, fewer for wide rows:
    :func:`~poisonguard.provenance.hashing.rows_per_chunk`)."""

    label: str = "label"
    id_col: str | None = None
    source_col: str | None = None
    chunk_rows: int = 100_000


@dataclass(frozen=True)
class Source:
    """What DATA is: ``fmt``, the files read in row order (none for a built-in data set) and
    what a manifest records of it (``info``: path, format, bytes; a single file's SHA-256 is
    added by the engine that reads it)."""

    data: str
    fmt: Literal["builtin", "npz", "csv", "parquet", "parquet-folder", "jsonl", "images", "hf"]
    files: tuple[Path, ...]
    info: dict[str, Any]


@dataclass(frozen=True)
class Partition:
    """Rows ``start`` .. ``start + rows - 1`` of DATA, all in the file ``path``: the row groups
    ``row_groups`` of a Parquet file, the bytes ``byte_range`` of a CSV file (read after its
    first ``header_bytes``), or, when both are None, the whole file (``rows`` None: as many as
    it has)."""

    path: str
    fmt: Literal["csv", "parquet"]
    start: int
    rows: int | None = None
    row_groups: tuple[int, ...] | None = None
    byte_range: tuple[int, int] | None = None
    header_bytes: int = 0


@dataclass(frozen=True)
class HashedRows:
    """Row hashes of rows ``start`` .. ``start + n - 1`` read from ``where``: ``hashes`` ``(n,
    32)`` uint8, ``ids`` as UTF-8 bytes (numpy ``S``; None without an id column),
    ``source_codes`` int32 indices into ``source_names`` (-1: no source; None without a source
    column) and the feature columns in hashing order (``names``; None when there are no rows)."""

    where: str
    start: int
    names: tuple[str, ...] | None
    hashes: np.ndarray
    ids: np.ndarray | None
    source_codes: np.ndarray | None
    source_names: tuple[str, ...]

    @property
    def n_rows(self) -> int:
        return len(self.hashes)


def _folder_files(folder: Path) -> tuple[Path, ...]:
    """The Parquet files of ``folder`` in name order (module docstring)."""
    from poisonguard.io import register_input

    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the folder ({exc.strerror})") from None
    files = []
    for entry in entries:
        if entry.name.startswith((".", "_")):
            continue
        if entry.suffix.lower() != ".parquet" or entry.is_dir():
            raise InputError(f"{folder}: holds {entry.name!r}, which is not a Parquet file; a data "
                             "folder holds only *.parquet files (names starting with '.' or '_' "
                             "are skipped)")
        register_input(require_regular_file(entry, "Parquet file"))
        files.append(entry)
    if not files:
        raise InputError(f"{folder}: is a directory with no *.parquet files, expected a data "
                         "file or a folder of Parquet files")
    return tuple(files)


def open_source(data: str, roles: Roles) -> Source:
    """What ``data`` is (a file, a folder of Parquet files or a built-in data set name), its
    files checked and registered as inputs; an :class:`InputError` naming it otherwise."""
    from poisonguard import formats, io
    from poisonguard.datasets import DATASETS

    io.check_roles(roles.label, roles.id_col, roles.source_col)  # as every command refuses it
    p = Path(data)
    if not p.exists() and data in DATASETS:
        return Source(data, "builtin", (), {"path": data, "format": "builtin"})
    if p.is_dir() and (kind := formats.detect(p)) in formats.FOLDER_KINDS:  # images, hf
        assert kind == "images" or kind == "hf"
        return Source(data, kind, (p,), {"path": p.name, "format": kind})
    if p.is_dir():
        files = _folder_files(p)
        return Source(data, "parquet-folder", files, {
            "path": p.name, "format": "parquet-folder",
            "bytes": sum(f.stat().st_size for f in files)})
    require_regular_file(p, "data file")
    io.register_input(p)  # no output of this command may replace it (io.check_output)
    fmt = io.file_format(p)
    return Source(data, fmt, (p,), {"path": p.name, "format": fmt, "bytes": p.stat().st_size})


# ------------------------------------------------------------------------------ hashing
def hash_chunks(chunks: Iterable[RowChunk], where: str, start: int) -> HashedRows:
    """Hash consecutive chunks (the first starting at row ``start``) into one
    :class:`HashedRows`; a value nested too deeply is refused naming ``where`` and the rows."""
    hashes, ids, codes = [], [], []
    names: tuple[str, ...] | None = None
    sources: dict[str, int] = {}
    keyed = with_sources = False
    for chunk in chunks:
        if names is None:
            names = tuple(name for name, _ in chunk.features)
        try:
            hashes.append(row_hashes(chunk))
        except InputError as exc:  # a value nested too deeply: name the file and rows
            raise InputError(f"{where}: rows {chunk.start}..{chunk.start + chunk.n_rows - 1}: "
                             f"{exc}") from None
        if chunk.ids is not None:
            keyed = True
            ids.append(np.array([s.encode("utf-8") for s in chunk.ids], dtype="S"))
        if chunk.sources is not None:
            with_sources = True
            codes.append(np.array([-1 if s is None else sources.setdefault(s, len(sources))
                                   for s in chunk.sources], dtype=np.int32))
    return HashedRows(
        where, start, names,
        np.concatenate(hashes) if hashes else np.empty((0, 32), dtype=np.uint8),
        (np.concatenate(ids) if ids else np.empty(0, dtype="S1")) if keyed else None,
        (np.concatenate(codes) if codes else np.empty(0, dtype=np.int32)) if with_sources
        else None,
        tuple(sources))


def hash_partition(part: Partition, roles: Roles) -> HashedRows:
    """Read and hash one partition (on whichever machine runs it); an :class:`InputError` when
    it does not hold the rows its plan counted (the file changed, or a CSV dialect the plan's
    pass reads otherwise than pandas)."""
    got = hash_chunks(_partition_chunks(part, roles), part.path, part.start)
    if part.rows is not None and got.n_rows != part.rows:
        raise InputError(f"{part.path}: rows {part.start}..: read {got.n_rows} rows where "
                         f"{part.rows} were counted when the data was split (the file changed, "
                         "or a CSV dialect the split cannot follow: use --engine local)")
    return got


def _partition_chunks(part: Partition, roles: Roles) -> Iterator[RowChunk]:
    kw: dict[str, Any] = {"label": roles.label, "id_col": roles.id_col,
                          "source_col": roles.source_col}
    if part.row_groups is None and part.byte_range is None:
        chunks: Iterator[RowChunk] = table_chunks(part.path, part.fmt, chunk_rows=roles.chunk_rows,
                                                  **kw)
    elif part.fmt == "parquet":
        chunks = _parquet_groups(Path(part.path), part.row_groups or (), roles)
    else:
        chunks = _csv_range(part, roles)
    for chunk in chunks:
        yield replace(chunk, start=part.start + chunk.start) if part.start else chunk


def _parquet_groups(p: Path, groups: tuple[int, ...], roles: Roles) -> Iterator[RowChunk]:
    """The row groups ``groups`` of a Parquet file as chunks, read as
    :func:`~poisonguard.provenance.hashing.table_chunks` reads the whole file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    start = 0
    try:
        pf = pq.ParquetFile(p)
        columns = list(pf.schema_arrow.names)
        _check_columns(columns, str(p), roles.label, roles.id_col, roles.source_col)
        for batch in pf.iter_batches(batch_size=rows_per_chunk(len(columns), roles.chunk_rows),
                                     row_groups=list(groups)):
            frame = batch.to_pandas()
            yield chunk_from_frame(frame, start, label=roles.label, id_col=roles.id_col,
                                   source_col=roles.source_col, where=str(p))
            start += len(frame)
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{p}: cannot read as Parquet: {first}") from None


class _Spans(_io.RawIOBase):
    """The bytes ``spans`` (``[begin, end)`` pairs, in turn) of a file, as one stream."""

    def __init__(self, path: Path, spans: list[tuple[int, int]]) -> None:
        super().__init__()
        self._fh = path.open("rb")
        self._spans = [s for s in spans if s[1] > s[0]]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._spans:
            pos, stop = self._spans[0]
            self._fh.seek(pos)
            view = memoryview(buffer).cast("B")
            n = self._fh.readinto(view[:min(len(view), stop - pos)])
            if not n:
                raise OSError(f"{self._fh.name}: the file ended before byte {stop} (it changed)")
            self._spans[0] = (pos + n, stop)
            if pos + n >= stop:
                self._spans.pop(0)
            return n
        return 0

    def close(self) -> None:
        self._fh.close()
        super().close()


def _csv_range(part: Partition, roles: Roles) -> Iterator[RowChunk]:
    """The rows in ``part.byte_range`` of a CSV file, read with its header in front in the
    chunks a whole-file read uses (so every chunk is typed as there)."""
    import pandas as pd

    p = Path(part.path)
    assert part.byte_range is not None  # a CSV partition without one is read whole
    text = {c: str for c in (roles.id_col, roles.source_col) if c is not None}
    start = 0
    try:
        with _Spans(p, [(0, part.header_bytes), part.byte_range]) as raw:
            stream = _io.BufferedReader(raw, 1 << 20)
            header = list(pd.read_csv(_io.BytesIO(_head(p, part.header_bytes)), nrows=0).columns)
            _check_columns(header, str(p), roles.label, roles.id_col, roles.source_col)
            reader = pd.read_csv(stream, chunksize=rows_per_chunk(len(header), roles.chunk_rows),
                                 dtype=text)
            for frame in reader:
                yield chunk_from_frame(frame, start, label=roles.label, id_col=roles.id_col,
                                       source_col=roles.source_col, where=str(p))
                start += len(frame)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error,
            OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{p}: cannot read as CSV: {first}") from None


def read_partition(part: Partition, roles: Roles, rows: np.ndarray | None = None) -> Dataset:
    """One partition as a :class:`~poisonguard.dataset.Dataset`, read, checked and typed as
    :func:`poisonguard.io.load` reads a whole file, but from the partition's rows alone (a
    column is typed on them); its errors name the file's rows, and without an id column its
    ids are the file's row numbers. ``rows``: only these positions within the partition."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from poisonguard import io

    p = Path(part.path)
    text = {c: str for c in (roles.id_col, roles.source_col) if c is not None}
    lines: list[int] = []
    try:
        if part.row_groups is None and part.byte_range is None:
            frame, lines = io._read_table(p, part.fmt, tuple(text))
        elif part.fmt == "parquet":
            frame = pq.ParquetFile(p).read_row_groups(list(part.row_groups or ())).to_pandas()
        else:
            assert part.byte_range is not None
            with _Spans(p, [(0, part.header_bytes), part.byte_range]) as raw:
                frame = pd.read_csv(_io.BufferedReader(raw, 1 << 20), dtype=text)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error,
            pa.ArrowException, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{p}: cannot read as {part.fmt}: {first}") from None
    if part.rows is not None and len(frame) != part.rows:
        raise InputError(f"{p}: rows {part.start}..: read {len(frame)} rows where {part.rows} "
                         "were counted when the data was split (the file changed, or a CSV "
                         "dialect the split cannot follow: use --engine local)")
    frame.columns = [str(c) for c in frame.columns]
    ds = io.frame_dataset(frame, p, part.fmt, label=roles.label, id_col=roles.id_col,
                          source_col=roles.source_col, modality=None, lines=lines,
                          offset=part.start)
    return ds if rows is None else ds.take(rows)


def plan(src: Source, roles: Roles, partition_rows: int) -> list[Partition]:
    """The partitions of a CSV or Parquet file or a folder of Parquet files, rows numbered
    across them (module docstring)."""
    if src.fmt == "csv":
        return plan_csv(src.files[0].resolve(), partition_rows, roles)
    if src.fmt not in ("parquet", "parquet-folder"):
        raise InputError(f"{src.data}: only CSV and Parquet files and folders of Parquet files "
                         "are read as partitions")
    out: list[Partition] = []
    for f in src.files:
        start = out[-1].start + (out[-1].rows or 0) if out else 0
        out += plan_parquet(f.resolve(), start, partition_rows)
    return out


def _head(p: Path, n: int) -> bytes:
    with p.open("rb") as fh:
        return fh.read(n)


# ------------------------------------------------------------------------------ plans
def plan_parquet(p: Path, start: int, partition_rows: int) -> list[Partition]:
    """A Parquet file's row groups in runs of at least ``partition_rows`` rows (the last run
    may be shorter), its first row numbered ``start``; one partition when it has one run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(p).metadata
    except (pa.ArrowException, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{p}: cannot read as Parquet: {first}") from None
    runs: list[tuple[list[int], int]] = []
    for g in range(meta.num_row_groups):
        if not runs or runs[-1][1] >= partition_rows:
            runs.append(([], 0))
        runs[-1][0].append(g)
        runs[-1] = (runs[-1][0], runs[-1][1] + meta.row_group(g).num_rows)
    if len(runs) <= 1:
        return [Partition(str(p), "parquet", start, meta.num_rows)]
    out = []
    for groups, rows in runs:
        out.append(Partition(str(p), "parquet", start, rows, row_groups=tuple(groups)))
        start += rows
    return out


class _Unsplittable(Exception):
    """The split pass cannot follow this file: it is read as one partition."""


def plan_csv(p: Path, partition_rows: int, roles: Roles) -> list[Partition]:
    """A CSV file in runs of a whole number of hashing chunks, at least ``partition_rows`` rows
    each (module docstring); one partition when it is shorter or cannot be split."""
    from poisonguard.io import CSV_FIELD_MAX

    old = csv.field_size_limit(CSV_FIELD_MAX)
    try:
        header_bytes, cuts, rows = _record_cuts(p, partition_rows, roles.chunk_rows)
    except (_Unsplittable, csv.Error, UnicodeDecodeError):
        return [Partition(str(p), "csv", 0)]
    except OSError as exc:
        raise InputError(f"{p}: cannot read ({exc.strerror})") from None
    finally:
        csv.field_size_limit(old)
    if not cuts:
        return [Partition(str(p), "csv", 0)]
    bounds = [header_bytes, *(offset for offset, _ in cuts), p.stat().st_size]
    starts = [0, *(row for _, row in cuts), rows]
    return [Partition(str(p), "csv", starts[i], starts[i + 1] - starts[i],
                      byte_range=(bounds[i], bounds[i + 1]), header_bytes=header_bytes)
            for i in range(len(cuts) + 1)]


def _record_cuts(p: Path, partition_rows: int,
                 chunk_rows: int) -> tuple[int, list[tuple[int, int]], int]:
    """``(bytes up to the end of the header record, (byte offset, row) where each run starts
    but the first, rows)``: records as the ``csv`` module reads them (quoted fields may span
    lines; blank lines are no rows), a line at a time. A run is a whole number of the chunks a
    whole-file read uses (``rows_per_chunk`` of the header's width)."""
    from poisonguard.io import CSV_LINE_MAX

    consumed = 0
    with p.open("rb") as fh:

        def lines() -> Iterator[str]:
            nonlocal consumed
            encoding = "utf-8-sig"
            while raw := fh.readline(CSV_LINE_MAX + 1):
                if len(raw) > CSV_LINE_MAX or b"\0" in raw:
                    raise _Unsplittable
                consumed += len(raw)
                yield raw.decode(encoding)
                encoding = "utf-8"

        records = (record for record in csv.reader(lines()) if record)
        header = next(records, None)
        if header is None:
            raise _Unsplittable
        header_bytes = consumed
        step = rows_per_chunk(len(header), chunk_rows)
        every = step * max(1, -(-partition_rows // step))
        cuts: list[tuple[int, int]] = []
        rows = 0
        for _ in records:
            rows += 1
            if rows % every == 0:
                cuts.append((consumed, rows))
    if cuts and cuts[-1][1] == rows:  # no rows after the last cut
        cuts.pop()
    return header_bytes, cuts, rows
