"""A drift check of a batch read as partitions on an engine's workers: :func:`check_partitioned`.

The batch (a CSV or Parquet file, or a folder of Parquet files) is split by
:func:`poisonguard.provenance.partitions.plan`; each partition is read where the engine runs it
(:func:`~poisonguard.provenance.partitions.read_partition`) and only its
:class:`~poisonguard.monitor.drift.BatchStats` come back: counts per bin, category and label,
KS counts at the reference points, and the few rows the domain classifier sees. Their sum is
the whole batch's, and :meth:`DriftMonitor.report <poisonguard.monitor.drift.DriftMonitor.report>`
turns it into the report :meth:`DriftMonitor.check <poisonguard.monitor.drift.DriftMonitor.check>`
gives on the batch loaded in one process: the same statistics, p-values and alarms.

The classifier's rows are drawn on the client over the batch's row count, known from the plan,
and each partition is sent the positions that fall in it. A CSV file the plan leaves whole (one
partition, its rows not counted) draws its own, as the local check does. Each partition's
columns are typed on its own rows, as ``read_partition`` types them: a CSV column whose values
are typed otherwise in some partition than in the whole file (a text column holding only
numbers there) is counted as typed there; Parquet files carry their types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from poisonguard.errors import InputError
from poisonguard.monitor.drift import BatchStats, DriftMonitor, DriftReport, reference_points
from poisonguard.provenance.partitions import Partition, Roles, open_source, plan, read_partition

if TYPE_CHECKING:
    from poisonguard.engine import Engine
    from poisonguard.monitor.profile import Profile

__all__ = ["check_partitioned"]

PARTITION_ROWS = 1_000_000  # when the engine does not say


def check_partitioned(monitor: DriftMonitor, profile: Profile, data: str, *, engine: Engine,
                      roles: Roles | None = None, partition_rows: int | None = None) -> DriftReport:
    """``monitor.check(profile, load(data))`` with ``data`` read partition by partition on
    ``engine``; the report names the batch ``data``.

    ``partition_rows`` (default: the engine's ``partition_rows``, else 1,000,000) is about how
    many rows each partition holds. Raises :class:`InputError` for data that is not a CSV or
    Parquet file or a folder of Parquet files, and for a partition whose schema differs from the
    profile's (naming the file).
    """
    monitor._validate()
    roles = roles or Roles()
    src = open_source(data, roles)
    if src.fmt in ("builtin", "npz"):
        what = "a built-in data set" if src.fmt == "builtin" else "an NPZ file"
        raise InputError(f"{data}: a partitioned drift check reads CSV and Parquet files and folders "
                         f"of Parquet files, not {what}; use --engine local")
    size = partition_rows or int(getattr(engine, "partition_rows", PARTITION_ROWS))
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InputError(f"'partition_rows' must be a positive integer (got {size!r})")
    parts = plan(src, roles, size)
    items: list[tuple[Partition, np.ndarray | None]]
    if any(part.rows is None for part in parts):  # a whole CSV file: it draws its own rows
        assert len(parts) == 1, "only a plan of one partition leaves its rows uncounted"
        items = [(parts[0], None)]
    else:
        pick = monitor.pick(profile, sum(int(part.rows or 0) for part in parts))
        items = []
        for part in parts:
            lo, hi = np.searchsorted(pick, [part.start, part.start + int(part.rows or 0)])
            items.append((part, pick[lo:hi] - part.start))
    shared = (monitor, profile, reference_points(profile), roles)
    total: BatchStats | None = None
    for stats in engine.map_ordered(_partition_stats, items, shared=shared):
        total = stats if total is None else total + stats
    assert total is not None, "a plan has at least one partition"
    return monitor.report(profile, total, data)


def _partition_stats(shared: Any, item: tuple[Partition, np.ndarray | None]) -> BatchStats:
    """Read one partition and count it (on whichever machine runs it)."""
    monitor, profile, points, roles = shared
    part, pick = item
    ds = read_partition(part, roles)
    frame = profile.features(ds)
    if pick is None:
        pick = monitor.pick(profile, len(frame))
    stats: BatchStats = BatchStats.of(profile, points, frame, ds.y, pick)
    return stats
