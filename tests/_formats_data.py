"""Small data in the formats users keep it in, written here without poisonguard's writers: PNG
class folders (Pillow), JSON Lines (json) and Hugging Face ``save_to_disk`` folders (pyarrow, in
the layout ``datasets`` writes: ``data-XXXXX-of-YYYYY.arrow`` streams, ``state.json`` listing them
under ``_data_files``, ``dataset_info.json`` with the features)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from PIL import Image

from poisonguard.datasets import load_dataset


def png_bytes(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(out, format=fmt)
    return out.getvalue()


def digits(n_rows: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits as uint8 images (values 0..16 scaled to 0..240) and int labels."""
    ds = load_dataset("digits", n_rows=n_rows, random_state=seed)
    return (np.asarray(ds.X) * 15).astype(np.uint8), np.asarray(ds.y)


def image_folder(root: Path, n_rows: int = 150, seed: int = 0) -> Path:
    """Digits as ``root/<label>/<row>.png``, grayscale 8x8."""
    X, y = digits(n_rows, seed)
    for i, (img, label) in enumerate(zip(X, y, strict=True)):
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        (root / str(label) / f"{i:04d}.png").write_bytes(png_bytes(img))
    return root


def sms_rows(n_rows: int = 120, seed: int = 0) -> list[dict[str, Any]]:
    """SMS-like messages: ``msg_id``, ``body`` and ``category`` (ham / spam)."""
    ds = load_dataset("synthetic_text", n_rows=n_rows, random_state=seed)
    return [{"msg_id": f"m{i:04d}", "body": str(t), "category": "spam" if y == "neg" else "ham"}
            for i, (t, y) in enumerate(zip(ds.X, ds.y, strict=True))]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def hf_folder(root: Path, table: pa.Table, features: dict[str, Any], *, files: int = 1,
              batch_rows: int = 40) -> Path:
    """``table`` saved as ``Dataset.save_to_disk`` saves it, in ``files`` shards."""
    root.mkdir(parents=True)
    meta = {"huggingface": json.dumps({"info": {"features": features}})}
    table = table.replace_schema_metadata(meta)
    bounds = np.linspace(0, table.num_rows, files + 1).astype(int)
    names = [f"data-{k:05d}-of-{files:05d}.arrow" for k in range(files)]
    for k, name in enumerate(names):
        with pa.OSFile(str(root / name), "wb") as sink, \
                pa.ipc.RecordBatchStreamWriter(sink, table.schema) as writer:
            writer.write_table(table.slice(bounds[k], bounds[k + 1] - bounds[k]),
                               max_chunksize=batch_rows)
    state = {"_data_files": [{"filename": n} for n in names], "_fingerprint": "0123456789abcdef",
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
             "_output_all_columns": False, "_split": None}
    (root / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True))
    info = {"citation": "", "description": "", "features": features, "homepage": "",
            "license": ""}
    (root / "dataset_info.json").write_text(json.dumps(info, indent=2))
    return root


def hf_images(root: Path, n_rows: int = 150, seed: int = 0, **kw: Any) -> Path:
    """Digits with an ``image`` column (struct of PNG bytes and a null path) and a ClassLabel."""
    X, y = digits(n_rows, seed)
    image = pa.StructArray.from_arrays([pa.array([png_bytes(x) for x in X], pa.binary()),
                                        pa.nulls(len(X), pa.string())], ["bytes", "path"])
    table = pa.table({"image": image, "label": pa.array(y, pa.int64())})
    features = {"image": {"_type": "Image"},
                "label": {"names": [str(k) for k in range(10)], "_type": "ClassLabel"}}
    return hf_folder(root, table, features, **kw)


def hf_text(root: Path, n_rows: int = 120, seed: int = 0, **kw: Any) -> Path:
    """SMS-like messages with ``msg_id``, ``body`` and a ClassLabel ``category`` (0 ham, 1 spam)."""
    rows = sms_rows(n_rows, seed)
    table = pa.table({"msg_id": [r["msg_id"] for r in rows], "body": [r["body"] for r in rows],
                      "category": pa.array([int(r["category"] == "spam") for r in rows], pa.int64())})
    features = {"msg_id": {"dtype": "string", "_type": "Value"},
                "body": {"dtype": "string", "_type": "Value"},
                "category": {"names": ["ham", "spam"], "_type": "ClassLabel"}}
    return hf_folder(root, table, features, **kw)


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file below ``path`` (or ``path`` itself) by relative name, with its bytes."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}
