"""Data where users keep it: image folders, JSON Lines, Hugging Face ``save_to_disk`` folders,
pandas DataFrames and torch datasets, read into the one :class:`~poisonguard.dataset.Dataset`.

:func:`poisonguard.io.load` hands a path to :func:`load` when :func:`detect` names its kind:

* ``jsonl``: a ``.jsonl`` / ``.ndjson`` file (:mod:`~poisonguard.formats.jsonl`);
* ``hf``: a folder with ``state.json`` or ``dataset_info.json`` (:mod:`~poisonguard.formats.hf`);
  a folder with only ``dataset_dict.json`` is refused naming its splits;
* ``images``: a folder without ``*.parquet`` files directly in it that holds sub-folders or
  image files (:mod:`~poisonguard.formats.images`).

Any other folder (``*.parquet`` files) stays a folder of Parquet partitions
(:mod:`poisonguard.provenance.partitions`).

Writing: JSON Lines is a format of :func:`poisonguard.io.save` (``.jsonl``), whose copies of
unchanged rows keep their lines byte for byte. Data read from a folder is never written back
into a folder by a command: image data goes to ``.npz`` (``attack --out``, ``scan
--write-clean``, ``gate --accepted``, which for a Hugging Face folder without images is
``.parquet``); no output may land inside an input folder. ``datasets export --format images|hf``
writes new folders (:func:`write_folder`).

Provenance: a manifest and a scan's ``provenance`` hash these as :func:`row_chunks` says, with
the SHA-256 of a file or, for a folder, the digest of its files
(:mod:`~poisonguard.formats._files`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from poisonguard.dataset import Dataset, Modality
from poisonguard.errors import InputError
from poisonguard.formats._files import folder_stamp
from poisonguard.formats._pixels import parse_image_size
from poisonguard.formats.python import from_frame, from_torch

__all__ = ["FOLDER_KINDS", "JSONL_SUFFIXES", "Kind", "data_sha256", "detect", "folder_stamp",
           "from_frame", "from_torch", "is_dataset_folder", "load", "parse_image_size",
           "row_chunks", "rows_format", "save_rows", "write_folder"]

Kind = Literal["images", "hf", "jsonl"]
FOLDER_KINDS: tuple[Kind, ...] = ("images", "hf")
JSONL_SUFFIXES = (".jsonl", ".ndjson")


def detect(path: str | Path) -> Kind | None:
    """What ``path`` holds when :mod:`poisonguard.formats` reads it (module docstring), else
    None; a ``DatasetDict`` folder raises :class:`InputError` naming its splits."""
    from poisonguard.formats import hf
    from poisonguard.formats._files import listing
    from poisonguard.formats._pixels import IMAGE_SUFFIXES

    p = Path(path)
    if not p.is_dir():
        return "jsonl" if p.suffix.lower() in JSONL_SUFFIXES else None
    entries = listing(p, "folder")
    names = {e.name for e in entries}
    if names & {hf.STATE, hf.INFO}:
        return "hf"
    if hf.DICT in names:
        hf.refuse_dataset_dict(p)
    if any(e.suffix.lower() == ".parquet" for e in entries):
        return None
    if any(e.is_dir() or e.suffix.lower() in IMAGE_SUFFIXES for e in entries):
        return "images"
    return None


def is_dataset_folder(path: str | Path) -> bool:
    """Whether ``path`` is an image or Hugging Face folder (not Parquet partitions)."""
    return Path(path).is_dir() and detect(path) in FOLDER_KINDS


def load(path: str | Path, kind: Kind, *, label: str = "label", id_col: str | None = None,
         source_col: str | None = None, modality: Modality | None = None,
         image_size: tuple[int, int] | None = None) -> Dataset:
    """Read ``path`` of kind ``kind`` (:func:`detect`) as a :class:`Dataset`."""
    from poisonguard.formats.hf import load_hf
    from poisonguard.formats.images import load_images
    from poisonguard.formats.jsonl import load_jsonl

    roles: dict[str, Any] = {"label": label, "id_col": id_col, "source_col": source_col,
                             "modality": modality}
    if kind == "images":
        return load_images(path, image_size=image_size, **roles)
    if kind == "hf":
        return load_hf(path, image_size=image_size, **roles)
    if image_size is not None:
        raise InputError(f"--image-size: {path} is a JSON Lines file, not images")
    return load_jsonl(path, **roles)


def row_chunks(path: str | Path, kind: Kind, *, label: str, id_col: str | None,
               source_col: str | None, info: dict[str, Any], chunk_rows: int) -> Iterator[Any]:
    """The rows of ``path`` as :class:`~poisonguard.provenance.hashing.RowChunk` s for row
    hashing: JSON Lines rows as their values (as a CSV row's are), an image folder's images as
    ``(id = relative path, label = class, file_sha256)``, a Hugging Face folder's rows as their
    values with an image as the SHA-256 of its bytes. A folder's digest goes into
    ``info["sha256"]`` (a file's is the engine's)."""
    from poisonguard.formats.hf import hf_chunks
    from poisonguard.formats.images import image_chunks
    from poisonguard.formats.jsonl import jsonl_chunks

    roles: dict[str, Any] = {"label": label, "id_col": id_col, "source_col": source_col,
                             "chunk_rows": chunk_rows}
    if kind == "images":
        return image_chunks(path, info=info, **roles)
    if kind == "hf":
        return hf_chunks(path, info=info, **roles)
    return jsonl_chunks(path, **roles)


def data_sha256(path: str | Path) -> str:
    """SHA-256 of a data file, or the digest of an image or Hugging Face folder's files."""
    from poisonguard.formats._files import digest, sha256_of
    from poisonguard.formats.hf import open_folder
    from poisonguard.formats.images import members

    p = Path(path)
    kind = detect(p) if p.is_dir() else None
    if kind == "images":
        return digest((m.rel, sha256_of(m.path)) for m, _ in members(p))
    if kind == "hf":
        return digest((rel, sha256_of(f)) for rel, f in open_folder(p).files)
    return sha256_of(p)


def rows_format(path: str | Path) -> str:
    """The format copies of rows of ``path`` are written in (``gate --accepted``): a file's own,
    ``npz`` for image data from a folder, ``parquet`` for other Hugging Face data."""
    from poisonguard import io

    p = Path(path)
    kind = detect(p) if p.is_dir() else None
    if kind == "images":
        return "npz"
    if kind == "hf":
        from poisonguard.formats.hf import open_folder

        return "npz" if open_folder(p).image is not None else "parquet"
    return io.file_format(p)


def save_rows(ds: Dataset, rows: Any, path: str | Path) -> Path:
    """Rows ``rows`` of ``ds`` (read from a folder) saved to ``path`` in its extension's format;
    with no rows, an empty file of that format (NPZ: empty arrays of the images' shape)."""
    import numpy as np

    from poisonguard import io

    idx = np.asarray(rows, dtype=np.int64)
    if len(idx):
        return io.save(ds.take(idx), path)
    fmt = io.file_format(path)
    with io.atomic_path(path) as tmp:
        if fmt == "npz":
            with tmp.open("wb") as fh:
                np.savez(fh, X=np.empty((0, *np.shape(ds.X)[1:]), dtype=np.asarray(ds.X).dtype),
                         y=ds.y[:0], ids=ds.ids[:0])
        elif fmt == "jsonl":
            tmp.write_bytes(b"")
        else:  # the columns a copy of rows has, and no rows
            empty = io._to_frame(ds.take([0])).iloc[:0]
            if fmt == "csv":
                empty.to_csv(tmp, index=False)
            else:
                empty.to_parquet(tmp, index=False)
    return Path(path)


def write_folder(ds: Dataset, out: str | Path, kind: Kind) -> Path:
    """Write ``ds`` as a new image folder (``kind`` ``images``) or Hugging Face folder
    (``hf``) at ``out``."""
    from poisonguard.formats.hf_write import write_hf
    from poisonguard.formats.images import write_image_folder

    if kind == "images":
        return write_image_folder(ds, out)
    if kind == "hf":
        return write_hf(ds, out)
    raise InputError(f"--format {kind}: not a folder format (images, hf)")
