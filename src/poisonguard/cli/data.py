"""``poisonguard datasets``: the built-in real and synthetic data sets."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from poisonguard.cli._common import SEED_MAX, app, echo_table

if TYPE_CHECKING:
    from poisonguard.dataset import Dataset

__all__ = ["datasets_export", "datasets_list"]

datasets_app = typer.Typer(help="Built-in data sets (no network needed).", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")


@datasets_app.command("list")
def datasets_list() -> None:
    """List the built-in data sets and what each needs.

    Example: poisonguard datasets list
    """
    from poisonguard.datasets import DATASETS

    echo_table([{"name": d.name, "data": d.modality, "what": d.summary,
                 "needs": d.requires or "-"} for d in DATASETS.values()])


@datasets_app.command("export")
def datasets_export(
    name: Annotated[str, typer.Argument(help="Data set name (see `poisonguard datasets list`).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV, Parquet, NPZ or JSON Lines file "
                                      "to write (or a new folder, with --format).")],
    n_rows: Annotated[int | None, typer.Option(help="Seeded stratified subset of this size.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed for the subset and the sources.",
                                      min=0, max=SEED_MAX)] = 0,
    ids: Annotated[bool, typer.Option("--ids", help="Add an `id` column: NAME-ROW, the row's "
                                      "number in the whole data set.")] = False,
    sources: Annotated[int | None, typer.Option(
        help="Add a `source` column: each row from one of this many seeded contributors "
             "(vendor-a, vendor-b, ...), the same row always from the same one.",
        min=1, max=26)] = None,
    rest: Annotated[Path | None, typer.Option(help="Also write the rows left out of --n-rows "
                                              "here (real data sets).")] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="file|images|hf", help="'file': the "
                                     "format of --out's extension; 'images': a new folder of "
                                     "PNG files, one sub-folder per class; 'hf': a new Hugging "
                                     "Face save_to_disk folder.")] = "file",
) -> None:
    """Write a built-in data set to a file or folder, e.g. to try the other commands on it.

    Example: poisonguard datasets export breast_cancer --ids --sources 3 --n-rows 400
    --out train.csv --rest batch-07.csv
    """
    from poisonguard import io
    from poisonguard.cli._common import fail
    from poisonguard.datasets import load_dataset

    if fmt not in ("file", "images", "hf"):
        fail(f"--format must be file, images or hf (got {fmt!r})")
    if rest is not None and n_rows is None:
        fail("--rest needs --n-rows (the rows left out of the subset go to --rest)")
    io.check_output(out, "--out")
    if rest is not None:
        io.check_output(rest, "--rest")
        if Path(rest).resolve() == Path(out).resolve():
            fail(f"--rest and --out are the same file ({out})")
    if rest is not None and name.startswith("synthetic"):
        fail(f"--rest: {name!r} is generated (--n-rows is how many rows), so no rows are left out")
    ds = load_dataset(name, n_rows=n_rows, random_state=seed)
    parts = [(ds, out)]
    if rest is not None:
        whole = load_dataset(name, random_state=seed)
        parts.append((whole.take(np.flatnonzero(~np.isin(whole.ids, ds.ids))), rest))
    for part, path in parts:
        part = _labelled(part, name, seed, ids=ids, sources=sources)
        if fmt == "file":
            io.save(part, path)
        else:
            from poisonguard.formats import write_folder

            write_folder(part, path, "images" if fmt == "images" else "hf")
        typer.echo(f"wrote {part.n_rows} rows of {name} -> {path}", err=True)


def _labelled(ds: Dataset, name: str, seed: int, *, ids: bool, sources: int | None) -> Dataset:
    """``ds`` with ids ``NAME-ROW`` and seeded sources, each a function of the row alone."""
    import hashlib

    if sources is not None:
        picks = [int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest()[:4], "big") % sources
                 for i in ds.ids]
        ds = ds.replace(sources=np.asarray([f"vendor-{chr(ord('a') + k)}" for k in picks]))
    if ids:
        ds = ds.replace(ids=np.asarray([f"{name}-{i}" for i in ds.ids]))
    return ds
