"""Engines: ``dask`` gives ``local``'s row hashes, row table, Merkle root and verification; a
folder of Parquet files is its files' rows in name order; bad options are one line, exit 2."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.cli import main
from poisonguard.engine import DaskEngine, LocalEngine, get_engine
from poisonguard.errors import DependencyError, InputError
from poisonguard.provenance import manifest as mf
from poisonguard.provenance.verify import verify

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

Collected = tuple[mf.RowTable, dict[str, object], list[str], str]


@pytest.fixture(scope="module")
def cluster() -> Iterator[object]:
    """One in-process cluster for the module (threads, no worker processes: fast)."""
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address="127.0.0.1:0") as c:
        yield c


@pytest.fixture
def address(cluster: object) -> str:
    return str(cluster.scheduler_address)  # type: ignore[attr-defined]


def table(n: int = 137, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": [f"r{i:04d}" for i in rng.permutation(n)],
        "x": rng.normal(size=n).round(6),
        "k": rng.integers(0, 50, n),
        "src": rng.choice(["acme", "crowd", "vendor-b"], n),
        "label": rng.integers(0, 3, n),
    })


def both(data: Path, address: str, **roles: str) -> tuple[Collected, Collected]:
    """``collect`` on the local engine and on dask, in chunks of 10 rows and partitions of 25
    (so a 137-row file is six partitions), each with a window of two."""
    local = mf.collect(str(data), chunk_rows=10, **roles)
    with DaskEngine(address, partition_rows=25, window=2) as engine:
        remote = mf.collect(str(data), chunk_rows=10, engine=engine, **roles)
    return local, remote


def assert_same(a: Collected, b: Collected) -> None:
    (ta, info_a, names_a, keyed_a), (tb, info_b, names_b, keyed_b) = a, b
    assert ta.root() == tb.root()
    assert np.array_equal(ta.hashes, tb.hashes) and np.array_equal(ta.ids, tb.ids)
    assert np.array_equal(ta.rows, tb.rows)
    if ta.sources is None:
        assert tb.sources is None
    else:
        assert tb.sources is not None
        assert list(ta.sources.categories) == list(tb.sources.categories)
        assert np.array_equal(ta.sources.codes, tb.sources.codes)
    assert (info_a, names_a, keyed_a) == (info_b, names_b, keyed_b)


def test_csv_with_ids_and_sources_same_root_rows_and_sidecar(tmp_path: Path, address: str) -> None:
    df = table()
    df.loc[3, "src"] = 'two\nlines, "quoted"'  # a record over two lines, across the split pass
    data = tmp_path / "d.csv"
    data.write_text("\ufeff" + df.to_csv(index=False), encoding="utf-8")  # with a BOM
    local, remote = both(data, address, id_col="id", source_col="src")
    assert_same(local, remote)
    assert local[3] == "id" and local[1]["sha256"]
    assert local[0].root() == mf.collect(str(data), id_col="id", source_col="src")[0].root()
    built, _ = mf.build(str(data), id_col="id", source_col="src")
    sides = [mf.write(built, got[0], tmp_path / f"{name}.json").rows_file["sha256"]
             for name, got in (("a", local), ("b", remote))]
    assert sides[0] == sides[1]  # the sidecars are the same bytes


def test_folder_of_three_parquet_files_is_their_rows_in_name_order(tmp_path: Path,
                                                                    address: str) -> None:
    df = table(150, seed=1)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, (a, b) in enumerate([(0, 40), (40, 95), (95, 150)]):  # row groups of 7: many runs
        df.iloc[a:b].to_parquet(folder / f"part-{i}.parquet", index=False, row_group_size=7)
    (folder / "_SUCCESS").write_text("")  # a writer's marker: skipped
    local, remote = both(folder, address, id_col="id", source_col="src")
    assert_same(local, remote)
    assert local[1]["format"] == "parquet-folder" and "sha256" not in local[1]
    whole = tmp_path / "whole.parquet"
    df.to_parquet(whole, index=False)
    one = mf.collect(str(whole), id_col="id", source_col="src")[0]
    assert one.root() == local[0].root() and np.array_equal(one.rows, local[0].rows)


def test_strings_nan_and_no_id_column(tmp_path: Path, address: str) -> None:
    rng = np.random.default_rng(2)
    n = 90
    df = pd.DataFrame({"x": rng.normal(size=n), "word": rng.choice(["a", "b c", "", "ünï"], n),
                       "maybe": rng.choice([1.5, np.nan], n), "label": rng.choice(["p", "q"], n)})
    df.loc[::7, "word"] = None
    df.loc[5, "x"] = np.nan
    for data in (tmp_path / "s.csv", tmp_path / "s.parquet"):
        df.to_csv(data, index=False) if data.suffix == ".csv" else df.to_parquet(data, index=False)
        local, remote = both(data, address)
        assert_same(local, remote)
        assert local[3] == "content"


def test_verify_on_dask_names_the_changed_rows_as_local_does(
        tmp_path: Path, address: str, capsys: pytest.CaptureFixture[str]) -> None:
    df = table()
    data, m = tmp_path / "d.csv", tmp_path / "m.json"
    df.to_csv(data, index=False)
    assert main(["manifest", str(data), "--id-col", "id", "--out", str(m), "--engine", "dask",
                 "--scheduler", address]) == 0
    capsys.readouterr()
    df.loc[[4, 60], "x"] += 1.0
    df.to_csv(data, index=False)
    local = verify(str(data), m)
    with DaskEngine(address, partition_rows=25) as engine:
        remote = verify(str(data), m, engine=engine)
    assert not local.ok and local.changes is not None and remote.changes is not None
    assert list(remote.changes.changed) == list(local.changes.changed) == sorted(df.id[[4, 60]])
    assert remote.problems == local.problems
    outs = []
    for extra in ([], ["--engine", "dask", "--scheduler", address]):
        assert main(["verify", str(data), str(m), *extra]) == 3
        outs.append(capsys.readouterr())
    assert outs[0].out == outs[1].out and outs[0].err == outs[1].err


def test_engine_starts_and_closes_its_own_cluster(tmp_path: Path) -> None:
    data = tmp_path / "d.parquet"
    table().to_parquet(data, index=False)
    engine = DaskEngine(n_workers=1, threads_per_worker=1, processes=False)
    with engine:
        cluster = engine._cluster
        got = mf.collect(str(data), engine=engine)
    assert engine._client is None and cluster.status.name == "closed"
    assert got[0].root() == mf.collect(str(data))[0].root()


def test_dask_refuses_what_it_cannot_split_in_one_line(tmp_path: Path, address: str) -> None:
    with DaskEngine(address) as engine, pytest.raises(InputError, match="use --engine local"):
        mf.collect("iris", engine=engine)


@pytest.mark.parametrize(("args", "says"), [
    (["--engine", "spark"], "--engine must be one of local, dask (got 'spark')"),
    (["--engine", "dask", "--scheduler", "tcp://127.0.0.1:1"], "--scheduler tcp://127.0.0.1:1"),
    (["--scheduler", "tcp://127.0.0.1:1"], "only used with --engine dask"),
])
def test_bad_engine_options_exit_2_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               args: list[str], says: str) -> None:
    data = tmp_path / "d.csv"
    table().to_csv(data, index=False)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        for cmd in (["manifest", str(data), "--out", str(tmp_path / "m.json")],
                    ["verify", str(data), str(tmp_path / "m.json")]):
            assert main([*cmd, *args]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("error: ") and says in err[0]
    assert not (tmp_path / "m.json").exists()


def test_missing_dask_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(DependencyError, match=r"pip install 'poisonguard\[dask\]'"):
        get_engine("dask")
    assert isinstance(get_engine("local"), LocalEngine)
    data = tmp_path / "d.csv"
    table().to_csv(data, index=False)
    assert main(["manifest", str(data), "--out", str(tmp_path / "m.json"), "--engine", "dask"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'poisonguard[dask]'" in err[0]


def test_folder_rules(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    with pytest.raises(InputError, match=r"no \*\.parquet files"):
        mf.collect(str(folder))
    df = table(20)
    df.to_parquet(folder / "b.parquet", index=False)
    df.drop(columns="k").to_parquet(folder / "a.parquet", index=False)
    with pytest.raises(InputError, match=r"b\.parquet: feature columns k, src, x differ from those of "):
        mf.collect(str(folder), id_col="id")
    (folder / "notes.txt").write_text("x")
    with pytest.raises(InputError, match=r"'notes\.txt', which is not a Parquet file"):
        mf.collect(str(folder))


def test_manifest_of_a_folder_is_not_written_into_it(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    table(20).to_parquet(folder / "a.parquet", index=False)
    assert main(["manifest", str(folder), "--out", str(folder / "m.json")]) == 2
    assert "inside the data folder" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == ["a.parquet"]
    assert main(["manifest", str(folder), "--id-col", "id", "--out", str(tmp_path / "m.json")]) == 0
    assert main(["verify", str(folder), str(tmp_path / "m.json")]) == 0
