"""Hugging Face ``datasets`` folders written by ``Dataset.save_to_disk``, read without the
``datasets`` library.

Such a folder holds ``state.json`` (its ``_data_files`` list the Arrow files, in row order),
``dataset_info.json`` (``features``: the column types) and ``data-XXXXX-of-YYYYY.arrow`` files in
Arrow's streaming format, read by :mod:`poisonguard.formats._arrow`. Columns are the table's:
the label ``--label`` (a ``ClassLabel`` stays its integer), the id ``--id-col``, the source
``--source-col``. An ``Image`` column (a struct of ``bytes`` and ``path``) makes image data,
decoded from the bytes with :mod:`poisonguard.formats._pixels` (an image stored only as a path
is refused: no path from the data is ever opened); there may be one, and the other columns are
then not features. Without one, the columns are a table read as a Parquet file's is (one string
column: text). Nested columns (lists, e.g. token ids) are refused naming them, as in Parquet. A
``DatasetDict`` folder (``dataset_dict.json``) is refused naming its splits.

The folder's digest covers ``state.json``, ``dataset_info.json`` and its Arrow files
(:mod:`poisonguard.formats._files`); a manifest hashes each row's values, an image as the
SHA-256 of its bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.dataset import Dataset, Modality, Origin
from poisonguard.errors import InputError
from poisonguard.formats import _pixels
from poisonguard.formats._arrow import Stream, open_stream
from poisonguard.formats._files import digest, inside, regular, sha256_of

__all__ = ["DICT", "INFO", "STATE", "HFFolder", "hf_chunks", "load_hf", "open_folder",
           "refuse_dataset_dict"]

STATE, INFO, DICT = "state.json", "dataset_info.json", "dataset_dict.json"


def refuse_dataset_dict(root: Path) -> None:
    """Refuse a ``DatasetDict`` folder, naming the splits to choose from."""
    from poisonguard.io import read_json

    splits: Any = None
    with contextlib.suppress(InputError, AttributeError):  # the refusal names what it can
        splits = read_json(root / DICT, "Hugging Face dataset_dict.json").get("splits")
    named = [str(s) for s in splits] if isinstance(splits, list) else []
    which = f" with splits {', '.join(named)}" if named else ""
    example = f", e.g. {root / named[0]}" if named else ""
    raise InputError(f"{root}: is a Hugging Face DatasetDict{which}; give the folder of one "
                     f"split{example}")


@dataclass(frozen=True)
class HFFolder:
    """A checked ``save_to_disk`` folder: its Arrow streams in row order, the files its digest
    covers, its columns and its image column (None without one)."""

    root: Path
    streams: tuple[Stream, ...]
    files: tuple[tuple[str, Path], ...]
    names: tuple[str, ...]
    image: str | None

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.streams)

    def batches(self) -> Iterator[Any]:
        for stream in self.streams:
            yield from stream.batches()


def _data_files(root: Path, state: Any) -> list[Path]:
    where = f"{root / STATE}"
    if not isinstance(state, dict):
        raise InputError(f"{where}: not a datasets state file (a JSON object was expected)")
    if state.get("_indices_data_files"):
        raise InputError(f"{where}: the data set has an indices mapping (an old datasets "
                         "version); save it again with Dataset.flatten_indices().save_to_disk")
    entries = state.get("_data_files")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{where}: field '_data_files' must list the data files")
    paths, real = [], root.resolve()
    for entry in entries:
        name = entry.get("filename") if isinstance(entry, dict) else None
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
            raise InputError(f"{where}: a data file must be a file name in the folder (got "
                             f"{str(name)[:80]!r})")
        path = root / name
        if path.is_symlink():
            inside(real, path)
        if not path.exists():
            raise InputError(f"{path}: no such data file (listed in {STATE})")
        regular(path, "an Arrow data file")
        paths.append(path)
    return paths


def _is_image(field: Any, features: dict[str, Any]) -> bool:
    import pyarrow as pa

    declared = features.get(field.name)
    if isinstance(declared, dict) and declared.get("_type") == "Image":
        return True
    kind = field.type
    return bool(pa.types.is_struct(kind) and {kind.field(i).name for i in range(kind.num_fields)}
                == {"bytes", "path"})


def open_folder(root: str | Path) -> HFFolder:
    """Check a ``save_to_disk`` folder and open its streams (nothing decoded); every file read
    is registered as an input of the running command, and the folder too."""
    from poisonguard.io import _memory_bytes, _size, read_json, register_input

    top = Path(root)
    register_input(top)
    state = read_json(top / STATE, "Hugging Face state.json")
    info = read_json(top / INFO, "Hugging Face dataset_info.json")
    features = info.get("features") if isinstance(info, dict) else None
    features = features if isinstance(features, dict) else {}
    paths = _data_files(top, state)
    size = sum(p.stat().st_size for p in paths)
    if size > _memory_bytes():
        raise InputError(f"{top}: Arrow files of {_size(size)}, more than this machine's memory "
                         f"({_size(_memory_bytes())})")
    streams = []
    for p in paths:
        register_input(p)
        streams.append(open_stream(p))
    first = streams[0].schema
    for s in streams[1:]:
        if not s.schema.equals(first):
            raise InputError(f"{s.path}: its columns differ from those of {streams[0].path}")
    images = [f.name for f in first if _is_image(f, features)]
    if len(images) > 1:
        raise InputError(f"{top}: {len(images)} image columns ({', '.join(images)}); one is read")
    files = ((STATE, top / STATE), (INFO, top / INFO), *((p.name, p) for p in paths))
    return HFFolder(top, tuple(streams), files, tuple(first.names), images[0] if images else None)


def _check_roles(hf: HFFolder, label: str, id_col: str | None, source_col: str | None) -> None:
    from poisonguard.provenance.hashing import _check_columns

    _check_columns(list(hf.names), str(hf.root), label, id_col, source_col)


def load_hf(root: str | Path, *, label: str = "label", id_col: str | None = None,
            source_col: str | None = None, modality: Modality | None = None,
            image_size: tuple[int, int] | None = None) -> Dataset:
    """A ``save_to_disk`` folder as a :class:`Dataset` (module docstring)."""
    hf = open_folder(root)
    _check_roles(hf, label, id_col, source_col)
    if hf.image is None:
        if image_size is not None:
            raise InputError(f"--image-size: {hf.root} has no image column")
        return _table(hf, label, id_col, source_col, modality)
    if modality not in (None, "image"):
        raise InputError(f"{hf.root}: column '{hf.image}' holds images, not {modality} data")
    return _images(hf, label, id_col, source_col, image_size)


def _table(hf: HFFolder, label: str, id_col: str | None, source_col: str | None,
           modality: Modality | None) -> Dataset:
    import pyarrow as pa

    from poisonguard.io import _memory_bytes, _size, frame_dataset

    schema = hf.streams[0].schema
    for f in schema:
        kind = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if pa.types.is_nested(kind):
            raise InputError(f"{hf.root}: column '{f.name}' holds nested values ({kind}); nested "
                             "values are not supported as features, labels, ids or sources")
    need = hf.rows * max(len(schema), 1) * 8
    if need > _memory_bytes():
        raise InputError(f"{hf.root}: declares {hf.rows:,} rows of {len(schema)} columns (at "
                         f"least {_size(need)}), more than this machine's memory")
    table = pa.Table.from_batches(list(hf.batches()), schema=schema)
    if table.num_rows == 0:
        raise InputError(f"{hf.root}: no rows")
    frame = table.to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    return frame_dataset(frame, hf.root, "hf", label=label, id_col=id_col, source_col=source_col,
                         modality=modality)


def _role(values: Any, root: Path, start: int, column: str, role: str) -> list[Any]:
    """One batch's values of a role column; a missing label or id is refused naming the row."""
    out = values.to_pylist()
    if role in ("label", "id") and None in out:
        row = start + out.index(None)
        raise InputError(f"{root}: row {row}, column '{column}': {role} is missing")
    return list(out)


def _image_bytes(col: Any, j: int, where: str) -> Any:
    """Row ``j`` of an image struct column: its bytes (a zero-copy buffer)."""
    if not col[j].is_valid:
        raise InputError(f"{where}: the image is missing")
    data = col.field("bytes")[j]
    if not data.is_valid:
        path = col.field("path")[j].as_py()
        raise InputError(f"{where}: the image is stored as a path ({str(path)[:80]!r}), not bytes; "
                         "only images inside the Arrow files are read")
    return data.as_buffer()


def _images(hf: HFFolder, label: str, id_col: str | None, source_col: str | None,
            size: tuple[int, int] | None) -> Dataset:
    """Two passes over the image column: headers (and roles), then pixels."""
    assert hf.image is not None
    where = [f"{hf.root}: row {{}}, column '{hf.image}'".format(i) for i in range(hf.rows)]
    headers: list[_pixels.Header] = []
    roles: dict[str, list[Any]] = {"label": [], "id": [], "source": []}
    start = 0
    for batch in hf.batches():
        col = batch.column(hf.image)
        for j in range(len(batch)):
            headers.append(_pixels.header(bytes(_image_bytes(col, j, where[start + j])),
                                          where[start + j]))
        for role, name in (("label", label), ("id", id_col), ("source", source_col)):
            if name is not None:
                roles[role] += _role(batch.column(name), hf.root, start, name, role)
        start += len(batch)
    if not headers:
        raise InputError(f"{hf.root}: no rows")
    shape = _pixels.plan(headers, where[:len(headers)], size, str(hf.root))
    X = np.empty((len(headers), *shape.cells), dtype=np.uint8)
    i = 0
    for batch in hf.batches():
        col = batch.column(hf.image)
        for j in range(len(batch)):
            X[i] = _pixels.decode(bytes(_image_bytes(col, j, where[i])), where[i], headers[i], shape)
            i += 1
    origin = Origin(path=str(hf.root), format="hf", label=label, id_col=id_col,
                    source_col=source_col, columns=hf.names)
    try:
        return Dataset(X, np.asarray(roles["label"]), ids=roles["id"] or None,
                       sources=roles["source"] or None, modality="image", name=hf.root.name,
                       origin=origin)
    except InputError as exc:
        raise InputError(f"{hf.root}: {exc}") from None


def hf_chunks(root: str | Path, *, label: str, id_col: str | None, source_col: str | None,
              info: dict[str, Any], chunk_rows: int = 100_000) -> Iterator[Any]:
    """The rows of a ``save_to_disk`` folder as
    :class:`~poisonguard.provenance.hashing.RowChunk` s, an image as ``sha256:<hex>`` of its
    bytes; the folder's digest goes into ``info["sha256"]``."""
    import pyarrow as pa

    from poisonguard.provenance.hashing import chunk_from_frame, rows_per_chunk

    hf = open_folder(root)
    _check_roles(hf, label, id_col, source_col)
    info["sha256"] = digest((rel, sha256_of(p)) for rel, p in hf.files)
    step, start = rows_per_chunk(len(hf.names), chunk_rows), 0
    for batch in hf.batches():
        for at in range(0, len(batch), step):
            piece = batch.slice(at, step)
            table = pa.Table.from_batches([piece])
            if hf.image is not None:
                col = piece.column(hf.image)
                where = f"{hf.root}: row {{}}, column '{hf.image}'"
                shas = ["sha256:" + hashlib.sha256(
                    _image_bytes(col, j, where.format(start + j))).hexdigest()
                    for j in range(len(piece))]
                table = table.set_column(table.schema.get_field_index(hf.image), hf.image,
                                         pa.array(shas, pa.string()))
            frame = table.to_pandas()
            frame.columns = [str(c) for c in frame.columns]
            yield chunk_from_frame(frame, start, label=label, id_col=id_col,
                                   source_col=source_col, where=str(hf.root))
            start += len(frame)
