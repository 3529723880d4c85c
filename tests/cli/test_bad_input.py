"""The CLI on bad input: exit code 2, one `error:` line naming what is wrong, nothing written.

Every case runs ``poisonguard attack DATA --attack label-flip --rate 0.1 --out OUT.csv`` (with
the options the case needs), the command that loads data, and checks that the user's file is
byte-identical afterwards and that no output (nor a temporary file) was left behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from poisonguard.cli import main

GOOD = "a,b,label\n" + "".join(f"{i},{i % 3}.5,{i % 2}\n" for i in range(20))


@dataclass(frozen=True)
class Outcome:
    code: int
    err: str
    path: Path

    @property
    def line(self) -> str:
        return self.err.rstrip("\n")


def _file(name: str, content: str | bytes) -> Callable[[Path], Path]:
    """A maker that writes ``content`` as-is to ``folder / name``."""
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path
    return make


def _csv(text: str) -> Callable[[Path], Path]:
    return _file("data.csv", text)


def _npz(**arrays: np.ndarray) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "data.npz"
        np.savez(path, **arrays)
        return path
    return make


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], Path],
         *extra: str, attack: str = "label-flip") -> Outcome:
    """Run the attack command on the file ``make`` writes and check the common promises."""
    data_dir = tmp_path / "in"
    data_dir.mkdir()
    data = make(data_dir)
    before = data.read_bytes() if data.is_file() else None
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    budget = [] if {"--rate", "--count"} & set(extra) else ["--rate", "0.1"]
    argv = ["attack", str(data), "--attack", attack, *budget, "--out", str(out_dir / "OUT.csv"),
            *extra]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    assert sorted(os.listdir(out_dir)) == []  # no output, no truth file, no temp file
    if before is not None:
        assert data.read_bytes() == before
        assert sorted(os.listdir(data_dir)) == [data.name]
    return Outcome(code, captured.err, data)


# ------------------------------------------------------------------------------- the file
def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, lambda folder: folder / "nope.csv")
    assert res.line == f"error: {res.path}: no such file"


def test_missing_file_without_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, lambda folder: folder / "nope")
    assert res.line.startswith(f"error: {res.path}: no such file, and not a built-in data set (")


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(GOOD)(tmp_path)
    path.chmod(0)
    readable = os.access(path, os.R_OK)
    path.chmod(0o644)
    if readable:
        pytest.skip("running as a user (e.g. root) who can read a chmod 000 file")

    def make(folder: Path) -> Path:
        p = _csv(GOOD)(folder)
        p.chmod(0)
        return p

    res = _run(tmp_path, capsys, make)
    assert res.line == f"error: {res.path}: file is not readable (permission denied)"


@pytest.mark.parametrize("name", ["data.csv", "data"])
def test_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    def make(folder: Path) -> Path:
        (folder / name).mkdir()
        return folder / name

    res = _run(tmp_path, capsys, make)
    assert res.line == f"error: {res.path}: is a directory, expected a data file"


@pytest.mark.parametrize("name", ["data.txt", "data.json", "data.csv.gz"])
def test_unknown_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    res = _run(tmp_path, capsys, _file(name, GOOD))
    assert res.line.startswith(f"error: {res.path}: unknown file extension '{Path(name).suffix}'; "
                               "expected one of .csv, .jsonl, .npz, .parquet, .pq")


@pytest.mark.parametrize("name", ["data.csv", "data.parquet", "data.npz"])
def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    res = _run(tmp_path, capsys, _file(name, b""))
    assert res.line == f"error: {res.path}: file is empty"


def test_header_only_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv("a,b,label\n"))
    assert res.line == f"error: {res.path}: file has a header but no rows"


def test_not_a_parquet_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _file("data.parquet", GOOD))
    assert res.line.startswith(f"error: {res.path}: cannot read as parquet")


def test_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _file("data.csv", GOOD.encode() + b"\xff\xfe,1,0\n"))
    assert res.line.startswith(f"error: {res.path}: not UTF-8 text")


# ------------------------------------------------------------------------------ the columns
def test_missing_label_column_lists_the_columns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD.replace("label", "target")))
    assert res.line == (f"error: {res.path}: no label column 'label' (set --label); "
                        "columns are: a, b, target")


def test_missing_id_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD), "--id-col", "row")
    assert res.line == f"error: {res.path}: no id column 'row' (set --id-col); columns are: a, b, label"


def test_ragged_rows_name_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv("a,b,label\n1,2,0\n3,4,1\n5,6,7,1\n8,9,0\n"))
    assert res.line == f"error: {res.path}: line 4 has 4 fields but the header has 3"


def test_short_rows_name_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv("a,b,label\n1,2,0\n3,1\n"))
    assert res.line == f"error: {res.path}: line 3 has 2 fields but the header has 3"


@pytest.mark.parametrize(("cell", "shown"), [("inf", "inf"), ("-inf", "-inf")])
def test_infinite_features_name_row_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               cell: str, shown: str) -> None:
    text = GOOD.replace("\n7,1.5,1\n", f"\n7,{cell},1\n")
    assert text != GOOD
    res = _run(tmp_path, capsys, _csv(text))
    assert res.line == (f"error: {res.path}: row 7 (line 9), column 'b': value is {shown}; "
                        "features must be finite (missing values are allowed)")


def test_inf_in_npz_names_row_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X = np.ones((6, 3))
    X[4, 2] = -np.inf
    res = _run(tmp_path, capsys, _npz(X=X, y=np.array([0, 1] * 3)))
    assert res.line == (f"error: {res.path}: row 4, column 'x2': value is -inf; features must be "
                        "finite (missing values are allowed)")


def test_nan_pixel_in_npz_names_row_and_pixel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X = np.ones((6, 3, 3))
    X[4, 2, 1] = np.nan
    res = _run(tmp_path, capsys, _npz(X=X, y=np.array([0, 1] * 3)))
    assert res.line == f"error: {res.path}: row 4, pixel (2, 1): value is nan; features must be finite"


def test_missing_text_names_the_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv("text,label\nhello there,0\n,1\nbye now,0\n"))
    assert res.line == f"error: {res.path}: row 1 (line 3), column 'text': text is missing"


def test_missing_label_names_the_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD.replace("\n5,2.5,1\n", "\n5,2.5,\n")))
    assert res.line == f"error: {res.path}: row 5 (line 7), column 'label': label is missing"


def test_line_numbers_count_quoted_line_breaks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = 'text,label\n"dear friend,\nyou won",1\n"hi\nthere\n",0\nsee you,\n'
    res = _run(tmp_path, capsys, _csv(text))
    assert res.line == f"error: {res.path}: row 2 (line 7), column 'label': label is missing"


def test_duplicate_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "id,a,label\n" + "".join(f"r{i},{i},{i % 2}\n" for i in range(6)) + "r2,9,1\n"
    res = _run(tmp_path, capsys, _csv(text), "--id-col", "id")
    assert res.line == f"error: {res.path}: duplicate id 'r2' at rows 2 and 6; ids must be unique"


def test_non_numeric_value_in_numeric_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD.replace("\n12,0.5,0\n", "\n12,oops,0\n")))
    assert res.line == (f"error: {res.path}: row 12 (line 14), column 'b': 'oops' is not a number "
                        "(the column is numeric)")


# ------------------------------------------------------------------------------------- NPZ
@pytest.mark.parametrize(("arrays", "message"), [
    ({"y": np.array([0, 1]), "features": np.ones((2, 2))}, "no array 'X'; arrays are: y, features"),
    ({"X": np.ones((2, 2))}, "no array 'y'; arrays are: X"),
    ({"labels": np.array([0, 1])}, "no array 'X' or 'y'; arrays are: labels"),
])
def test_npz_without_x_or_y_lists_the_arrays(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             arrays: dict[str, np.ndarray], message: str) -> None:
    res = _run(tmp_path, capsys, _npz(**arrays))
    assert res.line == f"error: {res.path}: {message}"


def test_npz_length_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _npz(X=np.ones((5, 2)), y=np.array([0, 1, 0, 1])))
    assert res.line == f"error: {res.path}: length mismatch: X has 5 rows but y has 4"


def test_npz_object_arrays_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X = np.array([[1, "a"], [2, "b"]], dtype=object)
    res = _run(tmp_path, capsys, _npz(X=X, y=np.array([0, 1])))
    assert res.line.startswith(f"error: {res.path}: holds pickled object arrays, which are never loaded")


def test_npz_that_is_not_an_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _file("data.npz", GOOD))
    assert res.line.startswith(f"error: {res.path}: not an npz archive")


# ------------------------------------------------------------------------- the attack options
def test_single_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv("a,b,label\n1,2,0\n3,4,0\n5,6,0\n"))
    assert res.line.startswith(f"error: {res.path}: the data has a single class (0)")
    assert "poisoning needs at least two" in res.line


def test_single_class_message_is_plain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv("a,b,label\n1,2,0\n3,4,0\n5,6,0\n"))
    assert "np.int64" not in res.line
    assert str(res.path) in res.line


def test_unknown_attack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD), attack="nope")
    assert res.line.startswith("error: unknown attack 'nope'; known: ")
    assert "label-flip" in res.line and "backdoor" in res.line


def test_option_that_does_not_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD), "--strategy", "class", attack="backdoor")
    assert res.line.startswith("error: option --strategy does not apply to attack 'backdoor' (it takes ")
    assert "--trigger" in res.line


def test_target_row_for_another_attack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD), "--target-row", "3")
    assert res.line == ("error: option --target-row does not apply to attack 'label-flip' (it is "
                        "for the targeted attacks: feature-collision, gradient-matching)")


def test_budget_larger_than_the_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD), "--count", "21")
    assert res.line.startswith(f"error: {res.path}: budget of 21 rows is impossible for 'label-flip': "
                               "only 20 ")


def test_budget_larger_than_the_class(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD), "--strategy", "class", "--source-class", "1",
               "--target-class", "0", "--count", "11")
    assert res.line == (f"error: {res.path}: budget of 11 rows is impossible for 'label-flip': "
                        "only 10 rows of class 1 are available")


def test_target_class_that_is_not_a_label(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD), "--target-class", "7")
    assert res.line == f"error: {res.path}: 'target_class' '7' is not a label in the data; labels are: 0, 1"


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--rate", "1.5", "'rate' must be in (0, 1] (got 1.5)"),
    ("--rate", "0", "'rate' must be in (0, 1] (got 0.0)"),
    ("--rate", "-0.1", "'rate' must be in (0, 1] (got -0.1)"),
    ("--count", "0", "'count' must be a positive integer (got 0)"),
])
def test_bad_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str,
                    message: str) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD), flag, value)
    assert res.line == f"error: {message}"


def test_rate_and_count_together(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _run(tmp_path, capsys, _csv(GOOD), "--rate", "0.1", "--count", "2")
    assert res.line == "error: give either 'rate' or 'count', not both"


def test_output_with_unknown_extension(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _csv(GOOD)(tmp_path)
    code = main(["attack", str(data), "--attack", "label-flip", "--rate", "0.1",
                 "--out", str(tmp_path / "OUT.txt")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"error: {tmp_path / 'OUT.txt'}: unknown file extension '.txt'; "
                   "expected one of .csv, .jsonl, .npz, .parquet, .pq\n")
    assert sorted(os.listdir(tmp_path)) == ["data.csv"]


def test_output_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _csv(GOOD)(tmp_path)
    (tmp_path / "OUT.csv").mkdir()
    code = main(["attack", str(data), "--attack", "label-flip", "--rate", "0.1",
                 "--out", str(tmp_path / "OUT.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == f"error: {tmp_path / 'OUT.csv'}: is a directory, expected a file to write\n"
    assert sorted(os.listdir(tmp_path)) == ["OUT.csv", "data.csv"]
    assert os.listdir(tmp_path / "OUT.csv") == []


def test_good_input_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same command on good data succeeds, so the failures above are about the input."""
    data = _csv(GOOD)(tmp_path)
    code = main(["attack", str(data), "--attack", "label-flip", "--rate", "0.1",
                 "--out", str(tmp_path / "OUT.csv")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert data.read_text() == GOOD
    assert sorted(os.listdir(tmp_path)) == ["OUT.csv", "OUT.truth.csv", "data.csv"]
    assert (tmp_path / "OUT.csv").read_text().splitlines()[0] == "a,b,label"
