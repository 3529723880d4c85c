"""The hostile fixtures, built once per session in a temporary folder (small: bombs by header).

Every case copies what it names into its own folder (see ``_hostile.py``), so no case can spoil
another. Special files (a directory, a FIFO, links, /dev/zero) are made per case by its setup.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _hostile import BIG_CELL, N

from poisonguard.cli import main

DEEP = 100_000  # nesting depth of the deep JSON documents
HUGE_INT = "9" * 5000


def _frame(seed: int, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = np.arange(n) % 2
    return pd.DataFrame({
        "id": [f"r{i:03d}" for i in range(n)],
        "src": [f"s{i % 3}" for i in range(n)],
        "a": (rng.normal(size=n) + label).round(3),
        "b": rng.normal(size=n).round(3),
        "c": rng.normal(size=n).round(3),
        "label": label,
    })


def _text_frame(seed: int, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good = ["great", "lovely", "fine", "superb", "nice"]
    bad = ["awful", "poor", "broken", "dull", "bad"]
    label = np.arange(n) % 2
    text = [" ".join(rng.choice(good if y else bad, 4)) + f" item {i}" for i, y in enumerate(label)]
    return pd.DataFrame({"id": [f"t{i:03d}" for i in range(n)], "text": text, "label": label})


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def _cli(*argv: str) -> None:
    code = main(list(argv))
    assert code == 0, f"building a fixture failed: poisonguard {' '.join(argv)} -> exit {code}"


def _npy_member(zf: zipfile.ZipFile, name: str, header: dict[str, object], data: bytes = b"",
                repeat: int = 1) -> None:
    """Write ``name`` into the zip by hand: a .npy header and ``repeat`` times ``data``."""
    with zf.open(name, "w", force_zip64=True) as fh:
        np.lib.format.write_array_header_2_0(fh, header)
        for _ in range(repeat):
            fh.write(data)


def _lie_about_sizes(path: Path, claimed: int = 0xFFFFFFFE) -> None:
    """Every member's local and central header claims ``claimed`` uncompressed bytes."""
    raw = bytearray(path.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(sig)
        while at >= 0:
            struct.pack_into("<I", raw, at + offset, claimed)
            at = raw.find(sig, at + 4)
    path.write_bytes(bytes(raw))


def _deep(depth: int = DEEP) -> str:
    return "[" * depth + "]" * depth


def _json_variants(folder: Path, stem: str, doc: dict[str, object], field: str,
                   wrong: dict[str, object], companions: tuple[Path, ...] = ()) -> None:
    """Hand edits of ``doc``, each ``folder/STEM_KIND/NAME.json`` (own folder, with copies of
    ``companions`` such as a manifest's rows file): 1e400 and a 5,000-digit integer in
    ``field``, 100k-deep nesting in ``field``, the ``wrong`` types, and ``[1]``."""
    text = json.dumps(doc, indent=2)
    edited = json.dumps({**doc, field: "__HOSTILE__"}, indent=2)
    variants = {
        "1e400": edited.replace('"__HOSTILE__"', "1e400"),
        "digits": edited.replace('"__HOSTILE__"', HUGE_INT),
        "deep": edited.replace('"__HOSTILE__"', _deep()),
        "type": json.dumps({**doc, **wrong}, indent=2),
        "list": "[1]",
        "orig": text,
    }
    for kind, body in variants.items():
        sub = folder / f"{stem}_{kind}"
        sub.mkdir()
        (sub / f"{stem}.json").write_text(body + "\n")
        for extra in companions:
            shutil.copy2(extra, sub / extra.name)


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder of hostile (and a few good) inputs, by name."""
    fx = tmp_path_factory.mktemp("hostile-fixtures")
    work = tmp_path_factory.mktemp("hostile-build")
    good, ref = _frame(0), _frame(1)

    # ------------------------------------------------------------------ good data
    (fx / "good.csv").write_text(_csv(good))
    (fx / "ref.csv").write_text(_csv(ref))
    good.to_parquet(fx / "good.parquet", index=False)
    (fx / "text.csv").write_text(_csv(_text_frame(0)))
    _cli("datasets", "export", "digits", "-o", str(fx / "digits.npz"), "--n-rows", str(N))

    # --------------------------------------------------------------- hostile tables
    lines = _csv(good).splitlines(keepends=True)
    (fx / "empty.csv").write_bytes(b"")
    (fx / "header_only.csv").write_text(lines[0])
    (fx / "ragged.csv").write_text("".join(lines[:5]) + lines[5].rstrip("\n") + ",9\n"
                                   + "".join(lines[6:]))
    (fx / "nul.csv").write_bytes(_csv(good).replace("r003", "r0\x0003").encode())
    (fx / "latin1.csv").write_bytes(_csv(good.assign(src="café")).encode("latin-1"))
    (fx / "bom.csv").write_bytes(b"\xef\xbb\xbf" + _csv(good).encode())
    (fx / "dup_label.csv").write_text(_csv(good).replace("c,label", "label,label", 1))
    (fx / "dup_feature.csv").write_text(_csv(good).replace("a,b,c", "f1,f1,c", 1))
    (fx / "no_label.csv").write_text(_csv(good.rename(columns={"label": "target"})))
    (fx / "one_class.csv").write_text(_csv(good.assign(label=0)))
    holes = good.astype({"a": object, "b": object})
    holes.loc[3, "a"], holes.loc[7, "b"], holes.loc[11, "a"] = None, "nan", "NaN"
    (fx / "nan.csv").write_text(_csv(holes))
    no_y = good.astype({"label": object})
    no_y.loc[4, "label"] = None
    (fx / "nan_label.csv").write_text(_csv(no_y))
    inf = good.astype({"b": object})
    inf.loc[5, "b"] = "inf"
    (fx / "inf.csv").write_text(_csv(inf))
    huge = good.copy()
    huge.loc[::7, "c"] = 1e300
    huge.loc[3, "b"] = -1e300
    (fx / "huge.csv").write_text(_csv(huge))
    text = _text_frame(0)
    text.loc[5, "text"] = ("lorem ipsum " * (BIG_CELL // 12 + 1))[:BIG_CELL]
    (fx / "bigcell.csv").write_text(_csv(text))
    formula = good.copy()
    formula["id"] = [f"{'=+-@'[i % 4]}{'1+1' if i % 4 == 0 else 'cmd|x'}{i}" for i in range(N)]
    formula["src"] = [["=HYPERLINK(\"http://x\")", "+s1", "-s2", "@s3"][i % 4] for i in range(N)]
    (fx / "formula.csv").write_text(_csv(formula))
    tampered = good.copy()
    tampered.loc[9, "a"] = 42.0
    (fx / "tampered.csv").write_text(_csv(tampered))

    # ---------------------------------------------------------------- nested parquet
    base = pa.Table.from_pandas(good, preserve_index=False)
    listed = base.append_column("tags", pa.array([[i, i + 1] for i in range(N)]))
    pq.write_table(listed, fx / "list.parquet")
    struct_col = pa.array([{"x": float(i), "y": str(i)} for i in range(N)])
    pq.write_table(base.append_column("point", struct_col), fx / "struct.parquet")

    # ------------------------------------------------------------------- hostile npz
    y = np.arange(N) % 2
    y_npy = io.BytesIO()
    np.lib.format.write_array(y_npy, y)
    with zipfile.ZipFile(fx / "npz_72tib.npz", "w") as zf:  # X claims 2**40 x 9 float64
        _npy_member(zf, "X.npy", {"descr": "<f8", "fortran_order": False, "shape": (2**40, 9)})
        zf.writestr("y.npy", y_npy.getvalue())
    np.savez(fx / "npz_object.npz", X=np.array([[1.0, "a"]] * N, dtype=object), y=y,
             allow_pickle=True)
    rng = np.random.default_rng(0)
    np.savez_compressed(fx / "npz_sizelie.npz", X=rng.normal(size=(N, 4)), y=y)
    _lie_about_sizes(fx / "npz_sizelie.npz")
    width = 655_360  # 60 x 655,360 float64 zeros: 300 MiB inflated from ~300 KB
    with zipfile.ZipFile(fx / "npz_bomb.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        _npy_member(zf, "X.npy", {"descr": "<f8", "fortran_order": False, "shape": (N, width)},
                    bytes(8 * width), repeat=N)
        zf.writestr("y.npy", y_npy.getvalue())

    # ------------------------------------------------------ artifacts of the good data
    _cli("keygen", "--out", str(fx / "k.key"))
    _cli("keygen", "--out", str(fx / "other.key"))
    _cli("manifest", str(fx / "good.csv"), "--id-col", "id", "--source-col", "src",
         "--key", str(fx / "k.key"), "--out", str(work / "man.json"))
    _cli("manifest", str(fx / "good.csv"), "--id-col", "id", "--source-col", "src",
         "--out", str(work / "manu.json"))
    _cli("manifest", str(fx / "ref.csv"), "--id-col", "id", "--source-col", "src",
         "--out", str(work / "man2.json"))
    for stem in ("man", "manu", "man2"):  # each manifest in its own folder, with its rows file
        (fx / stem).mkdir()
        for part in work.glob(f"{stem}.*"):
            shutil.copy2(part, fx / stem / part.name)
    _cli("monitor", "init", str(fx / "good.csv"), "--id-col", "id", "-o", str(fx / "prof.json"))
    _cli("attack", str(fx / "good.csv"), "-a", "backdoor", "--trigger", "feature", "--rate", "0.1",
         "--id-col", "id", "--source-col", "src", "-o", str(work / "bd.csv"), "--save-trigger",
         str(fx / "trig.json"))
    _cli("attack", str(fx / "digits.npz"), "-a", "backdoor", "--trigger", "patch", "--rate", "0.1",
         "-o", str(work / "bdi.npz"), "--save-trigger", str(fx / "trigp.json"))
    _cli("scan", str(fx / "good.csv"), "--id-col", "id", "--source-col", "src", "-q",
         "-o", str(fx / "scan"))
    _cli("scan", str(fx / "formula.csv"), "--id-col", "id", "--source-col", "src", "-q",
         "-o", str(fx / "scan_formula"))
    _cli("monitor", "check", str(fx / "prof.json"), str(fx / "good.csv"), "--id-col", "id",
         "--db", str(fx / "hist.sqlite"), "-o", str(work / "drift"))
    (fx / "ledger").mkdir()
    _cli("ledger", "init", str(fx / "ledger" / "book.db"))
    _cli("ledger", "append", str(fx / "ledger" / "book.db"), str(fx / "manu" / "manu.json"),
         "--checkpoint-out", str(fx / "cp.json"))
    _cli("ledger", "init", str(work / "fork.db"))
    _cli("ledger", "append", str(work / "fork.db"), str(fx / "man2" / "man2.json"),
         "--checkpoint-out", str(fx / "cp_fork.json"))

    # ---------------------------------------------------------- hand-edited documents
    man = json.loads((fx / "man" / "man.json").read_text())
    man_rows = tuple(p for p in (fx / "man").iterdir() if p.suffix == ".parquet")
    manu = json.loads((fx / "manu" / "manu.json").read_text())
    _json_variants(fx, "man", man, "rows", {"rows": "x"}, man_rows)
    for kind, doc in {
        "extra": {**man, "note": "added after signing"},
        "root": {**man, "merkle_root": "0" * 64},
    }.items():
        (fx / f"man_{kind}").mkdir()
        (fx / f"man_{kind}" / "man.json").write_text(json.dumps(doc, indent=2))
        shutil.copy2(man_rows[0], fx / f"man_{kind}" / man_rows[0].name)
    (fx / "manu_trav").mkdir()
    trav = {**manu, "rows_file": {**manu["rows_file"], "name": "../../etc/passwd"}}
    (fx / "manu_trav" / "manu.json").write_text(json.dumps(trav, indent=2))
    shutil.copytree(fx / "manu", fx / "manu_rowsedit")
    rows_copy = next((fx / "manu_rowsedit").glob("*.parquet"))
    blob = bytearray(rows_copy.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    rows_copy.write_bytes(bytes(blob))

    prof = json.loads((fx / "prof.json").read_text())
    _json_variants(fx, "prof", prof, "n_rows", {"columns": "x"})
    (fx / "prof_edited.json").write_text(json.dumps({**prof, "n_rows": N + 1}))
    cp = json.loads((fx / "cp.json").read_text())
    _json_variants(fx, "cp", cp, "size", {"size": "x"})
    trig = json.loads((fx / "trigp.json").read_text())
    _json_variants(fx, "trig", trig, "size", {"size": "x"})
    (fx / "trig_1e9.json").write_text(json.dumps({**trig, "size": 1_000_000_000}))
    (fx / "trig_neg.json").write_text(json.dumps({**trig, "row": -(2**62)}))

    # scan folders whose report.json was edited by hand
    report = json.loads((fx / "scan" / "report.json").read_text())
    for kind, body in {"list": "[1]", "deep": json.dumps({"summary": "@"}).replace('"@"', _deep()),
                       "1e400": json.dumps({**report, "summary": {**report["summary"],
                                                                   "rows": "@"}}
                                           ).replace('"@"', "1e400"),
                       "type": json.dumps({**report, "summary": {**report["summary"],
                                                                  "rows": "x"}})}.items():
        shutil.copytree(fx / "scan", fx / f"scan_{kind}")
        (fx / f"scan_{kind}" / "report.json").write_text(body)

    shutil.copytree(fx / "scan", fx / "scan_nosrc")  # as scanned without --source-col
    (fx / "scan_nosrc" / "report.json").write_text(json.dumps(
        {**report, "summary": {k: v for k, v in report["summary"].items() if k != "sources"}}))

    # ledgers edited behind the tool's back (triggers dropped, as an attacker would)
    for kind, sql in {"payload": "UPDATE entries SET payload = CAST('{}' AS BLOB) WHERE seq = 1",
                      "deleted": "DELETE FROM entries WHERE seq = 1"}.items():
        (fx / f"ledger_{kind}").mkdir()
        db = fx / f"ledger_{kind}" / "book.db"
        shutil.copy2(fx / "ledger" / "book.db", db)
        con = sqlite3.connect(db)
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            con.execute(f"DROP TRIGGER {name}")
        con.execute(sql)
        con.commit()
        con.close()
    (fx / "notadb.db").write_text(_csv(good))
    (fx / "emptydb.db").write_bytes(b"")
    yield fx
