"""``poisonguard datasets``: the built-in real and synthetic data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from poisonguard.cli._common import SEED_MAX, app, echo_table

__all__ = ["datasets_export", "datasets_list"]

datasets_app = typer.Typer(help="Built-in data sets (no network needed).", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("list")
def datasets_list() -> None:
    """List the built-in data sets and what each needs."""
    from poisonguard.datasets import DATASETS

    echo_table([{"name": d.name, "data": d.modality, "what": d.summary,
                 "needs": d.requires or "-"} for d in DATASETS.values()])


@datasets_app.command("export")
def datasets_export(
    name: Annotated[str, typer.Argument(help="Data set name (see `poisonguard datasets list`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV, Parquet or NPZ file to write.")],
    n_rows: Annotated[int | None, typer.Option(help="Seeded stratified subset of this size.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed for the subset.", min=0, max=SEED_MAX)] = 0,
) -> None:
    """Write a built-in data set to a file, e.g. to try the other commands on it."""
    from poisonguard import io
    from poisonguard.datasets import load_dataset

    ds = load_dataset(name, n_rows=n_rows, random_state=seed)
    io.save(ds, out)
    typer.echo(f"wrote {ds.n_rows} rows of {name} -> {out}", err=True)
