"""``poisonguard redteam``: every applicable attack at a few budgets, clean vs poisoned model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from poisonguard.cli._common import SEED_MAX, app, echo_table, image_size_option, load_data
from poisonguard.errors import InputError

__all__ = ["redteam"]


@app.command("redteam")
def redteam(
    data: Annotated[str, typer.Argument(
        help="CSV, Parquet, NPZ or JSON Lines file, an image or Hugging Face folder, or a built-in "
             "data set name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the table and plots.")],
    model: Annotated[str, typer.Option(help="Victim model: logreg, mlp or cnn.")] = "logreg",
    budgets: Annotated[str, typer.Option(help="Poison budgets (fractions), comma-separated.")] = (
        "0.01,0.05,0.1"),
    attacks: Annotated[str | None, typer.Option(help="Attacks to run, comma-separated "
                                                     "(default: every applicable one).")] = None,
    label: Annotated[str, typer.Option(help="Label column.")] = "label",
    id_col: Annotated[str | None, typer.Option(help="Row id column.")] = None,
    source_col: Annotated[str | None, typer.Option(help="Source column.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.", min=0, max=SEED_MAX)] = 0,
    test_size: Annotated[float, typer.Option(help="Share of rows held out for testing.")] = 0.3,
    defense: Annotated[str | None, typer.Option(help="Also run every attack against this defence "
                                                     "(see `poisonguard defenses`).")] = None,
    param: Annotated[list[str] | None, typer.Option(help="A defence parameter, KEY=VALUE "
                                                         "(repeatable).")] = None,
    image_size: Annotated[str | None, image_size_option()] = None,
) -> None:
    """Red-team a dataset: poison the training split with each attack, retrain, measure.

    Example: poisonguard redteam bc.csv --model mlp --out redteam-bc
    """
    from poisonguard.evaluation import run_redteam

    try:
        fractions = tuple(float(b) for b in budgets.split(","))
    except ValueError:
        raise InputError(f"--budgets must be comma-separated fractions (got {budgets!r})") from None
    ds = load_data(data, label=label, id_col=id_col, source_col=source_col, image_size=image_size)
    if len(ds.classes) < 2:
        raise InputError(f"{data}: one class ({ds.classes[0]!r}) in {ds.n_rows} rows; a red team "
                         f"needs at least 2 (is --label {label!r} the label column?)")
    names = tuple(a.strip() for a in attacks.split(",")) if attacks else None
    guard = None
    if defense is not None:
        from poisonguard.cli.harden import make_defense

        guard = make_defense(defense, param or [])
    elif param:
        raise InputError("--param sets a defence's parameter: it needs --defense")
    report = run_redteam(ds, model=model, budgets=fractions, attacks=names, seed=seed,
                         test_size=test_size, defense=guard)
    written = report.write(out)
    cols = ["attack", "variant", "budget", "clean_accuracy", "poisoned_accuracy", "attack_success"]
    if guard is not None:
        cols += ["defended_poisoned_accuracy", "defended_attack_success"]
    echo_table([{k: _cell(v) for k, v in row.items()} for row in report.table[cols].to_dict("records")],
               title=f"red team: {ds.name} ({report.model})")
    typer.echo("attack_success: backdoors, triggered test rows predicted as the target; targeted, "
               "targets given the attacker's label; subpopulation, 1 - the group's accuracy; "
               "privacy, membership-inference AUC on the targets; availability and label flips, "
               "the rise in test error (below 0: the poisoned model happened to do better). "
               "'-': not measured for that attack.")
    typer.echo(f"wrote {', '.join(p.name for p in written)} -> {out}", err=True)


def _cell(value: object) -> object:
    """Numbers with three decimals, a missing one as '-' (as in redteam.md)."""
    if isinstance(value, float):
        return "-" if value != value else f"{value:.3f}"
    return value

