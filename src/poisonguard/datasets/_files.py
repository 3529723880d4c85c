"""Finding data files installed from Debian packages, and refusing any whose SHA-256 differs.

Files are looked for under three roots, first match wins: ``$POISONGUARD_DATA_ROOT`` (the
directory a package was unpacked into with ``dpkg -x``), ``~/.local/share/poisonguard/root``
(where ``scripts/get-data.sh`` puts them) and ``/`` (a system-wide ``apt-get install``).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from poisonguard.errors import DependencyError, IntegrityError

__all__ = ["ENV_VAR", "find_file", "find_pinned", "search_roots", "sha256_of", "verify_sha256"]

ENV_VAR = "POISONGUARD_DATA_ROOT"
USER_ROOT = Path(".local", "share", "poisonguard", "root")  # relative to the home directory
SYSTEM_ROOT = Path("/")
_CHUNK = 1 << 20


def search_roots() -> tuple[Path, ...]:
    """The directories under which Debian paths are looked for, in order."""
    roots: list[Path] = []
    env = os.environ.get(ENV_VAR, "")
    if env:
        roots.append(Path(env).expanduser())
    roots.append(Path.home() / USER_ROOT)
    roots.append(SYSTEM_ROOT)
    return tuple(roots)


def find_file(relpath: str, *, what: str, hint: str) -> Path:
    """The first existing ``root / relpath``; :class:`DependencyError` with ``hint`` if none.

    Parameters
    ----------
    relpath : Debian path without the leading slash, e.g. ``usr/share/datasets/x.gz``.
    what : Human name of the data set, used in the error message.
    hint : One-line instruction that makes the file appear.
    """
    roots = search_roots()
    for root in roots:
        path = root / relpath
        if path.is_file():
            return path
    looked = ", ".join(str(r) for r in roots)
    raise DependencyError(f"{what} not found (looked for /{relpath} under {looked}): {hint}")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 digest of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> Path:
    """Return ``path`` if its SHA-256 is ``expected``, else raise :class:`IntegrityError`."""
    actual = sha256_of(path)
    if actual != expected.lower():
        raise IntegrityError(f"'{path}' has sha256 {actual}, expected {expected}; the file was "
                             "modified or is a different version: refusing to load it")
    return path


def find_pinned(relpath: str, sha256: str, *, what: str, hint: str) -> Path:
    """:func:`find_file` followed by :func:`verify_sha256`; a bad file is never skipped over."""
    return verify_sha256(find_file(relpath, what=what, hint=hint), sha256)
