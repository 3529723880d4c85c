"""``poisonguard ledger init | append | log | verify | checkpoint | prove``: the append-only,
tamper-evident log of dataset versions (manifests) and scan attestations, in one SQLite file.

Exit codes: 0 done; 2 bad input (not a ledger, a wrong key, an unknown entry); 3 the ledger
fails verification. No check of the file alone can see a rollback: the newest entries removed
with their checkpoints leave an older ledger that is whole and, signed, still signed. So keep
checkpoints elsewhere (a witness): ``ledger checkpoint --out PATH`` (or ``append
--checkpoint-out``) writes one to another place; given back to ``verify --trusted`` (files,
folders of them, or ``SIZE:ROOTHEX``), they prove the ledger still extends each of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from poisonguard.cli._common import app, echo_table, fail_integrity
from poisonguard.cli.trace import PassphraseOpt, passphrase_from
from poisonguard.errors import InputError, IntegrityError

__all__ = ["append", "checkpoint", "entry_from_file", "init", "log", "prove", "trusted_checkpoints",
           "verify"]

ledger_app = typer.Typer(help="Append-only Merkle log of dataset versions and scan attestations.",
                         no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
Opt = typer.Option


def entry_from_file(path: Path) -> tuple[str, str, bytes]:
    """``(kind, name, canonical payload)`` of a manifest or attestation file."""
    from poisonguard.io import read_json
    from poisonguard.provenance import attest
    from poisonguard.provenance import manifest as mf
    from poisonguard.provenance.hashing import require_regular_file
    from poisonguard.provenance.verify import check_signature

    if path.exists():
        require_regular_file(path, "manifest or attestation")
    obj = read_json(path, "manifest or attestation")
    if isinstance(obj, dict) and obj.get("format") == mf.FORMAT:
        manifest = mf.read_dict(obj, path)
        _, problems = check_signature(manifest)
        if problems:
            raise IntegrityError(f"{path}: {problems[0]}; not appended")
        return "manifest", str(manifest.data.get("path") or path.name), mf.canonical_json(obj)
    if isinstance(obj, dict) and "payloadType" in obj:
        attest.check_envelope(obj, str(path))
        return "attestation", path.name, mf.canonical_json(obj)
    if isinstance(obj, dict) and "_type" in obj:
        attest.check_statement(obj, str(path))
        return "attestation", path.name, mf.canonical_json(obj)
    raise InputError(f"{path}: not a poisonguard manifest or an in-toto attestation")


def _checkpoint_file(path: Path) -> Any:
    from poisonguard.io import read_json
    from poisonguard.provenance.hashing import require_regular_file
    from poisonguard.provenance.ledger import Checkpoint

    require_regular_file(path, "checkpoint file")
    obj = read_json(path, "checkpoint file (from ledger checkpoint --out)")
    try:
        return Checkpoint.from_dict(obj)
    except InputError as exc:
        raise InputError(f"--trusted {path}: {exc}") from None


def _check_out(path: Path, option: str) -> None:
    """Refuse an output path before anything is appended or written: one of the command's
    inputs (the ledger, the file appended; after links), or a directory."""
    from poisonguard.io import check_target

    check_target(path, option)


def trusted_checkpoints(values: list[str]) -> list[Any]:
    """The checkpoints given to ``--trusted``: ``SIZE:ROOTHEX``, a checkpoint file, or a folder
    of them (every ``*.json`` in it), newest (largest) first."""
    found: list[Any] = []
    for value in values:
        path = Path(value)
        if ":" in value and not path.exists():
            size, _, root = value.partition(":")
            try:
                pair = int(size), bytes.fromhex(root)
            except ValueError:
                pair = (-1, b"")
            if pair[0] < 0 or len(pair[1]) != 32:
                raise InputError(f"--trusted {value}: expected SIZE:ROOTHEX (a 64-digit root), "
                                 "a checkpoint file or a folder of them")
            found.append(pair)
        elif path.is_dir():
            files = sorted(f for f in path.iterdir() if f.suffix == ".json")
            if not files:
                raise InputError(f"--trusted {path}: the folder holds no checkpoint (*.json)")
            found += [_checkpoint_file(f) for f in files]
        else:
            found.append(_checkpoint_file(path))
    return sorted(found, key=lambda cp: -(cp[0] if isinstance(cp, tuple) else cp.size))


@ledger_app.command()
def init(
    ledger: Annotated[Path, typer.Argument(help="The SQLite file to create.")],
    pubkey: Annotated[Path | None, Opt("--pubkey", help="Require every checkpoint to be "
                                       "signed by this key's private half.")] = None,
) -> None:
    """Create an empty ledger.

    Example: poisonguard ledger init ledger.db --pubkey team.key.pub
    """
    from poisonguard.provenance import keys
    from poisonguard.provenance.ledger import Ledger

    public = keys.load_public_key(pubkey) if pubkey else None
    with Ledger.init(ledger, public_key=public):
        pass
    typer.echo(f"created {ledger}" + (f", checkpoints signed by key id {keys.key_id(public)}"
                                      if public else ""))


@ledger_app.command()
def append(
    ledger: Annotated[Path, typer.Argument(help="The ledger.")],
    file: Annotated[Path, typer.Argument(help="A manifest (M.json) or an attestation.")],
    key: Annotated[Path | None, Opt("--key", help="Sign the new checkpoint.")] = None,
    passphrase_env: PassphraseOpt = None,
    checkpoint_out: Annotated[Path | None, Opt("--checkpoint-out", help="Write the new "
                                               "checkpoint here (for verify --trusted).")] = None,
) -> None:
    """Append a manifest or attestation; prints the new checkpoint. ``--checkpoint-out`` is
    checked before the entry is appended (never the ledger, the file or a directory).

    Example: poisonguard ledger append ledger.db v1.json --key team.key --checkpoint-out cp.json
    """
    from poisonguard.io import write_text
    from poisonguard.provenance import keys
    from poisonguard.provenance.ledger import Ledger

    kind, name, payload = entry_from_file(file)
    private = keys.load_private_key(key, passphrase_from(passphrase_env)) if key else None
    with Ledger.open(ledger) as book:  # registers the ledger as an input
        if checkpoint_out is not None:
            _check_out(checkpoint_out, "--checkpoint-out")
        cp = book.append(kind, name, payload, key=private)
    text = json.dumps(cp.to_dict(), sort_keys=True)
    if checkpoint_out is not None:
        write_text(checkpoint_out, text + "\n")
    typer.echo(f"appended {kind} {name!r} as entry {cp.size}; checkpoint {text}")


@ledger_app.command()
def log(
    ledger: Annotated[Path, typer.Argument(help="The ledger.")],
    as_json: Annotated[bool, Opt("--json", help="Print JSON.")] = False,
) -> None:
    """List the entries, oldest first.

    Example: poisonguard ledger log ledger.db
    """
    from poisonguard.provenance.ledger import Ledger

    with Ledger.open(ledger) as book:
        rows = [{"entry": e.seq, "kind": e.kind, "name": e.name, "created": e.created,
                 "sha256": e.digest} for e in book.entries()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    elif rows:
        echo_table(rows, title=str(ledger))
    else:
        typer.echo(f"{ledger}: no entries")


TrustedOpt = Annotated[list[str] | None, Opt(
    "--trusted", help="A checkpoint kept outside the ledger: a file from ledger checkpoint --out "
    "or append --checkpoint-out, a folder of them, or SIZE:ROOTHEX; repeatable. The ledger must "
    "still extend each one.")]
NO_WITNESS = ("note: no --trusted checkpoint given: a ledger rolled back or truncated (its newest "
              "entries removed with their checkpoints) cannot be detected from the file alone, "
              "signed or not; keep checkpoints elsewhere (ledger checkpoint --out) and pass them "
              "with --trusted")


def _verified(ledger: Path, pubkey: Path | None, witnesses: list[Any]) -> tuple[Any, Any]:
    """``(verify result, latest checkpoint or None)``; exit 3 when the ledger fails (each
    problem on stdout, the first on stderr)."""
    from poisonguard.provenance import keys
    from poisonguard.provenance.ledger import Ledger

    public = keys.load_public_key(pubkey) if pubkey else None
    with Ledger.open(ledger) as book:
        result = book.verify(public_key=public, trusted=witnesses)
        latest = book.checkpoint() if result.ok and result.size else None
    if not result.ok:
        fail_integrity(f"{ledger} fails verification", result.problems)
    return result, latest


@ledger_app.command()
def verify(
    ledger: Annotated[Path, typer.Argument(help="The ledger.")],
    pubkey: Annotated[Path | None, Opt("--pubkey", help="The key checkpoints must be signed "
                                       "with (else the one the file records).")] = None,
    trusted: TrustedOpt = None,
) -> None:
    """Check every entry, checkpoint and signature; exit 3 naming what was tampered with.

    Example: poisonguard ledger verify ledger.db --trusted cp.json
    """
    witnesses = trusted_checkpoints(trusted or [])
    result, _ = _verified(ledger, pubkey, witnesses)
    if not witnesses:
        typer.echo(NO_WITNESS)
    signed = f", {result.signatures_checked} signatures good" if result.signatures_checked \
        else ""
    newest = witnesses[0][0] if witnesses and isinstance(witnesses[0], tuple) else \
        witnesses[0].size if witnesses else None
    extends = f"; extends {len(witnesses)} trusted checkpoint(s), the newest at size {newest}" \
        if witnesses else ""
    typer.echo(f"ok: {result.size} entries, root {result.root.hex()}{signed}{extends}")


@ledger_app.command()
def checkpoint(
    ledger: Annotated[Path, typer.Argument(help="The ledger.")],
    out: Annotated[list[Path] | None, Opt("--out", "-o", help="Also write the checkpoint here (a file, "
                                          "or a folder: FOLDER/checkpoint-SIZE.json), ideally "
                                          "on another machine or medium; repeatable.")] = None,
    pubkey: Annotated[Path | None, Opt("--pubkey", help="The key checkpoints must be signed "
                                       "with (else the one the file records).")] = None,
    trusted: TrustedOpt = None,
) -> None:
    """Verify the ledger, then print its latest checkpoint and write witness copies of it.

    Example: poisonguard ledger checkpoint ledger.db --out witness/
    """
    from poisonguard.io import write_text

    _, latest = _verified(ledger, pubkey, trusted_checkpoints(trusted or []))
    if latest is None:
        raise InputError(f"{ledger}: no checkpoint yet (the ledger is empty)")
    text = json.dumps(latest.to_dict(), sort_keys=True)
    targets = [t / f"checkpoint-{latest.size:012d}.json" if t.is_dir() else t for t in out or []]
    for target in targets:  # every one checked before any is written
        _check_out(target, "--out")
    for target in targets:
        write_text(target, text + "\n")
    typer.echo(text)
    if targets:
        typer.echo(f"wrote {', '.join(str(t) for t in targets)}", err=True)


@ledger_app.command()
def prove(
    ledger: Annotated[Path, typer.Argument(help="The ledger.")],
    entry: Annotated[int | None, typer.Argument(help="Entry number (from ledger log).")] = None,
    size: Annotated[int | None, Opt("--size", help="Against the checkpoint at this size "
                                    "(default: the latest).")] = None,
    consistency: Annotated[int | None, Opt("--consistency", metavar="OLD_SIZE",
                                           help="Prove the tree at OLD_SIZE is a prefix of the "
                                                "latest (or --size).")] = None,
) -> None:
    """Print an inclusion proof for ENTRY, or a consistency proof (JSON), verified.

    Example: poisonguard ledger prove ledger.db 1
    """
    from poisonguard.provenance.ledger import Ledger

    if (entry is None) == (consistency is None):
        raise InputError("give an ENTRY for an inclusion proof or --consistency OLD_SIZE")
    with Ledger.open(ledger) as book:
        if entry is not None:
            proof: Any = book.prove(entry, size=size)
            doc = {"entry": proof.seq, "size": proof.size, "leaf": proof.leaf.hex(),
                   "root": proof.root.hex(), "path": [h.hex() for h in proof.path]}
        else:
            assert consistency is not None  # one of the two, checked above
            proof = book.consistency(consistency, size)
            doc = {"old_size": proof.old_size, "new_size": proof.new_size,
                   "old_root": proof.old_root.hex(), "new_root": proof.new_root.hex(),
                   "path": [h.hex() for h in proof.path]}
    if not proof.verify():
        raise IntegrityError("the proof does not verify: run ledger verify")
    typer.echo(json.dumps({**doc, "verified": True}, indent=2))
