"""``poisonguard monitor``: profile a reference, check batches for drift, track canaries, history.

``init`` writes a reference's profile (JSON). ``check`` tests a batch against it, writes
``drift.json`` (``"drift"`` first) and ``drift.html`` to ``--out`` and records the check in the
history database; it exits 0 either way unless ``--fail-on-drift`` (then 1 on drift). With
``--engine dask`` the batch (CSV, Parquet or a folder of Parquet files) is read as partitions on
a Dask cluster that send back only counts and the domain classifier's rows: the same report.
``canary`` scores a labelled batch with a model trained on the profile's reference sample and
alerts when the accuracy drops below the running baseline (exit 1 on an alert only with
``--fail-on-alert``). ``history`` lists the stored checks and with ``--out`` writes
``history.html`` with a trend plot per feature, the label shares and the canary accuracy.

The history database is ``--db`` (or ``$POISONGUARD_DB``): a SQLite file or a database URL such
as ``postgresql+psycopg://user@host/db``; by default ``history.sqlite`` in
:func:`~poisonguard.monitor.history.user_home` (``~/.local/share/poisonguard``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from poisonguard.cli._common import (
    EXIT_FINDINGS,
    SEED_MAX,
    app,
    echo_table,
    engine_option,
    image_size_option,
    load_data,
    scheduler_option,
)
from poisonguard.errors import InputError

if TYPE_CHECKING:
    from poisonguard.dataset import Dataset
    from poisonguard.monitor import DriftReport
    from poisonguard.monitor.profile import Profile

__all__ = ["monitor_canary", "monitor_check", "monitor_history", "monitor_init"]

Opt = typer.Option
monitor_app = typer.Typer(help="Drift and canary monitoring of new batches against a reference.",
                          no_args_is_help=True)
app.add_typer(monitor_app, name="monitor")

DbOpt = Annotated[str | None, Opt("--db", envvar="POISONGUARD_DB", show_default=False, help=(
    "History: a SQLite file or a database URL (postgresql+psycopg://...); default "
    "history.sqlite in $POISONGUARD_HOME, else ~/.local/share/poisonguard."))]
LabelOpt = Annotated[str, Opt(help="Label column.")]
BatchLabelOpt = Annotated[str | None, Opt("--label", show_default=False, help=(
    "Label column (default: the profile's reference column, else label)."))]
BatchIdOpt = Annotated[str | None, Opt("--id-col", help="Row id column (default: the profile's).")]
BatchSourceOpt = Annotated[str | None, Opt("--source-col", help="Source / contributor column "
                                           "(default: the profile's).")]
IdOpt = Annotated[str | None, Opt(help="Row id column.")]
SourceOpt = Annotated[str | None, Opt(help="Source / contributor column.")]


def _load(data: str, label: str, id_col: str | None, source_col: str | None,
          image_size: str | None = None) -> Dataset:
    ds = load_data(data, label=label, id_col=id_col, source_col=source_col, image_size=image_size)
    return ds if ds.name == data else ds.replace(name=data)  # errors then name the file as given


def _roles(profile: Profile, label: str | None, id_col: str | None,
           source_col: str | None) -> tuple[str, str | None, str | None]:
    """The batch's columns: as given, else the profile's reference file's, else the defaults."""
    return (label or profile.role("label") or "label", id_col or profile.role("id_col"),
            source_col or profile.role("source_col"))


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, expected a directory")


@monitor_app.command("init")
def monitor_init(
    reference: Annotated[str, typer.Argument(help="Trusted data: CSV, Parquet, NPZ or a built-in "
                                                  "data set name.")],
    out: Annotated[Path, Opt("--out", "-o", help="Profile JSON file to write.")],
    label: LabelOpt = "label",
    id_col: IdOpt = None,
    source_col: SourceOpt = None,
    image_size: Annotated[str | None, image_size_option()] = None,
    seed: Annotated[int, Opt(help="Random seed (the reference sample, image embedding).", min=0,
                             max=SEED_MAX)] = 0,
    sample_size: Annotated[int, Opt(help="Reference rows kept for the KS tests, the domain "
                                         "classifier and the canary model.")] = 5000,
) -> None:
    """Profile a reference once: bins, category and label frequencies, a seeded row sample.

    Example: poisonguard monitor init train.csv --out profile.json
    """
    from poisonguard.monitor import Profile

    if out.is_dir():
        raise InputError(f"--out {out}: is a directory, expected a profile file to write")
    ds = _load(reference, label, id_col, source_col, image_size)
    profile = Profile.fit(ds, random_state=seed, sample_size=sample_size)
    profile.to_json(out)
    numeric = sum(c.kind == "numeric" for c in profile.columns)
    typer.echo(f"profiled {profile.n_rows} rows of {reference}: {numeric} numeric and "
               f"{len(profile.columns) - numeric} categorical columns, {len(profile.labels)} labels, "
               f"{len(profile.sample)} sample rows -> {out}")


def _print_check(report: DriftReport, seconds: float, written: list[Path]) -> None:
    s = report.summary()
    echo_table([{"batch": report.batch, "rows": report.n_batch, "tests": s["tests"],
                 "alarms": s["alarms"], "drift": "yes" if report.drift else "no",
                 "drifted features": ", ".join(s["drifted_features"][:6]) or "-",
                 "label shift": "yes" if s["label_shift"] else "no"}], title="drift check")
    echo_table([{"test": t.test, "feature": t.feature, "effect": t.effect, "gate": t.gate,
                 "adjusted p": t.p_adjusted} for t in report.alarms[:15]], title="alarms")
    for note in report.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {', '.join(str(p) for p in written)} ({seconds:.2f} s)")


@monitor_app.command("check")
def monitor_check(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE", help="Profile from `monitor init`.")],
    batch: Annotated[str, typer.Argument(help="New data: CSV, Parquet, NPZ or a data set name.")],
    out: Annotated[Path, Opt("--out", "-o", help="Directory for drift.json and drift.html.")] = Path(
        "drift-out"),
    db: DbOpt = None,
    no_history: Annotated[bool, Opt("--no-history", help="Do not record the check.")] = False,
    batch_name: Annotated[str | None, Opt(help="Name in the history (default: BATCH).")] = None,
    label: BatchLabelOpt = None,
    id_col: BatchIdOpt = None,
    source_col: BatchSourceOpt = None,
    image_size: Annotated[str | None, image_size_option()] = None,
    alpha: Annotated[float, Opt(help="Level of the adjusted p-values.")] = 0.01,
    correction: Annotated[str, Opt(help="Multiple-testing correction: bh or holm.")] = "bh",
    ks_gate: Annotated[float, Opt(help="Smallest KS statistic that alarms.")] = 0.1,
    psi_gate: Annotated[float, Opt(help="Smallest PSI that alarms.")] = 0.2,
    tvd_gate: Annotated[float, Opt(help="Smallest total variation distance that alarms "
                                        "(categorical columns, label).")] = 0.1,
    auc_gate: Annotated[float, Opt(help="Smallest domain-classifier AUC that alarms.")] = 0.6,
    no_multivariate: Annotated[bool, Opt("--no-multivariate",
                                         help="Skip the domain classifier.")] = False,
    seed: Annotated[int, Opt(help="Random seed of the domain classifier.", min=0, max=SEED_MAX)] = 0,
    fail_on_drift: Annotated[bool, Opt("--fail-on-drift", help="Exit 1 on drift.")] = False,
    engine: Annotated[str, engine_option("the batch is read and counted")] = "local",
    scheduler: Annotated[str | None, scheduler_option()] = None,
) -> None:
    """Test a batch for drift against a profile; write drift.json and drift.html; record it.

    Example: poisonguard monitor check profile.json batch-07.csv --out drift-07
    """
    from poisonguard.engine import get_engine
    from poisonguard.monitor import DriftMonitor, History, Profile
    from poisonguard.monitor.partitioned import check_partitioned
    from poisonguard.provenance.partitions import Roles

    if correction not in ("bh", "holm"):
        raise InputError(f"--correction must be one of bh, holm (got {correction!r})")
    _check_out(out)
    runner = get_engine(engine, scheduler)  # a bad --engine or --scheduler fails before work
    try:
        profile = Profile.read(profile_path)
        label, id_col, source_col = _roles(profile, label, id_col, source_col)
        ds = _load(batch, label, id_col, source_col, image_size) if runner.name == "local" else None
        history = None if no_history else History(db)
        if history is not None:
            history.check_store()  # a bad --db fails here, before any output is written
        start = time.perf_counter()
        monitor = DriftMonitor(alpha=alpha, correction="holm" if correction == "holm" else "bh",
                               ks_gate=ks_gate, psi_gate=psi_gate, tvd_gate=tvd_gate,
                               auc_gate=auc_gate, multivariate=not no_multivariate, random_state=seed)
        if ds is not None:
            report = monitor.check(profile, ds)
        else:  # the partitions are read (and the cluster reached) on the engine's workers
            report = check_partitioned(monitor, profile, batch, engine=runner, roles=Roles(
                label=label, id_col=id_col, source_col=source_col))
        seconds = time.perf_counter() - start
    finally:
        runner.close()
    written = [report.to_json(out / "drift.json"), report.to_html(out / "drift.html")]
    if history is not None:
        check_id = history.record(report, batch=batch_name or batch)
        typer.echo(f"recorded check #{check_id} in {history.shown}", err=True)
    _print_check(report, seconds, written)
    if report.drift:
        features = ", ".join(dict.fromkeys(t.feature for t in report.alarms))
        _findings(f"drift in {batch}: {features}", fail_on_drift, "--fail-on-drift")


@monitor_app.command("canary")
def monitor_canary(
    profile_path: Annotated[Path, typer.Argument(metavar="PROFILE", help="Profile from `monitor init`.")],
    batch: Annotated[str, typer.Argument(help="Labelled batch: CSV, Parquet, NPZ or a data set name.")],
    model: Annotated[str, Opt(help="Model trained on the profile's sample: logreg or mlp.")] = "logreg",
    max_drop: Annotated[float, Opt(help="Accuracy drop below the baseline that alerts.")] = 0.05,
    alpha: Annotated[float, Opt(help="Level of the one-sided binomial test of the drop.")] = 0.01,
    window: Annotated[int, Opt(help="Earlier checks in the running baseline (median).")] = 5,
    db: DbOpt = None,
    no_history: Annotated[bool, Opt("--no-history", help="Neither read nor record history.")] = False,
    batch_name: Annotated[str | None, Opt(help="Name in the history (default: BATCH).")] = None,
    label: BatchLabelOpt = None,
    id_col: BatchIdOpt = None,
    source_col: BatchSourceOpt = None,
    image_size: Annotated[str | None, image_size_option()] = None,
    seed: Annotated[int, Opt(help="Random seed of the model.", min=0, max=SEED_MAX)] = 0,
    fail_on_alert: Annotated[bool, Opt("--fail-on-alert", help="Exit 1 on an alert.")] = False,
) -> None:
    """Accuracy of a reference-trained model on a labelled batch, against the running baseline.

    Example: poisonguard monitor canary profile.json batch-07.csv --fail-on-alert
    """
    from poisonguard.monitor import CanaryMonitor, History, Profile

    profile = Profile.read(profile_path)
    label, id_col, source_col = _roles(profile, label, id_col, source_col)
    ds = _load(batch, label, id_col, source_col, image_size)
    history = None if no_history else History(db)
    previous = [] if history is None else [
        float(r.accuracy) for r in history.rows(kind="canary", profile=profile.digest)
        if r.model == model and not r.alarm and r.accuracy is not None]
    result = CanaryMonitor(model=model, max_drop=max_drop, alpha=alpha, window=window,
                           random_state=seed).check(profile, ds, previous=previous)
    if history is not None:
        check_id = history.record(result, batch=batch_name or batch)
        typer.echo(f"recorded check #{check_id} in {history.shown}", err=True)
    echo_table([{"batch": batch, "rows": result.n_rows, "model": model,
                 "accuracy": result.accuracy, "baseline": result.baseline,
                 "baseline from": result.baseline_from, "drop": result.drop, "p": result.p_value,
                 "alert": "yes" if result.alert else "no"}], title="canary check")
    if result.alert:
        _findings(f"canary alert on {batch}: {result.verdict()}", fail_on_alert, "--fail-on-alert")


def _findings(message: str, fail: bool, option: str) -> None:
    """Say on stderr what was found; exit 1 with ``option`` given, else say how to."""
    if fail:
        typer.echo(message, err=True)
        raise typer.Exit(EXIT_FINDINGS)
    typer.echo(f"{message} (exit 0; {option} exits 1)", err=True)


@monitor_app.command("history")
def monitor_history(
    db: DbOpt = None,
    profile_path: Annotated[Path | None, Opt("--profile", help="Only checks against this "
                                                               "profile.")] = None,
    out: Annotated[Path | None, Opt("--out", "-o", help="Directory for history.html (plots).")] = None,
    last: Annotated[int, Opt(help="Checks listed on the console (all are in the HTML).")] = 20,
) -> None:
    """List the recorded checks; with --out, write history.html with the trend plots.

    Example: poisonguard monitor history --out history
    """
    from poisonguard.io import write_text
    from poisonguard.monitor import History, Profile
    from poisonguard.report.monitor import render_history

    if last < 1:
        raise InputError(f"--last must be a positive integer (got {last})")
    digest = None if profile_path is None else Profile.read(profile_path).digest
    history = History(db)
    rows = history.rows(profile=digest)
    if not rows:
        typer.echo(f"no checks recorded in {history.shown}"
                   f"{' for that profile' if digest else ''}")
    echo_table([{"#": r.id, "when (UTC)": r.when.strftime("%Y-%m-%d %H:%M:%S"), "kind": r.kind,
                 "batch": r.batch, "rows": r.n_rows, "result": r.summary} for r in rows[-last:]],
               title=f"history: {history.shown}")
    if out is not None:
        _check_out(out)
        page = render_history(rows, history.trend(profile=digest), history.label_shares(profile=digest),
                              db=history.shown, profile=digest)
        typer.echo(f"wrote {write_text(out / 'history.html', page)}")
