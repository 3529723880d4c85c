"""``poisonguard ledger``: the manifest -> ledger -> verify round trip, tampering and exit codes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.cli import main


def _manifests(folder: Path, count: int) -> list[Path]:
    out = []
    rng = np.random.default_rng(0)
    for v in range(count):
        data = folder / f"v{v}.csv"
        pd.DataFrame({"a": rng.normal(size=20), "label": rng.integers(0, 2, 20)}).to_csv(
            data, index=False)
        m = folder / f"v{v}.json"
        assert main(["manifest", str(data), "--out", str(m)]) == 0
        out.append(m)
    return out


def test_signed_ledger_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, book = tmp_path / "k", tmp_path / "ledger.db"
    assert main(["keygen", "--out", str(key)]) == 0
    assert main(["ledger", "init", str(book), "--pubkey", f"{key}.pub"]) == 0
    manifests = _manifests(tmp_path, 3)
    cp = tmp_path / "cp.json"
    for m in manifests:
        assert main(["ledger", "append", str(book), str(m), "--key", str(key),
                     "--checkpoint-out", str(cp)]) == 0
    capsys.readouterr()
    assert main(["ledger", "log", str(book), "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in entries] == ["v0.csv", "v1.csv", "v2.csv"]
    assert main(["ledger", "verify", str(book), "--pubkey", f"{key}.pub", "--trusted",
                 str(cp)]) == 0
    assert "3 signatures good" in capsys.readouterr().out
    assert main(["ledger", "prove", str(book), "2"]) == 0
    assert json.loads(capsys.readouterr().out)["verified"] is True
    assert main(["ledger", "prove", str(book), "--consistency", "1"]) == 0
    # appending without the key is refused: the ledger requires signed checkpoints
    assert main(["ledger", "append", str(book), str(manifests[0])]) == 2


def test_tampered_ledger_exits_3_and_truncation_needs_a_trusted_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = tmp_path / "ledger.db"
    assert main(["ledger", "init", str(book)]) == 0
    cp = tmp_path / "cp.json"
    for m in _manifests(tmp_path, 4):
        assert main(["ledger", "append", str(book), str(m), "--checkpoint-out", str(cp)]) == 0
    with sqlite3.connect(book) as db:  # an edit below the latest checkpoint
        db.execute("DROP TRIGGER IF EXISTS entries_no_update")
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            db.execute(f"DROP TRIGGER {name}")
        db.execute("UPDATE entries SET name = 'forged.csv' WHERE seq = 2")
    capsys.readouterr()
    assert main(["ledger", "verify", str(book)]) == 3
    out, err = capsys.readouterr()
    problems = [line for line in out.splitlines() if line.startswith("problem: ")]
    assert problems and "entry 2" in problems[0]
    # one line on stderr: the ledger, its first problem and how many more are on stdout
    assert err.count("\n") == 1 and err.startswith(f"error: {book} fails verification: "), err
    assert problems[0].removeprefix("problem: ") in err
    assert len(problems) == 1 or f"(and {len(problems) - 1} more, listed on stdout)" in err


def test_checkpoint_outputs_are_checked_before_the_entry_is_appended(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = tmp_path / "ledger.db"
    assert main(["ledger", "init", str(book)]) == 0
    m = _manifests(tmp_path, 1)[0]
    (tmp_path / "folder").mkdir()
    (tmp_path / "link.db").hardlink_to(book)
    for target, why in ((book, "would overwrite the input"),
                        (tmp_path / "link.db", "would overwrite the input"),
                        (m, "would overwrite the input"),
                        (tmp_path / "folder", "is a directory"),
                        (m / "cp.json", "is not a folder")):  # its parent is a file
        before = book.read_bytes()
        capsys.readouterr()
        assert main(["ledger", "append", str(book), str(m), "--checkpoint-out", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: --checkpoint-out ") and why in err
        assert book.read_bytes() == before  # nothing appended
    capsys.readouterr()
    assert main(["ledger", "log", str(book), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["ledger", "append", str(book), str(m)]) == 0
    for target in (book, tmp_path / "link.db"):
        assert main(["ledger", "checkpoint", str(book), "--out", str(tmp_path / "cp.json"),
                     "--out", str(target)]) == 2
        assert not (tmp_path / "cp.json").exists()  # the first --out was not written either


def test_append_refuses_a_tampered_signed_manifest(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    key, book = tmp_path / "k", tmp_path / "ledger.db"
    assert main(["keygen", "--out", str(key)]) == 0
    data = tmp_path / "d.csv"
    pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": [0, 1, 0]}).to_csv(data, index=False)
    m = tmp_path / "m.json"
    assert main(["manifest", str(data), "--key", str(key), "--out", str(m)]) == 0
    obj = json.loads(m.read_text())
    obj["rows"] = 4
    m.write_text(json.dumps(obj))
    assert main(["ledger", "init", str(book)]) == 0
    capsys.readouterr()
    assert main(["ledger", "append", str(book), str(m)]) == 3
    assert "edited after it was signed" in capsys.readouterr().err


@pytest.mark.parametrize(("make", "args", "message"), [
    (lambda p: p.write_text("hello"), ["ledger", "verify", "{f}"], "not a poisonguard ledger"),
    (lambda p: sqlite3.connect(p).execute("CREATE TABLE t (x)").connection.commit(),
     ["ledger", "log", "{f}"], "not a poisonguard ledger"),
    (lambda p: None, ["ledger", "verify", "{f}"], "no such ledger file"),
    (lambda p: p.write_text("{}"), ["ledger", "init", "{f}"], "already exists"),
])
def test_not_a_ledger_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object,
                                args: list[str], message: str) -> None:
    f = tmp_path / "file.db"
    make(f)  # type: ignore[operator]
    capsys.readouterr()
    assert main([a.format(f=f) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
