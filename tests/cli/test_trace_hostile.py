"""Provenance commands under hostile or unlucky conditions (issue 11): a manifest pair cut in
half, a scan bound to other data, a ledger rolled back, forged fields, files that are not what
they claim, and stores that are not ours. Each refusal is one line and an exit code."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.cli import main
from poisonguard.provenance import merkle

FAST = ["--detectors", "label,neighbors", "--quiet"]


class Killed(BaseException):
    """Stands for a kill: nothing in the command may catch it."""


def _data(folder: Path, n: int = 60, seed: int = 0, name: str = "train.csv") -> Path:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"id": [f"u{i}" for i in range(n)], "a": rng.normal(size=n).round(5),
                       "b": rng.integers(0, 9, n), "src": rng.choice(["s1", "s2", "s3"], n),
                       "label": rng.integers(0, 2, n)})
    path = folder / name
    df.to_csv(path, index=False)
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _refused(result: tuple[int, str, str], code: int, *words: str) -> None:
    """One line ``error: ...`` on stderr with every word in it, and the exit code."""
    got, _, err = result
    assert got == code, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


def _manifest(capsys: pytest.CaptureFixture[str], data: Path, out: Path, *extra: str) -> dict:
    assert _run(capsys, "manifest", data, "--id-col", "id", "--source-col", "src", "--out", out,
                *extra)[0] == 0
    obj: dict = json.loads(out.read_text())
    return obj


# ---------------------------------------------------------------- 1. the manifest pair
def test_sidecar_is_named_by_its_content_and_the_old_one_goes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, m = _data(tmp_path), tmp_path / "m.json"
    first = _manifest(capsys, data, m)["rows_file"]
    assert first["name"] == f"m.rows.{first['sha256'][:16]}.parquet"
    _data(tmp_path, seed=1)  # new rows, same file
    second = _manifest(capsys, data, m)["rows_file"]
    assert second["name"] != first["name"]
    assert (tmp_path / second["name"]).is_file() and not (tmp_path / first["name"]).exists()
    assert _run(capsys, "verify", data, m)[0] == 0
    # a manifest renamed (or moved with its sidecar) still finds its rows by the recorded name
    m.rename(tmp_path / "renamed.json")
    assert _run(capsys, "verify", data, tmp_path / "renamed.json")[0] == 0


def test_a_manifest_cut_off_after_its_sidecar_still_verifies_the_old_data(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    data, m = _data(tmp_path), tmp_path / "m.json"
    _manifest(capsys, data, m)
    v1 = data.read_bytes()
    _data(tmp_path, seed=1)
    from poisonguard import io

    left: list[tuple[Path, bytes]] = []

    def killed(path: Path, text: str) -> Path:  # the process dies before M.json is renamed
        left.extend((p, p.read_bytes()) for p in tmp_path.glob("m.rows.*.parquet"))
        raise Killed

    monkeypatch.setattr(io, "write_text", killed)
    with pytest.raises(Killed):
        main(["manifest", str(data), "--id-col", "id", "--source-col", "src", "--out", str(m)])
    monkeypatch.undo()
    for path, raw in left:  # what a real kill leaves behind: both sidecars
        path.write_bytes(raw)
    assert len(left) == 2
    data.write_bytes(v1)
    code, out, err = _run(capsys, "verify", data, m)
    assert code == 0 and "ok:" in out, err


@pytest.mark.parametrize("name", ["../outside.parquet", "/etc/passwd", "sub/m.rows.parquet",
                                  "a\\b.parquet", "..", ""])
def test_a_sidecar_name_outside_the_manifests_folder_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    data, m = _data(tmp_path), tmp_path / "m.json"
    obj = _manifest(capsys, data, m)
    obj["rows_file"]["name"] = name
    m.write_text(json.dumps(obj))
    for args in (["verify", data, m], ["diff", m, m]):
        _refused(_run(capsys, *args), 2, str(m), "rows_file.name")


def test_only_our_own_old_sidecar_is_removed(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data, m = _data(tmp_path), tmp_path / "m.json"
    obj = _manifest(capsys, data, m)
    keep = tmp_path / "notes.parquet"
    keep.write_bytes(b"not ours")
    obj["rows_file"]["name"] = keep.name  # an (unsigned) manifest edited to name another file
    m.write_text(json.dumps(obj))
    _data(tmp_path, seed=1)
    _manifest(capsys, data, m)
    assert keep.read_bytes() == b"not ours"


# ------------------------------------------------------------- 2. a scan bound to its data
@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("scanned")
    data = _data(folder)
    assert main(["scan", str(data), "--id-col", "id", "--source-col", "src",
                 "--out", str(folder / "scan"), *FAST]) in (0, 1)
    return data, folder / "scan"


def test_scan_records_the_files_digest_and_the_manifests_root(
        scanned: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, scan_dir = scanned
    prov = json.loads((scan_dir / "report.json").read_text())["provenance"]
    obj = _manifest(capsys, data, tmp_path / "m.json")
    assert prov["merkle_root"] == obj["merkle_root"] and prov["sha256"] == obj["data"]["sha256"]
    assert _run(capsys, "attest", scan_dir, "--manifest", tmp_path / "m.json",
                "--out", tmp_path / "a.json")[0] == 0


def test_attest_refuses_a_manifest_of_other_data_with_as_many_rows(
        scanned: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, scan_dir = scanned
    other = _data(tmp_path, seed=7, name="other.csv")  # 60 rows too
    m = tmp_path / "other.json"
    _manifest(capsys, other, m)
    _refused(_run(capsys, "attest", scan_dir, "--manifest", m, "--out", tmp_path / "a.json"), 3,
             str(scan_dir / "report.json"), str(m), "not the same data")
    assert not (tmp_path / "a.json").exists()


def test_attest_refuses_a_report_without_the_root(
        scanned: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, scan_dir = scanned
    old = tmp_path / "old-scan"
    old.mkdir()
    report = json.loads((scan_dir / "report.json").read_text())
    del report["provenance"]  # as an older version wrote it
    (old / "report.json").write_text(json.dumps(report))
    m = tmp_path / "m.json"
    _manifest(capsys, data, m)
    _refused(_run(capsys, "attest", old, "--manifest", m), 2, "re-run the scan")


def test_a_scan_of_a_built_in_data_set_records_no_root(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "scan", "wine", "--out", tmp_path / "scan", *FAST)[0] in (0, 1)
    assert "provenance" not in json.loads((tmp_path / "scan" / "report.json").read_text())
    assert _run(capsys, "manifest", "wine", "--out", tmp_path / "m.json")[0] == 0
    _refused(_run(capsys, "attest", tmp_path / "scan", "--manifest", tmp_path / "m.json"), 2,
             "re-run the scan")


# ----------------------------------------------------------------- 4. ledger rollback
def _roll_back_one(book: Path) -> None:
    """Remove the newest entry with its checkpoint and put the frontier back: the older state
    is whole and still signed."""
    with sqlite3.connect(book, isolation_level=None) as db:
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            db.execute(f"DROP TRIGGER {name}")
        last = db.execute("SELECT max(seq) FROM entries").fetchone()[0]
        db.execute("DELETE FROM entries WHERE seq = ?", (last,))
        db.execute("DELETE FROM checkpoints WHERE size = ?", (last,))
        frontier = merkle.Frontier()
        for (leaf,) in db.execute("SELECT leaf FROM entries ORDER BY seq"):
            frontier = frontier.append(leaf)
        db.execute("UPDATE frontier SET state = ? WHERE id = 0", (frontier.to_bytes(),))
    db.close()


def test_a_rolled_back_signed_ledger_is_caught_only_by_a_witness(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, book, witness = tmp_path / "k", tmp_path / "ledger.db", tmp_path / "witness"
    witness.mkdir()
    assert _run(capsys, "keygen", "--out", key)[0] == 0
    assert _run(capsys, "ledger", "init", book, "--pubkey", f"{key}.pub")[0] == 0
    for v in range(3):
        m = tmp_path / f"v{v}.json"
        _manifest(capsys, _data(tmp_path, seed=v, name=f"v{v}.csv"), m)
        assert _run(capsys, "ledger", "append", book, m, "--key", key)[0] == 0
        code, out, _ = _run(capsys, "ledger", "checkpoint", book, "--out", witness)
        assert code == 0 and json.loads(out)["size"] == v + 1
    assert sorted(p.name for p in witness.iterdir()) == [
        f"checkpoint-{s:012d}.json" for s in (1, 2, 3)]
    _roll_back_one(book)
    # the file alone verifies, signed and all, and says it cannot tell
    code, out, _ = _run(capsys, "ledger", "verify", book, "--pubkey", f"{key}.pub")
    assert code == 0 and "note: no --trusted checkpoint" in out and "rolled back" in out
    # the witness copies catch it: a folder of them, or the newest file among older ones
    _refused(_run(capsys, "ledger", "verify", book, "--pubkey", f"{key}.pub", "--trusted",
                  witness), 3, "trusted checkpoint 3", "rolled back")
    _refused(_run(capsys, "ledger", "verify", book, "--trusted",
                  witness / "checkpoint-000000000001.json", "--trusted",
                  witness / "checkpoint-000000000003.json"), 3, "trusted checkpoint 3")
    code, out, _ = _run(capsys, "ledger", "verify", book, "--trusted",
                        witness / "checkpoint-000000000002.json")
    assert code == 0 and "note:" not in out and "newest at size 2" in out
    # nor is a rolled-back ledger witnessed again
    assert _run(capsys, "ledger", "checkpoint", book, "--trusted", witness)[0] == 3


# ------------------------------------------------------- 5. forged fields and statements
def test_an_unknown_field_in_a_signed_manifest_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key, data, m = tmp_path / "k", _data(tmp_path), tmp_path / "m.json"
    assert _run(capsys, "keygen", "--out", key)[0] == 0
    obj = _manifest(capsys, data, m, "--key", key)
    obj["approved_by"] = "security team"  # no signature covers it
    m.write_text(json.dumps(obj))
    _refused(_run(capsys, "verify", data, m, "--pubkey", f"{key}.pub"), 2, str(m),
             "unknown field 'approved_by'")
    assert _run(capsys, "ledger", "init", tmp_path / "l.db")[0] == 0
    _refused(_run(capsys, "ledger", "append", tmp_path / "l.db", m), 2, "approved_by")


@pytest.mark.parametrize(("doc", "field"), [
    ({"_type": "anything"}, "'_type'"),
    ({"_type": "https://in-toto.io/Statement/v1", "subject": "train.csv",
      "predicateType": "x", "predicate": {}}, "'subject'"),
    ({"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "t", "digest": {}}],
      "predicateType": "x", "predicate": {}}, "'subject[0].digest'"),
    ({"_type": "https://in-toto.io/Statement/v1",
      "subject": [{"name": "t", "digest": {"sha256": "zz"}}], "predicateType": "x",
      "predicate": {}}, "'subject[0].digest.sha256'"),
    ({"_type": "https://in-toto.io/Statement/v1",
      "subject": [{"name": "t", "digest": {"sha256": "ab" * 32}}], "predicateType": 5,
      "predicate": {}}, "'predicateType'"),
    ({"_type": "https://in-toto.io/Statement/v1",
      "subject": [{"name": "t", "digest": {"sha256": "ab" * 32}}], "predicateType": "x",
      "predicate": "PASSED"}, "'predicate'"),
    ({"payloadType": "application/vnd.in-toto+json", "payload": "bm90IGpzb24=",
      "signatures": [{"sig": "AA=="}]}, "'payload'"),
])
def test_the_ledger_takes_only_in_toto_statements(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], doc: dict, field: str) -> None:
    book, att = tmp_path / "l.db", tmp_path / "att.json"
    assert _run(capsys, "ledger", "init", book)[0] == 0
    att.write_text(json.dumps(doc))
    _refused(_run(capsys, "ledger", "append", book, att), 2, str(att), field)
    assert _run(capsys, "ledger", "log", book)[1].strip().endswith("no entries")


def test_the_ledger_takes_our_attestations_signed_or_not(
        scanned: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, scan_dir = scanned
    key, m, book = tmp_path / "k", tmp_path / "m.json", tmp_path / "l.db"
    assert _run(capsys, "keygen", "--out", key)[0] == 0
    _manifest(capsys, data, m)
    assert _run(capsys, "ledger", "init", book)[0] == 0
    for extra in ([], ["--key", str(key)]):
        out = tmp_path / f"att{len(extra)}.json"
        assert _run(capsys, "attest", scan_dir, "--manifest", m, "--out", out, *extra)[0] == 0
        assert _run(capsys, "ledger", "append", book, out)[0] == 0


# ---------------------------------------------------- 6. a history store that is not ours
def test_monitor_refuses_to_add_history_to_a_ledger_or_a_data_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, profile, book = _data(tmp_path), tmp_path / "p.json", tmp_path / "ledger.db"
    assert _run(capsys, "monitor", "init", data, "--id-col", "id", "--out", profile)[0] == 0
    assert _run(capsys, "ledger", "init", book)[0] == 0
    m = tmp_path / "m.json"
    _manifest(capsys, data, m)
    assert _run(capsys, "ledger", "append", book, m)[0] == 0
    check = ["monitor", "check", profile, data, "--id-col", "id", "--out", tmp_path / "o",
             "--no-multivariate"]
    _refused(_run(capsys, *check, "--db", book), 2, str(book), "not poisonguard history")
    with sqlite3.connect(book) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert tables == {"meta", "entries", "checkpoints", "frontier"}
    assert _run(capsys, "ledger", "verify", book)[0] == 0
    before = data.read_bytes()
    _refused(_run(capsys, *check, "--db", data), 2, str(data), "not a usable history database")
    _refused(_run(capsys, "monitor", "history", "--db", book), 2, str(book))
    assert data.read_bytes() == before


# ------------------------------------------------------- 7. files that are not what they say
def test_manifest_refuses_a_ragged_csv_as_scan_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "ragged.csv"
    data.write_text("a,b,label\n1,2,0\n3,1\n5,6,1\n")  # line 3 lacks a field
    scan = _run(capsys, "scan", data, "--out", tmp_path / "s", *FAST)
    manifest = _run(capsys, "manifest", data, "--out", tmp_path / "m.json")
    _refused(manifest, 2, str(data), "line 3 has 2 fields but the header has 3")
    assert manifest[2] == scan[2]
    assert not list(tmp_path.glob("m.*"))


def test_manifest_and_verify_refuse_a_fifo_and_a_device(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    done = threading.Event()

    def feed() -> None:  # ends any read of the FIFO with EOF, so a regression fails, not hangs
        while not done.is_set():
            os.close(os.open(fifo, os.O_WRONLY))

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")
    data, m = _data(tmp_path), tmp_path / "m.json"
    _manifest(capsys, data, m)
    for target in (fifo, zero):
        _refused(_run(capsys, "manifest", target, "--out", tmp_path / "x.json"), 2, str(target),
                 "not a regular file")
        _refused(_run(capsys, "verify", target, m), 2, str(target), "not a regular file")
        _refused(_run(capsys, "scan", target, "--out", tmp_path / "s", *FAST), 2, str(target))
    done.set()
    os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # lets the writer's last open return
    writer.join(timeout=5)
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("args", [["manifest", "{d}", "--out", "{d}.json"],
                                  ["verify", "{d}", "{m}"], ["scan", "{d}", "--out", "{d}-out"]])
def test_a_folder_given_as_data_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            args: list[str]) -> None:
    folder, m = tmp_path / "data.csv", tmp_path / "m.json"
    folder.mkdir()
    _manifest(capsys, _data(tmp_path), m)
    _refused(_run(capsys, *(a.format(d=folder, m=m) for a in args)), 2, str(folder),
             "is a directory")


# ------------------------------------------------ 8. hand-edited files of the wrong types
@pytest.mark.parametrize(("edit", "field"), [
    (lambda o: o.update(rows="x"), "'rows'"),
    (lambda o: o.update(rows=True), "'rows'"),
    (lambda o: o["sources"].update(s1="3"), "'sources.s1'"),
    (lambda o: o.update(sources=[1]), "'sources'"),
    (lambda o: o["columns"].update(features="a,b"), "'columns.features'"),
    (lambda o: o.update(merkle_root=5), "'merkle_root'"),
    (lambda o: o.update(data=[]), "'data'"),
])
def test_a_manifest_with_a_wrong_type_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: object, field: str) -> None:
    data, m = _data(tmp_path), tmp_path / "m.json"
    obj = _manifest(capsys, data, m)
    edit(obj)  # type: ignore[operator]
    m.write_text(json.dumps(obj))
    _refused(_run(capsys, "verify", data, m), 2, str(m), field)


@pytest.mark.parametrize(("content", "words"), [
    ("[1]", ["not a ledger checkpoint"]),
    ('{"size": "1", "root": "' + "00" * 32 + '"}', ["'size'"]),
    ('{"size": 1, "root": 5}', ["'root'"]),
    ('{"size": 1, "root": "zz"}', ["not hex"]),
])
def test_a_checkpoint_of_the_wrong_type_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str,
        words: list[str]) -> None:
    book, cp = tmp_path / "l.db", tmp_path / "cp.json"
    assert _run(capsys, "ledger", "init", book)[0] == 0
    cp.write_text(content)
    _refused(_run(capsys, "ledger", "verify", book, "--trusted", cp), 2, str(cp), *words)


@pytest.mark.parametrize(("edit", "field"), [
    (lambda s: s["sources"][0].update(rows="450"), "summary.sources[0].rows"),
    (lambda s: s["sources"][0].update(flagged=-1), "summary.sources[0].flagged"),
    (lambda s: s["sources"].__setitem__(0, "vendor-a"), "summary.sources[0]"),
    (lambda s: s.update(sources={"vendor-a": 450}), "summary.sources"),
    (lambda s: s.update(rows="1000"), "summary.rows"),
])
def test_sources_refuses_counts_of_the_wrong_type(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: object, field: str) -> None:
    scan_dir = tmp_path / "scan"
    scan_dir.mkdir()
    summary = {"rows": 1000, "flagged": 52, "detectors": ["label"], "sources": [
        {"source": "vendor-a", "rows": 450, "flagged": 5},
        {"source": "partner-x", "rows": 550, "flagged": 47}]}
    edit(summary)  # type: ignore[operator]
    (scan_dir / "report.json").write_text(json.dumps({"summary": summary}))
    _refused(_run(capsys, "sources", scan_dir), 2, str(scan_dir / "report.json"), field)


@pytest.mark.parametrize("edit", [
    lambda d: d.update(n_rows="x"),
    lambda d: d["columns"][0].update(counts=["x"]),
    lambda d: d.update(columns=[1]),
    lambda d: d.update(sample=[1]),
    lambda d: d.update(labels="x"),
])
def test_monitor_refuses_a_profile_of_the_wrong_types(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: object) -> None:
    data, profile = _data(tmp_path), tmp_path / "p.json"
    assert _run(capsys, "monitor", "init", data, "--id-col", "id", "--out", profile)[0] == 0
    doc = json.loads(profile.read_text())
    edit(doc)  # type: ignore[operator]
    profile.write_text(json.dumps(doc))
    _refused(_run(capsys, "monitor", "check", profile, data, "--id-col", "id", "--no-history",
                  "--out", tmp_path / "o"), 2, str(profile), "not a valid drift profile")


def test_a_ledger_that_cannot_be_written_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as root, whom chmod does not stop: the ledger is opened read-only instead, as
    SQLite opens a file it may not write (chmod 444, an immutable file, a read-only mount)."""
    from poisonguard.provenance.ledger import Ledger

    book, m = tmp_path / "l.db", tmp_path / "m.json"
    assert _run(capsys, "ledger", "init", book)[0] == 0
    _manifest(capsys, _data(tmp_path), m)

    def read_only(path: Path) -> sqlite3.Connection:
        return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=1.0,
                               isolation_level=None)

    monkeypatch.setattr(Ledger, "_connect", staticmethod(read_only))
    _refused(_run(capsys, "ledger", "append", book, m), 2, str(book), "cannot write")
    monkeypatch.undo()
    assert _run(capsys, "ledger", "verify", book)[0] == 0
