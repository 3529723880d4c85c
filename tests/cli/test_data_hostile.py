"""Hostile data through the CLI (issue 11, the reading side): every case is refused with exit 2
and one ``error:`` line naming the file and the column, row, line or option at fault, or, when
the data is legitimate, processed with the user's own text and types intact."""

from __future__ import annotations

import csv
import io as stdio
import json
import os
import socket
import struct
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from poisonguard import io
from poisonguard.cli import main

GOOD = "a,b,label\n" + "".join(f"{i},{i % 3}.5,{i % 2}\n" for i in range(20))


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], *inputs: Path) -> str:
    """Run ``argv``: exit 2, one ``error:`` line and nothing else; inputs untouched, nothing
    written beside them. Returns the line."""
    before = {p: p.read_bytes() for p in inputs if p.is_file()}
    listing = {p.parent: sorted(os.listdir(p.parent)) for p in inputs}
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    for p, data in before.items():
        assert p.read_bytes() == data
    for folder, names in listing.items():
        assert sorted(os.listdir(folder)) == names
    return lines[0]


def _attack(data: Path, out: Path, *extra: str, attack: str = "label-flip") -> list[str]:
    budget = [] if {"--rate", "--count"} & set(extra) else ["--rate", "0.2"]
    return ["attack", str(data), "--attack", attack, *budget, "--out", str(out), *extra]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _cells(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return [row for row in csv.reader(fh) if row]


# ------------------------------------------------------------------ 1. duplicate column names
@pytest.mark.parametrize(("header", "shown"), [("a,label,label", "'label'"), ("f1,f1,label", "'f1'"),
                                               ("a,a,b,b,label", "'a', 'b'")])
def test_repeated_csv_column_names_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               header: str, shown: str) -> None:
    width = header.count(",") + 1
    data = _write(tmp_path / "d.csv", header + "\n" + "".join(
        ",".join(str((i + j) % 2) for j in range(width)) + "\n" for i in range(10)))
    line = _refused(capsys, _attack(data, tmp_path / "o.csv"), data)
    assert line == (f"error: {data}: column name {shown} appears more than once in the header; "
                    "column names must be unique")


def test_repeated_parquet_column_names_are_refused(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(range(10)), pa.array(range(10)),
                                         pa.array([i % 2 for i in range(10)])],
                                        names=["f1", "f1", "label"]), data)
    line = _refused(capsys, _attack(data, tmp_path / "o.parquet"), data)
    assert line == (f"error: {data}: column name 'f1' appears more than once in the schema; "
                    "column names must be unique")


def test_repeated_npz_feature_names_are_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, X=np.ones((6, 2)), y=np.arange(6) % 2, feature_names=np.array(["f", "f"]))
    line = _refused(capsys, _attack(data, tmp_path / "o.npz"), data)
    assert line == (f"error: {data}: feature name 'f' appears more than once; feature names "
                    "must be unique")


# --------------------------------------------------- 2. copies keep the user's own cell text
TEXTY = ("code,amount,note,label\n" + "".join(
    f'0{1400 + i},{"1e3" if i % 3 == 0 else f"{i}.50"},"{"x, y" if i % 4 == 0 else "plain"}",{i % 2}\n'
    for i in range(30)))


@pytest.mark.parametrize("extra", [(), ("--id-col", "code")])
def test_untouched_csv_rows_keep_their_text(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            extra: tuple[str, ...]) -> None:
    data, out = _write(tmp_path / "d.csv", TEXTY), tmp_path / "o.csv"
    assert main(_attack(data, out, *extra)) == 0, capsys.readouterr().err
    truth = pd.read_csv(tmp_path / "o.truth.csv")
    before, after = _cells(data), _cells(out)
    assert after[0] == before[0]
    for row, (poisoned, src) in enumerate(zip(truth["poisoned"], truth["source_index"],
                                              strict=True)):
        if poisoned:  # changed: written from the data, the label flipped
            assert after[row + 1][3] != before[src + 1][3]
        else:  # "01400" stays "01400", "1e3" stays "1e3"
            assert after[row + 1] == before[src + 1]
    assert truth["poisoned"].sum() == 6


def test_injected_rows_come_from_the_data_and_the_rest_keep_their_text(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "d.csv", "x,y,label\n" + "".join(
        f"{i:03d},{'1e3' if i % 2 else '2.50'},{i % 2}\n" for i in range(30)))
    out = tmp_path / "o.csv"
    assert main(_attack(data, out, "--inject", "--trigger", "shift", attack="backdoor")) == 0, \
        capsys.readouterr().err
    before, after = _cells(data), _cells(out)
    assert after[:31] == before  # every input row untouched
    assert len(after) == 31 + 6


def test_parquet_copies_keep_types_and_values(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    n = 30
    frame = pd.DataFrame({
        "i32": pd.array(np.arange(n), dtype="int32"),
        "nullable": pd.array([None if i == 4 else i for i in range(n)], dtype="Int64"),
        "f32": np.linspace(0, 1, n).astype("float32"),
        "flag": [i % 3 == 0 for i in range(n)],
        "when": pd.date_range("2020-01-01", periods=n, freq="D"),
        "code": [f"0{1400 + i}" for i in range(n)],
        "label": [i % 2 for i in range(n)]})
    data, out = tmp_path / "d.parquet", tmp_path / "o.parquet"
    frame.to_parquet(data, index=False)
    assert main(_attack(data, out)) == 0, capsys.readouterr().err
    assert pq.read_schema(out).to_string(show_schema_metadata=False) == \
        pq.read_schema(data).to_string(show_schema_metadata=False)
    copy = pd.read_parquet(out)
    kept = pd.read_csv(tmp_path / "o.truth.csv")["poisoned"].to_numpy() == 0
    pd.testing.assert_frame_equal(copy[kept], frame[kept])
    pd.testing.assert_frame_equal(copy.drop(columns=["label", "code"]),
                                  frame.drop(columns=["label", "code"]))


def test_changed_csv_rows_keep_dates_and_booleans(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "d.csv", "when,flag,x,label\n" + "".join(
        f"2021-03-{i % 28 + 1:02d},{i % 3 > 0},{i * 1.5},{i % 2}\n" for i in range(30)))
    out = tmp_path / "o.csv"
    assert main(_attack(data, out)) == 0, capsys.readouterr().err
    before, after = _cells(data), _cells(out)
    changed = [i for i in range(1, 31) if before[i] != after[i]]
    assert len(changed) == 6
    for i in changed:  # only the label differs: no day counts, no 1.0 for True
        assert after[i][:3] == before[i][:3] and after[i][3] != before[i][3]


def test_an_input_changed_during_the_run_is_refused(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    data, out = _write(tmp_path / "d.csv", TEXTY), tmp_path / "o.csv"
    save_to = io.save_to

    def edit_then_save(dataset: object, tmp: Path, *, fmt: str) -> None:
        data.write_text(TEXTY.replace("01400", "99999"), encoding="utf-8")
        save_to(dataset, tmp, fmt=fmt)  # type: ignore[arg-type]

    monkeypatch.setattr(io, "save_to", edit_then_save)
    assert main(_attack(data, out)) == 2
    err = capsys.readouterr().err
    assert err == f"error: {data}: changed while the command ran; run it again\n"
    assert sorted(os.listdir(tmp_path)) == ["d.csv"]


# ------------------------------------------------------------ 3. one column, one role
@pytest.mark.parametrize(("options", "message"), [
    (("--source-col", "label"), "--label and --source-col both name column 'label'"),
    (("--id-col", "label"), "--label and --id-col both name column 'label'"),
    (("--id-col", "a", "--source-col", "a"), "--id-col and --source-col both name column 'a'"),
    (("--label", "b", "--id-col", "b"), "--label and --id-col both name column 'b'"),
])
def test_one_column_in_two_roles_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            options: tuple[str, ...], message: str) -> None:
    data = _write(tmp_path / "d.csv", GOOD)
    line = _refused(capsys, _attack(data, tmp_path / "o.csv", *options), data)
    assert line == f"error: {message}; a column can have only one role"


# ---------------------------------------------------------------- 4a. non-regular files
def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "d.csv"
    os.mkfifo(fifo)  # opening it to read would wait for a writer forever
    line = _refused(capsys, _attack(fifo, tmp_path / "o.csv"), fifo)
    assert line == f"error: {fifo}: is a named pipe, expected a regular data file"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_a_device_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _refused(capsys, _attack(Path("/dev/zero"), tmp_path / "o.csv"), tmp_path / "o.csv")
    assert line == "error: /dev/zero: is a character device, expected a regular data file"


def test_a_socket_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "d.csv"
    if len(str(path)) > 100:
        pytest.skip("socket paths are limited to about 100 characters")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        line = _refused(capsys, _attack(path, tmp_path / "o.csv"), path)
    assert line == f"error: {path}: is a socket, expected a regular data file"


# ------------------------------------------------------------------ 4b. CSV sizes
def test_a_long_text_cell_loads_and_is_copied(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    long_text = " ".join(f"word{i % 997}" for i in range(30_000))  # ~250 KB in one cell
    assert len(long_text) > 200_000
    data = _write(tmp_path / "d.csv", "text,label\n" + "".join(
        f"{long_text if i == 3 else f'message number {i}'},{i % 2}\n" for i in range(20)))
    out = tmp_path / "o.csv"
    assert main(_attack(data, out, "--count", "2")) == 0, capsys.readouterr().err
    assert long_text in pd.read_csv(out, dtype=str)["text"].tolist()


def test_an_unclosed_quote_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(io, "CSV_FIELD_MAX", 10_000)
    data = _write(tmp_path / "d.csv", 'a,b,label\n1,2,0\n3,"' + "unclosed\n" * 5_000)
    line = _refused(capsys, _attack(data, tmp_path / "o.csv"), data)
    assert line == (f"error: {data}: line 3: a field is longer than 10,000 characters "
                    "(an unclosed quote?)")


def test_a_line_too_long_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(io, "CSV_LINE_MAX", 10_000)
    data = _write(tmp_path / "d.csv", "a,b,label\n1,2,0\n3," + "7" * 20_000 + ",1\n")
    line = _refused(capsys, _attack(data, tmp_path / "o.csv"), data)
    assert line == (f"error: {data}: line 3 is longer than 10,000 characters; is this a CSV file?")


def test_nul_bytes_are_binary_not_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.csv"
    data.write_bytes(b"a,b,label\n1,2,0\n" + b"\0" * 1000)
    line = _refused(capsys, _attack(data, tmp_path / "o.csv"), data)
    assert line == f"error: {data}: line 3 holds a NUL character (binary data, not CSV text)"


# ----------------------------------------------------------------------- 4c. NPZ sizes
def _npy(descr: str, shape: tuple[int, ...], data: bytes = b"") -> bytes:
    buf = stdio.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue() + data


Y = _npy("<i8", (4,), np.array([0, 1, 0, 1]).tobytes())


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _declare_size(path: Path, size: int) -> None:
    """Rewrite the first member's uncompressed size in the central directory (a bomb by header:
    the bytes are not there)."""
    raw = bytearray(path.read_bytes())
    entry = raw.find(b"PK\x01\x02")
    raw[entry + 24:entry + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(("members", "message"), [
    ({"X.npy": _npy("<f8", (10**13,), bytes(64)), "y.npy": Y},
     "array 'X' declares shape (10000000000000,) of float64 (72.8 TiB) but holds 64 bytes"),
    ({"X.npy": _npy("<f8", (4, 2)), "y.npy": Y},
     "array 'X' declares shape (4, 2) of float64 (64 bytes) but holds 0 bytes"),
    ({"X.npy": _npy("|O", (4, 2), bytes(100)), "y.npy": Y},
     "holds pickled object arrays, which are never loaded; store strings as fixed-width "
     "unicode arrays"),
    ({"X.npy": _npy("|V0", (10**15, 2)), "y.npy": Y},
     "array 'X' declares 2,000,000,000,000,000 values of no size (dtype |V0)"),
    ({"X.npy": _npy("<f8", (4, 1), bytes(32)), "y.npy": Y, "notes.txt": b"hi"},
     "member 'notes.txt' is not a .npy array (write the file with numpy.savez)"),
    ({"X.npy": b"not an array header", "y.npy": Y},
     "array 'X' has no valid .npy header"),
])
def test_npz_headers_are_checked_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                members: dict[str, bytes], message: str) -> None:
    data = _zip(tmp_path / "d.npz", members)
    line = _refused(capsys, _attack(data, tmp_path / "o.npz", "--count", "1"), data)
    assert line.startswith(f"error: {data}: {message}")


def test_a_zip_bomb_by_declared_size_is_refused(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = _zip(tmp_path / "d.npz", {"X.npy": _npy("<f8", (4, 2), bytes(64)), "y.npy": Y})
    _declare_size(data, 0xFFFF_FFF0)
    line = _refused(capsys, _attack(data, tmp_path / "o.npz", "--count", "1"), data)
    assert line.startswith(f"error: {data}: array 'X' would inflate from ")
    assert line.endswith("to 4 GiB (more than 2000:1); refused as a zip bomb")


def test_npz_larger_than_memory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "d.npz"
    np.savez(data, X=np.ones((50, 4)), y=np.arange(50) % 2)
    monkeypatch.setattr(io, "_memory_bytes", lambda: 1024)
    line = _refused(capsys, _attack(data, tmp_path / "o.npz"), data)
    assert line == f"error: {data}: arrays would need 2.2 KiB, more than this machine's memory (1 KiB)"


def test_parquet_larger_than_memory_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "d.parquet"
    pd.DataFrame({"a": np.arange(100.0), "label": np.arange(100) % 2}).to_parquet(data)
    monkeypatch.setattr(io, "_memory_bytes", lambda: 1024)
    line = _refused(capsys, _attack(data, tmp_path / "o.parquet"), data)
    assert line == (f"error: {data}: declares 100 rows of 2 columns (at least 1.56 KiB), more "
                    "than this machine's memory (1 KiB)")


def test_a_good_npz_still_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, out = tmp_path / "d.npz", tmp_path / "o.npz"
    X = np.arange(40.0).reshape(20, 2)
    np.savez_compressed(data, X=X, y=np.arange(20) % 2, ids=np.array([f"r{i}" for i in range(20)]))
    assert main(_attack(data, out)) == 0, capsys.readouterr().err
    with np.load(out) as z:
        np.testing.assert_array_equal(z["X"], X)


# ---------------------------------------------------------- 5. values too large to compute with
@pytest.mark.parametrize("value", ["1e300", "-1e300", "1.5e101"])
def test_huge_feature_values_are_refused_at_load(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 value: str) -> None:
    data = _write(tmp_path / "d.csv", GOOD.replace("\n7,1.5,1\n", f"\n7,{value},1\n"))
    line = _refused(capsys, ["scan", str(data), "--out", str(tmp_path / "o")], data)
    assert line == (f"error: {data}: row 7 (line 9), column 'b': value {float(value):g} is too "
                    "large to compute with (|value| must be at most 1e+100)")


def test_huge_values_in_npz_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X = np.ones((6, 3))
    X[4, 1] = -1e300
    data = tmp_path / "d.npz"
    np.savez(data, X=X, y=np.arange(6) % 2)
    line = _refused(capsys, _attack(data, tmp_path / "o.npz"), data)
    assert line == (f"error: {data}: row 4, column 'x1': value -1e+300 is too large to compute "
                    "with (|value| must be at most 1e+100)")


def test_a_huge_label_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "d.csv", GOOD.replace("\n7,1.5,1\n", "\n7,1.5,1e300\n"))
    line = _refused(capsys, _attack(data, tmp_path / "o.csv"), data)
    assert line == f"error: {data}: label of row 7 (1e+300) is too large for an integer label"


def test_values_at_the_bound_scan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    rows = [f"{v:.4f},{w:.4f},{i % 2}" for i, (v, w) in enumerate(rng.normal(size=(60, 2)))]
    rows[3], rows[5] = "1e100,0.5,1", "-1e100,0.5,1"
    data = _write(tmp_path / "d.csv", "a,b,label\n" + "\n".join(rows) + "\n")
    assert main(["scan", str(data), "--out", str(tmp_path / "o"), "--quiet"]) == 0, \
        capsys.readouterr().err
    scores = pd.read_csv(tmp_path / "o" / "scores.csv")
    assert np.isfinite(scores["score"]).all()


# ------------------------------------------------------------------------ 6. nested columns
@pytest.mark.parametrize("nested", [
    pa.array([[i, i + 1] for i in range(10)]),
    pa.array([{"x": i, "y": "q"} for i in range(10)]),
    pa.array([[("k", i)] for i in range(10)], type=pa.map_(pa.string(), pa.int64())),
], ids=["list", "struct", "map"])
@pytest.mark.parametrize("command", ["attack", "scan", "monitor"])
def test_nested_parquet_columns_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            nested: pa.Array, command: str) -> None:
    data = tmp_path / "d.parquet"
    table = pa.table({"a": list(range(10)), "n": nested, "label": [i % 2 for i in range(10)]})
    pq.write_table(table, data)
    shown = pq.read_schema(data).field("n").type
    argv = {"attack": _attack(data, tmp_path / "o.parquet"),
            "scan": ["scan", str(data), "--out", str(tmp_path / "o")],
            "monitor": ["monitor", "init", str(data), "--out", str(tmp_path / "p.json")]}[command]
    line = _refused(capsys, argv, data)
    assert line == (f"error: {data}: column 'n' holds nested values ({shown}); nested values "
                    "are not supported as features, labels, ids or sources")


# ---------------------------------------------------------------------- 7. trigger sizes
def _images(path: Path) -> Path:
    X = np.random.default_rng(0).uniform(0, 1, (20, 8, 8))
    np.savez(path, X=X, y=np.arange(20) % 2)
    return path


@pytest.mark.parametrize(("data", "message"), [
    ("csv", "'trigger_size' (number of trigger columns) must be in [1, 2] (got 1000000000)"),
    ("npz", "'trigger_size' must be in [1, 8] (got 1000000000)"),
])
@pytest.mark.parametrize("size", ["1e9", "1000000000"])
def test_a_huge_trigger_size_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         data: str, message: str, size: str) -> None:
    path = _images(tmp_path / "d.npz") if data == "npz" else _write(tmp_path / "d.csv", GOOD)
    line = _refused(capsys, _attack(path, tmp_path / f"o.{data}", "--trigger-size", size,
                                    attack="backdoor"), path)
    assert line == f"error: {path}: {message}"


def test_a_fractional_trigger_size_is_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data = _write(tmp_path / "d.csv", GOOD)
    line = _refused(capsys, _attack(data, tmp_path / "o.csv", "--trigger-size", "2.5",
                                    attack="backdoor"), data)
    assert line == "error: option --trigger-size: '2.5' is not a whole number"


PATCH = {"kind": "patch", "size": 3, "row": 1, "col": 1, "value": 1.0, "target_class": 0}


@pytest.mark.parametrize(("change", "message"), [
    ({"size": 1e9}, "patch trigger field 'size' must be an integer of at least 1 (got 1000000000.0)"),
    ({"size": "big"}, "patch trigger field 'size' must be an integer of at least 1 (got 'big')"),
    ({"size": -5}, "patch trigger field 'size' must be an integer of at least 1 (got -5)"),
    ({"size": True}, "patch trigger field 'size' must be an integer of at least 1 (got True)"),
    ({"size": 10**9}, "a 1000000000-pixel patch at (1, 1) does not fit images of shape (8, 8)"),
    ({"row": 10**17}, "a 3-pixel patch at (100000000000000000, 1) does not fit images of "
                      "shape (8, 8)"),
    ({"value": [1]}, "patch trigger field 'value' must be a finite number (got [1])"),
    ({"target_class": {"a": 1}}, "patch trigger field 'target_class' must be a label (a text or "
                                 "a number) (got {'a': 1})"),
    ({"extra": 1}, "patch trigger is missing or has unknown fields: 'extra' unknown"),
    ({"kind": "shape", "glyph": ["#" * 5000] * 5000, "size": None},
     "a 5000x5000 glyph at (1, 1) does not fit images of shape (8, 8)"),
    ({"kind": "shape", "glyph": ["#.", "#"], "size": None},
     "shape trigger: 'glyph' must be rows of equal length made of '#' and '.' (got 2 rows)"),
])
def test_hand_edited_triggers_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           change: dict[str, object], message: str) -> None:
    spec = {**PATCH, **change}
    spec = {k: v for k, v in spec.items() if v is not None}
    trig = _write(tmp_path / "t.json", json.dumps(spec))
    data = _images(tmp_path / "img.npz")
    line = _refused(capsys, ["trigger", "apply", str(trig), str(data), "--out",
                             str(tmp_path / "o.npz")], trig, data)
    assert line == f"error: {trig}: {message}"


def test_a_hand_edited_token_is_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trig = _write(tmp_path / "t.json", json.dumps({"kind": "token", "token": "x" * 20_000,
                                                   "position": "start", "seed": 1,
                                                   "target_class": 0}))
    data = _write(tmp_path / "d.csv", "text,label\n" + "".join(f"hello {i},{i % 2}\n"
                                                               for i in range(10)))
    line = _refused(capsys, ["trigger", "apply", str(trig), str(data), "--out",
                             str(tmp_path / "o.csv")], trig, data)
    assert line.startswith(f"error: {trig}: token trigger field 'token' must be a text of at most "
                           "10,000 characters (got 'xxx")
