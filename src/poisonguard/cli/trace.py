"""``poisonguard keygen | manifest | verify | diff``: provenance and integrity of data files.

Exit codes: 0 the data matches; 2 bad input (a missing or malformed manifest, a wrong key
file); 3 integrity failure (rows added, removed or changed; the manifest or its signature
tampered with). Passphrases are read from an environment variable (``--passphrase-env VAR``),
never from the command line, where other users could see them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from poisonguard.cli._common import (
    app,
    echo_table,
    engine_option,
    fail_integrity,
    scheduler_option,
)
from poisonguard.errors import InputError, IntegrityError

__all__ = ["attest", "diff", "keygen", "manifest", "sources", "verify"]

Opt = typer.Option
_SHOW = 20


PassphraseOpt = Annotated[str | None, typer.Option(
    "--passphrase-env", metavar="VAR",
    help="Environment variable holding the key's passphrase (never on the command line).")]


def passphrase_from(env: str | None) -> str | None:
    """The passphrase in environment variable ``env`` (None when not asked for)."""
    if env is None:
        return None
    value = os.environ.get(env)
    if not value:
        raise InputError(f"--passphrase-env {env}: the environment variable is not set or empty")
    return value


@app.command()
def keygen(
    out: Annotated[Path, Opt("--out", "-o", help="Private key file; the public key goes to OUT.pub.")],
    passphrase_env: Annotated[str | None, Opt("--passphrase-env", metavar="VAR",
                                              help="Encrypt the key with the passphrase in "
                                                   "this environment variable.")] = None,
    force: Annotated[bool, Opt("--force", help="Overwrite existing key files.")] = False,
) -> None:
    """Write a new ed25519 signing key (mode 0600) and its public key (OUT.pub).

    Example: poisonguard keygen --out team.key
    """
    from poisonguard.provenance import keys

    priv, pub = keys.generate(out, passphrase=passphrase_from(passphrase_env), overwrite=force)
    key = keys.load_public_key(pub)
    typer.echo(f"wrote {priv} (private, mode 0600) and {pub}; key id {keys.key_id(key)}")


@app.command()
def manifest(
    data: Annotated[str, typer.Argument(help="CSV, Parquet, NPZ or JSON Lines file, an image or "
                                        "Hugging Face folder, a folder of Parquet files (read in "
                                        "name order), or a built-in data set.")],
    out: Annotated[Path, Opt("--out", "-o", help="Manifest JSON; its rows go beside it to "
                             "OUT.rows.<digest>.parquet.")],
    label: Annotated[str, Opt("--label", help="Label column.")] = "label",
    id_col: Annotated[str | None, Opt("--id-col", help="Id column: rows are matched by it. "
                                      "Without one, rows are matched by content.")] = None,
    source_col: Annotated[str | None, Opt("--source-col", help="Source column.")] = None,
    key: Annotated[Path | None, Opt("--key", help="Sign with this private key.")] = None,
    passphrase_env: PassphraseOpt = None,
    engine: Annotated[str, engine_option("rows are hashed")] = "local",
    scheduler: Annotated[str | None, scheduler_option()] = None,
) -> None:
    """Hash every row and write a (signed) manifest with a Merkle root over the rows.

    Example: poisonguard manifest train.csv --id-col id --source-col source --key team.key --out v1.json
    """
    from poisonguard.engine import get_engine
    from poisonguard.io import check_output, register_input
    from poisonguard.provenance import keys
    from poisonguard.provenance import manifest as mf

    if Path(data).exists():  # refused before hashing: never over the data (or a link to it)
        register_input(data)
    check_output(out, "--out")
    if Path(data).is_dir() and out.resolve().parent == Path(data).resolve():
        raise InputError(f"--out {out}: inside the data folder {data}, where the manifest and "
                         "its rows file would be read as data next time; write it elsewhere")
    private = keys.load_private_key(key, passphrase_from(passphrase_env)) if key else None
    with get_engine(engine, scheduler) as hasher:  # connects: a bad address fails here
        built, table = mf.build(data, label=label, id_col=id_col, source_col=source_col,
                                engine=hasher)
    final = mf.write(built, table, out, key=private)
    signed = f"signed by key id {final.signature['key_id'][:16]}..." if private else "unsigned"
    typer.echo(f"wrote {out} and {final.rows_file['name']}: {final.rows} rows, keyed by "
               f"{final.keyed}, Merkle root {final.merkle_root}, {signed}")


def _change_lines(changes: Any) -> list[str]:
    """The first keys added, removed and changed, a line per kind."""
    lines = []
    for kind in ("added", "removed", "changed"):
        keys_ = getattr(changes, kind)
        if len(keys_):
            shown = ", ".join(str(k) for k in keys_[:_SHOW])
            more = f" and {len(keys_) - _SHOW} more" if len(keys_) > _SHOW else ""
            lines.append(f"  {kind} ({len(keys_)}): {shown}{more}")
    return lines


@app.command()
def verify(
    data: Annotated[str, typer.Argument(help="The data file (or folder of Parquet files) to "
                                        "check.")],
    manifest_path: Annotated[Path, typer.Argument(metavar="MANIFEST", help="Its manifest.")],
    pubkey: Annotated[Path | None, Opt("--pubkey", help="Require a signature by this key.")] = None,
    engine: Annotated[str, engine_option("rows are hashed")] = "local",
    scheduler: Annotated[str | None, scheduler_option()] = None,
) -> None:
    """Check DATA against MANIFEST: exit 0 when it matches, 3 naming what changed (each
    problem on stdout, the first on stderr).

    Example: poisonguard verify train.csv v1.json --pubkey team.key.pub
    """
    from poisonguard.engine import get_engine
    from poisonguard.provenance import keys
    from poisonguard.provenance.verify import verify as run

    public = keys.load_public_key(pubkey) if pubkey else None
    with get_engine(engine, scheduler) as hasher:  # connects: a bad address fails here
        result = run(data, manifest_path, public_key=public, engine=hasher)
    typer.echo(f"signature: {result.signature}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    if result.ok:
        typer.echo(f"ok: {data} matches {manifest_path}")
        return
    details = []
    if result.changes is not None:
        counts = result.changes.counts()
        details = [*_change_lines(result.changes),
                   f"rows added {counts['added']}, removed {counts['removed']}, changed "
                   f"{counts['changed']}, unchanged {counts['unchanged']}"]
    fail_integrity(f"{data} does not verify against {manifest_path}", result.problems, details)


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="The older manifest.")],
    new: Annotated[Path, typer.Argument(help="The newer manifest.")],
    out: Annotated[Path | None, Opt("--out", "-o", help="Also write the diff as JSON.")] = None,
    as_json: Annotated[bool, Opt("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Rows added, removed and changed between two manifests, grouped by source; exit 3 when
    either manifest or its rows file was tampered with.

    Example: poisonguard diff v1.json v2.json
    """
    from poisonguard.io import write_text
    from poisonguard.provenance import manifest as mf
    from poisonguard.provenance.diff import compare
    from poisonguard.provenance.verify import check_signature, rows_of

    tables = []
    for path in (old, new):
        m = mf.read(path)
        _, problems = check_signature(m)
        table, side_problems = rows_of(m, path)
        problems += side_problems
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise IntegrityError(f"{path}: {problems[0]}{more}")
        assert table is not None  # rows_of gives a table or a problem
        tables.append(table)
    changes = compare(tables[0], tables[1])
    payload = {"old": str(old), "new": str(new), **changes.to_dict()}
    if out is not None:
        write_text(out, json.dumps(payload, indent=2) + "\n")
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
        return
    echo_table([changes.counts()], title=f"{old} -> {new}")
    echo_table(changes.by_source().to_dict(orient="records"), title="by source")
    for line in _change_lines(changes):
        typer.echo(line)


@app.command()
def attest(
    scan_dir: Annotated[Path, typer.Argument(help="The --out folder of a scan.")],
    manifest_path: Annotated[Path, Opt("--manifest", help="Manifest of the scanned data.")],
    out: Annotated[Path | None, Opt("--out", "-o", help="Where to write it (default "
                                    "SCAN_DIR/attestation.intoto.json).")] = None,
    key: Annotated[Path | None, Opt("--key", help="Sign it (DSSE envelope).")] = None,
    passphrase_env: PassphraseOpt = None,
    fail_on: Annotated[float | None, Opt("--fail-on", help="Result FAILED when the flagged "
                                         "share exceeds this.")] = None,
) -> None:
    """Write an in-toto Statement (test-result) binding a scan to the dataset's digest; exit 3
    when the scan's rows (their Merkle root) are not the manifest's.

    Example: poisonguard attest scan-v2 --manifest v2.json --key team.key
    """
    from poisonguard.io import write_text
    from poisonguard.provenance import attest as at
    from poisonguard.provenance import keys

    if fail_on is not None and not 0.0 <= fail_on <= 1.0:
        raise InputError(f"--fail-on must be a fraction in [0, 1] (got {fail_on:g})")
    private = keys.load_private_key(key, passphrase_from(passphrase_env)) if key else None
    stmt = at.statement(scan_dir, manifest_path, fail_on=fail_on)
    doc = at.envelope(stmt, private) if private is not None else stmt
    target = out or scan_dir / "attestation.intoto.json"
    write_text(target, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    typer.echo(f"wrote {target}: {stmt['predicate']['result']} for "
               f"{stmt['subject'][0]['name']} ({'signed' if private else 'unsigned'})")


@app.command()
def sources(
    scan_dirs: Annotated[list[Path], typer.Argument(help="Scan --out folders (with sources).")],
    out: Annotated[Path | None, Opt("--out", "-o", help="Also write the table as CSV.")] = None,
) -> None:
    """Rank sources by how often their rows are flagged across scans (Beta posterior).

    Example: poisonguard sources scan-v2 scan-v3
    """
    from poisonguard.io import report_csv
    from poisonguard.provenance.attest import scan_sources
    from poisonguard.provenance.reputation import reputation

    records: list[dict[str, Any]] = []
    for folder in scan_dirs:
        records += scan_sources(folder)
    table = reputation(records)
    if out is not None:
        report_csv(table, out)
    echo_table(table.to_dict(orient="records"), title=f"sources over {len(scan_dirs)} scan(s)")
    for name in table.loc[table["named"], "source"]:
        typer.echo(f"named: source {name!r} is flagged far above the base rate", err=True)
