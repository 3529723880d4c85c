"""scan_partitions(): a scan of data read as partitions where the engine runs.

A user with more rows than one process should hold points the scan at a CSV file or a folder of
Parquet files: every row gets the score, flag and reason the in-memory scan gives it (same seed,
same sample size), the caller holds no features but those of the flagged rows, ``clean()`` and
the HTML report still work, and what needs the data whole is refused in one line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from poisonguard import io
from poisonguard.cli import main
from poisonguard.engine import DaskEngine, LocalEngine
from poisonguard.errors import InputError
from poisonguard.scan import scan
from poisonguard.scan_partitions import scan_partitions

ROWS, SAMPLE = 6000, 2000
SMALL = {"sample_rows": SAMPLE, "partition_rows": 1500, "chunk_rows": 700}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """The same 6,000 rows (5 % labels flipped) as one CSV file and a folder of 3 Parquet
    files; the flips."""
    d = tmp_path_factory.mktemp("parts")
    X, y = make_classification(ROWS, n_features=6, n_informative=4, random_state=1)
    flip = np.random.default_rng(1).random(ROWS) < 0.05
    y[flip] = 1 - y[flip]
    frame = pd.DataFrame(X.round(6), columns=[f"f{i}" for i in range(6)])
    frame["label"] = y
    frame.to_csv(d / "rows.csv", index=False)
    (d / "folder").mkdir()
    for i in range(3):
        frame.iloc[2000 * i:2000 * (i + 1)].to_parquet(d / "folder" / f"part-{i}.parquet",
                                                       row_group_size=500)
    return d / "rows.csv", d / "folder", flip


@pytest.fixture(scope="module")
def dask_engine() -> Iterator[DaskEngine]:
    pytest.importorskip("distributed")
    with DaskEngine(n_workers=2, processes=False, window=3) as engine:
        yield engine


@pytest.mark.parametrize("budget", [None, 250])
def test_same_rows_scores_and_reasons_as_the_in_memory_scan(
        files: tuple[Path, Path, np.ndarray], dask_engine: DaskEngine, budget: int | None) -> None:
    csv, folder, flip = files
    whole = scan(io.load(csv), sample_rows=SAMPLE, chunk_rows=700, budget=budget)
    assert whole.evaluate(flip)["auroc"] > 0.9  # the flips are found at all
    # the CSV in 4 runs of 1,500 rows; each 2,000-row file in runs of 1,500 and 500 rows
    for data, engine, parts in ((csv, LocalEngine(), 4), (folder, dask_engine, 6)):
        rep = scan_partitions(str(data), engine=engine, budget=budget, **SMALL)
        pd.testing.assert_frame_equal(rep.table, whole.table)
        assert rep.regime["read"] == "partitions" and rep.regime["partitions"] == parts
        assert rep.regime["fitted_rows"] == whole.regime["fitted_rows"]
        assert rep.n_flagged == (budget or whole.n_flagged)


def test_holds_the_flagged_rows_features_only_and_cleans_by_reading_again(
        files: tuple[Path, Path, np.ndarray]) -> None:
    csv, folder, _ = files
    whole = scan(io.load(csv), sample_rows=SAMPLE, chunk_rows=700)
    rep = scan_partitions(str(folder), engine=LocalEngine(), **SMALL)
    assert rep.dataset.X.shape == (ROWS, 0)  # labels, ids and scores of every row, no features
    flagged = np.flatnonzero(rep.flagged)
    np.testing.assert_array_equal(rep.row_data(flagged).X, whole.dataset.X[flagged])
    with pytest.raises(InputError, match="flagged rows only"):
        rep.row_data(np.flatnonzero(~rep.flagged)[:1])
    clean = rep.clean()
    np.testing.assert_array_equal(clean.X, whole.clean().X)
    np.testing.assert_array_equal(clean.ids, whole.clean().ids)


def test_up_to_the_sample_size_the_rows_are_scanned_whole(files: tuple[Path, Path, np.ndarray]
                                                           ) -> None:
    csv, folder, _ = files
    whole = scan(io.load(csv), detectors=["label", "outlier"])
    rep = scan_partitions(str(folder), engine=LocalEngine(), detectors=["label", "outlier"],
                          partition_rows=1500)
    pd.testing.assert_frame_equal(rep.table, whole.table)
    assert not rep.regime["sampled"]


def test_cli_scans_a_folder_and_refuses_what_needs_the_data_whole(
        files: tuple[Path, Path, np.ndarray], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, folder, _ = files
    out = tmp_path / "scan-out"
    assert main(["scan", str(folder), "-o", str(out), "-q", "--sample-rows", str(SAMPLE)]) == 0
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == ROWS and scores["flagged"].sum() > 0
    html = (out / "report.html").read_text()
    assert "f0" in html  # the top rows' feature columns, from the held rows
    report = io.read_json(out / "report.json", "report")
    assert report["summary"]["regime"]["read"] == "partitions"
    assert report["provenance"]["rows"] == ROWS and report["provenance"]["merkle_root"]
    capsys.readouterr()
    for extra in (["--write-clean", str(tmp_path / "c.csv")], ["--self-test"]):
        assert main(["scan", str(folder), "-o", str(tmp_path / "o2"), "-q", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "need the data loaded whole" in err[0]
    assert not (tmp_path / "o2").exists() and not (tmp_path / "c.csv").exists()


def test_a_bad_value_is_named_by_its_row_in_the_file(tmp_path: Path) -> None:
    X, y = make_classification(3000, n_features=3, n_informative=2, n_redundant=0,
                               random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    frame["label"] = y
    frame["b"] = frame["b"].astype(object)
    frame.loc[2345, "b"] = "oops"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match=r"row 2345, column 'b': 'oops' is not a number"):
        scan_partitions(str(tmp_path / "bad.csv"), engine=LocalEngine(), sample_rows=1000,
                        partition_rows=1000)


def test_files_of_a_folder_must_agree(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = pd.DataFrame({"x": rng.normal(size=300), "label": rng.integers(0, 2, 300)})
    b = pd.DataFrame({"x": rng.normal(size=300), "z": 1.0, "label": rng.integers(0, 2, 300)})
    a.to_parquet(tmp_path / "a.parquet")
    b.to_parquet(tmp_path / "b.parquet")
    with pytest.raises(InputError, match="same columns"):
        scan_partitions(str(tmp_path), engine=LocalEngine(), sample_rows=100)


def test_ids_and_sources_come_from_the_partitions(tmp_path: Path) -> None:
    X, y = make_classification(3000, n_features=4, random_state=2)
    frame = pd.DataFrame(X.round(6), columns=["a", "b", "c", "d"])
    frame["label"] = y
    frame["id"] = [f"row-{i:05d}" for i in np.random.default_rng(2).permutation(3000)]
    frame["vendor"] = np.random.default_rng(3).choice(["acme", "crowd"], 3000)
    frame.to_csv(tmp_path / "keyed.csv", index=False)
    roles = {"id_col": "id", "source_col": "vendor"}
    whole = scan(io.load(tmp_path / "keyed.csv", **roles), sample_rows=1000, chunk_rows=500)
    rep = scan_partitions(str(tmp_path / "keyed.csv"), engine=LocalEngine(), sample_rows=1000,
                          chunk_rows=500, partition_rows=700, **roles)
    pd.testing.assert_frame_equal(rep.table, whole.table)
    pd.testing.assert_frame_equal(rep.by_source(), whole.by_source())


def test_cli_on_dask_loads_an_npz_file_whole(dask_engine: DaskEngine, tmp_path: Path) -> None:
    from poisonguard.datasets import load_dataset

    io.save(load_dataset("breast_cancer"), tmp_path / "bc.npz")
    address = dask_engine.connect().scheduler.address
    assert main(["scan", str(tmp_path / "bc.npz"), "-o", str(tmp_path / "out"), "-q",
                 "--engine", "dask", "--scheduler", address, "--sample-rows", "300",
                 "--detectors", "label,outlier"]) == 0
    regime = io.read_json(tmp_path / "out" / "report.json", "report")["summary"]["regime"]
    assert regime["read"] == "whole" and regime["engine"] == "dask" and regime["rows"] == 569
