"""Data where users keep it (issue 15) through the CLI: image folders, JSON Lines and Hugging
Face save_to_disk folders through scan, attack, manifest / verify and gate; hostile inputs are
one ``error:`` line and exit 2 with the input untouched; outputs never land in an input folder."""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from _formats_data import (
    hf_folder,
    hf_images,
    hf_text,
    image_folder,
    png_bytes,
    sms_rows,
    snapshot,
    write_jsonl,
)
from poisonguard import formats, io
from poisonguard.cli import main

FAST = ["--detectors", "label,neighbors", "-q"]
SMS = ["--label", "category", "--id-col", "msg_id"]


def _ok(capsys: pytest.CaptureFixture[str], argv: list[str], code: int = 0) -> str:
    got = main(argv)
    captured = capsys.readouterr()
    assert got == code, captured.err
    assert "Traceback" not in captured.err
    return captured.out


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], data: Path) -> str:
    """Exit 2, one ``error:`` line, nothing on stdout, ``data`` untouched and nothing written
    beside it. Returns the line."""
    before, listing = snapshot(data), sorted(os.listdir(data.parent))
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert snapshot(data) == before and sorted(os.listdir(data.parent)) == listing
    return lines[0]


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_folder(tmp_path_factory.mktemp("img") / "digits", 150)


def test_scan_an_image_folder_records_its_digest_and_is_deterministic(
        digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(digits_dir)
    for out in ("a", "b"):
        _ok(capsys, ["scan", str(digits_dir), "--out", str(tmp_path / out), *FAST])
    assert (tmp_path / "a" / "scores.csv").read_bytes() == (tmp_path / "b" / "scores.csv").read_bytes()
    scores = pd.read_csv(tmp_path / "a" / "scores.csv")
    assert scores["row_id"].iloc[0] == "0/0000.png" or "/" in scores["row_id"].iloc[0]
    prov = json.loads((tmp_path / "a" / "report.json").read_text())["provenance"]
    assert prov["rows"] == 150 and prov["sha256"] == formats.data_sha256(digits_dir)
    assert prov["keyed"] == "id" and prov["path"] == "digits"
    assert snapshot(digits_dir) == before


def test_attack_manifest_verify_and_gate_on_an_image_folder(
        digits_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(digits_dir)
    _ok(capsys, ["attack", str(digits_dir), "--attack", "label-flip", "--rate", "0.1",
                 "--out", str(tmp_path / "p.npz")])
    with np.load(tmp_path / "p.npz") as z:
        assert z["X"].shape == (150, 8, 8) and z["X"].dtype == np.uint8
        assert z["ids"][0].endswith(".png")
    truth = pd.read_csv(tmp_path / "p.truth.csv")
    assert int(truth["poisoned"].sum()) == 15
    m = tmp_path / "m.json"
    _ok(capsys, ["manifest", str(digits_dir), "--out", str(m)])
    assert "ok:" in _ok(capsys, ["verify", str(digits_dir), str(m)])
    batch = image_folder(tmp_path / "batch", 60, seed=1)
    code = main(["gate", str(batch), "--reference", str(digits_dir), "--accepted",
                 str(tmp_path / "acc.npz"), "--quarantine", str(tmp_path / "q"), "-q"])
    capsys.readouterr()
    assert code in (0, 1)
    with np.load(tmp_path / "acc.npz") as acc, np.load(tmp_path / "q" / "quarantined.npz") as q:
        assert len(acc["y"]) + len(q["y"]) == 60 and acc["X"].shape[1:] == (8, 8)
    assert snapshot(digits_dir) == before
    # a file rewritten, added or removed: verify names it (exit 3)
    victim = digits_dir / "4" / sorted(os.listdir(digits_dir / "4"))[0]
    saved = victim.read_bytes()
    try:
        victim.write_bytes(png_bytes(np.full((8, 8), 255, dtype=np.uint8)))
        text = _ok(capsys, ["verify", str(digits_dir), str(m)], code=3)
        assert f"changed (1): 4/{victim.name}" in text
    finally:
        victim.write_bytes(saved)


def test_jsonl_scan_write_clean_attack_manifest_gate(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "sms.jsonl", sms_rows(120))
    text = data.read_bytes()
    _ok(capsys, ["scan", str(data), *SMS, "--out", str(tmp_path / "s"), "--budget", "6",
                 "--write-clean", str(tmp_path / "clean.jsonl"), *FAST])
    clean = (tmp_path / "clean.jsonl").read_text().splitlines()
    assert len(clean) == 114 and set(clean) <= set(data.read_text().splitlines())
    prov = json.loads((tmp_path / "s" / "report.json").read_text())["provenance"]
    assert prov["rows"] == 120 and prov["sha256"] == formats.data_sha256(data)
    _ok(capsys, ["attack", str(data), *SMS, "--attack", "label-flip", "--rate", "0.1",
                 "--out", str(tmp_path / "p.jsonl")])
    lines, original = (tmp_path / "p.jsonl").read_text().splitlines(), data.read_text().splitlines()
    assert sum(a != b for a, b in zip(lines, original, strict=True)) == 12
    _ok(capsys, ["manifest", str(data), *SMS[2:], "--label", "category", "--out",
                 str(tmp_path / "m.json")])
    out = _ok(capsys, ["verify", str(tmp_path / "p.jsonl"), str(tmp_path / "m.json")], code=3)
    assert "rows added 0, removed 0, changed 12" in out
    batch = write_jsonl(tmp_path / "batch.jsonl", sms_rows(60, seed=1))
    code = main(["gate", str(batch), "--reference", str(data), *SMS, "--accepted",
                 str(tmp_path / "acc.jsonl"), "--quarantine", str(tmp_path / "q"), "-q"])
    capsys.readouterr()
    assert code in (0, 1)
    kept = (tmp_path / "acc.jsonl").read_text().splitlines() + \
        (tmp_path / "q" / "quarantined.jsonl").read_text().splitlines()
    assert sorted(kept) == sorted(batch.read_text().splitlines())  # exact copies
    assert data.read_bytes() == text


def test_hf_folders_through_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = hf_images(tmp_path / "digits-hf", 150, files=2)
    before = snapshot(images)
    _ok(capsys, ["scan", str(images), "--out", str(tmp_path / "s"), *FAST])
    prov = json.loads((tmp_path / "s" / "report.json").read_text())["provenance"]
    assert prov["rows"] == 150 and prov["sha256"] == formats.data_sha256(images)
    _ok(capsys, ["attack", str(images), "--attack", "label-flip", "--rate", "0.1", "--out",
                 str(tmp_path / "p.npz")])
    _ok(capsys, ["manifest", str(images), "--out", str(tmp_path / "m.json")])
    assert "ok:" in _ok(capsys, ["verify", str(images), str(tmp_path / "m.json")])
    sms = hf_text(tmp_path / "sms-hf", 120)
    batch = hf_text(tmp_path / "batch-hf", 60, seed=1)
    code = main(["gate", str(batch), "--reference", str(sms), *SMS, "--accepted",
                 str(tmp_path / "acc.parquet"), "--quarantine", str(tmp_path / "q"), "-q"])
    capsys.readouterr()
    assert code in (0, 1)
    acc = pd.read_parquet(tmp_path / "acc.parquet")
    assert list(acc.columns) == ["msg_id", "body", "category"]
    assert len(acc) + len(pd.read_parquet(tmp_path / "q" / "quarantined.parquet")) == 60
    assert snapshot(images) == before


def test_datasets_export_writes_the_new_formats(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    _ok(capsys, ["datasets", "export", "digits", "--n-rows", "40", "--format", "images",
                 "--out", str(tmp_path / "img")])
    assert io.load(tmp_path / "img").n_rows == 40
    _ok(capsys, ["datasets", "export", "synthetic_text", "--n-rows", "40", "--ids", "--format",
                 "hf", "--out", str(tmp_path / "hf")])
    assert io.load(tmp_path / "hf", id_col="id").modality == "text"
    _ok(capsys, ["datasets", "export", "synthetic_text", "--n-rows", "40", "--out",
                 str(tmp_path / "t.jsonl")])
    assert io.load(tmp_path / "t.jsonl").n_rows == 40
    assert main(["datasets", "export", "iris", "--format", "images", "--out",
                 str(tmp_path / "iris")]) == 2
    assert "an image folder holds image data, not tabular" in capsys.readouterr().err
    assert not (tmp_path / "iris").exists()


# ----------------------------------------------------------------------------- no output in an input folder
def test_outputs_inside_an_input_folder_are_refused(digits_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    line = _refused(capsys, ["scan", str(digits_dir), "--out", str(digits_dir / "3" / "s"),
                             *FAST], digits_dir)
    assert "inside the data folder" in line
    line = _refused(capsys, ["attack", str(digits_dir), "--attack", "label-flip", "--rate",
                             "0.1", "--out", str(digits_dir / "p.npz")], digits_dir)
    assert line.endswith(f"inside the data folder {digits_dir}, which this command reads; write "
                         "it elsewhere")
    hf = hf_text(tmp_path / "hf", 40)
    line = _refused(capsys, ["manifest", str(hf), *SMS, "--out", str(hf / "m.json")], hf)
    assert "inside the data folder" in line


# ----------------------------------------------------------------------------- hostile input
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _bomb(side: int) -> bytes:
    """A PNG whose header declares side x side pixels, holding almost nothing."""
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0,
                                                                     0, 0))
            + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _png_chunk(b"IEND", b""))


def _images(change: Callable[[Path], object]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        root = image_folder(tmp / "img", 30)
        change(root)
        return root
    return make


def _flat(root: Path) -> Path:
    """Images directly in the folder, no class folders."""
    root.mkdir()
    (root / "a.png").write_bytes(png_bytes(np.zeros((4, 4))))
    return root


def _outside(root: Path) -> Path:
    """An image beside the folder, outside it."""
    path = root.parent / "outside.png"
    path.write_bytes(png_bytes(np.zeros((8, 8))))
    return path


def _first_png(root: Path) -> Path:
    return sorted(root.rglob("*.png"))[0]


IMAGE_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "not an image": (_images(lambda r: (r / "2" / "notes.txt").write_text("hi")),
                     "img/2/notes.txt: not a PNG or JPEG image; an image folder holds one "
                     "sub-folder per class"),
    "file beside the classes": (_images(lambda r: (r / "README.md").write_text("hi")),
                                "img/README.md: a file beside the class folders"),
    "empty class": (_images(lambda r: (r / "empty").mkdir()),
                    "img/empty: a class folder with no images"),
    "no classes": (lambda tmp: _flat(tmp / "img"), "img/a.png: a file beside the class folders"),
    "link out": (_images(lambda r: os.symlink(_outside(r), r / "1" / "out.png")),
                 "img/1/out.png: is a link to "),
    "folder link": (_images(lambda r: os.symlink(r / "1", r / "11")),
                    "img/11: is a link to a folder; image folders are read without following "
                    "folder links"),
    "bomb": (_images(lambda r: (r / "1" / "bomb.png").write_bytes(_bomb(20_000))),
             "img/1/bomb.png: declares more than 89,478,485 pixels; refused as a decompression "
             "bomb"),
    "gif named png": (_images(lambda r: (r / "1" / "g.png").write_bytes(
        png_bytes(np.zeros((8, 8)), "GIF"))), "img/1/g.png: not a PNG or JPEG image"),
    "truncated": (_images(lambda r: _first_png(r).write_bytes(png_bytes(
        np.random.default_rng(0).integers(0, 255, (8, 8)))[:-30])),
                  "cannot read the image (image file is truncated)"),
    "two sizes": (_images(lambda r: (r / "9" / "big.png").write_bytes(png_bytes(np.zeros((9, 9))))),
                  "img/9/big.png: is 9x9 pixels (height x width) but "),
    "fifo": (_images(lambda r: os.mkfifo(r / "1" / "pipe.png")),
             "img/1/pipe.png: is not a regular file, expected an image file"),
    "16-bit": (_images(lambda r: (r / "1" / "deep.png").write_bytes(_sixteen_bit())),
               "img/1/deep.png: image with mode I;16 is not read"),
}


def _sixteen_bit() -> bytes:
    import io as stdio

    from PIL import Image

    buf = stdio.BytesIO()
    Image.new("I;16", (8, 8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_hostile_image_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    make, expected = IMAGE_CASES[case]
    data = make(tmp_path)
    line = _refused(capsys, ["attack", str(data), "--attack", "label-flip", "--rate", "0.2",
                             "--out", str(tmp_path / "o.npz")], data)
    assert expected in line, line


def test_image_memory_is_checked_before_decoding(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    data = image_folder(tmp_path / "img", 30)
    monkeypatch.setattr(io, "_memory_bytes", lambda: 1000)
    line = _refused(capsys, ["scan", str(data), "--out", str(tmp_path / "s"), *FAST], data)
    assert line == (f"error: {data}: 30 images of 8x8 pixels need 1.88 KiB, more than this "
                    "machine's memory (1000 bytes)")


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _jsonl(text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "d.jsonl"
        good = "".join(json.dumps({"t": f"w{i} x", "label": i % 2}) + "\n" for i in range(10))
        path.write_bytes(good.encode() + (text.encode() if isinstance(text, str) else text))
        return path
    return make


JSONL_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "invalid": (_jsonl('{"t": "a", "label": 1\n'), "d.jsonl: line 11: not valid JSON"),
    "not an object": (_jsonl('["a", 1]\n'), "d.jsonl: line 11: expected a JSON object {...}, "
                                            "got list"),
    "repeated key": (_jsonl('{"t": "a", "label": 1, "label": 0}\n'),
                     "d.jsonl: line 11: key 'label' appears twice in the object"),
    "nan": (_jsonl('{"t": "a", "label": NaN}\n'), "d.jsonl: line 11: NaN is not a number JSON "
                                                  "allows"),
    "huge int": (_jsonl('{"t": "a", "label": ' + "9" * 50 + "}\n"),
                 "d.jsonl: line 11: an integer of 50 digits is out of range"),
    "nested": (_jsonl('{"t": "a", "label": 1, "meta": {"k": 1}}\n'),
               "d.jsonl: line 11, field 'meta': holds an object; nested values are not supported"),
    "nul": (_jsonl(b'{"t": "a\x00", "label": 1}\n'), "d.jsonl: line 11 holds a NUL byte"),
    "latin-1": (_jsonl(b'{"t": "caf\xe9", "label": 1}\n'), "d.jsonl: line 11: not UTF-8 text"),
    "missing label": (_jsonl('{"t": "a"}\n'), "d.jsonl: row 10 (line 11), column 'label': label "
                                              "is missing"),
    "blank only": (lambda tmp: _text(tmp / "d.jsonl", "\n \n"),
                   "d.jsonl: no rows (every line is blank)"),
}


@pytest.mark.parametrize("case", sorted(JSONL_CASES))
def test_hostile_jsonl(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    make, expected = JSONL_CASES[case]
    data = make(tmp_path)
    line = _refused(capsys, ["attack", str(data), "--attack", "label-flip", "--rate", "0.2",
                             "--out", str(tmp_path / "o.jsonl")], data)
    assert expected in line, line


def test_jsonl_lines_are_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from poisonguard.formats import jsonl

    monkeypatch.setattr(jsonl, "LINE_MAX", 1000)
    data = _jsonl('{"t": "' + "x" * 5000 + '", "label": 1}\n')(tmp_path)
    line = _refused(capsys, ["scan", str(data), "--out", str(tmp_path / "s"), *FAST], data)
    assert line == f"error: {data}: line 11 is longer than 1,000 bytes; is this a JSON Lines file?"


def _hf(change: Callable[[Path], object], maker: Callable[..., Path] = hf_images
        ) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        root = maker(tmp / "hf", 30)
        change(root)
        return root
    return make


def _state(root: Path, **fields: object) -> None:
    state = json.loads((root / "state.json").read_text())
    (root / "state.json").write_text(json.dumps({**state, **fields}))


def _rewrite(root: Path, table: pa.Table, **options: object) -> None:
    data = root / "data-00000-of-00001.arrow"
    with pa.OSFile(str(data), "wb") as sink, \
            pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(**options)) as w:
        w.write_table(table)


def _shard_outside(root: Path) -> None:
    shard = root / "data-00000-of-00001.arrow"
    shard.rename(root.parent / "x.arrow")
    os.symlink(root.parent / "x.arrow", shard)


def _path_only(root: Path) -> None:
    image = pa.StructArray.from_arrays([pa.nulls(30, pa.binary()), pa.array(["/etc/passwd"] * 30)],
                                       ["bytes", "path"])
    _rewrite(root, pa.table({"image": image, "label": pa.array([0, 1] * 15, pa.int64())}))


HF_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "no state": (_hf(lambda r: (r / "state.json").unlink()), "hf/state.json: no such Hugging Face "
                                                               "state.json"),
    "file outside": (_hf(lambda r: _state(r, _data_files=[{"filename": "../x.arrow"}])),
                     "hf/state.json: a data file must be a file name in the folder (got "
                     "'../x.arrow')"),
    "link outside": (_hf(_shard_outside), "hf/data-00000-of-00001.arrow: is a link to "),
    "missing shard": (_hf(lambda r: (r / "data-00000-of-00001.arrow").unlink()),
                      "hf/data-00000-of-00001.arrow: no such data file (listed in state.json)"),
    "not arrow": (_hf(lambda r: (r / "data-00000-of-00001.arrow").write_bytes(b"PK\x03\x04" * 50)),
                  "hf/data-00000-of-00001.arrow: cannot read as an Arrow stream"),
    "compressed": (_hf(lambda r: _rewrite(r, pa.table({"t": ["a b"] * 30, "label": [0, 1] * 15}),
                                          compression="zstd")),
                   "hf/data-00000-of-00001.arrow: holds compressed Arrow record batches"),
    "image as a path": (_hf(_path_only), "hf: row 0, column 'image': the image is stored as a "
                                         "path ('/etc/passwd'), not bytes"),
    "nested column": (_hf(lambda r: _rewrite(r, pa.table({"ids": [[1, 2]] * 30,
                                                          "label": [0, 1] * 15}))),
                      "hf: column 'ids' holds nested values (list<item: int64>)"),
    "no label": (_hf(lambda r: None, hf_text), "hf: no label column 'label' (set --label); "
                                               "columns are: msg_id, body, category"),
    "dataset dict": (lambda tmp: _text(hf_text(tmp / "hf" / "train", 20).parent
                                       / "dataset_dict.json", '{"splits": ["train"]}').parent,
                     "hf: is a Hugging Face DatasetDict with splits train; give the folder of one "
                     "split, e.g. "),
}


@pytest.mark.parametrize("case", sorted(HF_CASES))
def test_hostile_hf_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    make, expected = HF_CASES[case]
    data = make(tmp_path)
    line = _refused(capsys, ["attack", str(data), "--attack", "label-flip", "--rate", "0.2",
                             "--out", str(tmp_path / "o.npz")], data)
    assert expected in line, line


def test_hf_shards_with_other_columns_are_refused(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = hf_text(tmp_path / "hf", 40, files=2)
    table = pa.table({"msg_id": ["a"], "body": ["b"], "other": [1]})
    with pa.OSFile(str(root / "data-00001-of-00002.arrow"), "wb") as sink, \
            pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    line = _refused(capsys, ["manifest", str(root), *SMS, "--out", str(tmp_path / "m.json")], root)
    assert line.endswith("data-00001-of-00002.arrow: its columns differ from those of "
                         f"{root / 'data-00000-of-00002.arrow'}")


@pytest.mark.parametrize(("argv", "expected"), [
    (["--image-size", "0"], "--image-size must be H or HxW in pixels (each 1..8192), e.g. 28 or "
                            "28x32 (got '0')"),
    (["--image-size", "8x"], "(got '8x')"),
    (["--label", "kind"], "--label kind: does not apply to the image folder"),
    (["--id-col", "x"], "--id-col x: does not apply to the image folder"),
])
def test_bad_options_for_an_image_folder(digits_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str], argv: list[str],
                                         expected: str) -> None:
    line = _refused(capsys, ["attack", str(digits_dir), "--attack", "label-flip", "--rate",
                             "0.2", "--out", str(tmp_path / "o.npz"), *argv], digits_dir)
    assert expected in line, line


def test_image_size_on_data_without_images(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    data = write_jsonl(tmp_path / "sms.jsonl", sms_rows(30))
    line = _refused(capsys, ["attack", str(data), *SMS, "--attack", "label-flip", "--rate", "0.2",
                             "--out", str(tmp_path / "o.jsonl"), "--image-size", "8"], data)
    assert line == f"error: --image-size: {data} is a JSON Lines file, not images"
    hf = hf_folder(tmp_path / "hf", pa.table({"a": [1.0, 2.0] * 5, "label": [0, 1] * 5}), {})
    line = _refused(capsys, ["scan", str(hf), "--out", str(tmp_path / "s"), "--image-size", "8",
                             *FAST], hf)
    assert line == f"error: --image-size: {hf} has no image column"


def test_a_parquet_folder_is_still_read_as_partitions(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    frame = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 7, "label": [0, 1] * 20})
    frame.iloc[:20].to_parquet(folder / "p0.parquet")
    frame.iloc[20:].to_parquet(folder / "p1.parquet")
    _ok(capsys, ["scan", str(folder), "--out", str(tmp_path / "s"), *FAST])
    prov = json.loads((tmp_path / "s" / "report.json").read_text())["provenance"]
    assert prov["rows"] == 40
    (folder / "sub").mkdir()  # a subfolder beside Parquet files: still partitions, refused
    line = _refused(capsys, ["scan", str(folder), "--out", str(tmp_path / "s2"), *FAST], folder)
    assert "'sub', which is not a Parquet file" in line


def test_every_command_that_reads_images_takes_image_size(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A folder of mixed sizes is refused without --image-size and read with it by harden,
    certify, redteam and the monitor, as by scan, attack and gate."""
    from _formats_data import image_folder, png_bytes

    folder = image_folder(tmp_path / "digits", n_rows=120)
    (folder / "0" / "big.png").write_bytes(png_bytes(np.full((16, 16), 200, dtype=np.uint8)))
    assert main(["harden", str(folder), "--out", str(tmp_path / "m")]) == 2
    assert "--image-size" in capsys.readouterr().err
    runs = [["harden", str(folder), "--defense", "dpa", "--param", "n_partitions=5",
             "--out", str(tmp_path / "dpa")],
            ["certify", str(tmp_path / "dpa"), str(folder), "--out", str(tmp_path / "cert")],
            ["redteam", str(folder), "--attacks", "label-flip", "--budgets", "0.05",
             "--out", str(tmp_path / "rt")],
            ["monitor", "init", str(folder), "--out", str(tmp_path / "p.json")],
            ["monitor", "check", str(tmp_path / "p.json"), str(folder), "--no-history",
             "--out", str(tmp_path / "drift")]]
    for argv in runs:
        assert main([*argv, "--image-size", "8"]) == 0, (argv, capsys.readouterr().err)
    assert (tmp_path / "cert" / "certificates.csv").exists()
