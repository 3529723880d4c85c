"""A manifest's sidecar file: its name, and writing it so the manifest pair is replaced as one.

``M.json``'s rows live in ``M.rows.<first 16 hex digits of their SHA-256>.parquet``, written
through ``io.atomic_path`` (named by its content once written) before the manifest that names
it; the sidecar the replaced manifest named is removed only after that, and only when it is
ours.
"""

from __future__ import annotations

import json
import re
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
    """Write the sidecar beside ``manifest_path`` under its content's name through the one
    atomic writer (random temporary name, fsync, rename, folder fsync); returns its path and
    SHA-256."""
    from poisonguard.io import atomic_path

    folder, digest = manifest_path.parent, ""

    def by_content(tmp: Path) -> Path:
        nonlocal digest
        digest = file_sha256(tmp)
        return folder / sidecar_name(manifest_path, digest)

    with atomic_path(folder / f"{_stem(manifest_path)}.rows.parquet", named=by_content) as tmp:
        write(tmp)
    return folder / sidecar_name(manifest_path, digest), digest


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
