"""``keygen``, ``manifest``, ``verify``, ``diff``, ``attest`` and ``sources``: files, exit codes
and one-line errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.cli import main
from poisonguard.provenance import attest, keys


def _data(folder: Path, n: int = 60, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"id": [f"u{i}" for i in range(n)], "a": rng.normal(size=n).round(5),
                       "b": rng.integers(0, 9, n), "src": rng.choice(["s1", "s2", "s3"], n),
                       "label": rng.integers(0, 2, n)})
    path = folder / "train.csv"
    df.to_csv(path, index=False)
    return path


def test_keygen_manifest_verify_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    before = data.read_bytes()
    key = tmp_path / "key"
    assert main(["keygen", "--out", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and Path(f"{key}.pub").exists()
    m = tmp_path / "m.json"
    assert main(["manifest", str(data), "--id-col", "id", "--source-col", "src",
                 "--key", str(key), "--out", str(m)]) == 0
    assert (tmp_path / json.loads(m.read_text())["rows_file"]["name"]).exists()
    assert main(["verify", str(data), str(m), "--pubkey", f"{key}.pub"]) == 0
    assert "ok:" in capsys.readouterr().out
    assert data.read_bytes() == before  # inputs are never modified


def test_verify_names_changed_rows_and_exits_3(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    m = tmp_path / "m.json"
    assert main(["manifest", str(data), "--id-col", "id", "--out", str(m)]) == 0
    df = pd.read_csv(data)
    df.loc[4, "label"] = 1 - df.loc[4, "label"]
    df = df.drop(index=9)
    df.to_csv(data, index=False)
    capsys.readouterr()
    assert main(["verify", str(data), str(m)]) == 3
    out, err = capsys.readouterr()
    assert "changed (1): u4" in out and "removed (1): u9" in out
    assert "problem: the data does not match the manifest" in out
    # one line on stderr: what failed and the first problem
    assert err.count("\n") == 1 and err.startswith(f"error: {data} does not verify against {m}: "
                                                     "the data does not match the manifest"), err


def test_diff_by_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    assert main(["manifest", str(data), "--id-col", "id", "--source-col", "src",
                 "--out", str(old)]) == 0
    df = pd.read_csv(data)
    extra = pd.DataFrame({"id": ["x1", "x2"], "a": [0.1, 0.2], "b": [1, 2], "src": ["evil", "evil"],
                          "label": [1, 1]})
    df.loc[df["src"] == "s1", "label"] = 1 - df.loc[df["src"] == "s1", "label"]
    pd.concat([df, extra]).to_csv(data, index=False)
    assert main(["manifest", str(data), "--id-col", "id", "--source-col", "src",
                 "--out", str(new)]) == 0
    out_json = tmp_path / "diff.json"
    capsys.readouterr()
    assert main(["diff", str(old), str(new), "--out", str(out_json)]) == 0
    got = json.loads(out_json.read_text())
    by = {r["source"]: r for r in got["by_source"]}
    assert got["added"] == 2 and by["evil"]["added"] == 2
    assert by["s1"]["changed"] == int((df["src"] == "s1").sum()) and "s2" not in by


def test_diff_of_a_tampered_manifest_or_rows_file_is_an_integrity_failure(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, key = _data(tmp_path), tmp_path / "k"
    assert main(["keygen", "--out", str(key)]) == 0
    m, signed = tmp_path / "m.json", tmp_path / "signed.json"
    assert main(["manifest", str(data), "--id-col", "id", "--out", str(m)]) == 0
    assert main(["manifest", str(data), "--id-col", "id", "--key", str(key), "--out",
                 str(signed)]) == 0
    obj = json.loads(signed.read_text())
    obj["created"] = "2000-01-01T00:00:00Z"  # a signed field: the signature no longer matches
    signed.write_text(json.dumps(obj))
    side = tmp_path / json.loads(m.read_text())["rows_file"]["name"]
    side.write_bytes(side.read_bytes() + b"\0")
    for tampered, why in ((signed, "edited after it was signed"), (m, "rows file was changed")):
        capsys.readouterr()
        assert main(["diff", str(tampered), str(tampered)]) == 3
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"error: {tampered}: ") and why in err


def test_manifest_roles_and_outputs_are_checked_before_hashing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _data(tmp_path)
    (tmp_path / "alias.csv").hardlink_to(data)
    before = data.read_bytes()
    for args, message in (
            (["--source-col", "label"], "--label and --source-col both name column 'label'; a "
                                        "column can have only one role"),
            (["--id-col", "src", "--source-col", "src"], "--id-col and --source-col both name "
                                                         "column 'src'"),
            (["--out", str(tmp_path / "alias.csv")], "would overwrite the input")):
        out = [] if "--out" in args else ["--out", str(tmp_path / "m.json")]
        capsys.readouterr()
        assert main(["manifest", str(data), *args, *out]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
    assert data.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "alias.csv", "train.csv"]


def test_sources_never_writes_over_the_scans_own_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scan_dir = tmp_path / "scan"
    scan_dir.mkdir()
    summary = {"rows": 10, "flagged": 1, "detectors": ["label"],
               "sources": [{"source": "a", "rows": 10, "flagged": 1}]}
    (scan_dir / "report.json").write_text(json.dumps({"summary": summary}))
    (scan_dir / "scores.csv").write_text("row_id,suspicion\n0,0.5\n")
    before = {p.name: p.read_bytes() for p in scan_dir.iterdir()}
    for name in ("scores.csv", "report.json", "report.html"):
        capsys.readouterr()
        assert main(["sources", str(scan_dir), "--out", str(scan_dir / name)]) == 2
        assert "would overwrite the input" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in scan_dir.iterdir()} == before


def test_attest_binds_scan_to_manifest(tmp_path: Path) -> None:
    data = _data(tmp_path, n=120)
    m, scan_dir, key = tmp_path / "m.json", tmp_path / "scan", tmp_path / "k"
    assert main(["manifest", str(data), "--id-col", "id", "--out", str(m)]) == 0
    assert main(["scan", str(data), "--id-col", "id", "--out", str(scan_dir), "--quiet"]) in (0, 1)
    assert main(["keygen", "--out", str(key)]) == 0
    assert main(["attest", str(scan_dir), "--manifest", str(m), "--key", str(key)]) == 0
    env = json.loads((scan_dir / "attestation.intoto.json").read_text())
    stmt = attest.open_envelope(env, keys.load_public_key(f"{key}.pub"))
    assert stmt["_type"] == attest.STATEMENT_TYPE and stmt["predicateType"] == attest.PREDICATE_TYPE
    subject = stmt["subject"][0]
    assert subject["name"] == "train.csv"
    assert subject["digest"]["poisonguardMerkleRoot"] == json.loads(m.read_text())["merkle_root"]
    assert stmt["predicate"]["result"] in ("PASSED", "WARNED")


def test_sources_names_the_poisoning_vendor(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    scan_dir = tmp_path / "scan"
    scan_dir.mkdir()
    summary = {"rows": 1000, "flagged": 52, "detectors": ["label"], "sources": [
        {"source": "vendor-a", "rows": 450, "flagged": 5},
        {"source": "vendor-b", "rows": 450, "flagged": 7},
        {"source": "partner-x", "rows": 100, "flagged": 40}]}
    (scan_dir / "report.json").write_text(json.dumps({"summary": summary}))
    assert main(["sources", str(scan_dir)]) == 0
    captured = capsys.readouterr()
    assert "named: source 'partner-x'" in captured.err
    assert "vendor-a" not in captured.err and "vendor-b" not in captured.err


@pytest.mark.parametrize(("args", "message"), [
    (["verify", "{data}", "{folder}/missing.json"], "no such manifest"),
    (["verify", "{data}", "{data}"], "not a manifest"),
    (["verify", "{data}", "{manifest}", "--pubkey", "{folder}/k"], "not a PEM public key (that is a "
                                                                  "private key"),
    (["manifest", "{data}", "--key", "{folder}/k.pub", "--out", "{folder}/x.json"],
     "not a PEM private key"),
    (["manifest", "{data}", "--label", "nope", "--out", "{folder}/x.json"], "no label column 'nope'"),
    (["manifest", "{data}", "--out", "{data}"], "would overwrite the input"),
    (["keygen", "--out", "{folder}/k"], "already exists"),
    (["keygen", "--out", "{folder}/k2", "--passphrase-env", "PG_UNSET_VAR"], "not set"),
    (["attest", "{folder}", "--manifest", "{manifest}"], "no such scan report"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          args: list[str], message: str) -> None:
    data = _data(tmp_path)
    manifest = tmp_path / "m.json"
    assert main(["manifest", str(data), "--out", str(manifest)]) == 0
    assert main(["keygen", "--out", str(tmp_path / "k")]) == 0
    before = data.read_bytes()
    capsys.readouterr()
    fill = {"data": str(data), "folder": str(tmp_path), "manifest": str(manifest)}
    code = main([a.format(**fill) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert data.read_bytes() == before
    assert not (tmp_path / "x.json").exists()


def test_passphrase_key_and_loose_permissions_warn(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = _data(tmp_path)
    key = tmp_path / "k"
    monkeypatch.setenv("PG_PASS", "correct horse")
    assert main(["keygen", "--out", str(key), "--passphrase-env", "PG_PASS"]) == 0
    out = tmp_path / "m.json"
    assert main(["manifest", str(data), "--key", str(key), "--out", str(out)]) == 2
    assert "encrypted; give its passphrase" in capsys.readouterr().err
    monkeypatch.setenv("PG_WRONG", "battery staple")
    assert main(["manifest", str(data), "--key", str(key), "--passphrase-env", "PG_WRONG",
                 "--out", str(out)]) == 2
    assert "wrong passphrase" in capsys.readouterr().err
    os.chmod(key, 0o644)
    assert main(["manifest", str(data), "--key", str(key), "--passphrase-env", "PG_PASS",
                 "--out", str(out)]) == 0
    assert "readable by others" in capsys.readouterr().err
