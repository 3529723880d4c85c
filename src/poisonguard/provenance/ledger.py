"""An append-only, tamper-evident log of dataset versions and scan attestations in one SQLite
file.

Each entry is a leaf of an RFC 6962 Merkle tree (:mod:`poisonguard.provenance.merkle`) and each
append adds a checkpoint: the tree's size and root, ed25519-signed when the ledger was created
with a public key. The entry, its checkpoint and the tree's frontier are written in one
``BEGIN IMMEDIATE`` transaction, so concurrent appends queue and a killed process leaves the
ledger as it was. :meth:`Ledger.verify` recomputes everything and reports tampering as
problems. What no check of the file alone can catch is a *rollback*: the newest entries removed
with their checkpoints and the frontier put back, which leaves an older state that is whole and,
in a signed ledger, signed. Only a checkpoint kept outside the file (``trusted``: a witness
copy) catches that, and a rewrite of the whole file in an unsigned ledger.

The file is in SQLite's WAL mode with ``synchronous = NORMAL``: appends take a fraction of a
millisecond and are atomic whatever happens; a power cut (not a killed process) may lose the
last appends, never corrupt the file. While the ledger is open, ``FILE-wal`` and ``FILE-shm``
sit beside it (removed on the last close): copy the ledger when no one has it open.

An entry's leaf is ``leaf_hash(encode_entry(...))``: ``b"poisonguard-entry/1\\n"``, the seq as
8 bytes big-endian, then kind, name, digest (the payload's SHA-256, hex) and created (UTC ISO
8601), each as its UTF-8 length in 4 bytes big-endian and its UTF-8 bytes, then the payload's
length in 8 bytes big-endian and the payload. A checkpoint's signature covers
:meth:`Checkpoint.message`.

Examples
--------
>>> import pathlib, tempfile
>>> with Ledger.init(pathlib.Path(tempfile.mkdtemp()) / "ledger.db") as ledger:
...     cp = ledger.append("manifest", "data-v1.csv", b'{"rows": 40}')
...     cp.size, ledger.verify().ok, ledger.prove(1).verify()
(1, True, True)
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from poisonguard.errors import InputError, IntegrityError
from poisonguard.provenance import keys, merkle

__all__ = ["FORMAT", "Checkpoint", "ConsistencyProof", "Entry", "InclusionProof", "Ledger",
           "VerifyResult", "encode_entry"]

FORMAT = "poisonguard-ledger/1"
_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHOWN = 5  # problems listed per kind of problem; the rest are counted
_CP_COLUMNS = "size, root, created, key_id, signature"
_SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE entries(seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
                     digest TEXT NOT NULL, created TEXT NOT NULL, payload BLOB NOT NULL,
                     leaf BLOB NOT NULL);
CREATE TABLE checkpoints(size INTEGER PRIMARY KEY, root BLOB NOT NULL, created TEXT NOT NULL,
                         key_id TEXT, signature BLOB);
CREATE TABLE frontier(id INTEGER PRIMARY KEY CHECK (id = 0), state BLOB NOT NULL);
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only'); END;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only'); END;
"""


def encode_entry(seq: int, kind: str, name: str, digest: str, created: str,
                 payload: bytes) -> bytes:
    """The bytes an entry's leaf hashes (the encoding is in the module docstring)."""
    out = [b"poisonguard-entry/1\n", seq.to_bytes(8, "big")]
    for text in (kind, name, digest, created):
        raw = text.encode()
        out += [len(raw).to_bytes(4, "big"), raw]
    out += [len(payload).to_bytes(8, "big"), payload]
    return b"".join(out)


def _span(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first}..{last}"


def _why(exc: BaseException) -> str:
    """An OS or SQLite error in a few words."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Entry:
    """One ledger entry, without its payload (:meth:`Ledger.payload` reads that)."""

    seq: int
    kind: str
    name: str
    digest: str
    created: str
    leaf: bytes


@dataclass(frozen=True)
class Checkpoint:
    """The tree's size and root after an append; ``key_id`` and ``signature`` are None when
    unsigned."""

    size: int
    root: bytes
    created: str
    key_id: str | None = None
    signature: bytes | None = None

    def message(self) -> bytes:
        """The bytes the signature covers."""
        return b"poisonguard-checkpoint/1\n" + f"{self.size}\n{self.root.hex()}\n".encode()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the hashes and signature in hex."""
        return {"size": self.size, "root": self.root.hex(), "created": self.created,
                "key_id": self.key_id,
                "signature": None if self.signature is None else self.signature.hex()}

    @classmethod
    def from_dict(cls, obj: Any) -> Checkpoint:
        """The checkpoint :meth:`to_dict` wrote; an :class:`InputError` naming the field that is
        missing or of the wrong type."""
        if not isinstance(obj, dict):
            raise InputError(f"not a ledger checkpoint (a JSON {type(obj).__name__}, expected an "
                             "object with size and root)")
        size, root, sig = obj.get("size"), obj.get("root"), obj.get("signature")
        key_id, created = obj.get("key_id"), obj.get("created", "")
        if isinstance(size, bool) or not isinstance(size, int):
            raise InputError(f"not a ledger checkpoint (field 'size' must be a whole number, "
                             f"got {str(size)[:40]!r})")
        for name, value, optional in (("root", root, False), ("signature", sig, True),
                                      ("key_id", key_id, True), ("created", created, False)):
            if not isinstance(value, str) and not (optional and value is None):
                raise InputError(f"not a ledger checkpoint (field '{name}' must be a string, "
                                 f"got {str(value)[:40]!r})")
        try:
            cp = cls(size, bytes.fromhex(str(root)), str(created), key_id,
                     None if sig is None else bytes.fromhex(str(sig)))
        except ValueError as exc:
            raise InputError(f"not a ledger checkpoint (a field is not hex: {exc})") from None
        if cp.size < 0 or len(cp.root) != 32:
            raise InputError(f"not a ledger checkpoint (size {cp.size}, root of {len(cp.root)} "
                             "bytes; expected size >= 0 and 32 bytes)")
        return cp


_Trusted = Checkpoint | tuple[int, bytes]


@dataclass(frozen=True)
class InclusionProof:
    """Entry ``seq`` is leaf ``seq - 1`` of the tree of ``size`` entries with ``root``."""

    seq: int
    size: int
    leaf: bytes
    path: tuple[bytes, ...]
    root: bytes

    def verify(self) -> bool:
        """True when the path leads from the leaf to the root."""
        return merkle.verify_inclusion(self.leaf, self.seq - 1, self.size, self.path, self.root)


@dataclass(frozen=True)
class ConsistencyProof:
    """The first ``old_size`` entries (root ``old_root``) are unchanged at ``new_size``."""

    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    path: tuple[bytes, ...]

    def verify(self) -> bool:
        """True when the path shows the old tree is a prefix of the new one."""
        return merkle.verify_consistency(self.old_size, self.new_size, self.old_root,
                                         self.new_root, self.path)


@dataclass(frozen=True)
class VerifyResult:
    """What :meth:`Ledger.verify` found: ``problems`` is empty when ``ok``; ``size`` and
    ``root`` are recomputed from the entries as stored."""

    ok: bool
    size: int
    root: bytes
    problems: tuple[str, ...]
    signatures_checked: int


class _Problems:
    """Problems grouped by kind, the first few of each kind listed."""

    def __init__(self) -> None:
        self.found: dict[str, list[str]] = {}

    def add(self, kind: str, line: str) -> None:
        self.found.setdefault(kind, []).append(line)

    def lines(self) -> tuple[str, ...]:
        out: list[str] = []
        for kind, lines in self.found.items():
            out += lines[:_SHOWN]
            if len(lines) > _SHOWN:
                out.append(f"... and {len(lines) - _SHOWN} more {kind}")
        return tuple(out)


class Ledger:
    """An open ledger file; make one with :meth:`init` or :meth:`open`, close it (or use
    ``with``) when done."""

    def __init__(self, path: Path, conn: sqlite3.Connection, meta: dict[str, str]) -> None:
        self.path, self._conn, self._meta = path, conn, meta
        conn.execute("PRAGMA synchronous = NORMAL")  # with WAL: atomic, durable but for power loss

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        uri = path.resolve().as_uri() + "?mode=rw"
        return sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)

    @classmethod
    def init(cls, path: str | Path, *, public_key: Ed25519PublicKey | None = None) -> Ledger:
        """Create an empty ledger at ``path``; with ``public_key`` every checkpoint must be
        signed by its private key."""
        p = Path(path)
        if not p.parent.is_dir():
            raise InputError(f"{p.parent}: no such directory")
        try:  # O_EXCL: of two processes creating the same ledger, one fails here
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            raise InputError(f"{p}: already exists; refusing to overwrite a ledger") from None
        except OSError as exc:
            raise InputError(f"{p}: cannot create the ledger ({exc.strerror})") from None
        meta = {"format": FORMAT, "created": _now()}
        if public_key is not None:
            meta["public_key"] = keys.public_bytes(public_key).hex()
        conn = None
        try:
            conn = cls._connect(p)
            conn.execute("PRAGMA journal_mode = WAL")  # stays set in the file
            conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA)
            conn.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
            conn.execute("INSERT INTO frontier VALUES (0, ?)", (merkle.Frontier().to_bytes(),))
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn is not None:
                conn.close()
            p.unlink(missing_ok=True)
            if isinstance(exc, sqlite3.Error | OSError):
                raise InputError(f"{p}: cannot create the ledger ({_why(exc)})") from None
            raise
        return cls(p, conn, meta)

    @classmethod
    def open(cls, path: str | Path) -> Ledger:
        """Open an existing ledger (an input of the running command: no output may replace
        it)."""
        from poisonguard.io import register_input

        p = Path(path)
        register_input(p)
        if not p.is_file():
            raise InputError(f"{p}: no such ledger file" if not p.exists()
                             else f"{p}: is not a file, expected a poisonguard ledger")
        try:
            conn = cls._connect(p)
        except sqlite3.OperationalError as exc:
            raise InputError(f"{p}: cannot open the ledger ({exc})") from None
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "not a database" in str(exc) or "no such table" in str(exc):
                why = "not an SQLite database" if "not a database" in str(exc) else str(exc)
                raise InputError(f"{p}: is not a poisonguard ledger ({why})") from None
            raise InputError(f"{p}: cannot read the ledger ({exc})") from None
        if meta.get("format") != FORMAT:
            conn.close()
            raise InputError(f"{p}: is not a poisonguard ledger (format "
                             f"{meta.get('format')!r}, expected {FORMAT!r})")
        return cls(p, conn, meta)

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def public_key(self) -> Ed25519PublicKey | None:
        """The key that signs every checkpoint, or None for an unsigned ledger."""
        text = self._meta.get("public_key")
        return None if text is None else keys.public_from_hex(text)

    def _signing_check(self, key: Ed25519PrivateKey | None) -> None:
        recorded = self.public_key
        if recorded is None and key is not None:
            raise InputError(f"{self.path}: this ledger was created without a public key, so "
                             "its checkpoints cannot be signed; drop the key")
        if recorded is not None and key is None:
            raise InputError(f"{self.path}: this ledger's checkpoints are signed by key "
                             f"{keys.key_id(recorded)[:16]}...; give its private key")
        if recorded is not None and key is not None and keys.key_id(key) != keys.key_id(recorded):
            raise InputError(f"{self.path}: key {keys.key_id(key)[:16]}... is not this ledger's "
                             f"signing key {keys.key_id(recorded)[:16]}...")

    def append(self, kind: str, name: str, payload: bytes, *,
               key: Ed25519PrivateKey | None = None) -> Checkpoint:
        """Add an entry and its checkpoint (signed with ``key``, required for a ledger created
        with a public key) in one transaction; concurrent appends wait up to 30 s."""
        if not isinstance(kind, str) or not _KIND.fullmatch(kind):
            raise InputError(f"'kind' must be 1-64 letters, digits, '.', '_' or '-' (got {kind!r})")
        if not isinstance(name, str) or not name or _CONTROL.search(name):
            raise InputError(f"'name' must be a non-empty one-line string (got {name!r})")
        if not isinstance(payload, bytes):
            raise InputError(f"'payload' must be bytes (got {type(payload).__name__})")
        self._signing_check(key)
        digest = hashlib.sha256(payload).hexdigest()
        try:
            return self._append(kind, name, digest, payload, key)
        except sqlite3.IntegrityError as exc:  # a constraint or trigger that is not ours
            raise IntegrityError(f"{self.path}: the append was refused ({_why(exc)}); the ledger "
                                 "was altered; run ledger verify") from None
        except (sqlite3.Error, OSError) as exc:  # read-only, immutable, full disk, locked...
            raise InputError(f"{self.path}: cannot write to the ledger ({_why(exc)})") from None

    def _append(self, kind: str, name: str, digest: str, payload: bytes,
                key: Ed25519PrivateKey | None) -> Checkpoint:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            frontier = self._frontier()
            last = conn.execute("SELECT max(seq) FROM entries").fetchone()[0] or 0
            cp_row = conn.execute("SELECT size, root FROM checkpoints ORDER BY size DESC "
                                  "LIMIT 1").fetchone() or (0, merkle.EMPTY_ROOT)
            if not last == frontier.size == cp_row[0] or frontier.root() != cp_row[1]:
                raise IntegrityError(f"{self.path}: the last entry ({last}), checkpoint "
                                     f"({cp_row[0]}) and tree ({frontier.size}) disagree; "
                                     "the ledger was altered; run ledger verify")
            seq, created = frontier.size + 1, _now()
            leaf = merkle.leaf_hash(encode_entry(seq, kind, name, digest, created, payload))
            frontier = frontier.append(leaf)
            cp = Checkpoint(seq, frontier.root(), created)
            if key is not None:
                cp = Checkpoint(seq, cp.root, created, keys.key_id(key), keys.sign(key, cp.message()))
            conn.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (seq, kind, name, digest, created, payload, leaf))
            conn.execute("UPDATE frontier SET state = ? WHERE id = 0", (frontier.to_bytes(),))
            conn.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?)",
                         (cp.size, cp.root, cp.created, cp.key_id, cp.signature))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return cp

    def _frontier(self) -> merkle.Frontier:
        row = self._conn.execute("SELECT state FROM frontier WHERE id = 0").fetchone()
        try:
            return merkle.Frontier.from_bytes(row[0])
        except (InputError, TypeError) as exc:
            raise IntegrityError(f"{self.path}: the stored tree frontier is damaged ({exc}); "
                                 "run ledger verify") from None

    def entries(self) -> list[Entry]:
        """Every entry in order, without payloads."""
        rows = self._conn.execute("SELECT seq, kind, name, digest, created, leaf FROM entries "
                                  "ORDER BY seq")
        return [Entry(*row) for row in rows]

    def payload(self, seq: int) -> bytes:
        """The payload of entry ``seq``."""
        row = self._conn.execute("SELECT payload FROM entries WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise InputError(f"{self.path}: no entry {seq}")
        return bytes(row[0])

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        """The latest checkpoint, or the one at ``size``."""
        query = f"SELECT {_CP_COLUMNS} FROM checkpoints " + (
            "ORDER BY size DESC LIMIT 1" if size is None else "WHERE size = ?")
        row = self._conn.execute(query, () if size is None else (size,)).fetchone()
        if row is None:
            raise InputError(f"{self.path}: no checkpoint yet (the ledger is empty)" if size is None
                             else f"{self.path}: no checkpoint at size {size}")
        return Checkpoint(*row)

    def _leaves(self, cp: Checkpoint) -> list[bytes]:
        """The stored leaves of the first ``cp.size`` entries, checked against ``cp``."""
        leaves = [row[0] for row in self._conn.execute(
            "SELECT leaf FROM entries WHERE seq <= ? ORDER BY seq", (cp.size,))]
        if len(leaves) != cp.size or merkle.root(leaves) != cp.root:
            raise IntegrityError(f"{self.path}: the first {cp.size} entries do not match the "
                                 f"checkpoint at size {cp.size}; run ledger verify")
        return leaves

    def prove(self, seq: int, *, size: int | None = None) -> InclusionProof:
        """Proof that entry ``seq`` is in the tree of the checkpoint at ``size`` (default the
        latest)."""
        cp = self.checkpoint(size)
        if not 1 <= seq <= cp.size:
            raise InputError(f"{self.path}: no entry {seq} in the first {cp.size} entries")
        leaves = self._leaves(cp)
        return InclusionProof(seq, cp.size, leaves[seq - 1],
                              tuple(merkle.inclusion_proof(leaves, seq - 1)), cp.root)

    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """Proof that the checkpoint at ``old_size`` is a prefix of the one at ``new_size``
        (default the latest)."""
        new = self.checkpoint(new_size)
        if not 0 <= old_size <= new.size:
            raise InputError(f"'old_size' must be in [0, {new.size}] (got {old_size})")
        old_root = self.checkpoint(old_size).root if old_size else merkle.EMPTY_ROOT
        leaves = self._leaves(new)
        if merkle.root(leaves[:old_size]) != old_root:
            raise IntegrityError(f"{self.path}: the first {old_size} entries do not match the "
                                 f"checkpoint at size {old_size}; run ledger verify")
        return ConsistencyProof(old_size, new.size, old_root, new.root,
                                tuple(merkle.consistency_proof(leaves, old_size)))

    def verify(self, *, public_key: Ed25519PublicKey | None = None,
               trusted: _Trusted | Sequence[_Trusted] | None = None) -> VerifyResult:
        """Recompute every leaf, every checkpoint's root and signature and the tree frontier,
        and with ``trusted`` (checkpoints seen before, kept outside this file) check the ledger
        still extends each of them.

        Tampering never raises: each finding is one line in ``problems`` naming the entry or
        checkpoint. Signatures are checked against ``public_key`` when given, else against
        the key the ledger records; with either, every checkpoint must be signed by it. Without
        ``trusted`` a rollback (the newest entries removed with their checkpoints) cannot be
        seen: the older state is whole and signed.
        """
        given = [] if trusted is None else [trusted] if isinstance(trusted, Checkpoint) or (
            isinstance(trusted, tuple) and len(trusted) == 2 and isinstance(trusted[1], bytes)) \
            else list(trusted)
        witnessed: dict[int, set[bytes]] = {}
        for item in given:
            t_size, t_root = (item.size, item.root) if isinstance(item, Checkpoint) else item
            if isinstance(t_size, bool) or not isinstance(t_size, int) or t_size < 0 or \
                    not isinstance(t_root, bytes) or len(t_root) != 32:
                raise InputError("'trusted' must be checkpoints or (size >= 0, 32-byte root) "
                                 f"pairs (got size {t_size!r}, root {t_root!r:.20})")
            witnessed.setdefault(t_size, set()).add(t_root)
        found = _Problems()
        self._conn.execute("BEGIN")  # one snapshot, even while others append
        try:
            return self._verify(found, public_key, witnessed)
        except sqlite3.DatabaseError as exc:
            found.add("read errors", f"cannot read the ledger: {exc}")
            return VerifyResult(False, 0, merkle.EMPTY_ROOT, found.lines(), 0)
        finally:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    def _verify(self, found: _Problems, public_key: Ed25519PublicKey | None,
                witnessed: dict[int, set[bytes]]) -> VerifyResult:
        conn = self._conn
        for (line,) in conn.execute("PRAGMA integrity_check"):
            if line != "ok":
                found.add("database errors", f"database: {line}")
        vkey = self._verifying_key(found, public_key)
        checkpoints = {row[0]: Checkpoint(*row)
                       for row in conn.execute(f"SELECT {_CP_COLUMNS} FROM checkpoints")}
        frontier, expected = merkle.Frontier(), 1
        self._check_trusted(found, witnessed, frontier)
        for seq, kind, name, digest, created, payload, leaf in conn.execute(
                "SELECT seq, kind, name, digest, created, payload, leaf FROM entries ORDER BY seq"):
            if seq != expected:
                found.add("sequence gaps", f"entry {seq}: out of sequence (expected {expected})"
                          if seq < expected else f"{_span(expected, seq - 1)}: missing")
            expected = seq + 1
            try:
                computed = merkle.leaf_hash(encode_entry(seq, kind, name, digest, created, payload))
                if hashlib.sha256(payload).hexdigest() != digest:
                    found.add("payloads not matching their digest",
                              f"entry {seq}: payload does not match its digest")
            except (AttributeError, TypeError, OverflowError):
                computed = bytes(32)
                found.add("damaged entries", f"entry {seq}: cannot be encoded (a field has the "
                          "wrong type or range)")
            if leaf != computed:
                found.add("leaves not matching their entry",
                          f"entry {seq}: stored leaf does not match its fields")
            frontier = frontier.append(computed)
            self._check_trusted(found, witnessed, frontier)
            cp = checkpoints.get(frontier.size)
            if cp is not None and cp.root != frontier.root():
                found.add("checkpoints not matching the entries",
                          f"checkpoint {cp.size}: root does not match entries 1..{cp.size}")
        n, top = frontier.size, frontier.root()
        checked = self._check_checkpoints(found, checkpoints, n, vkey)
        row = conn.execute("SELECT state FROM frontier WHERE id = 0").fetchone()
        try:
            stored: merkle.Frontier | None = merkle.Frontier.from_bytes(row[0])
        except (InputError, TypeError):
            stored = None
        if stored != frontier:
            found.add("frontier", f"tree frontier: the stored state does not match the {n} entries")
        beyond = sorted(size for size in witnessed if size > n)
        if beyond:
            found.add("trusted", f"trusted checkpoint {beyond[-1]}: beyond the last entry ({n}); "
                      "entries were removed (the ledger was rolled back or truncated)")
        return VerifyResult(not found.found, n, top, found.lines(), checked)

    @staticmethod
    def _check_trusted(found: _Problems, witnessed: dict[int, set[bytes]],
                       frontier: merkle.Frontier) -> None:
        """Whether the entries so far (``frontier``) have the root each trusted checkpoint of
        their size records: the ledger then extends it (RFC 9162 consistency, by recomputing)."""
        for root in sorted(witnessed.get(frontier.size, ())):
            if root != frontier.root():
                found.add("trusted", f"trusted checkpoint {frontier.size}: the entries no longer "
                          f"extend it (root {root.hex()[:16]}...); history was rewritten")

    def _verifying_key(self, found: _Problems,
                       public_key: Ed25519PublicKey | None) -> Ed25519PublicKey | None:
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != FORMAT:
            found.add("meta", f"meta: format is {meta.get('format')!r}, expected {FORMAT!r}")
        recorded = None
        if "public_key" in meta:
            try:
                recorded = keys.public_from_hex(str(meta["public_key"]))
            except InputError:
                found.add("meta", "meta: the recorded public key is not an ed25519 key")
        if public_key is not None and recorded is not None and \
                keys.key_id(recorded) != keys.key_id(public_key):
            found.add("meta", f"meta: the ledger records signing key {keys.key_id(recorded)[:16]}"
                      f"..., not the expected key {keys.key_id(public_key)[:16]}...")
        return public_key if public_key is not None else recorded

    @staticmethod
    def _check_checkpoints(found: _Problems, checkpoints: dict[int, Checkpoint], n: int,
                           vkey: Ed25519PublicKey | None) -> int:
        """Sizes and signatures; returns how many signatures were checked and good."""
        vkid, checked = None if vkey is None else keys.key_id(vkey), 0
        beyond = [size for size in checkpoints if size > n]
        if beyond:
            found.add("beyond", f"checkpoint{'s' * (len(beyond) > 1)} {min(beyond)}"
                      f"{f'..{max(beyond)}' * (len(beyond) > 1)}: beyond the last entry ({n}); "
                      "entries were removed")
        for size, cp in sorted(checkpoints.items()):
            if size < 1:
                found.add("bad sizes", f"checkpoint {size}: not a valid size")
            if not isinstance(cp.root, bytes) or len(cp.root) != 32:
                found.add("damaged checkpoints", f"checkpoint {size}: root is not a 32-byte hash")
            elif vkey is None:
                if cp.signature is not None:
                    found.add("signed checkpoints in an unsigned ledger", f"checkpoint {size}: "
                              "signed, but the ledger records no public key (was it removed?)")
            elif not isinstance(cp.signature, bytes):
                found.add("unsigned checkpoints", f"checkpoint {size}: not signed")
            elif cp.key_id != vkid:
                found.add("checkpoints signed by another key", f"checkpoint {size}: signed by key "
                          f"{str(cp.key_id)[:16]}..., expected {str(vkid)[:16]}...")
            elif not keys.verify_signature(vkey, cp.signature, cp.message()):
                found.add("bad signatures", f"checkpoint {size}: bad signature")
            else:
                checked += 1
        latest = max(checkpoints, default=0)
        if latest < n:
            found.add("uncovered entries", f"{_span(latest + 1, n)}: not covered by a checkpoint")
        return checked
