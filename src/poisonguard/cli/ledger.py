"""``poisonguard ledger init | append | log | verify | prove``: the append-only, tamper-evident
log of dataset versions (manifests) and scan attestations, in one SQLite file.

Exit codes: 0 done; 2 bad input (not a ledger, a wrong key, an unknown entry); 3 the ledger
fails verification. Keep the checkpoint that ``append`` prints (or ``--checkpoint-out``): given
back to ``verify --trusted``, it proves that history since then was only appended to, which no
check of the file alone can prove against someone who rewrites the whole file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from poisonguard.cli._common import EXIT_INTEGRITY, app, echo_table
from poisonguard.cli.trace import passphrase_from
from poisonguard.errors import InputError, IntegrityError

__all__ = ["append", "entry_from_file", "init", "log", "prove", "verify"]

ledger_app = typer.Typer(help="Append-only Merkle log of dataset versions and scan attestations.",
                         no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")
Opt = typer.Option


def entry_from_file(path: Path) -> tuple[str, str, bytes]:
    """``(kind, name, canonical payload)`` of a manifest or attestation file."""
    from poisonguard.io import read_json
    from poisonguard.provenance import manifest as mf
    from poisonguard.provenance.verify import check_signature

    obj = read_json(path, "manifest or attestation")
    if isinstance(obj, dict) and obj.get("format") == mf.FORMAT:
        manifest = mf.read_dict(obj, path)
        _, problems = check_signature(manifest)
        if problems:
            raise IntegrityError(f"{path}: {problems[0]}; not appended")
        return "manifest", str(manifest.data.get("path") or path.name), mf.canonical_json(obj)
    if isinstance(obj, dict) and ("_type" in obj or "payloadType" in obj):
        return "attestation", path.name, mf.canonical_json(obj)
    raise InputError(f"{path}: not a poisonguard manifest or an in-toto attestation")


def _trusted(value: str | None) -> Any:
    """A checkpoint from a JSON file written by ``--checkpoint-out``, or ``SIZE:ROOTHEX``."""
    from poisonguard.provenance.ledger import Checkpoint

    if value is None:
        return None
    if ":" in value and not Path(value).exists():
        size, _, root = value.partition(":")
        try:
            return int(size), bytes.fromhex(root)
        except ValueError:
            raise InputError(f"--trusted {value}: expected SIZE:ROOTHEX or a checkpoint "
                             "file") from None
    from poisonguard.io import read_json

    obj = read_json(value, "checkpoint file (from ledger append --checkpoint-out)")
    try:
        return Checkpoint.from_dict(obj)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"--trusted {value}: not a checkpoint ({exc})") from None


@ledger_app.command()
def init(
    ledger: Annotated[Path, typer.Argument(help="The SQLite file to create.")],
    pubkey: Annotated[Path | None, Opt("--pubkey", help="Require every checkpoint to be "
                                       "signed by this key's private half.")] = None,
) -> None:
    """Create an empty ledger."""
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
    passphrase_env: Annotated[str | None, Opt("--passphrase-env", metavar="VAR")] = None,
    checkpoint_out: Annotated[Path | None, Opt("--checkpoint-out", help="Write the new "
                                               "checkpoint here (for verify --trusted).")] = None,
) -> None:
    """Append a manifest or attestation; prints the new checkpoint."""
    from poisonguard.io import write_text
    from poisonguard.provenance import keys
    from poisonguard.provenance.ledger import Ledger

    kind, name, payload = entry_from_file(file)
    private = keys.load_private_key(key, passphrase_from(passphrase_env)) if key else None
    with Ledger.open(ledger) as book:
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
    """List the entries, oldest first."""
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


@ledger_app.command()
def verify(
    ledger: Annotated[Path, typer.Argument(help="The ledger.")],
    pubkey: Annotated[Path | None, Opt("--pubkey", help="The key checkpoints must be signed "
                                       "with (else the one the file records).")] = None,
    trusted: Annotated[str | None, Opt("--trusted", help="A checkpoint seen before: a file "
                                       "from --checkpoint-out, or SIZE:ROOTHEX.")] = None,
) -> None:
    """Check every entry, checkpoint and signature; exit 3 naming what was tampered with."""
    from poisonguard.provenance import keys
    from poisonguard.provenance.ledger import Ledger

    public = keys.load_public_key(pubkey) if pubkey else None
    with Ledger.open(ledger) as book:
        result = book.verify(public_key=public, trusted=_trusted(trusted))
    if result.ok:
        signed = f", {result.signatures_checked} signatures good" if result.signatures_checked \
            else ""
        typer.echo(f"ok: {result.size} entries, root {result.root.hex()}{signed}")
        return
    for problem in result.problems:
        typer.echo(f"error: {problem}", err=True)
    raise typer.Exit(EXIT_INTEGRITY)


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
    """Print an inclusion proof for ENTRY, or a consistency proof (JSON), verified."""
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
