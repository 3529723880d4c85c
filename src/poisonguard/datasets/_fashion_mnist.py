"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist``, read from its IDX files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from poisonguard._validation import check_choice
from poisonguard.dataset import Dataset
from poisonguard.datasets._files import find_pinned
from poisonguard.datasets._subset import stratified_index
from poisonguard.errors import IntegrityError

__all__ = ["FASHION_MNIST_CLASSES", "load_fashion_mnist"]

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
"""Class names, indexed by label."""

_DIR = "usr/share/datasets/fashion-mnist"
_PINS = {
    "t10k-images-idx3-ubyte.gz":
        "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz":
        "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    "train-images-idx3-ubyte.gz":
        "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz":
        "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
}
_PREFIX = {"train": "train", "test": "t10k"}
_HINT = ("run `bash scripts/get-data.sh` (apt-get download dataset-fashion-mnist + dpkg -x into "
         "~/.local/share/poisonguard/root) or apt-get install dataset-fashion-mnist")
_UBYTE = 0x08  # IDX type code for unsigned bytes


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX array of unsigned bytes with ``ndim`` dimensions; magic and size are checked."""
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic != (_UBYTE << 8 | ndim):
        raise IntegrityError(f"'{path}' has IDX magic number {magic:#010x}, expected "
                             f"{_UBYTE << 8 | ndim:#010x} (unsigned bytes, {ndim} dimensions)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IntegrityError(f"'{path}' is too short to be an IDX file ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise IntegrityError(f"'{path}' holds {len(raw) - header} bytes of data, expected {size} "
                             f"for shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(split: str = "train", *, n_rows: int | None = None,
                       random_state: int = 0) -> Dataset:
    """Fashion-MNIST images: X uint8 ``(n, 28, 28)``, labels 0..9, ids like ``"train-0"``.

    ``split`` is ``"train"`` (60,000 rows) or ``"test"`` (10,000 rows); ``n_rows`` takes a
    seeded stratified subset. Every file is checked against its pinned SHA-256 first.
    Class names are in :data:`FASHION_MNIST_CLASSES`.

    Raises
    ------
    DependencyError
        The package's files are not installed; the message says how to get them.
    IntegrityError
        A file's SHA-256 differs from the pinned one.
    """
    check_choice("split", split, tuple(_PREFIX))
    labels_path, images_path = (
        find_pinned(f"{_DIR}/{fname}", _PINS[fname], what="Fashion-MNIST", hint=_HINT)
        for fname in (f"{_PREFIX[split]}-labels-idx1-ubyte.gz",
                      f"{_PREFIX[split]}-images-idx3-ubyte.gz"))
    y = _read_idx(labels_path, 1)
    X = _read_idx(images_path, 3)
    if len(X) != len(y):
        raise IntegrityError(f"'{images_path}' has {len(X)} images but '{labels_path}' has "
                             f"{len(y)} labels")
    if n_rows is not None:
        index = stratified_index(y, n_rows, random_state)
        X, y = X[index], y[index]
    else:
        index = np.arange(len(y))
    ids = np.char.add(f"{split}-", index.astype(str))
    return Dataset(X, y, ids=ids, modality="image", name="fashion_mnist")
