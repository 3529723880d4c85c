"""Check data against its manifest: rows added, removed or changed, and whether the manifest or
its signature was tampered with."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poisonguard.errors import InputError
from poisonguard.provenance import keys
from poisonguard.provenance.diff import Changes, compare
from poisonguard.provenance.hashing import file_sha256, require_regular_file
from poisonguard.provenance.manifest import (
    Manifest,
    RowTable,
    canonical_json,
    collect,
    read,
    sidecar_path,
)

if TYPE_CHECKING:
    from poisonguard.engine import Engine

__all__ = ["Verification", "check_signature", "rows_of", "verify"]


@dataclass(frozen=True)
class Verification:
    """``ok`` when the data matches the manifest and the manifest is intact; ``problems`` says
    what failed, one line each; ``changes`` lists rows when the manifest's rows file allows."""

    ok: bool
    problems: list[str]
    signature: str
    changes: Changes | None = None
    notes: list[str] = field(default_factory=list)


def check_signature(manifest: Manifest, public_key: Any = None) -> tuple[str, list[str]]:
    """``(status line, problems)`` for the manifest's signature against ``public_key`` (an
    ed25519 public key the verifier trusts) or, without one, its own embedded key."""
    sig = manifest.signature
    if not sig:
        if public_key is not None:
            return "unsigned", ["the manifest is not signed, but a public key was given to check"]
        return "unsigned", []
    try:
        embedded = keys.public_from_hex(str(sig["public_key"]))
        value = bytes.fromhex(str(sig["value"]))
    except (KeyError, ValueError, InputError):
        return "malformed", ["the manifest's signature block is malformed"]
    if sig.get("algorithm") != "ed25519":
        return "malformed", [f"unknown signature algorithm {sig.get('algorithm')!r}"]
    problems = []
    if sig.get("key_id") != keys.key_id(embedded):
        problems.append("the manifest's signature names another key id than its public key's")
    if not keys.verify_signature(embedded, value, canonical_json(manifest.body())):
        problems.append("the manifest was edited after it was signed (signature does not match)")
    if public_key is not None and keys.key_id(public_key) != keys.key_id(embedded):
        problems.append(f"the manifest is signed by another key (key id "
                        f"{keys.key_id(embedded)[:16]}..., expected "
                        f"{keys.key_id(public_key)[:16]}...)")
    if problems:
        return "invalid", problems
    trust = "the given public key" if public_key is not None else \
        "its own embedded key (pass --pubkey to check who signed)"
    return f"valid, key id {keys.key_id(embedded)[:16]}... checked against {trust}", []


def rows_of(manifest: Manifest, manifest_path: Path) -> tuple[RowTable | None, list[str]]:
    """The manifest's rows file (the name it records, in its folder), or None and why it cannot
    be trusted."""
    from poisonguard.io import register_input

    side = sidecar_path(manifest, manifest_path)
    register_input(side)
    if not side.exists():
        return None, [f"{side}: the manifest's rows file is missing"]
    if file_sha256(side) != manifest.rows_file.get("sha256"):
        return None, [f"{side}: the rows file was changed after the manifest was written"]
    table = RowTable.from_parquet(side)
    if table.root().hex() != manifest.merkle_root or table.n_rows != manifest.rows:
        return None, [f"{side}: the rows file does not match the manifest's Merkle root"]
    return table, []


def verify(data: str, manifest_path: str | Path, *, public_key: Any = None,
           engine: Engine | None = None) -> Verification:
    """Verify ``data`` against the manifest at ``manifest_path`` (roles as recorded there),
    its rows hashed by ``engine`` (:mod:`poisonguard.engine`; default: this process)."""
    mpath = Path(manifest_path)
    manifest = read(mpath)
    status, problems = check_signature(manifest, public_key)
    expected, side_problems = rows_of(manifest, mpath)
    problems += side_problems
    cols = manifest.columns
    from poisonguard.datasets import DATASETS

    if not Path(data).exists() and data not in DATASETS:
        raise InputError(f"{data}: no such file")
    if Path(data).is_dir():  # bad input, not a changed file: a folder without Parquet files
        from poisonguard.provenance.partitions import Roles, open_source

        open_source(data, Roles())
    elif Path(data).exists():  # bad input, not a changed file: a FIFO or device never ends
        require_regular_file(data, "data file")
    try:
        table, info, names, _ = collect(data, label=str(cols.get("label") or "label"),
                                        id_col=cols.get("id"), source_col=cols.get("source"),
                                        engine=engine)
    except InputError as exc:  # the file is there but no longer reads as the manifest says
        problems.append(f"the data no longer reads as the manifest describes it: {exc}")
        return Verification(False, problems, status, None, [])
    notes = []
    if names != list(cols.get("features") or []):
        problems.append(f"feature columns differ: manifest has {', '.join(cols.get('features') or [])}"
                        f"; data has {', '.join(names)}")
    root = table.root(engine).hex()
    changes = None
    if root != manifest.merkle_root or info["rows"] != manifest.rows:
        problems.append(f"the data does not match the manifest ({info['rows']} rows, Merkle root "
                        f"{root[:16]}... vs {manifest.rows} rows, {manifest.merkle_root[:16]}...)")
        if expected is not None:
            changes = compare(expected, table)
    elif info.get("sha256") and info["sha256"] != manifest.data.get("sha256"):
        notes.append("the file's bytes differ but every row is the same (another format, "
                     "row order or formatting)")
    return Verification(not problems, problems, status, changes, notes)
