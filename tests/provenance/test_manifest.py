"""Manifests and verification: every tamper is caught, and what is not a change is not one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poisonguard.errors import InputError
from poisonguard.provenance import keys
from poisonguard.provenance import manifest as mf
from poisonguard.provenance.verify import verify

ROWS = 40


def table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": [f"r{i:03d}" for i in range(ROWS)],
        "x1": rng.normal(size=ROWS).round(6),
        "x2": rng.integers(0, 100, ROWS),
        "colour": rng.choice(["red", "green", "blue"], ROWS),
        "vendor": rng.choice(["acme", "crowd"], ROWS),
        "label": rng.integers(0, 2, ROWS),
    })


def write_manifest(df: pd.DataFrame, folder: Path, *, fmt: str = "csv", key: object = None,
                   name: str = "data") -> tuple[Path, Path]:
    data = folder / f"{name}.{fmt}"
    if fmt == "csv":
        df.to_csv(data, index=False)
    else:
        df.to_parquet(data, index=False)
    built, rows = mf.build(str(data), id_col="id", source_col="vendor")
    out = folder / f"{name}.json"
    mf.write(built, rows, out, key=key)
    return data, out


def test_same_values_as_csv_and_parquet_same_root_and_row_hashes(tmp_path: Path) -> None:
    df = table()
    _, m_csv = write_manifest(df, tmp_path, name="a")
    _, m_pq = write_manifest(df, tmp_path, fmt="parquet", name="b")
    a, b = mf.read(m_csv), mf.read(m_pq)
    assert a.merkle_root == b.merkle_root
    assert a.data["sha256"] != b.data["sha256"]  # different bytes, same rows
    ra = mf.RowTable.from_parquet(mf.sidecar_path(a, m_csv))
    rb = mf.RowTable.from_parquet(mf.sidecar_path(b, m_pq))
    assert np.array_equal(ra.hashes, rb.hashes) and np.array_equal(ra.ids, rb.ids)


def test_row_order_and_column_order_do_not_count(tmp_path: Path) -> None:
    df = table()
    _, m = write_manifest(df, tmp_path)
    shuffled = df.sample(frac=1.0, random_state=3)[["label", "colour", "x2", "vendor", "id", "x1"]]
    other = tmp_path / "shuffled.parquet"
    shuffled.to_parquet(other, index=False)
    result = verify(str(other), m)
    assert result.ok, result.problems
    assert result.notes  # the bytes differ, the rows do not


def test_without_ids_rows_are_matched_by_content(tmp_path: Path) -> None:
    df = table().drop(columns="id")
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False)
    built, rows = mf.build(str(data))
    m = tmp_path / "d.json"
    mf.write(built, rows, m)
    assert mf.read(m).keyed == "content"
    df.sample(frac=1.0, random_state=1).to_csv(data, index=False)
    assert verify(str(data), m).ok
    pd.concat([df, df.iloc[[5]]]).to_csv(data, index=False)  # one row duplicated
    result = verify(str(data), m)
    assert not result.ok and result.changes is not None
    assert result.changes.counts()["added"] == 1 and result.changes.counts()["removed"] == 0


def _tamper(df: pd.DataFrame, kind: str, row: int) -> tuple[pd.DataFrame, str, str]:
    """``(tampered copy, the kind of change verify must report, the id it must name)``."""
    out = df.copy()
    rid = str(df.loc[row, "id"])
    if kind == "cell":
        out.loc[row, "x1"] = out.loc[row, "x1"] + 1e-3
        return out, "changed", rid
    if kind == "category":
        out.loc[row, "colour"] = "purple"
        return out, "changed", rid
    if kind == "label":
        out.loc[row, "label"] = 1 - out.loc[row, "label"]
        return out, "changed", rid
    if kind == "source":
        out.loc[row, "vendor"] = "mallory"
        return out, "changed", rid
    if kind == "id":
        out.loc[row, "id"] = "zz-new"
        return out, "added", "zz-new"
    if kind == "remove":
        return out.drop(index=row), "removed", rid
    if kind == "add":
        extra = out.iloc[[row]].copy()
        extra["id"] = "zz-extra"
        return pd.concat([out, extra], ignore_index=True), "added", "zz-extra"
    raise AssertionError(kind)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["cell", "category", "label", "source", "id", "remove", "add"]),
       row=st.integers(0, ROWS - 1), fmt=st.sampled_from(["csv", "parquet"]))
def test_every_row_tamper_is_caught_and_named(tmp_path_factory: pytest.TempPathFactory, kind: str,
                                             row: int, fmt: str) -> None:
    folder = tmp_path_factory.mktemp("t")
    df = table()
    _, m = write_manifest(df, folder)
    tampered, what, rid = _tamper(df, kind, row)
    target = folder / f"tampered.{fmt}"
    if fmt == "csv":
        tampered.to_csv(target, index=False)
    else:
        tampered.to_parquet(target, index=False)
    result = verify(str(target), m)
    assert not result.ok
    assert result.changes is not None
    assert rid in list(getattr(result.changes, what))
    counts = result.changes.counts()
    assert sum(counts[k] for k in ("added", "removed", "changed")) == (2 if kind == "id" else 1)


def test_signed_manifest_catches_edits_and_foreign_keys(tmp_path: Path) -> None:
    priv, pub = keys.generate(tmp_path / "k")
    other_priv, other_pub = keys.generate(tmp_path / "other")
    key = keys.load_private_key(priv)
    data, m = write_manifest(table(), tmp_path, key=key)
    assert verify(str(data), m, public_key=keys.load_public_key(pub)).ok
    # the right data, checked against someone else's key
    wrong = verify(str(data), m, public_key=keys.load_public_key(other_pub))
    assert not wrong.ok and "another key" in wrong.problems[0]
    # any edit to the manifest body breaks the signature
    obj = json.loads(m.read_text())
    obj["sources"]["acme"] += 1
    m.write_text(json.dumps(obj))
    edited = verify(str(data), m)
    assert not edited.ok and "edited after it was signed" in edited.problems[0]
    # a signature swapped for another key's (re-signed by an attacker) fails against --pubkey
    obj["sources"]["acme"] -= 1
    attacker = keys.load_private_key(other_priv)
    forged = mf.sign(mf.read_dict(obj, m), attacker)
    m.write_text(json.dumps(forged.to_dict()))
    assert verify(str(data), m).ok  # self-consistent...
    assert not verify(str(data), m, public_key=keys.load_public_key(pub)).ok  # ...but not ours


def test_unsigned_manifest_and_rows_file_tampering(tmp_path: Path) -> None:
    data, m = write_manifest(table(), tmp_path)
    side = mf.sidecar_path(mf.read(m), m)
    raw = bytearray(side.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    side.write_bytes(bytes(raw))
    result = verify(str(data), m)
    assert not result.ok and any("rows file" in p for p in result.problems)
    # a forged root in the manifest itself
    data, m = write_manifest(table(), tmp_path, name="again")
    obj = json.loads(m.read_text())
    obj["merkle_root"] = "00" * 32
    m.write_text(json.dumps(obj))
    result = verify(str(data), m)
    assert not result.ok and any("does not match" in p for p in result.problems)


def test_pubkey_given_but_manifest_unsigned(tmp_path: Path) -> None:
    _, pub = keys.generate(tmp_path / "k")
    data, m = write_manifest(table(), tmp_path)
    result = verify(str(data), m, public_key=keys.load_public_key(pub))
    assert not result.ok and "not signed" in result.problems[0]


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such manifest"),
    ("{not json", "invalid JSON"),
    ('{"format": "something-else"}', "not a poisonguard manifest"),
    ('{"format": "poisonguard-manifest/1", "rows": 3}', "malformed manifest"),
])
def test_bad_manifests_are_input_errors(tmp_path: Path, content: str | None, message: str) -> None:
    data, _ = write_manifest(table(), tmp_path)
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    with pytest.raises(InputError, match=message):
        verify(str(data), bad)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    df = table()
    df.loc[7, "id"] = df.loc[3, "id"]
    data = tmp_path / "d.csv"
    df.to_csv(data, index=False)
    with pytest.raises(InputError, match="duplicate id 'r003' at rows 3 and 7"):
        mf.build(str(data), id_col="id")


def test_builtin_and_npz_data(tmp_path: Path) -> None:
    built, rows = mf.build("wine")
    assert built.rows == 178 and built.keyed == "content" and rows.n_rows == 178
    again, _ = mf.build("wine")
    assert again.merkle_root == built.merkle_root


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 13, 64, 65])
def test_row_table_root_is_rfc6962_root(n: int) -> None:
    from poisonguard.provenance import merkle

    rng = np.random.default_rng(n)
    hashes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    table = mf.RowTable(np.empty(0, dtype="S1"), hashes, None, np.arange(n))
    assert table.root() == merkle.root([merkle.leaf_hash(bytes(h)) for h in hashes])


@pytest.mark.parametrize("n", [4, 7, 8, 9, 12, 13, 16, 17, 31, 33, 40])
def test_row_table_root_across_blocks(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from poisonguard.provenance import merkle

    monkeypatch.setattr(mf, "_SLICE", 4)  # blocks of 4 leaves: every merge path is exercised
    hashes = np.random.default_rng(n).integers(0, 256, (n, 32), dtype=np.uint8)
    table = mf.RowTable(np.empty(0, dtype="S1"), hashes, None, np.arange(n))
    assert table.root() == merkle.root([merkle.leaf_hash(bytes(h)) for h in hashes])


def test_text_that_looks_numeric_is_text(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": ["a", "b", "c"], "zip": ["00123", "A1B 2C3", "1.50"],
                       "label": [0, 1, 0]})
    data = tmp_path / "z.csv"
    df.to_csv(data, index=False)
    built, rows = mf.build(str(data), id_col="id")
    m = tmp_path / "z.json"
    mf.write(built, rows, m)
    for old, new in (("00123", "123"), ("1.50", "1.5")):
        edited = df.replace({"zip": {old: new}})
        edited.to_csv(data, index=False)
        result = verify(str(data), m)
        assert not result.ok and result.changes is not None and len(result.changes.changed) == 1


def test_chunk_boundaries_do_not_change_hashes(tmp_path: Path) -> None:
    """pandas types each chunk on its own: a chunk of only True/False is boolean, a chunk that
    also holds "maybe" is text. The row hashes must not care."""
    df = pd.DataFrame({"flag": ["True", "False", "maybe", "True", "", "NaN"],
                       "x": [1, 2, 3, 4, 5, 6], "label": [0, 1, 0, 1, 0, 1]})
    data = tmp_path / "b.csv"
    df.to_csv(data, index=False)
    roots = {mf.build(str(data), chunk_rows=size)[0].merkle_root for size in (1, 2, 3, 6)}
    assert len(roots) == 1


def test_wide_rows_are_chunked_by_bytes_and_hash_alike(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks are bounded by bytes (rows x width), not by a row count: the same rows hash the
    same whether they are taken all at once or a few at a time."""
    from poisonguard.provenance import hashing

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 50))
    X[3, 7] = np.nan  # a missing value inside the numeric block
    wide = tmp_path / "wide.npz"
    np.savez(wide, X=X, y=np.arange(30) % 2)
    df = table()
    data = tmp_path / "t.csv"
    df.to_csv(data, index=False)
    whole = {name: mf.build(str(name), id_col=col)[0].merkle_root
             for name, col in ((wide, None), (data, "id"), ("wine", None))}
    chunk = hashing.RowChunk(0, np.asarray([f"r{i}" for i in range(30)], dtype=object), None,
                             np.arange(30.0), (("a", X), ("b", np.asarray(list("abc") * 10,
                                                                          dtype=object))))
    at_once = hashing.row_hashes(chunk)
    assert hashing.rows_per_chunk(655_360) == 6  # 60 such rows (300 MiB) in ten chunks
    monkeypatch.setattr(hashing, "_CHUNK_BYTES", 8 * 60)  # a few rows of 50-odd cells
    assert hashing.rows_per_chunk(51) == 1 and hashing.rows_per_chunk(6) == 10
    assert np.array_equal(hashing.row_hashes(chunk), at_once)  # 30 slices of one row
    for name, col in ((wide, None), (data, "id"), ("wine", None)):
        assert mf.build(str(name), id_col=col)[0].merkle_root == whole[name]


def test_missing_values_hash_alike_and_filling_one_is_a_change(tmp_path: Path) -> None:
    df = table()
    df["x1"] = df["x1"].astype("float64")
    df.loc[[3, 7], "x1"] = np.nan
    df["colour"] = df["colour"].astype(object)
    df.loc[[5], "colour"] = None
    _, m_csv = write_manifest(df, tmp_path, name="a")
    data, m_pq = write_manifest(df, tmp_path, fmt="parquet", name="b")
    assert json.loads(m_csv.read_text())["merkle_root"] == json.loads(m_pq.read_text())["merkle_root"]
    assert verify(str(data), m_csv).ok
    for col, row, value in (("x1", 3, 0.0), ("colour", 5, "red")):
        filled = df.copy()
        filled.loc[row, col] = value
        filled.to_csv(tmp_path / "filled.csv", index=False)
        result = verify(str(tmp_path / "filled.csv"), m_csv)
        assert not result.ok and result.changes is not None
        assert list(result.changes.changed) == [df.loc[row, "id"]]
