"""``poisonguard gate``: validate, verify, check drift, scan and split a batch before training.

Writes the accepted rows to ``--accepted`` and the held-back rows to ``QDIR/quarantined.<ext>``,
both exact copies of the batch's rows in its format (a header only when empty), with
``QDIR/reasons.csv`` (``row_id,reason``) and ``QDIR/gate.json`` (every step's result); with
``--ledger`` the accepted file's manifest (``OUT`` with the suffix ``.manifest.json``) is
appended to the ledger. The ledger and keys are checked before anything is written. Exit
codes: 0 all accepted, 1 some quarantined, 3 rejected (provenance failure or drift over
``--max-drift``: nothing is accepted), 2 bad input. ``--dry-run`` decides and prints but writes
nothing. Inputs are never modified.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from poisonguard.cli._common import (
    SEED_MAX,
    app,
    echo_table,
    engine_option,
    image_size_option,
    load_data,
    scheduler_option,
)
from poisonguard.cli.trace import PassphraseOpt, passphrase_from
from poisonguard.errors import InputError

__all__ = ["gate"]

Opt = typer.Option


def _outputs(fmt: str, accepted: Path, quarantine: Path) -> list[tuple[str, Path]]:
    """Every file the gate writes whose name is known before it runs, with the option that
    names it. The manifest's sidecar (``OUT.manifest.rows.<digest>.parquet``) is named by its
    content, so it is checked against the inputs when it is written, not here."""
    manifest = accepted.with_name(accepted.stem + ".manifest.json")
    return [("--accepted", accepted), ("--accepted", manifest),
            *(("--quarantine", quarantine / name)
              for name in (f"quarantined.{fmt}", "reasons.csv", "gate.json"))]


def _check_paths(batch: str, inputs: list[Path | str | None], accepted: Path,
                 quarantine: Path) -> str:
    """The batch's format; refuses, before anything is written or created, an output that
    would land on an input (after links, or a hard link to it) or that is a directory."""
    from poisonguard import io
    from poisonguard.formats import rows_format

    fmt = rows_format(batch) if Path(batch).exists() else "csv"  # folders: .npz or .parquet
    if io.file_format(accepted) != fmt:
        raise InputError(f"--accepted {accepted}: must be a .{fmt} file like the batch")
    if quarantine.exists() and not quarantine.is_dir():
        raise InputError(f"--quarantine {quarantine}: is a file, expected a directory")
    for given in [batch, *inputs]:
        if given is not None and Path(given).exists():
            io.register_input(given)
    for option, out in _outputs(fmt, accepted, quarantine):
        io.check_target(out, option)
    return fmt


@app.command()
def gate(
    batch: Annotated[str, typer.Argument(help="The incoming batch (CSV, Parquet, NPZ or JSON "
                                              "Lines file, image or Hugging Face folder).")],
    reference: Annotated[str, Opt("--reference", help="Trusted data with the same columns.")],
    accepted: Annotated[Path, Opt("--accepted", help="Where the accepted rows go.")],
    quarantine: Annotated[Path, Opt("--quarantine", help="Folder for the held-back rows.")],
    profile: Annotated[Path | None, Opt("--profile", help="Drift profile of the reference "
                                        "(monitor init); fitted on the fly when absent.")] = None,
    manifest: Annotated[Path | None, Opt("--manifest", help="Verify the batch against it.")] = None,
    pubkey: Annotated[Path | None, Opt("--pubkey", help="Public key the --manifest must be "
                                       "signed by.")] = None,
    ledger: Annotated[Path | None, Opt("--ledger", help="Append the accepted rows' "
                                       "manifest to this ledger.")] = None,
    key: Annotated[Path | None, Opt("--key", help="Sign the manifest and checkpoint.")] = None,
    passphrase_env: PassphraseOpt = None,
    label: Annotated[str, Opt("--label", help="Label column (batch and reference).")] = "label",
    id_col: Annotated[str | None, Opt("--id-col", help="Row id column.")] = None,
    source_col: Annotated[str | None, Opt("--source-col", help="Source / contributor "
                                          "column.")] = None,
    max_drift: Annotated[float, Opt("--max-drift", help="Reject when more than this share of "
                                    "columns drift (1 = never).")] = 0.3,
    seed: Annotated[int, Opt("--seed", help="Random seed of the drift check and the scan.",
                             min=0, max=SEED_MAX)] = 0,
    dry_run: Annotated[bool, Opt("--dry-run", help="Decide and print; write nothing.")] = False,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress on stderr.")] = False,
    engine: Annotated[str, engine_option("--manifest is verified and the scan's chunks are "
                                         "scored")] = "local",
    scheduler: Annotated[str | None, scheduler_option()] = None,
    image_size: Annotated[str | None, image_size_option()] = None,
) -> None:
    """Validate, verify, check drift and scan BATCH against REF; split accepted / quarantined.

    Example: poisonguard gate batch-07.csv --reference train.csv --manifest batch-07.json
    --pubkey team.key.pub --accepted accepted-07.csv --quarantine quarantine-07
    """
    from poisonguard.cli.scan import Steps
    from poisonguard.engine import get_engine
    from poisonguard.gate import check_schema
    from poisonguard.gate import gate as run_gate
    from poisonguard.provenance import keys

    runner = get_engine(engine, scheduler)  # a bad --engine or --scheduler fails before work
    _check_paths(batch, [reference, profile, manifest, pubkey, ledger, key], accepted, quarantine)
    if pubkey is not None and manifest is None:
        raise InputError("--pubkey needs --manifest (the manifest whose signature it checks)")
    if key is not None and ledger is None:
        raise InputError("--key signs the ledger's checkpoint: it needs --ledger")
    private = keys.load_private_key(key, passphrase_from(passphrase_env)) if key else None
    public = keys.load_public_key(pubkey) if pubkey else None
    book = None
    if ledger is not None:
        from poisonguard.provenance.ledger import Ledger

        book = Ledger.open(ledger)  # a bad ledger or key fails here, before anything is written
        want = book.public_key
        if want is not None and (private is None or keys.key_id(private) != keys.key_id(want)):
            book.close()
            raise InputError(f"--ledger {ledger}: requires checkpoints signed by key id "
                             f"{keys.key_id(want)[:16]}...; give that --key")
        if want is None and private is not None:
            book.close()
            raise InputError(f"--ledger {ledger}: takes no signatures (made without --pubkey); "
                             "drop --key")
    entry = None
    try:
        with Steps(quiet=quiet) as steps:
            steps("load data")
            ds = load_data(batch, label=label, id_col=id_col, source_col=source_col,
                           image_size=image_size)
            ref = load_data(reference, label=label, id_col=id_col, source_col=source_col,
                            image_size=image_size)
            try:
                check_schema(ds, ref)
            except InputError as exc:  # name both files
                raise InputError(f"{batch}: {exc} (--reference {reference})") from None
            problems = None
            if manifest is not None:
                steps("verify provenance")
                from poisonguard.provenance.verify import verify

                problems = verify(batch, manifest, public_key=public, engine=runner).problems
            prof = None
            if profile is not None:
                from poisonguard.monitor import Profile

                prof = Profile.read(profile)
            steps("drift and scan")
            result = run_gate(ds, ref, profile=prof, provenance_problems=problems,
                              max_drift=max_drift, random_state=seed, progress=steps,
                              engine=runner)
            if not dry_run:
                steps("write")
                entry = _write(result, ds, batch, accepted, quarantine, book, private)
    finally:
        runner.close()
        if book is not None:
            book.close()
    _report(result, batch, accepted, quarantine, dry_run)
    if not dry_run and entry:
        typer.echo(f"wrote {entry['manifest']} and appended it to {ledger} as entry "
                   f"{entry['entry']} (root {entry['root'][:16]}...)")
    raise typer.Exit(result.exit_code)


def _write(result: Any, ds: Any, batch: str, accepted: Path, quarantine: Path, book: Any,
           private: Any) -> dict[str, Any] | None:
    """Both halves as exact copies of the batch's rows (every run writes every output, so no
    file from an earlier run is left to contradict this one), then the ledger entry (returned:
    manifest, entry number, root)."""
    import numpy as np
    import pandas as pd

    from poisonguard import io

    fmt = io.file_format(accepted)
    quarantine.mkdir(parents=True, exist_ok=True)
    held = np.asarray(result.quarantined, dtype=bool)
    for rows, path in ((np.flatnonzero(~held), accepted),
                       (np.flatnonzero(held), quarantine / f"quarantined.{fmt}")):
        if Path(batch).is_dir():  # an image or Hugging Face folder: the rows as read
            from poisonguard.formats import save_rows

            save_rows(ds, rows, path)
        elif Path(batch).exists():
            io.write_rows(batch, rows, path)
        elif len(rows):  # a built-in data set named as the batch
            io.save(ds.take(rows), path)
    reasons = pd.DataFrame({"row_id": np.asarray(ds.ids, dtype=str)[held],
                            "reason": np.asarray(result.reasons, dtype=str)[held]})
    io.report_csv(reasons, quarantine / "reasons.csv")
    summary = result.summary()
    if book is not None and result.status != "rejected" and (~held).any():
        from poisonguard.cli.ledger import entry_from_file
        from poisonguard.provenance import manifest as mf

        m_path = _outputs(fmt, accepted, quarantine)[1][1]
        cols = ds.origin
        built, rows_table = mf.build(str(accepted), label=cols.label if cols else "label",
                                     id_col=cols.id_col if cols else None,
                                     source_col=cols.source_col if cols else None)
        mf.write(built, rows_table, m_path, key=private)
        kind, name, payload = entry_from_file(m_path)
        cp = book.append(kind, name, payload, key=private)
        summary["ledger"] = {"manifest": str(m_path), "entry": cp.size, "root": cp.root.hex()}
    io.write_text(quarantine / "gate.json", json.dumps(summary, indent=2, default=str) + "\n")
    ledger: dict[str, Any] | None = summary.get("ledger")
    return ledger


def _report(result: Any, batch: str, accepted: Path, quarantine: Path, dry_run: bool) -> None:
    s = result.summary()
    echo_table([{"batch": batch, "status": s["status"], "rows": s["rows"],
                 "accepted": s["accepted"], "quarantined": s["quarantined"]}], title="gate")
    if s["scan"] and s["scan"]["flagged_by"]:
        echo_table([{"detector": k, "rows": v} for k, v in s["scan"]["flagged_by"].items()],
                   title="quarantined by")
    for why in s["rejected_because"]:
        typer.echo(f"rejected: {why}", err=True)
    if dry_run:
        typer.echo("dry run: nothing written")
    elif s["status"] != "rejected":
        typer.echo(f"wrote {accepted} ({s['accepted']} rows) and {quarantine}/")
    else:
        typer.echo(f"wrote {quarantine}/ (the whole batch, rejected) and an empty {accepted}")
