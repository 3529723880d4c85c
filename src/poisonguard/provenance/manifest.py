"""Manifests: what a dataset version is, row by row, in one signed JSON file and a sidecar.

``M.json`` holds the row count, the columns and their roles, the data file's SHA-256, the RFC
6962 Merkle root over the row hashes (:mod:`poisonguard.provenance.hashing`) with leaves ordered
by id (by row hash when there is no id column: the manifest is then keyed by content and row
order never matters), rows per source, the creation time (``SOURCE_DATE_EPOCH`` pins it) and an
optional ed25519 signature over the canonical JSON of everything else. The sidecar
``M.rows.<first 16 hex digits of its SHA-256>.parquet`` holds ``id, hash, source, row`` per row in
leaf order; its name and SHA-256 are in the manifest, so the pair is checked as one.

The pair is written so that a reader sees the old pair or the new one, whatever stops the
writer: the sidecar first, under a name no other content has, then ``M.json`` (atomically), and
only then is the sidecar the old manifest named removed. Readers take the sidecar's name from
the manifest and accept only a bare file name in the manifest's folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from poisonguard.errors import InputError
from poisonguard.provenance import merkle
from poisonguard.provenance._schema import check_manifest
from poisonguard.provenance._sidecar import (
    bare_name,
    is_sidecar_of,
    previous_sidecar,
    remove_old_sidecar,
    sidecar_name,
    write_sidecar,
)
from poisonguard.provenance.hashing import (
    require_regular_file,
)

if TYPE_CHECKING:
    from poisonguard.engine import Engine

__all__ = ["FORMAT", "Manifest", "RowTable", "build", "canonical_json", "collect", "fingerprint",
           "is_sidecar_of", "read", "read_dict", "sidecar_name", "sidecar_path", "sign", "write"]

FORMAT = "poisonguard-manifest/1"
_SLICE = 1 << 18  # rows hashed, written or placed at a time


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes a signature covers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sidecar_path(manifest: Manifest, manifest_path: str | Path) -> Path:
    """Where the manifest's sidecar is: the name it records, in the manifest's folder."""
    name = manifest.rows_file.get("name", "")
    if not isinstance(name, str) or not bare_name(name):
        raise InputError(f"{manifest_path}: field 'rows_file.name' must be a file name in the "
                         f"manifest's folder (got {str(name)[:80]!r})")
    return Path(manifest_path).with_name(name)


def _perfect_root(nodes: list[bytes]) -> bytes:
    """Root of a perfect tree (``len(nodes)`` a power of two) over leaf hashes ``nodes``."""
    while len(nodes) > 1:
        nodes = [merkle.node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes), 2)]
    return nodes[0]


def _block_roots(_: Any, block: bytes) -> list[tuple[int, bytes]]:
    """``(leaves, root)`` of the perfect subtrees over one block of row hashes (32 bytes each):
    one for a block of a power of two, its binary digits' for the last, partial one."""
    leaves = [merkle.leaf_hash(block[i:i + 32]) for i in range(0, len(block), 32)]
    out, at = [], 0
    while at < len(leaves):
        size = 1 << ((len(leaves) - at).bit_length() - 1)  # largest power of two left
        out.append((size, _perfect_root(leaves[at:at + size])))
        at += size
    return out


@dataclass(frozen=True)
class RowTable:
    """Per-row hashes in leaf order: ``ids`` (UTF-8 bytes; empty when keyed by content),
    ``hashes`` ``(n, 32)`` uint8, ``sources`` (a categorical, NaN where a row has none; None
    without a source column) and ``rows`` (the
    row's position in the file)."""

    ids: np.ndarray
    hashes: np.ndarray
    sources: pd.Categorical | None
    rows: np.ndarray

    @property
    def n_rows(self) -> int:
        return len(self.hashes)

    def root(self, engine: Engine | None = None) -> bytes:
        """RFC 6962 Merkle root over the row hashes in this order.

        RFC 6962's tree over n leaves is the perfect subtrees of n's binary digits, largest
        first, folded from the right. Each aligned block of 2**18 leaves is one perfect subtree
        (the last, partial block its own powers of two), hashed where ``engine`` runs its tasks
        (default: here, one block at a time); the blocks' roots merge here like a binary
        counter. Memory: the blocks in flight, whatever n is."""
        from poisonguard.engine import LocalEngine

        n = self.n_rows
        if n == 0:
            return hashlib.sha256(b"").digest()
        blocks = (self.hashes[start:start + _SLICE].tobytes() for start in range(0, n, _SLICE))
        runner = engine or LocalEngine(threads=1)
        stack: list[tuple[int, bytes]] = []  # (leaves under it, subtree root), sizes decreasing
        for subtrees in runner.map_ordered(_block_roots, blocks, shared=None):
            for size, node in subtrees:
                stack.append((size, node))
                while len(stack) > 1 and stack[-2][0] == stack[-1][0]:
                    (size, left), (_, right) = stack[-2], stack[-1]
                    stack[-2:] = [(2 * size, merkle.node_hash(left, right))]
        root = stack[-1][1]
        for _, node in reversed(stack[:-1]):
            root = merkle.node_hash(node, root)
        return root

    def key_strings(self) -> np.ndarray:
        """The ids as str (keyed), or the hashes in hex (keyed by content)."""
        if len(self.ids):
            return np.char.decode(self.ids, "utf-8").astype(object)
        return np.asarray([bytes(h).hex() for h in self.hashes], dtype=object)

    def write_parquet(self, target: Path) -> None:
        """Write ``id, hash, source, row`` to ``target`` as it is, 262,144 rows per row group
        (not atomic: for a temporary path of the atomic writer)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("id", pa.string()), ("hash", pa.binary(32)),
                            ("source", pa.dictionary(pa.int32(), pa.string())),
                            ("row", pa.int64())])
        with pq.ParquetWriter(target, schema, compression="zstd") as out:
            for start in range(0, max(self.n_rows, 1), _SLICE):
                part = slice(start, start + _SLICE)
                m = len(self.hashes[part])
                ids = (pa.array(self.ids[part], pa.binary()).cast(pa.string()) if len(self.ids)
                       else pa.nulls(m, pa.string()))
                hashes = pa.FixedSizeBinaryArray.from_buffers(
                    pa.binary(32), m, [None, pa.py_buffer(self.hashes[part].tobytes())])
                if self.sources is None:
                    src = pa.nulls(m, pa.string()).dictionary_encode()
                else:
                    codes = np.asarray(self.sources.codes[part], dtype=np.int32)
                    src = pa.DictionaryArray.from_arrays(
                        pa.array(codes, pa.int32(), mask=codes < 0),
                        pa.array(self.sources.categories.astype(str), pa.string()))
                out.write_table(pa.table([ids, hashes, src, pa.array(self.rows[part], pa.int64())],
                                         schema=schema))

    @classmethod
    def from_parquet(cls, path: Path) -> RowTable:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from poisonguard.io import register_input

        try:
            require_regular_file(path, "manifest rows file")
            register_input(path)
            t = pq.read_table(path)
        except FileNotFoundError:
            raise InputError(f"{path}: the manifest's rows file is missing") from None
        except (pa.ArrowException, OSError) as exc:
            raise InputError(f"{path}: not a manifest rows file ({exc})") from None
        if set(t.column_names) != {"id", "hash", "source", "row"} or \
                t.schema.field("hash").type != pa.binary(32):
            raise InputError(f"{path}: not a manifest rows file (columns {t.column_names})")
        n = t.num_rows
        raw = t.column("hash").combine_chunks()
        hashes = np.frombuffer(raw.buffers()[1], dtype=np.uint8)[raw.offset * 32:(raw.offset + n) * 32]
        id_col = t.column("id")
        ids = (np.char.encode(np.asarray(id_col.to_pylist(), dtype=str), "utf-8")
               if n and id_col.null_count < n else np.empty(0, dtype="S1"))
        src_col = t.column("source")
        sources = None if src_col.null_count == n and n else pd.Categorical(
            src_col.cast(pa.string()).to_pandas())
        return cls(ids, hashes.reshape(n, 32).copy(), sources, t.column("row").to_numpy())


@dataclass(frozen=True)
class Manifest:
    """A dataset version (see the module docstring); ``signature`` is empty when unsigned."""

    data: dict[str, Any]
    columns: dict[str, Any]
    rows: int
    keyed: str
    merkle_root: str
    sources: dict[str, int]
    rows_file: dict[str, str]
    created: str
    signature: dict[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """Everything but the signature: what the signature covers."""
        return {"format": FORMAT, "data": self.data, "columns": self.columns, "rows": self.rows,
                "keyed": self.keyed, "merkle_root": self.merkle_root, "sources": self.sources,
                "rows_file": self.rows_file, "created": self.created}

    def to_dict(self) -> dict[str, Any]:
        out = self.body()
        if self.signature:
            out["signature"] = dict(self.signature)
        return out

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of the whole manifest (signature included)."""
        return hashlib.sha256(canonical_json(self.to_dict())).hexdigest()


def _created() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return when.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def collect(data: str, *, label: str = "label", id_col: str | None = None,
            source_col: str | None = None, chunk_rows: int = 100_000,
            engine: Engine | None = None) -> tuple[RowTable, dict[str, Any], list[str], str]:
    """Hash every row of ``data``: ``(rows in leaf order, data info, feature names, keyed)``.

    ``engine`` reads and hashes the rows (:mod:`poisonguard.engine`; default: this process);
    its hashed rows arrive in row order and are put in leaf order here, so every engine gives
    the same table."""
    from poisonguard.engine import LocalEngine
    from poisonguard.provenance.partitions import Roles

    hashing = (engine or LocalEngine()).hash_rows(data, Roles(label, id_col, source_col,
                                                              chunk_rows))
    info = hashing.info
    ids: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    names: list[str] | None = None
    first = ""
    categories: dict[str, int] = {}
    keyed = "content"
    n = 0
    # row hashes go to a scratch file in file order and come back once, in leaf order, so the
    # 32 bytes per row are held once (10M rows: 320 MB), not once per chunk plus a sorted copy
    with tempfile.TemporaryFile() as scratch:
        for part in hashing.parts:
            if part.names is None:  # no rows (an empty file of a folder)
                continue
            if names is None:
                names, first = list(part.names), part.where
            elif list(part.names) != names:
                raise InputError(f"{part.where}: feature columns {', '.join(part.names)} differ "
                                 f"from those of {first} ({', '.join(names)})")
            scratch.write(part.hashes.tobytes())
            n += part.n_rows
            if part.ids is not None:
                keyed = "id"
                ids.append(part.ids)
            if part.source_codes is not None:  # codes into this run's names -> into all seen
                lookup = np.array([*(categories.setdefault(s, len(categories))
                                     for s in part.source_names), -1], dtype=np.int32)
                codes.append(lookup[part.source_codes])
        if names is None:
            raise InputError(f"{data}: no rows")
        index_type = np.int32 if n < 2**31 else np.int64
        H = np.empty((n, 32), dtype=np.uint8)
        scratch.seek(0)
        if keyed == "id":
            id_arr = np.concatenate(ids)
            del ids
            order = np.argsort(id_arr, kind="stable").astype(index_type)
            sorted_ids = id_arr[order]
            del id_arr
            dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
            if len(dup):
                rows = np.sort(order[dup[0]:dup[0] + 2])
                raise InputError(f"{data}: duplicate id {sorted_ids[dup[0]].decode()!r} at rows "
                                 f"{rows[0]} and {rows[1]}; ids must be unique")
            where = np.empty(n, dtype=index_type)
            where[order] = np.arange(n, dtype=index_type)
            block = np.empty((min(n, _SLICE), 32), dtype=np.uint8)
            for start in range(0, n, _SLICE):
                m = min(_SLICE, n - start)
                scratch.readinto(block[:m].data.cast("B"))
                H[where[start:start + m]] = block[:m]
            del where, block
        else:
            sorted_ids = np.empty(0, dtype="S1")
            scratch.readinto(H.data.cast("B"))
            keys = H.view("S32").ravel()
            order = np.argsort(keys, kind="stable").astype(index_type)  # by hash bytes
            keys.sort()  # in place: equal hashes are equal bytes, so this is H[order]
    sources = None
    if codes:
        sources = pd.Categorical.from_codes(np.concatenate(codes)[order], list(categories))
    table = RowTable(sorted_ids, H, sources, order)
    info["rows"] = n
    return table, info, names, keyed


def fingerprint(data: str | Path, *, label: str = "label", id_col: str | None = None,
                source_col: str | None = None, engine: Engine | None = None) -> dict[str, Any]:
    """What a scan records of the data file it scanned, for ``attest``: its name, SHA-256, row
    count and the Merkle root :func:`build` gives it with the same roles (``merkle_root``),
    hashed by ``engine`` (default: this process)."""
    table, info, _, keyed = collect(str(data), label=label, id_col=id_col,
                                    source_col=source_col, engine=engine)
    return {"path": info["path"], "sha256": info.get("sha256"), "rows": info["rows"],
            "keyed": keyed, "merkle_root": table.root(engine).hex(),
            "columns": {"label": label, "id": id_col, "source": source_col}}


def build(data: str, *, label: str = "label", id_col: str | None = None,
          source_col: str | None = None, chunk_rows: int = 100_000,
          engine: Engine | None = None) -> tuple[Manifest, RowTable]:
    """The (unsigned) manifest of ``data`` (a CSV, Parquet or NPZ file, a folder of Parquet
    files or a built-in data set name) and its row table, hashed by ``engine`` (default: this
    process); :func:`write` names the rows file and signs."""
    table, info, names, keyed = collect(data, label=label, id_col=id_col, source_col=source_col,
                                        chunk_rows=chunk_rows, engine=engine)
    n = info.pop("rows")
    src: dict[str, int] = {}
    if table.sources is not None:
        counts = pd.Series(table.sources).value_counts(dropna=False)
        src = {("" if pd.isna(v) else str(v)): int(c) for v, c in counts.items()}
        src = dict(sorted(src.items()))
    manifest = Manifest(
        data=info, columns={"label": label, "id": id_col, "source": source_col,
                            "features": names},
        rows=n, keyed=keyed, merkle_root=table.root(engine).hex(), sources=src,
        rows_file={"name": "", "sha256": ""}, created=_created())
    return manifest, table


def sign(manifest: Manifest, key: Any) -> Manifest:
    """``manifest`` with an ed25519 signature over its canonical body."""
    from poisonguard.provenance import keys

    sig = keys.sign(key, canonical_json(manifest.body()))
    return Manifest(**{**manifest.__dict__, "signature": {
        "algorithm": "ed25519", "key_id": keys.key_id(key),
        "public_key": keys.public_bytes(key.public_key()).hex(), "value": sig.hex()}})


def write(manifest: Manifest, table: RowTable, path: str | Path, key: Any = None) -> Manifest:
    """Write the sidecar ``M.rows.<digest>.parquet``, then ``M.json`` (both atomically), then
    remove the sidecar the replaced ``M.json`` named; returns the manifest as written (with the
    sidecar's name and digest, re-signed with ``key`` when given)."""
    from poisonguard.io import check_target, write_text

    p = Path(path)
    check_target(p)  # before the sidecar is written: never over an input, nothing left behind
    previous = previous_sidecar(p, FORMAT)
    side, digest = write_sidecar(table.write_parquet, p)
    final = Manifest(**{**manifest.__dict__, "signature": {},
                        "rows_file": {"name": side.name, "sha256": digest}})
    try:
        if key is not None:
            final = sign(final, key)
        write_text(p, json.dumps(final.to_dict(), indent=2, sort_keys=True) + "\n")
    except BaseException:  # the old manifest stays, with its sidecar; the new one goes
        if side.name != previous:
            side.unlink(missing_ok=True)
        raise
    if previous is not None and previous != side.name and is_sidecar_of(p, previous):
        remove_old_sidecar(p.with_name(previous))
    return final


def read(path: str | Path) -> Manifest:
    """Read ``M.json``; :class:`InputError` naming the file when it is missing, not a regular
    file, not ours, or has a field of the wrong type or one it should not have."""
    from poisonguard.io import read_json

    if Path(path).exists():
        require_regular_file(path, "manifest")
    return read_dict(read_json(path, "manifest"), path)


def read_dict(obj: Any, p: str | Path) -> Manifest:
    """A manifest from its parsed JSON (``p`` names it in errors). Every field must be one a
    manifest has, of its type: a field no signature covers, or a count written as text, is
    refused naming the field."""
    check_manifest(obj, p, FORMAT)
    return Manifest(data=dict(obj["data"]), columns=dict(obj["columns"]), rows=obj["rows"],
                    keyed=obj["keyed"], merkle_root=obj["merkle_root"],
                    sources=dict(obj["sources"]), rows_file=dict(obj["rows_file"]),
                    created=obj["created"], signature=dict(obj.get("signature", {})))
