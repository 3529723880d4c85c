"""Drift checks read as partitions (``monitor check --engine dask``): the same report as one
process, KS exactly ``ks_2samp`` from counts, the CLI's files and refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from poisonguard import Dataset, InputError
from poisonguard.cli import main
from poisonguard.datasets import load_dataset
from poisonguard.engine import LocalEngine
from poisonguard.io import load
from poisonguard.monitor import DriftMonitor, DriftReport, Profile
from poisonguard.monitor.drift import ks_counts, ks_from_counts, ks_points
from poisonguard.monitor.partitioned import check_partitioned
from poisonguard.provenance.partitions import Roles

ROLES = Roles(chunk_rows=100)  # CSV partitions are whole numbers of 100-row chunks
PARTITION_ROWS = 400


# ------------------------------------------------------------------------- KS from counts
def _with_holes(values: np.ndarray, holes: int, rng: np.random.Generator) -> np.ndarray:
    out = values.astype(np.float64)
    out[rng.choice(len(out), holes, replace=False)] = np.nan
    return out


@pytest.mark.parametrize(("m", "n", "shift"), [
    (300, 500, 0.0), (2000, 2000, 0.1), (1999, 1500, 0.3), (2000, 2001, 0.0),  # exact | asymp
    (2001, 2000, 0.05), (5000, 30_000, 0.02), (40, 7, 2.0)])
def test_ks_from_counts_is_ks_2samp(m: int, n: int, shift: float) -> None:
    """Rounded values (many ties) with missing ones, present counts either side of 2000; the
    batch counted in five parts and summed."""
    rng = np.random.default_rng(m + n)
    ref = _with_holes(rng.normal(size=m + 50).round(1), 50, rng)
    batch = _with_holes(rng.normal(shift, 1.2, size=n + 70).round(1), 70, rng)
    points = ks_points(ref)
    below = sum(ks_counts(points, part) for part in np.array_split(batch, 5))
    d, p = ks_from_counts(ref, points, np.asarray(below), n)
    want = stats.ks_2samp(ref[~np.isnan(ref)], batch[~np.isnan(batch)],
                          method="auto" if max(m, n) <= 2000 else "asymp")
    assert abs(d - float(want.statistic)) <= 1e-12
    assert p == pytest.approx(float(want.pvalue), rel=1e-12, abs=0)


def test_ks_from_counts_with_batch_values_off_and_between_the_points() -> None:
    ref = np.array([1.0, 2.0, 2.0, 3.0, np.nan, 5.0])
    for batch in (np.array([-7.0, 0.5, 1.5, 1.5, 2.0, 4.0, 4.5, 9.0]), np.array([9.0, 10.0]),
                  np.array([np.nextafter(2.0, 3.0), 2.5, np.nan])):
        points = ks_points(ref)
        present = batch[~np.isnan(batch)]
        d, p = ks_from_counts(ref, points, ks_counts(points, batch), len(present))
        want = stats.ks_2samp(ref[~np.isnan(ref)], present)
        assert (d, p) == (float(want.statistic), float(want.pvalue))
    assert ks_from_counts(ref, ks_points(ref), np.zeros((2, 4), dtype=np.int64), 0) == (0.0, 1.0)


# ----------------------------------------------------------------------- the same report
def _frame(ds: Dataset, rows: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Ten spambase columns (mostly zeros: ties), one with holes, and a text column."""
    frame = ds.frame().iloc[rows, :10].reset_index(drop=True)
    frame.loc[rng.random(len(frame)) < 0.1, "address"] = np.nan
    frame["mail"] = rng.choice(["gmail", "yahoo", "corp", "isp"], len(frame), p=[.4, .3, .2, .1])
    frame.loc[rng.random(len(frame)) < 0.05, "mail"] = None
    return frame


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """spambase halves: a profile of one half; the other half as a batch with ``make`` shifted
    and a new mail domain, written as CSV (several partitions), as a folder of three Parquet
    files with row groups of 300 rows, and a 1,500-row CSV (KS tests in the exact regime)."""
    root = tmp_path_factory.mktemp("drift-engine")
    ds = load_dataset("spambase")
    rng = np.random.default_rng(0)
    order = rng.permutation(ds.n_rows)
    half = ds.n_rows // 2
    ref = _frame(ds, order[:half], rng)
    profile = Profile.fit(Dataset(ref, ds.y[order[:half]]), random_state=0, sample_size=1800)
    batch = _frame(ds, order[half:], rng)
    batch["make"] += 0.3
    batch.loc[: len(batch) // 4, "mail"] = "newmail"
    batch["label"] = ds.y[order[half:]]
    batch.to_csv(root / "batch.csv", index=False)
    batch.iloc[:1500].to_csv(root / "small.csv", index=False)
    folder = root / "batch-parquet"
    folder.mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(batch)), 3)):
        batch.iloc[rows].to_parquet(folder / f"part-{i}.parquet", index=False, row_group_size=300)
    return {"profile": profile, "csv": root / "batch.csv", "small": root / "small.csv",
            "folder": folder, "frame": batch}


def _same(a: DriftReport, b: DriftReport) -> None:
    """Every test's statistic, p-values, effect, gate, alarm and shares; counts and verdict."""
    assert a.tests == b.tests
    assert (a.drift, a.n_batch, a.notes, a.profile) == (b.drift, b.n_batch, b.notes, b.profile)


def _local(case: dict[str, object], key: str) -> DriftReport:
    profile = case["profile"]
    assert isinstance(profile, Profile)
    return DriftMonitor(random_state=3).check(profile, load(str(case[key])))


def test_partitions_on_local_threads_give_the_one_process_report(case: dict[str, object]) -> None:
    profile = case["profile"]
    assert isinstance(profile, Profile)
    for key in ("csv", "small"):
        want = _local(case, key)
        assert want.drift and {"make", "mail"} <= set(want.drifted_features)
        with LocalEngine(threads=2) as engine:
            got = check_partitioned(DriftMonitor(random_state=3), profile, str(case[key]),
                                    engine=engine, roles=ROLES, partition_rows=PARTITION_ROWS)
        _same(want, got)
        assert got.batch == str(case[key])
    ks = next(t for t in want.tests if t.test == "ks" and t.feature == "make")
    assert ks.p_value < 1e-6  # the exact regime's p-value, and an alarm


def test_a_csv_left_whole_draws_its_own_classifier_rows(case: dict[str, object]) -> None:
    profile = case["profile"]
    assert isinstance(profile, Profile)
    with LocalEngine(threads=1) as engine:
        got = check_partitioned(DriftMonitor(random_state=3), profile, str(case["csv"]),
                                engine=engine, roles=ROLES, partition_rows=10**6)
    _same(_local(case, "csv"), got)


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """One in-process Dask cluster for the module (threads, no worker processes: fast)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address="127.0.0.1:0") as c:
        yield c


def test_dask_partitions_give_the_one_process_report(case: dict[str, object], cluster: object) -> None:
    """CSV in six partitions and a Parquet folder (three files) in six: the report of the batch in memory
    (and of the CSV loaded whole), on one worker with a window of two partitions."""
    from poisonguard.engine import DaskEngine

    profile, frame = case["profile"], case["frame"]
    assert isinstance(profile, Profile) and isinstance(frame, pd.DataFrame)
    monitor = DriftMonitor(random_state=3)
    in_memory = monitor.check(profile, Dataset(frame.drop(columns="label"), frame["label"]))
    with DaskEngine(cluster.scheduler_address, window=2) as engine:  # type: ignore[attr-defined]
        for key in ("csv", "folder"):
            got = check_partitioned(monitor, profile, str(case[key]), engine=engine, roles=ROLES,
                                    partition_rows=PARTITION_ROWS)
            _same(in_memory, got)
    _same(_local(case, "csv"), in_memory)


def test_what_cannot_be_read_as_partitions_is_one_line(case: dict[str, object], tmp_path: Path) -> None:
    profile = case["profile"]
    assert isinstance(profile, Profile)
    monitor, engine = DriftMonitor(), LocalEngine()
    with pytest.raises(InputError, match=r"^wine: .* not a built-in data set; use --engine local$"):
        check_partitioned(monitor, profile, "wine", engine=engine)
    frame = case["frame"]
    assert isinstance(frame, pd.DataFrame)
    frame.drop(columns="make").to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(InputError, match=r"batch 'other': columns differ .*make"):
        check_partitioned(monitor, profile, str(tmp_path / "other.csv"), engine=engine)
    with pytest.raises(InputError, match="'partition_rows' must be a positive integer"):
        check_partitioned(monitor, profile, str(case["csv"]), engine=engine, partition_rows=-1)


# --------------------------------------------------------------------------------- CLI
def _doc(path: Path) -> dict[str, object]:
    doc: dict[str, object] = json.loads((path / "drift.json").read_text())
    return doc


def test_cli_engine_dask_writes_the_local_report(case: dict[str, object], cluster: object,
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    profile = case["profile"]
    assert isinstance(profile, Profile)
    profile.to_json(tmp_path / "profile.json")
    address = str(cluster.scheduler_address)  # type: ignore[attr-defined]
    db = str(tmp_path / "h.sqlite")
    base = ["monitor", "check", str(tmp_path / "profile.json"), "--db", db, "--seed", "3"]
    assert main([*base, str(case["csv"]), "--out", str(tmp_path / "local")]) == 0
    for name, data in (("csv", case["csv"]), ("folder", case["folder"])):
        code = main([*base, str(data), "--out", str(tmp_path / name), "--engine", "dask",
                     "--scheduler", address, "--fail-on-drift"])
        assert code == 1  # drift, as the local check found
        assert _doc(tmp_path / name)["tests"] == _doc(tmp_path / "local")["tests"]
    captured = capsys.readouterr()
    assert "recorded check #3" in captured.err and "drift in" in captured.err


def test_cli_engine_dask_refusals(case: dict[str, object], cluster: object, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    profile, frame = case["profile"], case["frame"]
    assert isinstance(profile, Profile) and isinstance(frame, pd.DataFrame)
    profile.to_json(tmp_path / "profile.json")
    base = ["monitor", "check", str(tmp_path / "profile.json"), "--no-history",
            "--out", str(tmp_path / "out")]
    np.savez(tmp_path / "batch.npz", X=np.zeros((3, 2)), y=np.zeros(3))
    frame.drop(columns="make").to_parquet(tmp_path / "other.parquet")
    address = str(cluster.scheduler_address)  # type: ignore[attr-defined]
    for argv, message in (
            ([str(tmp_path / "other.parquet"), "--engine", "dask", "--scheduler", address],
             "batch 'other': columns differ from the profile"),
            ([str(tmp_path / "batch.npz"), "--engine", "dask"], "not an NPZ file; use --engine local"),
            ([str(case["csv"]), "--engine", "spark"], "--engine must be one of local, dask"),
            ([str(case["csv"]), "--scheduler", "tcp://127.0.0.1:1"], "only used with --engine dask")):
        assert main([*base, *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()
