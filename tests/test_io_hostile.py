"""poisonguard.io under hostile input: reading is bounded in memory whatever the file's size,
and copies written from a loaded file keep its text where rows were left alone."""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from poisonguard import io
from poisonguard.cli import main
from poisonguard.errors import InputError

SIZE = 70_000_000  # bytes: larger than every limit, small enough for a test


@pytest.fixture
def traced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Python's allocations traced from here on, after one good run of the command has done
    its imports (which are not the reading under test)."""
    good = tmp_path / "warm.csv"
    good.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(20)))
    assert main(["attack", str(good), "--attack", "label-flip", "--rate", "0.1", "--out",
                 str(tmp_path / "warm-out.csv")]) == 0
    capsys.readouterr()
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def _peak_mib() -> float:
    return tracemalloc.get_traced_memory()[1] / 2**20


def _unclosed_quote(path: Path) -> Path:
    """A 70 MB CSV whose third line opens a quote that never closes."""
    line = "x" * 99 + "\n"
    with path.open("w", encoding="utf-8") as fh:
        fh.write('a,b,label\n1,2,0\n3,"')
        for _ in range(SIZE // len(line)):
            fh.write(line)
    return path


def _attack_line(capsys: pytest.CaptureFixture[str], data: Path, out: Path) -> str:
    code = main(["attack", str(data), "--attack", "label-flip", "--rate", "0.1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()
    return err.rstrip("\n")


@pytest.mark.usefixtures("traced")
def test_an_unclosed_quote_fails_within_the_field_bound(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    data = _unclosed_quote(tmp_path / "d.csv")
    tracemalloc.reset_peak()  # the reading alone
    line = _attack_line(capsys, data, tmp_path / "o.csv")
    assert line == (f"error: {data}: line 3: a field is longer than 16,777,216 characters "
                    "(an unclosed quote?)")
    # the field buffer holds 4 bytes a character: 64 MiB at the bound, 267 MiB for the file
    assert _peak_mib() < 100


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize("kind", ["quote", "nul"])
def test_memory_follows_the_bounds_not_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setattr(io, "CSV_LINE_MAX", 2**20)
    monkeypatch.setattr(io, "CSV_FIELD_MAX", 2**18)
    data = tmp_path / "d.csv"
    if kind == "quote":
        _unclosed_quote(data)
    else:
        data.write_bytes(bytes(SIZE))  # no line break at all
    tracemalloc.reset_peak()  # the reading alone
    line = _attack_line(capsys, data, tmp_path / "o.csv")
    expected = {"quote": "line 3: a field is longer than 262,144 characters (an unclosed quote?)",
                "nul": "line 1 is longer than 1,048,576 characters; is this a CSV file?"}[kind]
    assert line == f"error: {data}: {expected}"
    assert _peak_mib() < 8  # a few MiB for a 70 MB file


def test_a_file_of_nul_bytes_is_refused_at_the_default_bound(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.csv"
    data.write_bytes(bytes(SIZE))
    line = _attack_line(capsys, data, tmp_path / "o.csv")
    assert line == f"error: {data}: line 1 is longer than 67,108,864 characters; is this a CSV file?"


# ------------------------------------------------------------------- copies keep the file's text
TEXT = "code,amount,label\n" + "".join(f"0{1400 + i},{'1e3' if i % 2 else '2.50'},{i % 2}\n"
                                       for i in range(8))


@pytest.mark.parametrize(("rows", "expected"), [
    ([2, 5, -1], ["01402,2.50,0", "01405,1e3,1", "1400,2.5,0"]),  # in file order: one pass
    ([5, 2, -1], ["01405,1e3,1", "01402,2.50,0", "1400,2.5,0"]),  # any order
    ([5, -1, -1], ["01405,1e3,1", "1402,2.5,0", "1400,2.5,0"]),
])
def test_saving_untouched_rows_keeps_their_text(tmp_path: Path, rows: list[int],
                                                expected: list[str]) -> None:
    src = tmp_path / "d.csv"
    src.write_text(TEXT, encoding="utf-8")
    ds = io.load(src)
    assert ds.origin is not None and ds.origin.stamp is not None
    picked = ds.take([r if r >= 0 else k for k, r in zip((2, 2, 0), rows, strict=True)])
    assert picked.origin is not None and picked.origin.file_rows is None  # taking rows drops it
    copy = picked.replace(origin=dataclasses.replace(picked.origin, file_rows=np.array(rows)))
    io.save(copy, tmp_path / "o.csv")
    # kept rows as written in the file; the others from the data
    assert (tmp_path / "o.csv").read_text().splitlines() == ["code,amount,label", *expected]


def test_changing_rows_drops_the_row_map(tmp_path: Path) -> None:
    src = tmp_path / "d.csv"
    src.write_text(TEXT, encoding="utf-8")
    ds = io.load(src)
    assert ds.origin is not None
    mapped = ds.replace(origin=dataclasses.replace(ds.origin, file_rows=np.arange(8)))
    assert mapped.origin is not None and mapped.origin.file_rows is not None
    for changed in (mapped.replace(y=mapped.y[::-1]), mapped.replace(X=mapped.X * 2),
                    mapped.take(np.arange(8))):
        assert changed.origin is not None and changed.origin.file_rows is None
    assert mapped.replace(name="other").origin is mapped.origin


def test_a_file_changed_since_loading_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "d.csv"
    src.write_text(TEXT, encoding="utf-8")
    ds = io.load(src)
    assert ds.origin is not None
    copy = ds.replace(origin=dataclasses.replace(ds.origin, file_rows=np.arange(8)))
    src.write_text(TEXT + "09999,1,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="changed while the command ran; run it again"):
        io.save(copy, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()
