"""poisonguard.io: CSV / Parquet / NPZ round trips, format-keeping saves, atomic writes."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from poisonguard import io
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

FORMATS = ["csv", "parquet", "npz"]


def _raises(match: str) -> pytest.RaisesExc[InputError]:
    return pytest.raises(InputError, match=re.escape(match))


def _tabular() -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(rng.normal(size=(8, 3)).round(3), ["cat", "dog"] * 4,
                   ids=[f"r{i}" for i in range(8)], sources=list("aabbccdd"),
                   feature_names=["len", "width", "depth"])


def _load_back(path: Path) -> Dataset:
    if path.suffix == ".npz":
        return io.load(path)
    return io.load(path, id_col="id", source_col="source")


def _assert_same(a: Dataset, b: Dataset) -> None:
    if isinstance(a.X, pd.DataFrame):
        pd.testing.assert_frame_equal(a.X, b.X)
    else:
        np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.ids, b.ids)
    if a.sources is None:
        assert b.sources is None
    else:
        assert b.sources is not None
        np.testing.assert_array_equal(a.sources, b.sources)
    assert a.modality == b.modality
    if a.modality == "tabular":
        assert a.feature_names == b.feature_names


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_tabular(tmp_path: Path, fmt: str) -> None:
    ds = _tabular()
    out = io.save(ds, tmp_path / f"data.{fmt}")
    assert out == tmp_path / f"data.{fmt}"
    back = _load_back(out)
    _assert_same(ds, back)
    assert back.name == "data" and back.origin is not None and back.origin.format == fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_integer_labels_and_default_ids(tmp_path: Path, fmt: str) -> None:
    ds = Dataset(np.arange(10, dtype=np.float64).reshape(5, 2), [0, 1, 2, 0, 1])
    back = io.load(io.save(ds, tmp_path / f"data.{fmt}"))
    _assert_same(ds, back)
    assert back.has_default_ids and back.y.dtype == np.int64


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_text(tmp_path: Path, fmt: str) -> None:
    ds = Dataset(["free prize, now!", 'say "hi"', "multi\nline", "ok"], [1, 0, 0, 0],
                 sources=["x", "x", "y", "y"])
    back = io.load(io.save(ds, tmp_path / f"texts.{fmt}"),
                   **({} if fmt == "npz" else {"source_col": "source"}))
    _assert_same(ds, back)


@pytest.mark.parametrize("shape", [(4, 3, 3), (4, 3, 3, 2)])
def test_round_trip_images_npz(tmp_path: Path, shape: tuple[int, ...]) -> None:
    X = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    ds = Dataset(X, [0, 1, 0, 1], ids=["a", "b", "c", "d"])
    back = io.load(io.save(ds, tmp_path / "img.npz"))
    _assert_same(ds, back)
    assert back.X.dtype == np.uint8


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_images_are_saved_only_as_npz(tmp_path: Path, fmt: str) -> None:
    ds = Dataset(np.zeros((2, 3, 3)), [0, 1])
    with _raises(f"img.{fmt}: image data can only be saved as .npz"):
        io.save(ds, tmp_path / f"img.{fmt}")
    assert _listing(tmp_path) == []


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_categorical(tmp_path: Path, fmt: str) -> None:
    df = pd.DataFrame({"age": [31, 45, 27, 60], "job": ["nurse", "chef", "nurse", "pilot"]})
    ds = Dataset(df, [0, 1, 0, 1])
    back = io.load(io.save(ds, tmp_path / f"people.{fmt}"))
    assert back.is_frame
    assert list(back.X["job"]) == list(df["job"])
    np.testing.assert_array_equal(back.X["age"].to_numpy(), df["age"].to_numpy())
    np.testing.assert_array_equal(back.y, ds.y)


def test_categorical_data_cannot_be_saved_as_npz(tmp_path: Path) -> None:
    ds = Dataset(pd.DataFrame({"job": ["a", "b"]}), [0, 1])
    with _raises("cannot be saved as npz; save as .csv or .parquet"):
        io.save(ds, tmp_path / "people.npz")
    assert _listing(tmp_path) == []


def test_feature_names_survive_csv_to_npz(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("height,weight,label\n1.5,60,0\n1.8,80,1\n")
    back = io.load(io.save(io.load(src), tmp_path / "out.npz"))
    assert back.feature_names == ("height", "weight")


# ------------------------------------------------------------ saving keeps the file's shape
CSV = ("id,count,target,score,who\n"
       "r1,3,cat,0.25,alice\n"
       "r2,5,dog,1.5,bob\n"
       "r3,-2,cat,2.0,alice\n")


def test_csv_save_keeps_columns_order_and_integers(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(CSV)
    ds = io.load(src, label="target", id_col="id", source_col="who")
    assert ds.feature_names == ("count", "score")
    assert list(ds.ids) == ["r1", "r2", "r3"] and list(ds.sources) == ["alice", "bob", "alice"]
    io.save(ds, tmp_path / "same.csv")
    assert (tmp_path / "same.csv").read_text() == CSV
    io.save(ds.take([2, 0]).replace(y=np.array(["dog", "dog"])), tmp_path / "sub.csv")
    assert (tmp_path / "sub.csv").read_text() == ("id,count,target,score,who\n"
                                                  "r3,-2,dog,2.0,alice\n"
                                                  "r1,3,dog,0.25,alice\n")


def test_csv_ids_and_sources_are_kept_as_written(tmp_path: Path) -> None:
    text = "id,x,label,src\n007,1.5,0,0042\n1e3,2.5,1,17\n"
    src = tmp_path / "in.csv"
    src.write_text(text)
    ds = io.load(src, id_col="id", source_col="src")
    assert list(ds.ids) == ["007", "1e3"]
    assert list(ds.sources) == ["0042", "17"]
    io.save(ds, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == text


def test_parquet_save_keeps_columns_and_dtypes(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": ["a", "b", "c"], "count": [3, 5, -2], "y": [0, 1, 0],
                       "score": [0.25, 1.5, 2.0], "who": ["p", "q", "p"]})
    df.to_parquet(tmp_path / "in.parquet", index=False)
    ds = io.load(tmp_path / "in.parquet", label="y", id_col="id", source_col="who")
    io.save(ds.take([1, 2]), tmp_path / "out.pq")
    out = pd.read_parquet(tmp_path / "out.pq")
    assert list(out.columns) == ["id", "count", "y", "score", "who"]
    assert out["count"].dtype == np.int64 and out["y"].dtype == np.int64
    assert out["count"].tolist() == [5, -2] and out["id"].tolist() == ["b", "c"]


def test_npz_save_keeps_the_arrays_it_had(tmp_path: Path) -> None:
    np.savez(tmp_path / "in.npz", X=np.ones((3, 2)), y=np.array([0, 1, 0]),
             ids=np.array(["0", "1", "2"]), feature_names=np.array(["a", "b"]))
    ds = io.load(tmp_path / "in.npz")
    assert ds.feature_names == ("a", "b")
    io.save(ds, tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as z:
        assert sorted(z.files) == ["X", "feature_names", "ids", "y"]


def test_text_csv_loads_as_text(tmp_path: Path) -> None:
    src = tmp_path / "sms.csv"
    src.write_text('message,label\nhello there,ham\n"WIN, now",spam\n42,ham\n')
    ds = io.load(src)
    assert ds.modality == "text"
    assert list(ds.X) == ["hello there", "WIN, now", "42"]
    io.save(ds, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == src.read_text()


def test_categorical_csv_loads_as_a_frame(tmp_path: Path) -> None:
    src = tmp_path / "people.csv"
    src.write_text("age,job,label\n31,nurse,0\n45,chef,1\n27,nurse,0\n")
    ds = io.load(src)
    assert ds.is_frame and ds.modality == "tabular"
    assert pd.api.types.is_numeric_dtype(ds.X["age"].dtype)
    assert list(ds.X["job"]) == ["nurse", "chef", "nurse"]
    io.save(ds, tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == src.read_text()


def test_numeric_csv_loads_as_an_array(tmp_path: Path) -> None:
    src = tmp_path / "num.csv"
    src.write_text("a,b,label\n1,2.5,0\n3,4.5,1\n")
    ds = io.load(src)
    assert not ds.is_frame and ds.X.dtype == np.float64
    np.testing.assert_array_equal(ds.X, [[1, 2.5], [3, 4.5]])


# ------------------------------------------------------------------- messy tables
def test_missing_values_load_as_missing(tmp_path: Path) -> None:
    src = tmp_path / "holes.csv"
    src.write_text("age,job,score,label\n31,nurse,1.5,0\n,chef,NA,1\n27,,2.5,0\n40,chef,nan,1\n")
    ds = io.load(src)
    assert ds.is_frame
    assert ds.X["age"].isna().tolist() == [False, True, False, False]
    assert ds.X["job"].isna().tolist() == [False, False, True, False]
    assert ds.X["score"].isna().tolist() == [False, True, False, True]
    num = tmp_path / "num.csv"
    num.write_text("a,b,label\n1,,0\n3,4.5,1\n")
    arr = io.load(num).X
    assert arr.dtype == np.float64 and np.isnan(arr[0, 1]) and arr[1, 1] == 4.5


def test_booleans_with_missing_values_are_numbers(tmp_path: Path) -> None:
    src = tmp_path / "b.csv"
    src.write_text("member,x,label\nTrue,1,0\n,2,1\nFalse,3,0\n")
    X = io.load(src).X
    assert X.dtype == np.float64 and X[:, 0].tolist()[::2] == [1.0, 0.0] and np.isnan(X[1, 0])


def test_date_columns_become_days_since_1970(tmp_path: Path) -> None:
    src = tmp_path / "d.csv"
    src.write_text("joined,city,label\n1970-01-02,Oslo,0\n2020-03-01,Rome,1\n,Oslo,0\n"
                   "2021-12-31,Lima,1\n")
    before = src.read_bytes()
    ds = io.load(src)
    assert ds.X["joined"].dtype == np.float64
    assert ds.X["joined"].tolist()[:2] == [1.0, 18322.0] and np.isnan(ds.X["joined"][2])
    assert ds.origin is not None and ds.origin.dates == (("joined", "%Y-%m-%d", 0),)
    assert src.read_bytes() == before  # the file itself is never touched


def test_day_first_dates_and_stray_values_are_counted(tmp_path: Path) -> None:
    days = [f"{d:02d}/{m:02d}/2021" for d in range(1, 29) for m in (1, 6, 11)]  # 84 dates
    src = tmp_path / "d.csv"
    src.write_text("when,label\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate(days))
                   + "soon,0\n")  # 1 of 85 present values is not a date: still a date column
    ds = io.load(src, modality="tabular")
    assert ds.origin is not None and ds.origin.dates == (("when", "%d/%m/%Y", 1),)
    assert ds.X[1, 0] == (pd.Timestamp("2021-06-01") - pd.Timestamp("1970-01-01")).days
    assert np.isnan(ds.X[-1, 0])


@pytest.mark.parametrize("values", [["March", "April", "May"], ["2020", "2021", "1999"],
                                    ["10:30", "11:00", "12:15"], ["a1", "b2", "c3"]])
def test_words_numbers_and_times_are_not_dates(tmp_path: Path, values: list[str]) -> None:
    src = tmp_path / "w.csv"
    src.write_text("v,x,label\n" + "".join(f"{v},{i},{i % 2}\n" for i, v in enumerate(values)))
    ds = io.load(src)
    assert ds.origin is not None and ds.origin.dates == ()


def test_native_date_columns_in_parquet(tmp_path: Path) -> None:
    src = tmp_path / "d.parquet"
    pd.DataFrame({"when": pd.to_datetime(["1970-01-11", None, "1970-01-02"]), "x": [1, 2, 3],
                  "label": [0, 1, 0]}).to_parquet(src)
    ds = io.load(src)
    assert ds.origin is not None and ds.origin.dates == (("when", "", 0),)
    assert ds.X[0, 0] == 10.0 and np.isnan(ds.X[1, 0])


# ---------------------------------------------------------------------------- atomic writes
def _partial_then_fail(kind: str) -> Any:
    def boom(*args: Any, **kwargs: Any) -> None:
        target = args[1] if kind == "frame" else args[0]
        if hasattr(target, "write"):
            target.write(b"partial")
        else:
            Path(target).write_text("partial")
        raise RuntimeError("disk full")
    return boom


@pytest.mark.parametrize(("fmt", "owner", "method", "kind"), [
    ("csv", pd.DataFrame, "to_csv", "frame"),
    ("parquet", pd.DataFrame, "to_parquet", "frame"),
    ("npz", np, "savez_compressed", "numpy"),
])
def test_failed_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str,
                                          owner: Any, method: str, kind: str) -> None:
    target = tmp_path / f"data.{fmt}"
    io.save(_tabular(), target)
    old = target.read_bytes()
    monkeypatch.setattr(owner, method, _partial_then_fail(kind))
    with pytest.raises(RuntimeError, match="disk full"):
        io.save(_tabular().replace(y=["dog"] * 8), target)
    assert target.read_bytes() == old
    assert _listing(tmp_path) == [target.name]


def test_failed_write_creates_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pd.DataFrame, "to_csv", _partial_then_fail("frame"))
    with pytest.raises(RuntimeError):
        io.save(_tabular(), tmp_path / "new.csv")
    assert _listing(tmp_path) == []


def test_write_text_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "notes.txt"
    io.write_text(target, "old")

    def fail(self: Path, *args: Any, **kwargs: Any) -> None:
        raise OSError("no space left")

    monkeypatch.setattr(Path, "write_text", fail)
    with pytest.raises(OSError, match="no space left"):
        io.write_text(target, "new")
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["notes.txt"]


def test_saved_files_get_the_usual_mode(tmp_path: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    io.save(_tabular(), tmp_path / "new.csv")  # not mkstemp's 0600
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o666 & ~umask
    (tmp_path / "new.csv").chmod(0o640)
    io.save(_tabular(), tmp_path / "new.csv")  # overwriting keeps the file's mode
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o640


def test_save_creates_missing_folders(tmp_path: Path) -> None:
    out = io.save(_tabular(), tmp_path / "a" / "b" / "data.csv")
    assert out.exists()


def test_save_onto_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out.csv").mkdir()
    with _raises("out.csv: is a directory, expected a file to write"):
        io.save(_tabular(), tmp_path / "out.csv")
    assert _listing(tmp_path) == ["out.csv"]


def test_save_unknown_extension(tmp_path: Path) -> None:
    with _raises("data.json: unknown file extension '.json'; "
                 "expected one of .csv, .jsonl, .npz, .parquet, .pq"):
        io.save(_tabular(), tmp_path / "data.json")
    assert _listing(tmp_path) == []


# ----------------------------------------------------------------------------- reading errors
def test_npz_object_arrays_are_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return os.mkdir, (str(marker),)

    X = np.empty((2, 1), dtype=object)
    X[0, 0], X[1, 0] = Payload(), Payload()
    np.savez(tmp_path / "evil.npz", X=X, y=np.array([0, 1]))
    with _raises("evil.npz: holds pickled object arrays, which are never loaded"):
        io.load(tmp_path / "evil.npz")
    assert not marker.exists()


@pytest.mark.parametrize(("content", "message"), [
    (b"X,y\n1,0\n", "not an npz archive"),
    (b"PK\x03\x04garbage", "cannot read as npz"),
])
def test_npz_that_is_not_an_archive(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "bad.npz").write_bytes(content)
    with _raises(f"bad.npz: {message}"):
        io.load(tmp_path / "bad.npz")


def test_npy_saved_as_npz(tmp_path: Path) -> None:
    with (tmp_path / "one.npz").open("wb") as fh:
        np.save(fh, np.zeros(3))
    with _raises("one.npz: holds a single .npy array, not an npz archive"):
        io.load(tmp_path / "one.npz")


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    with _raises(f"{tmp_path / 'nope.csv'}: no such file"):
        io.load(tmp_path / "nope.csv")
    with _raises(f"{tmp_path}: is a directory"):
        io.load(tmp_path)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with _raises(f"{tmp_path / 'bad.parquet'}: cannot read as parquet"):
        io.load(tmp_path / "bad.parquet")


def test_missing_id_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("id,x,label\na,1,0\n,2,1\n")
    with _raises("in.csv: row 1 (line 3), column 'id': id is missing"):
        io.load(tmp_path / "in.csv", id_col="id")


def test_missing_label_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("x,label\n1,0\n2,\n")
    with _raises("in.csv: row 1 (line 3), column 'label': label is missing"):
        io.load(tmp_path / "in.csv")


def test_line_numbers_count_multi_line_fields_and_blank_lines(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text('note,x,label\n"two\nlines",1,0\n\nok,inf,1\n')
    with _raises("in.csv: row 1 (line 5), column 'x': value is inf"):
        io.load(tmp_path / "in.csv")
    (tmp_path / "in.csv").write_text('note,x,label\n"two\nlines",1,0\n\nok,2,1,9\n')
    with _raises("in.csv: line 5 has 4 fields but the header has 3"):
        io.load(tmp_path / "in.csv")


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_bytes(b"x,label\n\xff,0\n")
    with _raises("in.csv: not UTF-8 text"):
        io.load(tmp_path / "in.csv")
