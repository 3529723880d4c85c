"""poisonguard.formats: image folders, JSON Lines, Hugging Face save_to_disk folders, DataFrames
and torch datasets read into one Dataset, with the same typing, ids and checks as CSV files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from _formats_data import (
    digits,
    hf_folder,
    hf_images,
    hf_text,
    image_folder,
    png_bytes,
    sms_rows,
    write_jsonl,
)
from poisonguard import formats, io
from poisonguard.attacks import LabelFlip
from poisonguard.errors import DependencyError, InputError
from poisonguard.provenance import manifest as mf
from poisonguard.scan import scan


# ----------------------------------------------------------------------------- detection
def test_detect_tells_the_kinds_apart_from_parquet_partitions(tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1]}).to_parquet(parts / "p0.parquet")
    assert formats.detect(parts) is None and not formats.is_dataset_folder(parts)
    assert formats.detect(image_folder(tmp_path / "img", 20)) == "images"
    assert formats.detect(hf_text(tmp_path / "hf", 20)) == "hf"
    assert formats.detect(tmp_path / "x.jsonl") == "jsonl"
    assert formats.detect(tmp_path / "x.NDJSON") == "jsonl"
    assert formats.detect(tmp_path / "x.csv") is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert formats.detect(empty) is None  # partitions' own error: no *.parquet files


def test_a_dataset_dict_is_refused_naming_its_splits(tmp_path: Path) -> None:
    root = tmp_path / "dd"
    hf_text(root / "train", 20)
    hf_text(root / "test", 20)
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    with pytest.raises(InputError, match=r"is a Hugging Face DatasetDict with splits train, test; "
                                         r"give the folder of one split, e\.g\. .*dd/train$"):
        io.load(root)


# ----------------------------------------------------------------------------- image folders
def test_an_image_folder_reads_as_gray_images_with_paths_as_ids(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "digits", 60)
    X, y = digits(60)
    ds = io.load(root)
    assert ds.modality == "image" and ds.X.dtype == np.uint8 and ds.X.shape == (60, 8, 8)
    order = sorted(range(60), key=lambda i: f"{y[i]}/{i:04d}.png")
    assert ds.ids.tolist() == [f"{y[i]}/{i:04d}.png" for i in order]
    assert ds.y.tolist() == [str(y[i]) for i in order]  # class folder names
    np.testing.assert_array_equal(ds.X, X[order])
    assert ds.origin is not None and ds.origin.format == "images"


def test_one_color_image_makes_the_folder_rgb_and_resizing_is_deterministic(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "digits", 30)
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    (root / "3" / "zz.jpg").write_bytes(png_bytes(rgb, "JPEG"))
    ds = io.load(root)
    assert ds.X.shape == (31, 8, 8, 3)
    gray = ds.X[0]
    assert np.array_equal(gray[..., 0], gray[..., 1])  # grayscale repeated in the channels
    big = io.load(root, image_size=(16, 12))
    assert big.X.shape == (31, 16, 12, 3)
    assert np.array_equal(big.X, io.load(root, image_size=(16, 12)).X)


def test_images_of_two_sizes_name_the_first_that_differs(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "digits", 30)
    odd = root / "5" / "odd.png"
    odd.write_bytes(png_bytes(np.zeros((9, 8), dtype=np.uint8)))
    first = sorted(root.rglob("*.png"))[0]
    with pytest.raises(InputError) as err:
        io.load(root)
    assert str(err.value) == (f"{odd}: is 9x8 pixels (height x width) but {first} is 8x8; all "
                              "images must have one size, or give --image-size H or HxW to "
                              "resize them")
    assert io.load(root, image_size=(8, 8)).n_rows == 31


def test_an_image_folder_feeds_scan_and_attacks(tmp_path: Path) -> None:
    ds = io.load(image_folder(tmp_path / "digits", 120))
    poisoned = LabelFlip(rate=0.1).poison(ds, rng=np.random.default_rng(0)).dataset
    report = scan(poisoned, detectors=["label", "neighbors"], random_state=0)
    assert report.table["row_id"].tolist() == ds.ids.tolist()


def test_export_writes_an_image_folder_that_reads_back(tmp_path: Path) -> None:
    from poisonguard.datasets import load_dataset

    ds = load_dataset("digits", n_rows=50, random_state=0)
    formats.write_folder(ds, tmp_path / "out", "images")
    back = io.load(tmp_path / "out")
    by_id = dict(zip(ds.ids, ds.X, strict=True))
    for rel, img in zip(back.ids, back.X, strict=True):
        np.testing.assert_array_equal(img, by_id[rel.split("/")[1].removesuffix(".png")])
    with pytest.raises(InputError, match="exists; a data folder is written to a new folder"):
        formats.write_folder(ds, tmp_path / "out", "images")


# ----------------------------------------------------------------------------- JSON Lines
def test_jsonl_text_reads_like_the_same_csv(tmp_path: Path) -> None:
    rows = sms_rows(40)
    data = write_jsonl(tmp_path / "sms.jsonl", rows)
    pd.DataFrame(rows).to_csv(tmp_path / "sms.csv", index=False)
    ds = io.load(data, label="category", id_col="msg_id")
    ref = io.load(tmp_path / "sms.csv", label="category", id_col="msg_id")
    assert ds.modality == "text" and list(ds.X) == list(ref.X) and list(ds.y) == list(ref.y)
    assert ds.ids.tolist() == ref.ids.tolist()
    roles = {"label": "category", "id_col": "msg_id"}
    assert mf.fingerprint(data, **roles)["merkle_root"] == \
        mf.fingerprint(tmp_path / "sms.csv", **roles)["merkle_root"]


def test_jsonl_tables_missing_fields_and_errors_name_the_line(tmp_path: Path) -> None:
    data = tmp_path / "t.jsonl"
    data.write_text('{"a": 1, "b": "x", "label": 0}\n\n{"a": 2.5, "label": 1}\n'
                    '{"a": 3, "b": "y", "label": 0}\n{"a": 4, "b": "x", "label": 1}\n')
    ds = io.load(data)
    assert ds.modality == "tabular" and ds.feature_names == ("a", "b") and ds.n_rows == 4
    assert pd.isna(ds.X["b"].iloc[1])  # the field line 3 lacks is missing there
    data.write_text('{"a": 1, "label": 0}\n{"a": "oops", "label": 1}\n' +
                    "".join(f'{{"a": {i}, "label": {i % 2}}}\n' for i in range(20)))
    with pytest.raises(InputError, match=r"t\.jsonl: row 1 \(line 2\), column 'a': 'oops' is not "
                                         r"a number"):
        io.load(data)
    data.write_text('{"a": 1, "label": 0}\n{"a": 2}\n')
    with pytest.raises(InputError, match=r"row 1 \(line 2\), column 'label': label is missing"):
        io.load(data)


def test_jsonl_copies_keep_untouched_lines_byte_for_byte(tmp_path: Path) -> None:
    data = tmp_path / "sms.jsonl"
    data.write_text("".join(json.dumps(r, indent=None, separators=(", ", ":")) + "\n"
                            for r in sms_rows(40)))
    ds = io.load(data, label="category", id_col="msg_id")
    result = LabelFlip(rate=0.1).poison(ds, rng=np.random.default_rng(0))
    import dataclasses

    out = result.dataset.replace(origin=dataclasses.replace(
        ds.origin, file_rows=np.where(~result.mask, result.source_index, -1)))
    io.save(out, tmp_path / "out.jsonl")
    lines, before = (tmp_path / "out.jsonl").read_text().splitlines(), data.read_text().splitlines()
    assert [a == b for a, b in zip(lines, before, strict=True)] == (~result.mask).tolist()
    back = io.load(tmp_path / "out.jsonl", label="category", id_col="msg_id")
    assert back.y.tolist() == result.dataset.y.tolist()
    io.write_rows(data, np.array([3, 0]), tmp_path / "two.jsonl")
    assert (tmp_path / "two.jsonl").read_text().splitlines() == [before[3], before[0]]


# ----------------------------------------------------------------------------- Hugging Face
def test_hf_images_read_from_their_bytes_over_several_shards(tmp_path: Path) -> None:
    X, y = digits(90)
    ds = io.load(hf_images(tmp_path / "hf", 90, files=3))
    assert ds.modality == "image" and ds.X.dtype == np.uint8
    np.testing.assert_array_equal(ds.X, X)
    assert ds.y.tolist() == y.tolist() and ds.has_default_ids


def test_hf_text_reads_with_roles_and_types(tmp_path: Path) -> None:
    ds = io.load(hf_text(tmp_path / "hf", 50), label="category", id_col="msg_id")
    rows = sms_rows(50)
    assert ds.modality == "text" and list(ds.X) == [r["body"] for r in rows]
    assert ds.y.tolist() == [int(r["category"] == "spam") for r in rows]
    assert ds.ids.tolist() == [r["msg_id"] for r in rows]


def test_hf_tabular_columns(tmp_path: Path) -> None:
    table = pa.table({"x1": [0.5, 1.5, 2.5, 3.5] * 5, "kind": ["a", "b"] * 10,
                      "label": [0, 1, 0, 1] * 5})
    features = {"x1": {"dtype": "float64", "_type": "Value"},
                "kind": {"dtype": "string", "_type": "Value"},
                "label": {"dtype": "int64", "_type": "Value"}}
    ds = io.load(hf_folder(tmp_path / "hf", table, features))
    assert ds.modality == "tabular" and ds.feature_names == ("x1", "kind") and ds.is_frame


def test_hf_export_reads_back(tmp_path: Path) -> None:
    from poisonguard.datasets import load_dataset

    ds = load_dataset("synthetic_text", n_rows=30, random_state=0)
    formats.write_folder(ds.replace(ids=[f"r{i}" for i in range(30)]), tmp_path / "hf", "hf")
    back = io.load(tmp_path / "hf", id_col="id")
    assert list(back.X) == list(ds.X) and back.ids.tolist() == [f"r{i}" for i in range(30)]
    assert back.y.tolist() == [["neg", "pos"].index(v) for v in ds.y]  # a ClassLabel


# ----------------------------------------------------------------------------- digests
def test_manifests_hash_image_files_not_pixels_and_see_every_change(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "digits", 40)
    first = mf.fingerprint(root)
    assert first["rows"] == 40 and first["keyed"] == "id" and len(first["sha256"]) == 64
    assert mf.fingerprint(root) == first  # deterministic
    victim = sorted(root.rglob("*.png"))[5]
    img = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(victim)).copy()
    img[0, 0] ^= 1
    victim.write_bytes(png_bytes(img))
    second = mf.fingerprint(root)
    assert second["sha256"] != first["sha256"] and second["merkle_root"] != first["merkle_root"]
    table, _, names, _ = mf.collect(str(root))
    assert names == ["file_sha256"] and table.n_rows == 40


def test_folder_digest_is_sha256sum_of_the_files_in_path_order(tmp_path: Path) -> None:
    import hashlib

    root = image_folder(tmp_path / "digits", 12)
    files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob("*.png"))
    text = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {rel}\n" for rel, p in files)
    assert formats.data_sha256(root) == hashlib.sha256(text.encode()).hexdigest()
    assert mf.fingerprint(root)["sha256"] == formats.data_sha256(root)


def test_folder_stamp_changes_when_a_file_changes(tmp_path: Path) -> None:
    root = image_folder(tmp_path / "digits", 12)
    before = io.file_stamp(root)
    victim = sorted(root.rglob("*.png"))[0]
    os.utime(victim, ns=(victim.stat().st_atime_ns, victim.stat().st_mtime_ns + 10**9))
    assert io.file_stamp(root) != before


# ----------------------------------------------------------------------------- from Python
def test_from_frame_reads_as_the_same_csv(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": ["1", "2"] * 5, "when": ["2024-01-02"] * 10,
                          "label": [0, 1] * 5, "id": [f"r{i}" for i in range(10)]})
    frame.to_csv(tmp_path / "f.csv", index=False)
    ds = formats.from_frame(frame, id_col="id")
    ref = io.load(tmp_path / "f.csv", id_col="id")
    np.testing.assert_array_equal(ds.X, ref.X)
    assert ds.ids.tolist() == ref.ids.tolist() and ds.origin is not None
    assert ds.origin.dates == ref.origin.dates
    bad = frame[["a", "label"]].assign(a=["1"] * 9 + ["oops"]).set_index(np.arange(10, 20))
    with pytest.raises(InputError, match=r"^frame: row 9, column 'a': 'oops' is not a number"):
        formats.from_frame(bad)  # rows are positions, whatever the index
    with pytest.raises(InputError, match="from_frame takes a pandas DataFrame"):
        formats.from_frame(np.eye(3))


@pytest.fixture
def stub_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in ``torch`` module (importing the real one takes seconds): items that are numpy
    arrays go through the same path as tensors once converted."""
    import sys
    import types

    stub = types.ModuleType("torch")
    stub.Tensor = type("Tensor", (), {})  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torch", stub)


class _Items:
    """A map-style dataset of ``(x, y)`` pairs."""

    def __init__(self, xs: list[object], ys: list[object]) -> None:
        self.xs, self.ys = xs, ys

    def __len__(self) -> int:
        return len(self.xs)

    def __getitem__(self, i: int) -> tuple[object, object]:
        return self.xs[i], self.ys[i]


@pytest.mark.usefixtures("stub_torch")
def test_from_torch_shapes_and_refusals() -> None:
    X, y = digits(20)
    ds = formats.from_torch(_Items([x[None] for x in X], list(y)))  # (1, h, w) as torch has it
    assert ds.modality == "image" and ds.X.shape == (20, 8, 8)
    np.testing.assert_array_equal(ds.X, X)
    assert formats.from_torch(_Items([np.zeros((3, 5, 6))] * 4, [0, 1] * 2)).X.shape == (4, 5, 6, 3)
    assert formats.from_torch(_Items(["a b", "c d"] * 3, ["x", "y"] * 3)).modality == "text"
    with pytest.raises(InputError, match="more than max_rows=5"):
        formats.from_torch(_Items([np.zeros(3)] * 10, [0] * 10), max_rows=5)
    with pytest.raises(InputError, match=r"^item 2: x is shape \(5,\) but item 0 is shape \(4,\)$"):
        formats.from_torch(_Items([np.zeros(4), np.zeros(4), np.zeros(5)], [0, 1, 0]))
    with pytest.raises(InputError, match=r"^item 1: expected an \(x, y\) pair, got tuple of 3$"):
        formats.from_torch([(np.zeros(2), 0), (np.zeros(2), 0, 1)])
    with pytest.raises(InputError, match="has no length"):
        formats.from_torch(iter([(np.zeros(2), 0)]))


@pytest.mark.slow
def test_from_torch_images_and_tables() -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data import TensorDataset

    X, y = digits(40)
    chw = torch.tensor(X[:, None, :, :], dtype=torch.float32) / 255
    ds = formats.from_torch(TensorDataset(chw, torch.tensor(y)))
    assert ds.modality == "image" and ds.X.shape == (40, 8, 8) and ds.y.tolist() == y.tolist()
    rgb = formats.from_torch(TensorDataset(torch.zeros(4, 3, 5, 6), torch.tensor([0, 1, 0, 1])))
    assert rgb.X.shape == (4, 5, 6, 3)
    tab = formats.from_torch(TensorDataset(torch.randn(10, 3), torch.arange(10) % 2))
    assert tab.modality == "tabular" and tab.X.shape == (10, 3)
    with pytest.raises(InputError, match="more than max_rows=5"):
        formats.from_torch(TensorDataset(torch.randn(10, 3), torch.arange(10)), max_rows=5)

    class Ragged(torch.utils.data.Dataset):  # type: ignore[misc]
        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int) -> tuple[object, int]:
            return torch.zeros(4 + (i == 2)), 0

    with pytest.raises(InputError, match=r"^item 2: x is shape \(5,\) but item 0 is shape \(4,\)$"):
        formats.from_torch(Ragged())
    poisoned = LabelFlip(rate=0.1).poison(ds, rng=np.random.default_rng(0)).dataset
    assert scan(poisoned, detectors=["label"], random_state=0).table.shape[0] == 40


def test_from_torch_without_torch_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(DependencyError, match=r"pip install 'poisonguard\[torch\]'"):
        formats.from_torch([(np.zeros(3), 0)])


def test_the_package_surface_and_its_examples() -> None:
    import doctest

    from poisonguard.formats import python

    assert formats.__all__ == sorted(formats.__all__)
    assert all(hasattr(formats, name) for name in formats.__all__)
    assert doctest.testmod(python, raise_on_error=True).attempted >= 1


def test_a_frame_feeds_attacks_and_scan() -> None:
    X, y = digits(80)
    frame = pd.DataFrame(X.reshape(80, -1).astype(float), columns=[f"p{j}" for j in range(64)])
    ds = formats.from_frame(frame.assign(label=y, id=[f"r{i}" for i in range(80)]), id_col="id")
    poisoned = LabelFlip(rate=0.1).poison(ds, rng=np.random.default_rng(0))
    report = scan(poisoned.dataset, detectors=["label"], random_state=0)
    assert report.table["row_id"].tolist() == [f"r{i}" for i in range(80)]


def test_arrow_file_format_and_dictionary_columns_read(tmp_path: Path) -> None:
    table = pa.table({"kind": pa.array(["a", "b", "c"] * 8).dictionary_encode(),
                      "x": np.arange(24.0), "label": [0, 1] * 12})
    root = hf_folder(tmp_path / "hf", table, {})
    shard = root / "data-00000-of-00001.arrow"
    with pa.OSFile(str(shard), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=5)  # the IPC file format: a stream and a footer
    ds = io.load(root)
    assert ds.n_rows == 24 and list(ds.X["kind"][:4]) == ["a", "b", "c", "a"]
    with pa.OSFile(str(shard), "wb") as sink, pa.ipc.new_stream(
            sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table, max_chunksize=5)
    with pytest.raises(InputError, match="holds compressed Arrow record batches"):
        io.load(root)
