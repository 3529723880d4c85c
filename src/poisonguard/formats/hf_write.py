"""Write a data set as a Hugging Face ``save_to_disk`` folder (without the ``datasets`` library),
in the layout :mod:`poisonguard.formats.hf` reads and ``datasets.load_from_disk`` loads: one
``data-00000-of-00001.arrow`` stream, ``state.json`` and ``dataset_info.json``.

Columns: ``image`` (an ``Image`` feature: PNG bytes) for image data, ``text`` for text, the
feature names for tabular data; ``label`` (a ``ClassLabel`` over the sorted class names when the
labels are strings, integers otherwise); ``id`` and ``source`` when the data set has them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.formats import _pixels
from poisonguard.formats._files import new_folder
from poisonguard.formats.hf import INFO, STATE

__all__ = ["write_hf"]

_DATA = "data-00000-of-00001.arrow"
_STRING = {"dtype": "string", "_type": "Value"}


def _columns(ds: Dataset) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Arrow arrays and the ``datasets`` features of each column."""
    import pyarrow as pa

    arrays: dict[str, Any] = {}
    features: dict[str, Any] = {}
    if ds.modality == "image":
        pixels = _pixels.as_uint8(ds.X, ds.name)
        if pixels.ndim == 4 and pixels.shape[-1] == 1:
            pixels = pixels[..., 0]
        pngs = [_pixels.encode_png(img) for img in pixels]
        arrays["image"] = pa.StructArray.from_arrays(
            [pa.array(pngs, pa.binary()), pa.nulls(len(pngs), pa.string())], ["bytes", "path"])
        features["image"] = {"_type": "Image"}
    elif ds.modality == "text":
        arrays["text"] = pa.array([str(t) for t in ds.X], pa.string())
        features["text"] = _STRING
    else:
        table = pa.Table.from_pandas(ds.frame(), preserve_index=False)
        for name in table.column_names:
            arrays[name] = table.column(name)
            features[name] = {"dtype": str(table.schema.field(name).type), "_type": "Value"}
    if ds.y.dtype.kind in "iu":
        arrays["label"] = pa.array(ds.y, pa.int64())
        features["label"] = {"dtype": "int64", "_type": "Value"}
    else:
        names = sorted(str(c) for c in ds.classes)
        codes = np.searchsorted(np.asarray(names), ds.y.astype(str))
        arrays["label"] = pa.array(codes, pa.int64())
        features["label"] = {"names": names, "_type": "ClassLabel"}
    if not ds.has_default_ids:
        arrays["id"], features["id"] = pa.array(ds.ids.tolist(), pa.string()), _STRING
    if ds.sources is not None:
        arrays["source"], features["source"] = pa.array(ds.sources.tolist(), pa.string()), _STRING
    return arrays, features


def write_hf(ds: Dataset, out: str | Path) -> Path:
    """Write ``ds`` as a new ``save_to_disk`` folder ``out`` (module docstring), whole or not
    at all; ``out`` must not exist."""
    import pyarrow as pa

    target = Path(out)
    if set(ds.feature_names) & {"label", "id", "source"} and ds.modality == "tabular":
        raise InputError(f"--out {target}: a feature is named label, id or source")
    arrays, features = _columns(ds)
    meta = {"huggingface": json.dumps({"info": {"features": features}})}
    table = pa.table(arrays).replace_schema_metadata(meta)
    fingerprint = hashlib.sha256(str(sorted(features)).encode() + ds.ids.tobytes()).hexdigest()[:16]
    state: dict[str, Any] = {"_data_files": [{"filename": _DATA}], "_fingerprint": fingerprint,
             "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
             "_output_all_columns": False, "_split": None}
    info = {"builder_name": None, "citation": "", "config_name": None, "dataset_name": None,
            "dataset_size": None, "description": "", "download_checksums": None,
            "download_size": None, "features": features, "homepage": "", "license": "",
            "size_in_bytes": None, "splits": None, "supervised_keys": None, "version": None}
    with new_folder(target, "--out") as tmp:
        with pa.OSFile(str(tmp / _DATA), "wb") as sink, \
                pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=1000)
        (tmp / STATE).write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
        (tmp / INFO).write_text(json.dumps(info, indent=2), encoding="utf-8")
    return target
