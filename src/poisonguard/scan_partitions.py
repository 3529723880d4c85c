"""A scan of data read as partitions where an engine runs (:func:`scan_partitions`).

The same two phases as :func:`poisonguard.scan.scan` beyond its sample size, but the process
that calls it never holds the data: partitions (:mod:`poisonguard.provenance.partitions`: a CSV
file, a Parquet file, a folder of Parquet files) are read where the engine runs its tasks, in
three passes over them:

1. labels: every partition's labels come back (the sample is stratified by label over all rows,
   exactly as :func:`poisonguard.scan.scan` draws it);
2. sample: each partition's sampled rows come back and are fitted on here, as in memory;
3. score: each partition scores its other rows from the fitted state (broadcast once), combines
   and explains them, and sends back per row only scores, flags, ids and sources, plus the
   features of the rows it flagged (and of its top ``budget`` rows when a budget is set, the
   candidates of the merged top-k).

The report then holds labels, ids, sources and scores of every row and the features of its
flagged rows only (:meth:`ScanReport.row_data`); :meth:`ScanReport.clean` reads the partitions
again. For the same seed, data and sample size it flags the same rows, with the same scores and
reasons, as the in-memory scan of the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from poisonguard.dataset import Dataset
from poisonguard.detectors._ensemble import Combination, fit_combination
from poisonguard.errors import InputError
from poisonguard.evidence import Evidence
from poisonguard.provenance.partitions import Partition, Roles, open_source, plan, read_partition
from poisonguard.scan import (
    CHUNK_ROWS,
    SAMPLE_ROWS,
    Progress,
    ScanReport,
    _detector_names,
    _fit_detectors,
    _Piece,
    _positive,
    _regime,
    _sample_rows,
    _score_piece,
    _store,
    _table,
    _versions,
    _warm,
    empty_results,
    explain_rows,
    finish_sample,
    scan,
)

if TYPE_CHECKING:
    from poisonguard.engine import Engine

__all__ = ["concat", "read_rows", "scan_partitions"]

PARTITION_ROWS = 250_000  # a worker holds a few copies of one partition while scoring it


@dataclass(frozen=True)
class Held:
    """The data of some rows of a scan read as partitions: their positions and the rows."""

    positions: np.ndarray
    rows: Dataset


def concat(pieces: Sequence[Dataset], name: str) -> Dataset:
    """Datasets read from the partitions of one data set, in row order, as one; an
    :class:`InputError` when partitions disagree on columns, modality or label type."""
    import pandas as pd

    first = pieces[0]
    for piece in pieces[1:]:
        if piece.feature_names != first.feature_names or piece.modality != first.modality:
            raise InputError(f"{name}: partitions differ in their columns or kind of data "
                             f"({piece.origin.path if piece.origin else name}); every file of "
                             "a data set must have the same columns")
        if (np.asarray(piece.y).dtype.kind in "iub") != (np.asarray(first.y).dtype.kind in "iub"):
            raise InputError(f"{name}: the label column is numbers in some partitions and text "
                             "in others; give every file the same kind of label")
    if isinstance(first.X, pd.DataFrame):
        X: Any = pd.concat([p.X for p in pieces], ignore_index=True)
    else:
        X = np.concatenate([p.X for p in pieces])
    sources = None if first.sources is None else np.concatenate([p.sources for p in pieces])
    return Dataset(X, np.concatenate([p.y for p in pieces]),
                   ids=np.concatenate([np.asarray(p.ids, dtype=object) for p in pieces]),
                   sources=sources, modality=first.modality, feature_names=first.feature_names,
                   name=name)


def _labels_task(roles: Roles, part: Partition) -> np.ndarray:
    return np.asarray(read_partition(part, roles).y)


def _rows_task(roles: Roles, item: tuple[Partition, np.ndarray]) -> Dataset:
    part, rows = item
    return read_partition(part, roles, rows)


def read_rows(parts: Sequence[Partition], roles: Roles, positions: np.ndarray, engine: Engine,
              name: str) -> Dataset:
    """The rows at ``positions`` (sorted, over all partitions) as one dataset, read where
    ``engine`` runs its tasks."""
    starts = np.array([p.start for p in parts] + [parts[-1].start + (parts[-1].rows or 0)])
    items = []
    for i, part in enumerate(parts):
        lo, hi = np.searchsorted(positions, [starts[i], starts[i + 1]])
        if hi > lo:
            items.append((part, positions[lo:hi] - part.start))
    return concat(list(engine.map_ordered(_rows_task, items, shared=roles)), name)


@dataclass(frozen=True)
class _PartPiece:
    """What one partition sends back: its scored rows' piece (``rows``: positions within the
    partition), their ids (None without an id column: the row numbers) and sources, and the
    rows it holds (flagged or budget candidates)."""

    rows: np.ndarray
    piece: _Piece
    ids: np.ndarray | None
    sources: np.ndarray | None
    held: np.ndarray
    held_rows: Dataset


def _partition_task(shared: tuple[Combination, Mapping[str, tuple[Any, Any, Any]], Evidence,
                                  Roles, int, int | None],
                    item: tuple[Partition, np.ndarray]) -> _PartPiece:
    """Read one partition, score its rows outside the sample in chunks, explain its flags (and
    its top ``budget`` rows), keep the data of those rows."""
    comb, fitted, ev, roles, chunk, n_budget = shared
    part, skip = item
    ds = read_partition(part, roles)
    keep = np.setdiff1d(np.arange(ds.n_rows), skip, assume_unique=True)
    n = len(keep)
    raw, cal, score, flagged, reasons, tops = empty_results(comb.names, n)
    for begin in range(0, n, chunk):
        at = np.arange(begin, min(begin + chunk, n))
        piece = _score_piece(comb, fitted, ev.view(ds.take(keep[at])))
        _store(piece, at, raw, cal, score, flagged, reasons, tops)
    held = flagged.copy()
    if n_budget is not None:  # this partition's candidates of the merged top-k
        top = np.argsort(-score, kind="stable")[:n_budget]
        want = np.zeros(n, dtype=bool)
        want[top] = True
        held |= want
        extra = want & ~flagged
        if extra.any():
            explain_rows(comb, np.flatnonzero(extra), reasons, tops,
                         np.empty(0, dtype=np.int64), None, fitted, ds.take(keep), ev, cal)
    why = {int(i): (str(tops[i]), str(reasons[i])) for i in np.flatnonzero(reasons != "")}
    piece = _Piece(raw, cal, score, flagged, why)
    sources = None if ds.sources is None else np.asarray(ds.sources, dtype=object)[keep]
    ids = None if roles.id_col is None else np.asarray(ds.ids, dtype=object)[keep]
    return _PartPiece(keep, piece, ids, sources,
                      np.flatnonzero(held), ds.take(keep[held]))


def scan_partitions(data: str, *, engine: Engine, label: str = "label",
                    id_col: str | None = None, source_col: str | None = None,
                    detectors: Sequence[str] | str | None = None,
                    budget: float | int | None = None, model: str | Any = "auto",
                    embedder: str = "auto", k: int = 10, folds: int = 5, random_state: int = 0,
                    progress: Progress | None = None, sample_rows: int | None = None,
                    chunk_rows: int = CHUNK_ROWS,
                    partition_rows: int = PARTITION_ROWS) -> ScanReport:
    """Scan ``data`` (a CSV or Parquet file, or a folder of Parquet files) read in partitions
    of about ``partition_rows`` rows where ``engine`` runs (module docstring). Up to
    ``sample_rows`` rows in all, the rows are gathered and scanned as :func:`scan` does."""
    from poisonguard._validation import resolve_flag_budget

    rows_each = _positive("partition_rows", partition_rows)
    # CSV runs are cut at whole multiples of chunk_rows: here, at about partition_rows rows
    roles = Roles(label=label, id_col=id_col, source_col=source_col, chunk_rows=rows_each)
    src = open_source(data, roles)
    if src.fmt not in ("csv", "parquet", "parquet-folder"):
        raise InputError(f"{data}: read as partitions only from CSV and Parquet files and "
                         "folders of Parquet files; load it whole (--engine local)")
    limit = SAMPLE_ROWS if sample_rows is None else _positive("sample_rows", sample_rows)
    chunk = _positive("chunk_rows", chunk_rows)
    planned = plan(src, roles, rows_each)
    names_ok = _detector_names(detectors, None)
    start = time.perf_counter()
    if progress is not None:
        progress(f"read labels of {len(planned)} partitions")
    labels = list(engine.map_ordered(_labels_task, planned, shared=roles))
    y = np.concatenate(labels)
    n = len(y)
    parts, at = [], 0  # every partition's rows counted now (a whole-file one's were not)
    for part, got in zip(planned, labels, strict=True):
        parts.append(replace(part, start=at, rows=len(got)))
        at += len(got)
    k_classes = len(np.unique(y))
    if k_classes > 1 and 2 * k_classes > n:
        raise InputError(f"{data}: {k_classes} classes in {n} rows; a scan needs at least 2 "
                         f"rows per class on average (is --label {label!r} the label column?)")
    n_budget = resolve_flag_budget(budget, n)
    name = src.info["path"]
    if n <= max(limit, 2):
        ds = read_rows(parts, roles, np.arange(n), engine, name)
        return replace(scan(ds, detectors=names_ok, budget=budget, model=model,
                            embedder=embedder, k=k, folds=folds, random_state=random_state,
                            progress=progress), data_path=data)
    classes = np.unique(y)
    skeleton = Dataset(np.empty((n, 0)), y, modality="tabular", name=name)
    sample = _sample_rows(skeleton, limit, random_state)
    if progress is not None:
        progress(f"read the {len(sample):,}-row sample")
    fit_on = read_rows(parts, roles, sample, engine, name)
    ev = Evidence(fit_on, model=model, embedder=embedder, k=k, folds=folds,
                  random_state=random_state, progress=progress, classes=classes)
    own = ev.view()
    fitted, skipped, timings = _fit_detectors(names_ok, ev, progress, sampled=limit)
    comb = fit_combination({nm: f[2].suspicion for nm, f in fitted.items()},
                           {nm: f[0].calibration for nm, f in fitted.items()}, n)
    raw, cal, score, flagged, reasons, tops = empty_results(comb.names, n)
    ids = None if id_col is None else np.empty(n, dtype=object)  # None: the row numbers
    sources = None if source_col is None else np.empty(n, dtype=object)
    if ids is not None:
        ids[sample] = np.asarray(fit_on.ids, dtype=object)
    if sources is not None:
        sources[sample] = np.asarray(fit_on.sources, dtype=object)
    _warm(ev)
    shared = (comb, {nm: (det, state, None) for nm, (det, state, _) in fitted.items()}, ev,
              roles, chunk, n_budget)
    items = [(p, sample[(sample >= p.start) & (sample < p.start + (p.rows or 0))] - p.start)
             for p in parts]
    held_pos, held_rows = [], []
    t0 = time.perf_counter()
    for i, got in enumerate(engine.map_ordered(_partition_task, items, shared=shared)):
        if progress is not None:
            progress(f"partition {i + 1} of {len(parts)} scored")
        at = items[i][0].start + got.rows
        _store(got.piece, at, raw, cal, score, flagged, reasons, tops)
        if ids is not None and got.ids is not None:
            ids[at] = got.ids
        if sources is not None and got.sources is not None:
            sources[at] = got.sources
        held_pos.append(at[got.held])
        held_rows.append(got.held_rows)
    timings["score partitions"] = time.perf_counter() - t0
    flagged, threshold = finish_sample(comb, fitted, own, sample, n_budget, raw, cal, score,
                                       flagged, reasons, tops, skeleton, ev)
    in_sample = flagged[sample]
    held_pos.append(sample[in_sample])
    held_rows.append(fit_on.take(np.flatnonzero(in_sample)))
    positions = np.concatenate(held_pos)
    order = np.argsort(positions, kind="stable")
    keep = flagged[positions[order]]
    held = Held(positions[order][keep], concat(held_rows, name).take(order[keep]))
    dataset = Dataset(np.empty((n, 0)), y, ids=ids, sources=sources,
                      modality=fit_on.modality, name=name)
    table = _table(dataset, score, flagged, reasons, tops, cal)
    timings = {**ev.timings, **timings, "total": time.perf_counter() - start}
    return ScanReport(dataset=dataset, table=table, raw=raw, detectors=comb.names,
                      threshold=threshold, budget=n_budget, skipped=skipped, timings=timings,
                      notes=tuple(ev.notes), versions=_versions(), seed=random_state,
                      data_path=data,
                      weights={nm: round(float(w), 4)
                               for nm, w in zip(comb.names, comb.weights, strict=True)},
                      regime={**_regime(ev, n, chunk_rows=chunk, chunks=1 + sum(
                          -(-((p.rows or 0) - len(skip)) // chunk) for p, skip in items)),
                              "engine": engine.name, "read": "partitions",
                              "partitions": len(parts)},
                      held=held, partitions=(tuple(parts), roles))
