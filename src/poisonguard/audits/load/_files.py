"""What every reader needs before it parses: its optional library, and the bytes of the model
file, checked (no link, a regular file, at most :data:`MODEL_MAX_BYTES`, not a pickle)."""

from __future__ import annotations

import importlib
import os
import stat
from pathlib import Path
from typing import Any

from poisonguard.errors import DependencyError, InputError

__all__ = ["MODEL_MAX_BYTES", "PICKLE_HINT", "model_file", "require"]

MODEL_MAX_BYTES = 2**30  # a model file read for an audit (1 GiB)
PICKLE_HINT = ("pickles can run code when loaded and are never read; save the model with "
               "safetensors, skops or ONNX")
_INSTALL = "pip install 'poisonguard[audit]'"


def require(module: str, what: str) -> Any:
    """``module`` imported, or a :class:`DependencyError` with the install hint."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DependencyError(f"{what} needs {module.split('.')[0]}: {_INSTALL}") from None


def model_file(path: Path, what: str) -> bytes:
    """The bytes of a model file: no link, a regular non-empty file of at most
    :data:`MODEL_MAX_BYTES`, read through one descriptor; pickles refused."""
    from poisonguard.io import register_input

    register_input(path)
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise InputError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise InputError(f"{path}: is a symbolic link; give the {what} itself")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file, expected a {what}")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise InputError(f"{path}: not a regular file, expected a {what}")
        if size == 0:
            raise InputError(f"{path}: file is empty, expected a {what}")
        if size > MODEL_MAX_BYTES:
            raise InputError(f"{path}: {size:,} bytes, over the {MODEL_MAX_BYTES:,} read for "
                             "a model file")
        data = fh.read(MODEL_MAX_BYTES + 1)
    if len(data) > MODEL_MAX_BYTES:
        raise InputError(f"{path}: grew past {MODEL_MAX_BYTES:,} bytes while read")
    _refuse_pickle(data, path)
    return data


def _refuse_pickle(data: bytes, path: Path) -> None:
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        raise InputError(f"{path}: is a pickle file; {PICKLE_HINT}")
    if data[:4] == b"PK\x03\x04":
        import io as _io
        import zipfile

        try:
            with zipfile.ZipFile(_io.BytesIO(data)) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return
        if any(n == "data.pkl" or n.endswith("/data.pkl") or n.endswith(".pkl") for n in names):
            raise InputError(f"{path}: is a PyTorch / pickle archive; {PICKLE_HINT}")
