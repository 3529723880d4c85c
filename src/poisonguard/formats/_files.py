"""Folders read as one data set: their files listed without leaving the folder, digested and
stamped.

A folder's digest is the SHA-256 of one line ``<file SHA-256 in hex>  <relative path>\\n`` per
file read, in the order of the relative paths (POSIX, sorted by code point): the output of
``sha256sum`` over those files, sorted by name, hashed again. A stamp is ``(total bytes, a
63-bit hash of every file's relative path, size and modification time)``: a file rewritten,
added or removed gives another stamp.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from poisonguard.errors import InputError

__all__ = ["Member", "digest", "folder_stamp", "inside", "listing", "new_folder", "regular",
           "sha256_of"]

MAX_DEPTH = 32  # folders below a data folder's root


@dataclass(frozen=True)
class Member:
    """A file of a data folder: ``rel`` its POSIX path from the folder, ``path`` where it is."""

    rel: str
    path: Path


def inside(root: Path, entry: Path) -> Path:
    """``entry`` after links; an :class:`InputError` naming it when that leaves ``root`` (which
    must already be resolved)."""
    try:
        target = entry.resolve(strict=True)
    except FileNotFoundError:
        raise InputError(f"{entry}: is a broken link") from None
    except (OSError, RuntimeError) as exc:  # a loop of links
        raise InputError(f"{entry}: cannot follow the link ({exc})") from None
    if target != root and root not in target.parents:
        raise InputError(f"{entry}: is a link to {target}, outside the data folder {root}; "
                         "links may only point inside it")
    return target


def listing(folder: Path, what: str) -> list[Path]:
    """The entries of ``folder`` in name order, those whose names start with ``.`` left out;
    ``what`` names the folder in errors (e.g. "image folder")."""
    try:
        return sorted((e for e in folder.iterdir() if not e.name.startswith(".")),
                      key=lambda e: e.name)
    except PermissionError:
        raise InputError(f"{folder}: cannot list the {what} (permission denied)") from None
    except OSError as exc:
        raise InputError(f"{folder}: cannot list the {what} ({exc.strerror})") from None


def regular(path: Path, what: str) -> os.stat_result:
    """``path``'s stat after links, refusing anything but a readable regular file."""
    try:
        st = path.stat()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: is not a regular file, expected {what}")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: {what} is not readable (permission denied)")
    return st


def sha256_of(path: Path) -> str:
    """SHA-256 of a regular file's bytes, hex (the provenance module's reader)."""
    from poisonguard.provenance.hashing import file_sha256

    return file_sha256(path)


def digest(members: Iterable[tuple[str, str]]) -> str:
    """The folder digest (module docstring) of ``(relative path, file SHA-256)`` pairs."""
    lines = sorted(members)
    return hashlib.sha256("".join(f"{sha}  {rel}\n" for rel, sha in lines).encode()).hexdigest()


def folder_stamp(folder: Path) -> tuple[int, int]:
    """``(total bytes, 63-bit hash of (path, size, mtime) of every file)`` of the files below
    ``folder`` (names starting with ``.`` and links to folders are not followed)."""
    total, h = 0, hashlib.sha256()
    todo = [(folder, "")]
    seen: list[tuple[str, int, int]] = []
    while todo:
        here, prefix = todo.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue  # the read that follows names the problem
        for e in entries:
            if e.name.startswith("."):
                continue
            rel = prefix + e.name
            try:
                if e.is_dir(follow_symlinks=False):
                    if len(rel.split("/")) <= MAX_DEPTH:
                        todo.append((Path(e.path), rel + "/"))
                    continue
                st = e.stat()
            except OSError:
                continue
            seen.append((rel, st.st_size, st.st_mtime_ns))
            total += st.st_size
    for rel, size, mtime in sorted(seen):
        h.update(f"{rel}\0{size}\0{mtime}\n".encode())
    return total, int.from_bytes(h.digest()[:8], "big") >> 1


@contextmanager
def new_folder(target: Path, option: str) -> Iterator[Path]:
    """A temporary folder beside ``target``, renamed onto it when the block succeeds (so
    ``target`` appears whole or not at all) and removed otherwise; ``target`` must not exist
    and may not be an input of the running command (``option`` names it in errors)."""
    from poisonguard.io import check_output

    check_output(target, option)
    if os.path.lexists(target):
        raise InputError(f"{option} {target}: exists; a data folder is written to a new folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise InputError(f"{option} {target}: cannot write ({exc.strerror})") from None
    try:
        yield tmp
        os.rename(tmp, target)
    except OSError as exc:
        raise InputError(f"{option} {target}: cannot write ({exc.strerror})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
