"""A manifest's sidecar file: its name, and writing it so the manifest pair is replaced as one.

``M.json``'s rows live in ``M.rows.<first 16 hex digits of their SHA-256>.parquet``: written
under a random temporary name (``O_EXCL``), flushed, renamed, and the folder flushed, before the
manifest that names it is written; the sidecar the replaced manifest named is removed only
after that, and only when it is ours.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from poisonguard.errors import InputError
from poisonguard.provenance.hashing import file_sha256

__all__ = ["bare_name", "is_sidecar_of", "previous_sidecar", "remove_old_sidecar",
           "sidecar_name", "write_sidecar"]


def _stem(manifest_path: Path) -> str:
    return manifest_path.name[:-5] if manifest_path.name.endswith(".json") else manifest_path.name


def sidecar_name(manifest_path: str | Path, sha256: str) -> str:
    """``M.json`` and the sidecar's SHA-256 -> ``M.rows.<first 16 hex digits>.parquet``."""
    return f"{_stem(Path(manifest_path))}.rows.{sha256[:16]}.parquet"


def is_sidecar_of(manifest_path: str | Path, name: str) -> bool:
    """Whether ``name`` is a sidecar name this version or the last one gives ``M.json``'s rows
    (``M.rows.<16 hex>.parquet``, or ``M.rows.parquet``)."""
    stem = re.escape(_stem(Path(manifest_path)))
    return re.fullmatch(stem + r"\.rows(\.[0-9a-f]{16})?\.parquet", name) is not None


def bare_name(name: str) -> bool:
    """A file name with no folder part: no separator, not ``.``/``..``, not absolute."""
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0") \
        and Path(name).name == name and not Path(name).is_absolute()


def write_sidecar(write: Callable[[Path], None], manifest_path: Path) -> tuple[Path, str]:
    """Write the sidecar beside ``manifest_path`` under its content's name: a random temporary
    name (``O_EXCL``), flushed to disk, then renamed; returns its path and SHA-256."""
    from poisonguard.io import check_output

    folder = manifest_path.parent
    where = f"{folder / _stem(manifest_path)}.rows.*.parquet"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{_stem(manifest_path)}.rows.",
                                        suffix=".parquet", dir=folder)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        os.close(fd)
    except OSError as exc:
        raise InputError(f"{where}: cannot write ({exc.strerror})") from None
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        digest = file_sha256(tmp)
        side = folder / sidecar_name(manifest_path, digest)
        check_output(side)
        os.replace(tmp, side)
        _fsync_folder(folder)
    except OSError as exc:
        raise InputError(f"{where}: cannot write ({exc.strerror})") from None
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()
    return side, digest


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable before the manifest that names the file is written."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not every file system can sync a directory
    finally:
        os.close(fd)


def previous_sidecar(manifest_path: Path, fmt: str) -> str | None:
    """The sidecar name the manifest about to be replaced records, if it reads as ours."""
    try:
        if not manifest_path.is_file() or manifest_path.stat().st_size > 64 * 2**20:
            return None
        obj = json.loads(manifest_path.read_bytes())
        name = obj["rows_file"]["name"] if obj.get("format") == fmt else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    return name if isinstance(name, str) and bare_name(name) else None


def remove_old_sidecar(old: Path) -> None:
    """Remove a replaced sidecar: only a regular file (not a link) that is not an input."""
    from poisonguard.io import check_output

    try:
        if old.is_symlink() or not old.is_file():
            return
        check_output(old)  # never an input of this command, e.g. data named like a sidecar
        old.unlink()
    except (InputError, OSError):
        pass  # left behind: it is no longer named by any manifest written here
