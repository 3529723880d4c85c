"""``poisonguard attacks``, ``poisonguard attack`` and ``poisonguard trigger apply``."""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from poisonguard.cli._common import SEED_MAX, app, echo_table, image_size_option, load_data
from poisonguard.errors import InputError

__all__ = ["attack", "list_attacks", "trigger_apply"]

trigger_app = typer.Typer(help="Work with saved backdoor triggers.", no_args_is_help=True)
app.add_typer(trigger_app, name="trigger")

Opt = typer.Option
# the trigger kinds, listed without importing the attacks (the CLI starts fast)
_TRIGGER_HELP = ("image patch, blend, shape, noise, sinusoid, warp; tabular feature, rare, common, "
                 "copy, shift, pattern; text token, phrase, sentence, char, punct, style")


@app.command("attacks")
def list_attacks() -> None:
    """List the registered attacks, one line each.

    Example: poisonguard attacks
    """
    from poisonguard.attacks import ATTACKS

    echo_table([{"attack": name, "family": cls.family, "data": ",".join(cls.modalities),
                 "what it does": cls.summary} for name, cls in sorted(ATTACKS.items())])


def _attack_params(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments for attack ``name`` from the CLI options that were set."""
    from poisonguard.attacks import get_attack

    cls = get_attack(name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    if cls.family == "targeted" and options.get("target_class") is not None:
        options["base_class"] = options.pop("target_class")  # the class the target is pushed to
    params = {}
    for key, value in options.items():
        if value is None:
            continue
        if key not in accepted:
            flags = ", ".join(sorted("--" + p.replace("_", "-") for p in accepted))
            raise InputError(f"option --{key.replace('_', '-')} does not apply to attack {name!r} "
                             f"(it takes {flags})")
        params[key] = value
    return params


def _count(text: str | None, flag: str) -> int | None:
    """A whole number given as ``7`` or ``1e9``; a one-line error naming ``flag`` otherwise (the
    attack then checks its range against the data)."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"option {flag}: {text!r} is not a whole number") from None
    if not value.is_integer():
        raise InputError(f"option {flag}: {text!r} is not a whole number")
    return int(value)


@app.command("attack")
def attack(
    data: Annotated[str, typer.Argument(help="CSV, Parquet, NPZ or JSON Lines file, an image or "
                                             "Hugging Face folder, or a built-in data set name.")],
    attack: Annotated[str, Opt("--attack", "-a", help="Attack name (see `poisonguard attacks`).")],
    out: Annotated[Path, Opt("--out", "-o", help="Poisoned data, written in the input's format.")],
    truth: Annotated[Path | None, Opt(help="Ground truth CSV (row_id,poisoned,source_index); "
                                           "default: OUT with .truth.csv")] = None,
    label: Annotated[str, Opt(help="Label column.")] = "label",
    id_col: Annotated[str | None, Opt(help="Row id column.")] = None,
    source_col: Annotated[str | None, Opt(help="Source / contributor column.")] = None,
    seed: Annotated[int, Opt(help="Random seed.", min=0, max=SEED_MAX)] = 0,
    rate: Annotated[float | None, Opt(help="Budget as a fraction of rows.")] = None,
    count: Annotated[int | None, Opt(help="Budget as a number of rows.")] = None,
    strategy: Annotated[str | None, Opt(help="label-flip: random, class or greedy.")] = None,
    source_class: Annotated[str | None, Opt(help="Class whose rows are attacked.")] = None,
    target_class: Annotated[str | None, Opt(help="Class the attack pushes towards.")] = None,
    where: Annotated[str | None, Opt(help="subpopulation: group filter, e.g. 'age > 60'.")] = None,
    method: Annotated[str | None, Opt(help="subpopulation: inject|flip; clean-label: "
                                           "adversarial|interpolate.")] = None,
    trigger: Annotated[str | None, Opt(help=f"Backdoor trigger: {_TRIGGER_HELP}.")] = None,
    trigger_size: Annotated[str | None, Opt(metavar="INTEGER", help="Patch or glyph side in "
                                            "pixels, or number of trigger columns.")] = None,
    trigger_value: Annotated[float | None, Opt(help="Patch, glyph, feature or rare value.")] = None,
    alpha: Annotated[float | None, Opt(help="Trigger strength: blend opacity; noise or sinusoid "
                                           "amplitude (share of the data range); warp pixels; "
                                           "shift or pattern SDs; common quantile.")] = None,
    columns: Annotated[str | None, Opt(help="Tabular trigger columns, comma-separated.")] = None,
    token: Annotated[str | None, Opt(help="Inserted text: token, phrase, sentence or punct "
                                          "pattern.")] = None,
    model: Annotated[str | None, Opt(help="Surrogate model: logreg or mlp.")] = None,
    target_row: Annotated[str | None, Opt(help="Targeted attacks: id of the victim row (taken "
                                               "out of the data).")] = None,
    inject: Annotated[bool | None, Opt("--inject/--modify", help="backdoor: add triggered copies, "
                                       "or change rows (default: inject for text only).")] = None,
    save_trigger: Annotated[Path | None, Opt(help="Write the backdoor trigger as JSON.")] = None,
    adaptive: Annotated[bool, Opt("--adaptive", help="Run the adaptive loop against the default "
                                  "scan: backdoor becomes adaptive-backdoor; adaptive-blend, "
                                  "adaptive-patch and spread-backdoor get --rounds (default 3).")
                        ] = False,
    rounds: Annotated[int | None, Opt(min=0, max=20, help="Adaptive loop: rounds of scan and "
                                      "swap (adaptive-backdoor: default 3); label-flip greedy: "
                                      "rounds of flips.")] = None,
    floor: Annotated[float | None, Opt(help="Adaptive loop: attack success on the attacker's "
                                            "held-out rows it must keep (default 0.5).")] = None,
    cover: Annotated[float | None, Opt(help="adaptive-blend / -patch: share of the budget that "
                                            "carries the trigger with its own label.")] = None,
    strength: Annotated[float | None, Opt(help="spread-backdoor: share of the trigger's strength "
                                               "on each row.")] = None,
    image_size: Annotated[str | None, image_size_option()] = None,
) -> None:
    """Poison a dataset and write the poisoned copy with its ground truth.

    ``--adaptive``: the attacker holds out a share of the rows, scans its own poisoned copy
    with the default scan, swaps the poison rows scored highest for rows like the ones it
    missed, and keeps the round the scan ranks lowest while a logistic-regression proxy keeps
    its attack success on the held-out rows at ``--floor``; each round is printed.

    Example: poisonguard attack bc.csv --attack backdoor --trigger feature --rate 0.05 --out bc-backdoor.csv
    """
    import numpy as np

    from poisonguard import io
    from poisonguard._validation import resolve_budget
    from poisonguard.attacks import get_attack

    ds = load_data(data, label=label, id_col=id_col, source_col=source_col, image_size=image_size)
    if ds.modality == "image" and io.file_format(out) != "npz":
        raise InputError(f"--out {out}: image data can only be saved as .npz")
    truth_path = truth or out.with_name(out.name.split(".")[0] + ".truth.csv")
    io.check_output(out, "--out")  # before the attack, not after it
    io.check_output(truth_path, "--truth")
    if save_trigger is not None:
        io.check_output(save_trigger, "--save-trigger")
    if adaptive:
        attack, rounds = _adaptive(attack, rounds)
    params = _attack_params(attack, {
        "rate": rate, "count": count, "strategy": strategy, "source_class": source_class,
        "target_class": target_class, "where": where, "method": method, "trigger": trigger,
        "trigger_size": _count(trigger_size, "--trigger-size"), "trigger_value": trigger_value,
        "alpha": alpha,
        "columns": tuple(c.strip() for c in columns.split(",")) if columns else None,
        "token": token, "model": model, "inject": inject, "rounds": rounds, "floor": floor,
        "cover": cover, "strength": strength})
    default_ids, input_ids = ds.has_default_ids, ds.ids
    if target_row is not None:
        if get_attack(attack).family != "targeted":
            raise InputError(f"option --target-row does not apply to attack {attack!r} (it is "
                             "for the targeted attacks: feature-collision, gradient-matching)")
        hit = np.flatnonzero(ds.ids == target_row)
        if not hit.size:
            raise InputError(f"--target-row {target_row!r} is not a row id of {data}")
        params["target"] = ds.take(hit).X
        ds = ds.take(np.flatnonzero(ds.ids != target_row))
    resolve_budget(rate, count, ds.n_rows)  # parameter mistakes first, without the file name
    try:
        chosen = get_attack(attack)(**params)
        run = None
        if attack in _LOOPED and int(getattr(chosen, "rounds", 0)) > 0:
            from poisonguard.attacks import adapt

            run = adapt(chosen, ds, rng=np.random.default_rng(seed))
        result = run.result if run is not None else chosen.poison(ds, rng=np.random.default_rng(seed))
    except InputError as exc:  # about this data: say which file
        raise InputError(f"{data}: {exc}") from None
    if run is not None:
        for r in run.rounds:
            typer.echo(f"round {r.round}: swapped {r.swapped}, scan AUROC {r.scan_auroc:.3f}, "
                       f"{r.flagged} of {result.n_poisoned} poison rows flagged, proxy attack "
                       f"success {r.proxy_success:.3f}", err=True)
        typer.echo(f"kept round {run.kept}", err=True)
    if target_row is not None:  # rows were taken out before the attack: index the input file
        keep = np.flatnonzero(input_ids != target_row)
        src = np.where(result.source_index >= 0, keep[np.maximum(result.source_index, 0)], -1)
        result = replace(result, source_index=src)
    poisoned = result.dataset
    if default_ids:  # no id column: row ids are the output's row numbers
        poisoned = poisoned.replace(ids=None)
    if poisoned.origin is not None:  # rows the attack left alone keep the file's own text
        untouched = ~result.mask & (result.source_index >= 0)
        poisoned = poisoned.replace(origin=replace(
            poisoned.origin, file_rows=np.where(untouched, result.source_index, -1)))
    if save_trigger is not None and result.trigger is None:
        raise InputError(f"--save-trigger: attack {attack!r} has no trigger")
    frame = result.truth()
    frame["row_id"] = poisoned.ids
    # one group: the trigger and the truth land before the poisoned file, so a poisoned file on
    # disk always has the truth (and trigger) written with it
    group = ([save_trigger] if save_trigger is not None else []) + [truth_path, out]
    with io.atomic_paths(group) as tmps:
        if save_trigger is not None and result.trigger is not None:
            tmps[0].write_text(result.trigger.to_json(), encoding="utf-8")
        io.neutralise_formulas(frame).to_csv(tmps[-2], index=False)
        io.save_to(poisoned, tmps[-1], fmt=io.file_format(out))
    typer.echo(f"{attack}: poisoned {result.n_poisoned} of {poisoned.n_rows} rows -> {out} "
               f"(truth: {truth_path})", err=True)
    if result.target is not None:
        who = ", ".join(result.target.ids) or str(target_row)
        typer.echo(f"target row {who} is aimed at class {result.target.label}", err=True)


_LOOPED = ("adaptive-backdoor", "adaptive-blend", "adaptive-patch", "spread-backdoor")


def _adaptive(attack: str, rounds: int | None) -> tuple[str, int]:
    """The attack and rounds ``--adaptive`` runs: ``backdoor`` becomes ``adaptive-backdoor``."""
    name = "adaptive-backdoor" if attack == "backdoor" else attack
    if name not in _LOOPED:
        raise InputError(f"--adaptive runs the adaptive loop around a backdoor: attack "
                         f"backdoor, {', '.join(_LOOPED)} (got {attack!r})")
    if rounds == 0:
        raise InputError("--adaptive needs --rounds of at least 1 (got 0)")
    return name, 3 if rounds is None else rounds


@trigger_app.command("apply")
def trigger_apply(
    trigger_file: Annotated[Path, typer.Argument(help="Trigger JSON from --save-trigger.")],
    data: Annotated[str, typer.Argument(help="Data to stamp (CSV, Parquet, NPZ, or built-in name).")],
    out: Annotated[Path, Opt("--out", "-o", help="Triggered copy, format from its extension.")],
    label: Annotated[str, Opt(help="Label column.")] = "label",
    id_col: Annotated[str | None, Opt(help="Row id column.")] = None,
    source_col: Annotated[str | None, Opt(help="Source column.")] = None,
) -> None:
    """Stamp a saved trigger onto every row of DATA (labels unchanged).

    Example: poisonguard trigger apply trigger.json bc.csv --out bc-triggered.csv
    """
    from poisonguard import io
    from poisonguard.attacks import load_trigger

    trig = load_trigger(trigger_file)
    ds = load_data(data, label=label, id_col=id_col, source_col=source_col)
    io.file_format(out)
    io.check_output(out, "--out")
    try:
        stamped = trig.apply_dataset(ds)
    except InputError as exc:  # the trigger does not fit this data: say which trigger
        raise InputError(f"{trigger_file}: {exc}") from None
    io.save(stamped, out)
    typer.echo(f"applied {trig.kind} trigger to {ds.n_rows} rows -> {out}", err=True)
