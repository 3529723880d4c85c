"""Engines: where the rows of DATA are read and hashed, with the same answers on each.

``local`` reads and hashes in this process, chunk by chunk. ``dask`` hashes partitions of the
data (:mod:`poisonguard.provenance.partitions`: a CSV file, a Parquet file or a folder of
Parquet files; rows numbered partition by partition, a folder's files in name order) on a Dask
cluster: the one at ``scheduler``, or a ``distributed.LocalCluster`` with one single-threaded
worker per CPU that the engine starts and closes. Partitions are submitted a window at a time
and handed back in row order, so the client holds at most ``window`` partitions' results at
once besides what the caller keeps. Both engines hash with
:mod:`poisonguard.provenance.hashing` and :func:`poisonguard.provenance.manifest.collect`
assembles either's output alike: the same rows give the same row hashes, row table and Merkle
root on both.

Dask workers read the data files themselves: with a remote scheduler every worker must see the
files under the same absolute path and have poisonguard installed. Connecting waits
``distributed.comm.timeouts.connect`` (Dask's configuration; 30 s unless set).

Examples
--------
>>> from poisonguard.provenance import manifest
>>> with get_engine("local") as engine:
...     table, info, names, keyed = manifest.collect("iris", engine=engine)
>>> table.n_rows, keyed
(150, 'content')
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import islice
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, cast

from poisonguard.errors import DependencyError, InputError, PoisonguardError
from poisonguard.provenance.partitions import (
    HashedRows,
    Partition,
    Roles,
    Source,
    hash_chunks,
    hash_partition,
    open_source,
    plan,
)

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["ENGINES", "DaskEngine", "Engine", "Hashing", "LocalEngine", "get_engine"]

ENGINES = ("local", "dask")
_DONE = object()
_INSTALL = "pip install 'poisonguard[dask]'"


@dataclass(frozen=True)
class Hashing:
    """The hashed rows of DATA, in row order, and what a manifest records of it (``info``:
    path, format, bytes and a single file's SHA-256; complete once ``parts`` is exhausted)."""

    info: dict[str, Any]
    parts: Iterator[HashedRows]


class Engine(ABC):
    """Where rows are hashed and a scan's chunks scored; a context manager that releases what
    it started."""

    name: ClassVar[str]

    @abstractmethod
    def hash_rows(self, data: str, roles: Roles) -> Hashing:
        """Read and hash every row of ``data`` (a file, a folder of Parquet files or a built-in
        data set name)."""

    @abstractmethod
    def close(self) -> None:
        """Release what the engine started."""

    @abstractmethod
    def map_ordered(self, fn: Callable[[Any, Any], Any], items: Iterable[Any], *,
                    shared: Any) -> Iterator[Any]:
        """``fn(shared, item)`` for every item, results in the items' order. ``shared`` is sent
        to each worker once (a scan's fitted state); items are sent as they are needed."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class LocalEngine(Engine):
    """Hash in this process, one chunk at a time (memory bounded by the chunk); score a scan's
    chunks on ``threads`` threads of this process."""

    name = "local"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def hash_rows(self, data: str, roles: Roles) -> Hashing:
        from poisonguard.provenance.hashing import file_sha256

        src = open_source(data, roles)
        info = dict(src.info)
        if src.fmt in ("csv", "parquet", "npz", "jsonl"):  # a folder's: formats.row_chunks
            info["sha256"] = file_sha256(src.files[0])
        return Hashing(info, self._parts(src, roles, info))

    def close(self) -> None:
        """Nothing to release."""

    def map_ordered(self, fn: Callable[[Any, Any], Any], items: Iterable[Any], *,
                    shared: Any) -> Iterator[Any]:
        """Items on ``threads`` threads of this process (default: one per CPU, at most 4), at
        most two per thread in flight, results in order. ``fn`` must only read ``shared``."""
        threads = self.threads or min(4, _cpus())
        if threads <= 1:
            for item in items:
                yield fn(shared, item)
            return
        from concurrent.futures import ThreadPoolExecutor

        todo = iter(items)
        with ThreadPoolExecutor(threads) as pool:
            pending = deque(pool.submit(fn, shared, item) for item in islice(todo, 2 * threads))
            while pending:
                result = pending.popleft().result()
                nxt = next(todo, _DONE)
                if nxt is not _DONE:
                    pending.append(pool.submit(fn, shared, nxt))
                yield result

    @staticmethod
    def _parts(src: Source, roles: Roles, info: dict[str, Any]) -> Iterator[HashedRows]:
        from poisonguard import io
        from poisonguard.datasets import load_dataset
        from poisonguard.formats import row_chunks
        from poisonguard.provenance.hashing import dataset_chunks, table_chunks

        if src.fmt in ("jsonl", "images", "hf"):
            for chunk in row_chunks(src.data, src.fmt, label=roles.label, id_col=roles.id_col,
                                    source_col=roles.source_col, info=info,
                                    chunk_rows=roles.chunk_rows):
                yield hash_chunks([chunk], src.data, chunk.start)
            return
        if src.fmt in ("builtin", "npz"):
            ds = load_dataset(src.data) if src.fmt == "builtin" else io.load(src.files[0])
            keyed = src.fmt == "npz" and not ds.has_default_ids
            for chunk in dataset_chunks(ds, keyed=keyed, chunk_rows=roles.chunk_rows):
                yield hash_chunks([chunk], src.data, chunk.start)
            return
        offset = 0
        for f in src.files:  # one file, or a folder's files in name order
            where = src.data if src.fmt != "parquet-folder" else str(f)
            end = 0
            for chunk in table_chunks(f, "parquet" if src.fmt != "csv" else "csv",
                                      label=roles.label, id_col=roles.id_col,
                                      source_col=roles.source_col, chunk_rows=roles.chunk_rows):
                moved = replace(chunk, start=offset + chunk.start)
                yield hash_chunks([moved], where, moved.start)
                end = chunk.start + chunk.n_rows
            offset += end


def _distributed() -> Any:
    """The ``distributed`` module, or a :class:`DependencyError` with the install line."""
    try:
        import dask.dataframe  # noqa: F401  (poisonguard[dask] is dask[dataframe] + distributed)
        import distributed
    except ImportError:
        raise DependencyError(f"--engine dask needs Dask (dask[dataframe] and distributed): "
                              f"{_INSTALL}") from None
    return distributed


class DaskEngine(Engine):
    """Hash partitions on a Dask cluster: ``client``, or the scheduler at ``scheduler``
    (``tcp://host:8786``), or a ``LocalCluster`` of ``n_workers`` (default: one per CPU)
    workers with ``threads_per_worker`` threads and ``memory_limit`` each (``processes``
    False: threads of this process) that :meth:`close` shuts down. A CSV or Parquet file is
    split into partitions of about ``partition_rows`` rows; at most ``window`` partitions
    (default: two per worker thread) are in flight at once."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, *, client: Client | None = None,
                 n_workers: int | None = None, threads_per_worker: int = 1,
                 memory_limit: str | int | None = None, processes: bool = True,
                 partition_rows: int = 1_000_000, window: int | None = None) -> None:
        if scheduler is not None and client is not None:
            raise InputError("give a Dask client or a scheduler address, not both")
        self.scheduler = scheduler
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.memory_limit = memory_limit
        self.processes = processes
        self.partition_rows = partition_rows
        self.window = window
        # distributed's own annotations are partial (untyped methods): held as Any
        self._client: Any = client
        self._cluster: Any = None
        self._owns_client = client is None

    def connect(self) -> Client:
        """The cluster's client, connecting (or starting the local cluster) on first use; an
        :class:`InputError` naming the scheduler when it cannot be reached."""
        if self._client is not None:
            return cast("Client", self._client)
        distributed = _distributed()
        if self.scheduler is not None:
            try:
                self._client = distributed.Client(self.scheduler)
            except (OSError, ValueError, TypeError) as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else \
                    type(exc).__name__
                raise InputError(f"--scheduler {self.scheduler}: cannot connect to a Dask "
                                 f"scheduler there ({first})") from None
        else:
            self._cluster = distributed.LocalCluster(
                n_workers=self.n_workers or _cpus(), threads_per_worker=self.threads_per_worker,
                memory_limit=self.memory_limit if self.memory_limit is not None else "auto",
                processes=self.processes,
                dashboard_address="127.0.0.1:0")  # any free port, this machine only
            self._client = distributed.Client(self._cluster)
        return cast("Client", self._client)

    def __enter__(self) -> DaskEngine:
        self.connect()
        return self

    def close(self) -> None:
        """Close the client and the local cluster this engine started (never a client it was
        given)."""
        client, cluster = self._client, self._cluster
        if self._owns_client:
            self._client = None
        self._cluster = None
        if client is not None and self._owns_client:
            client.close()
        if cluster is not None:
            cluster.close()

    def hash_rows(self, data: str, roles: Roles) -> Hashing:
        from poisonguard.io import check_csv_shape
        from poisonguard.provenance.hashing import file_sha256

        src = open_source(data, roles)
        if src.fmt not in ("csv", "parquet", "parquet-folder"):
            what = {"builtin": "a built-in data set", "npz": "an NPZ file",
                    "jsonl": "a JSON Lines file", "images": "an image folder",
                    "hf": "a Hugging Face folder"}[src.fmt]
            raise InputError(f"{data}: --engine dask reads CSV and Parquet files and folders of "
                             f"Parquet files, not {what}; use --engine local")
        files = [f.resolve() for f in src.files]  # workers may run elsewhere
        client = self.connect()
        waits: list[Any] = []  # distributed Futures
        digest = None
        if src.fmt != "parquet-folder":
            digest = client.submit(file_sha256, files[0], pure=False)
        parts = plan(src, roles, self.partition_rows)
        if src.fmt == "csv" and len(parts) > 1:  # a whole-file read checks the shape itself
            waits.append(client.submit(check_csv_shape, files[0], lines=False, pure=False))
        info = dict(src.info)
        return Hashing(info, self._stream(client, parts, roles, waits, digest, info))

    def map_ordered(self, fn: Callable[[Any, Any], Any], items: Iterable[Any], *,
                    shared: Any) -> Iterator[Any]:
        """Tasks on the cluster: ``shared`` broadcast to every worker once, at most ``window``
        items in flight, results handed back in order (and released once handed back)."""
        client: Any = self.connect()  # distributed's methods are untyped
        window = self.window or max(2, 2 * sum(client.nthreads().values()))
        # one future for the whole object (a tuple would be scattered element by element)
        common = client.scatter([shared], broadcast=True, hash=False)[0]
        pending: deque[Any] = deque()
        todo = iter(items)

        def submit(item: Any) -> tuple[Any, Any]:  # data goes as data, not in the task graph
            data = client.scatter([item], hash=False)[0]
            return client.submit(_as_value, fn, common, data, key=_key(fn)), data

        try:
            for item in islice(todo, window):
                pending.append(submit(item))
            while pending:
                future, data = pending.popleft()
                result = future.result()
                future.release()  # the chunk and its result leave the worker's memory now
                data.release()
                if isinstance(result, PoisonguardError):
                    raise result
                nxt = next(todo, _DONE)
                if nxt is not _DONE:
                    pending.append(submit(nxt))
                yield result
        finally:
            if pending:
                client.cancel([f for pair in pending for f in pair])
            common.release()

    def _stream(self, client: Any, plan: list[Partition], roles: Roles, waits: list[Any],
                digest: Any, info: dict[str, Any]) -> Iterator[HashedRows]:
        """Each partition's hashes in row order, with at most ``window`` tasks in flight; the
        file's SHA-256 goes into ``info`` at the end."""
        window = self.window or max(2, 2 * sum(client.nthreads().values()))
        pending: deque[Any] = deque()  # distributed Futures
        todo = iter(plan)
        try:
            for part in islice(todo, window):
                pending.append(client.submit(_as_value, hash_partition, part, roles,
                                             key=_key(hash_partition)))
            for wait in waits:  # the file-wide checks first, as the local engine makes them
                wait.result()
            while pending:
                future = pending.popleft()
                result: HashedRows | PoisonguardError = future.result()
                future.release()
                if isinstance(result, PoisonguardError):
                    raise result
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(client.submit(_as_value, hash_partition, nxt, roles,
                                                 key=_key(hash_partition)))
                yield result
            if digest is not None:
                info["sha256"] = digest.result()
        finally:
            left = [*pending, *waits, *([digest] if digest is not None else [])]
            if left:
                client.cancel(left)


def _as_value(fn: Callable[[Any, Any], Any], shared: Any, item: Any) -> Any:
    """``fn(shared, item)`` on a worker, a user's mistake (bad rows, another schema) returned
    as a value for the client to raise: a task that raised it would have the worker log it
    with a traceback."""
    try:
        return fn(shared, item)
    except PoisonguardError as exc:
        return exc


def _key(fn: Callable[..., Any]) -> str:
    """A fresh task key named after the function it runs (what Dask's dashboard and task
    stream show)."""
    from uuid import uuid4

    return f"{getattr(fn, '__name__', 'task')}-{uuid4().hex}"


def _cpus() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity (macOS, Windows)
        return os.cpu_count() or 1


def get_engine(name: str, scheduler: str | None = None) -> Engine:
    """The engine called ``name`` (:data:`ENGINES`); ``scheduler`` (a Dask scheduler's address)
    only with ``dask``. An :class:`InputError` names a bad choice, a
    :class:`~poisonguard.errors.DependencyError` says how to install Dask."""
    if name == "local":
        if scheduler is not None:
            raise InputError(f"--scheduler {scheduler}: a scheduler is only used with "
                             "--engine dask")
        return LocalEngine()
    if name == "dask":
        _distributed()
        return DaskEngine(scheduler)
    raise InputError(f"--engine must be one of {', '.join(ENGINES)} (got {name!r})")
