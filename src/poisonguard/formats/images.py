"""Image folders: one sub-folder per class holding PNG or JPEG files.

``ROOT/CLASS/.../NAME.png``: the label of an image is the name of the class folder it is in (a
string), its id its path relative to ROOT (``cat/001.png``), and rows come in the order of those
paths (sorted by code point). Class folders may hold sub-folders. Names starting with ``.`` are
skipped; anything else that is not a ``.png``, ``.jpg`` or ``.jpeg`` file is refused by name, as
are folder links, file links that lead outside ROOT, files that are not regular files, a ROOT
without class folders and a class folder without images. Pixels are read by
:mod:`poisonguard.formats._pixels`.

A manifest hashes each image as a row of ``(id, label, file_sha256)``: the file's bytes, not
its pixels, so it needs no decoding, does not depend on ``--image-size`` and sees any change to
a file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.dataset import Dataset, Modality, Origin
from poisonguard.errors import InputError
from poisonguard.formats import _pixels
from poisonguard.formats._files import (
    MAX_DEPTH,
    Member,
    digest,
    inside,
    listing,
    new_folder,
    regular,
)

__all__ = ["image_chunks", "load_images", "members", "write_image_folder"]

_LAYOUT = ("an image folder holds one sub-folder per class of .png / .jpg / .jpeg files (names "
           "starting with '.' are skipped)")


def _check_roles(root: Path, label: str, id_col: str | None, source_col: str | None,
                 modality: Modality | None = None) -> None:
    for flag, given in (("--id-col", id_col), ("--source-col", source_col)):
        if given is not None:
            raise InputError(f"{flag} {given}: does not apply to the image folder {root} (ids are "
                             "the files' paths, labels their class folders' names)")
    if label != "label":
        raise InputError(f"--label {label}: does not apply to the image folder {root} (labels "
                         "are the class folders' names)")
    if modality not in (None, "image"):
        raise InputError(f"{root}: an image folder holds image data, not {modality} data")


def _images_below(root: Path, folder: Path, rel: str) -> Iterator[Member]:
    """Every image file below the class folder ``folder`` (checks in the module docstring)."""
    todo = [(folder, rel, 1)]
    while todo:
        here, prefix, depth = todo.pop()
        for entry in listing(here, "class folder"):
            name = f"{prefix}/{entry.name}"
            if entry.is_symlink():
                target = inside(root, entry)
                if target.is_dir():
                    raise InputError(f"{entry}: is a link to a folder; image folders are read "
                                     "without following folder links")
            if entry.is_dir():
                if depth >= MAX_DEPTH:
                    raise InputError(f"{entry}: folders nested more than {MAX_DEPTH} deep")
                todo.append((entry, name, depth + 1))
                continue
            if entry.suffix.lower() not in _pixels.IMAGE_SUFFIXES:
                raise InputError(f"{entry}: not a PNG or JPEG image; {_LAYOUT}")
            regular(entry, "an image file")
            yield Member(name, entry)


def members(root: str | Path) -> list[tuple[Member, str]]:
    """The images of an image folder with their class names, in row order; every file is
    registered as an input of the running command, and the folder too (nothing is written
    into it)."""
    from poisonguard.io import register_input

    top = Path(root)
    if not top.is_dir():
        raise InputError(f"{top}: no such folder")
    real = top.resolve()
    classes = []
    for entry in listing(top, "image folder"):
        if entry.is_symlink():
            inside(real, entry)
            if entry.is_dir():
                raise InputError(f"{entry}: is a link to a folder; image folders are read "
                                 "without following folder links")
        if not entry.is_dir():
            raise InputError(f"{entry}: a file beside the class folders; {_LAYOUT}")
        classes.append(entry)
    if not classes:
        raise InputError(f"{top}: no class folders; {_LAYOUT}")
    register_input(top)
    found: list[tuple[Member, str]] = []
    for folder in classes:
        images = list(_images_below(real, folder, folder.name))
        if not images:
            raise InputError(f"{folder}: a class folder with no images; {_LAYOUT}")
        found += [(m, folder.name) for m in images]
    found.sort(key=lambda pair: pair[0].rel)
    for m, _ in found:
        register_input(m.path)
    return found


def load_images(root: str | Path, *, label: str = "label", id_col: str | None = None,
                source_col: str | None = None, modality: Modality | None = None,
                image_size: tuple[int, int] | None = None) -> Dataset:
    """An image folder as an image :class:`Dataset` (module docstring); ``image_size``
    ``(height, width)`` resizes every image, else all must have one size."""
    top = Path(root)
    _check_roles(top, label, id_col, source_col, modality)
    found = members(top)
    headers = [_pixels.header(m.path, str(m.path)) for m, _ in found]
    shape = _pixels.plan(headers, [str(m.path) for m, _ in found], image_size, str(top))
    X = np.empty((len(found), *shape.cells), dtype=np.uint8)
    for i, ((m, _), hd) in enumerate(zip(found, headers, strict=True)):
        X[i] = _pixels.decode(m.path, str(m.path), hd, shape)
    y = np.asarray([c for _, c in found], dtype=str)
    ids = np.asarray([m.rel for m, _ in found], dtype=str)
    return Dataset(X, y, ids=ids, modality="image", name=top.name,
                   origin=Origin(path=str(top), format="images"))


def image_chunks(root: str | Path, *, label: str, id_col: str | None, source_col: str | None,
                 info: dict[str, Any], chunk_rows: int = 100_000) -> Iterator[Any]:
    """The rows of an image folder as :class:`~poisonguard.provenance.hashing.RowChunk` s of
    ``(id, label, file_sha256)``, each file read once; the folder's digest goes into
    ``info["sha256"]`` once they are all read."""
    from poisonguard.provenance.hashing import RowChunk, file_sha256

    top = Path(root)
    _check_roles(top, label, id_col, source_col)
    found = members(top)
    pairs = []
    for start in range(0, len(found), chunk_rows):
        part = found[start:start + chunk_rows]
        shas = [file_sha256(m.path) for m, _ in part]
        pairs += [(m.rel, sha) for (m, _), sha in zip(part, shas, strict=True)]
        yield RowChunk(start, np.asarray([m.rel for m, _ in part], dtype=object), None,
                       np.asarray([c for _, c in part], dtype=object),
                       (("file_sha256", np.asarray([f"sha256:{s}" for s in shas], dtype=object)),))
    info["sha256"] = digest(pairs)


_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")


def write_image_folder(ds: Dataset, out: str | Path) -> Path:
    """Write an image data set as a new image folder ``out/LABEL/ID.png`` (ids that are not
    plain file names become row numbers), whole or not at all; ``out`` must not exist. Values
    that are whole numbers in 0..255 are written as they are, values in [0, 1] scaled by 255."""
    target = Path(out)
    if ds.modality != "image":
        raise InputError(f"--out {target}: an image folder holds image data, not {ds.modality}")
    pixels = _pixels.as_uint8(ds.X, str(ds.name))
    if pixels.ndim == 4 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim == 4 and pixels.shape[-1] != 3:
        raise InputError(f"--out {target}: images with {pixels.shape[-1]} channels; PNG folders "
                         "take gray (h, w) or RGB (h, w, 3) images")
    labels = [str(v) for v in ds.y]
    bad = next((v for v in labels if not _SAFE.match(v)), None)
    if bad is not None:
        raise InputError(f"--out {target}: label {bad!r} cannot be a folder name")
    width = len(str(ds.n_rows - 1))
    named = not ds.has_default_ids and all(_SAFE.match(str(i)) for i in ds.ids)
    names = [f"{i}.png" if named else f"{k:0{width}d}.png" for k, i in enumerate(ds.ids)]
    with new_folder(target, "--out") as tmp:
        for lab, name, img in zip(labels, names, pixels, strict=True):
            (tmp / lab).mkdir(exist_ok=True)
            (tmp / lab / name).write_bytes(_pixels.encode_png(img))
    return target
