"""``poisonguard scan``, ``poisonguard demo`` and ``poisonguard catalog``.

``scan`` scores every row of a data file, writes ``scores.csv``, ``report.json`` and
``report.html`` to ``--out`` (default ``scan-out``), optionally the cleaned data, and exits 1
when the flagged share exceeds ``--fail-on``. ``demo`` poisons digits with a patch backdoor and
random label flips, scans it and shows what the scan found and what cleaning buys. ``catalog``
prints the attack families with their attacks and the detectors that answer them;
``detectors`` lists the registered detectors.

Progress goes to stderr only: a live display when stderr is a terminal, otherwise one plain
line per step that took at least a second (so CI logs show where the time went); ``--quiet``
silences both. Tables go to stdout.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from poisonguard.cli._common import (
    EXIT_FINDINGS,
    SEED_MAX,
    app,
    console,
    echo_table,
    engine_option,
    image_size_option,
    load_data,
    scheduler_option,
)
from poisonguard.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from poisonguard.dataset import Dataset
    from poisonguard.engine import Engine
    from poisonguard.scan import ScanReport

__all__ = ["catalog", "demo", "list_detectors", "scan"]

Opt = typer.Option
MIN_STEP_SECONDS = 1.0  # steps shorter than this are not reported


class Steps:
    """Progress of named steps on stderr; call it with a step name before each step.

    On a terminal: a live spinner per step, kept (with its time) when the step took at least
    ``min_seconds``. Elsewhere: one line ``step: 2.3 s`` per such step. ``quiet``: nothing.
    """

    def __init__(self, *, quiet: bool = False, min_seconds: float = MIN_STEP_SECONDS) -> None:
        self.quiet = quiet
        self.min_seconds = min_seconds
        self._current: str | None = None
        self._since = 0.0
        self._live: Any = None
        self._task: Any = None

    def __enter__(self) -> Steps:
        if not self.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._live = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                  TimeElapsedColumn(), console=Console(stderr=True))
            self._live.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is None:
            self._finish()
        self._current = None  # a step that failed is not reported as taking time
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __call__(self, step: str) -> None:
        if self.quiet:
            return
        self._finish()
        self._current, self._since = step, time.perf_counter()
        if self._live is not None:
            self._task = self._live.add_task(step, total=None)

    def _finish(self) -> None:
        if self._current is None:
            return
        took = time.perf_counter() - self._since
        if self._live is not None:
            if took < self.min_seconds:
                self._live.remove_task(self._task)
            else:
                self._live.update(self._task, total=1, completed=1)
        elif took >= self.min_seconds:
            typer.echo(f"{self._current}: {took:.1f} s", err=True)
        self._current = None


# ------------------------------------------------------------------------------ options
def parse_budget(text: str | None) -> float | int | None:
    """``--budget`` as a row count (``10``) or a fraction in (0, 1) (``0.05``)."""
    from poisonguard._validation import check_flag_budget

    return None if text is None else check_flag_budget(text, "--budget")


def _check_fail_on(fail_on: float | None) -> None:
    if fail_on is not None and not (0.0 <= fail_on <= 1.0):
        raise InputError(f"--fail-on must be a fraction in [0, 1] (got {fail_on:g})")


def _detector_list(detectors: str | None) -> list[str] | None:
    if detectors is None:
        return None
    from poisonguard.detectors import get_detector

    names = list(dict.fromkeys(d.strip() for d in detectors.split(",") if d.strip()))
    if not names:
        raise InputError(f"--detectors names no detector (got {detectors!r})")
    for name in names:
        try:
            get_detector(name)
        except InputError as exc:
            raise InputError(f"--detectors: {exc}") from None
    return names


def _check_reference(data: str, ds: Dataset, ref_path: str, ref: Dataset) -> None:
    if ref.modality != ds.modality:
        raise InputError(f"--reference {ref_path}: {ref.modality} data, but {data} is "
                         f"{ds.modality} data")
    if ds.modality == "image" and ref.X.shape[1:] != ds.X.shape[1:]:
        raise InputError(f"--reference {ref_path}: images of shape {ref.X.shape[1:]}, but {data} "
                         f"has {ds.X.shape[1:]}")
    from poisonguard._validation import column_difference

    differ = column_difference(ref.feature_names, ds.feature_names)
    if ds.modality == "tabular" and differ is not None:
        raise InputError(f"--reference {ref_path}: its columns differ from {data}'s ({differ})")


def _check_classes(data: str, ds: Dataset, label: str) -> None:
    """Refuse data with fewer than two rows per class on average: nothing can be learnt from
    it, and it usually means the label option names an id or a continuous column."""
    k = len(ds.classes)
    if k > 1 and 2 * k > ds.n_rows:
        hint = f"is --label {label!r} the label column?" if ds.origin is not None and (
            ds.origin.format != "npz") else "is 'y' a label array?"
        raise InputError(f"{data}: {k} classes in {ds.n_rows} rows; a scan needs at least 2 rows "
                         f"per class on average ({hint})")


def _check_write_clean(path: Path, ds: Dataset, out: Path) -> None:
    from poisonguard import io

    fmt = io.file_format(path)
    for report in _report_paths(out):
        if path.resolve() == report.resolve():
            raise InputError(f"--write-clean {path}: is where the scan writes its own "
                             f"{report.name}; choose another path")
    if path.is_dir():
        raise InputError(f"--write-clean {path}: is a directory, expected a file to write")
    if ds.modality == "image" and fmt != "npz":
        raise InputError(f"--write-clean {path}: image data can only be saved as .npz")
    if fmt == "npz" and ds.is_frame:
        raise InputError(f"--write-clean {path}: data with categorical columns cannot be saved "
                         "as .npz; use .csv or .parquet")


def _write_clean(report: ScanReport, ds: Dataset, path: Path) -> Path:
    """The unflagged rows: copied from the input file cell for cell when it is a file of the
    same format (``01419`` stays ``01419``), else saved from the data."""
    import numpy as np

    from poisonguard import io

    origin = ds.origin
    if origin is not None and origin.path and io.file_format(path) == origin.format:
        return io.write_rows(origin.path, np.flatnonzero(~report.flagged), path)
    clean = report.clean()
    if ds.has_default_ids:  # no id column: ids are the clean file's row numbers
        clean = clean.replace(ids=None)
    return io.save(clean, path)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, expected a directory")


def _qualify(data: str, ds: Dataset, exc: InputError) -> InputError:
    """An error about the scanned data, naming its file once."""
    text = str(exc)
    if text.startswith((f"{data}:", f"{ds.name}:", "--")):
        return exc
    return InputError(f"{data}: {text}")


def _report_paths(out: Path) -> list[Path]:
    from poisonguard.provenance.attest import SCAN_FILES  # what attest and sources read back

    return [out / name for name in SCAN_FILES]


def _file_stamp(data: str) -> tuple[int, int] | None:
    """DATA's ``(size, mtime_ns)`` when it is a file (None for a built-in data set's name)."""
    from poisonguard.io import file_stamp

    return file_stamp(data) if Path(data).exists() else None


def _unchanged(data: str, before: tuple[int, int]) -> None:
    """Refuse a file rewritten since the scan first looked at it."""
    from poisonguard.io import file_stamp

    if file_stamp(data) != before:
        raise InputError(f"{data}: the file changed while it was being scanned; scan it again")


def _fingerprint(data: str, before: tuple[int, int], *, label: str, id_col: str | None,
                 source_col: str | None, engine: Engine | None = None) -> dict[str, Any]:
    """The scanned file's SHA-256 and the Merkle root a manifest with the same roles has, for
    ``attest`` (one read of the file, both at once, on ``engine``); refuses a file that changed
    meanwhile."""
    from poisonguard.provenance.manifest import fingerprint

    found = fingerprint(data, label=label, id_col=id_col, source_col=source_col, engine=engine)
    _unchanged(data, before)
    return found


def write_outputs(report: ScanReport, out: Path, *,
                  provenance: dict[str, Any] | None = None) -> list[Path]:
    """``scores.csv``, ``report.json`` (with ``provenance``, the scanned file's digests, when
    given) and ``report.html`` in ``out``."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create the directory ({exc.strerror})") from None
    paths = _report_paths(out)
    earlier = [p.name for p in paths if p.exists()]
    report.to_csv(paths[0])
    report.to_json(paths[1], provenance=provenance)
    report.to_html(paths[2])
    if earlier:
        typer.echo(f"note: replaced the earlier {', '.join(earlier)} in {out}", err=True)
    return paths


def _summary(report: ScanReport, title: str, written: list[Path]) -> None:
    s = report.summary()
    echo_table([{"rows": s["rows"], "flagged": s["flagged"], "share": f"{s['flagged_share']:.1%}",
                 "threshold": f"{s['threshold']:.3g}" + (" (budget)" if s["budget"] else ""),
                 "detectors": ", ".join(s["detectors"])}], title=title)
    table = report.table
    rows = []
    for name, count in report.flagged_by().items():
        mine = table[table["flagged"] & (table["top_detector"] == name)]
        top = mine.sort_values("score", ascending=False, kind="stable").iloc[0]
        rows.append({"detector": name, "flagged": count,
                     "top reason": f"row {top['row_id']}: {top['reason'][len(name) + 2:]}"})
    echo_table(rows, title="flagged by")
    if report.self_test is not None:
        st = report.self_test
        echo_table([{"canary family": r.family, "planted": r.planted,
                     "found (recall)": "-" if r.skipped else f"{r.recall:.0%}",
                     "AUROC": "-" if r.skipped else f"{r.auroc:.3f}",
                     "note": r.skipped} for r in st.rows],
                   title=f"self-test: canaries at {st.rate:.0%} per family; clean rows flagged "
                         f"{st.false_positive_rate:.1%}")
    for name, why in report.skipped.items():
        typer.echo(f"skipped {name}: {why}")
    for note in report.notes:
        typer.echo(f"note: {note}")
    if written:
        typer.echo(f"wrote {', '.join(str(p) for p in written)}")


# ------------------------------------------------------------------------------ scan
@app.command("scan")
def scan(
    data: Annotated[str, typer.Argument(help="CSV, Parquet, NPZ or JSON Lines file, an image "
                                             "folder, a Hugging Face save_to_disk folder, a "
                                             "folder of Parquet files or a built-in data set "
                                             "name.")],
    out: Annotated[Path, Opt("--out", "-o", help="Directory for scores.csv, report.json and "
                                                 "report.html.")] = Path("scan-out"),
    label: Annotated[str, Opt(help="Label column.")] = "label",
    id_col: Annotated[str | None, Opt(help="Row id column (default: row numbers).")] = None,
    source_col: Annotated[str | None, Opt(help="Source / contributor column.")] = None,
    reference: Annotated[str | None, Opt(help="Trusted data of the same shape, loaded like DATA "
                                              "(enables the validation detector).")] = None,
    detectors: Annotated[str | None, Opt(help="Detectors, comma-separated (default: all that "
                                              "apply).")] = None,
    budget: Annotated[str | None, Opt(help="Flag exactly this many rows: a count (10) or a "
                                           "fraction (0.05).")] = None,
    seed: Annotated[int, Opt(help="Random seed.", min=0, max=SEED_MAX)] = 0,
    model: Annotated[str, Opt(help="Probability proxy: auto, logreg or hgb.")] = "auto",
    embedder: Annotated[str, Opt(help="Embedding proxy: auto, mlp, cnn or minilm.")] = "auto",
    write_clean: Annotated[Path | None, Opt(help="Write the data without flagged rows, in the "
                                                 "format of this file's extension.")] = None,
    fail_on: Annotated[float | None, Opt(help="Exit 1 when the flagged share exceeds this "
                                              "fraction.")] = None,
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress on stderr.")] = False,
    self_test: Annotated[bool, Opt("--self-test", help="Also plant canaries of each attack "
                                   "family into a copy of the data, scan the copy the same way and "
                                   "report per family what the scan finds on this data.")] = False,
    self_test_rate: Annotated[float, Opt(help="Share of rows planted per canary family.")] = 0.02,
    harden: Annotated[str | None, Opt(help="Then train this defence (see `poisonguard defenses`) "
                                           "on the unflagged rows: defence in depth.")] = None,
    harden_param: Annotated[list[str] | None, Opt(help="A parameter of the --harden defence, "
                                                       "KEY=VALUE (repeatable).")] = None,
    model_out: Annotated[Path | None, Opt(help="Folder for the --harden model (default: "
                                               "OUT/model).")] = None,
    sample_rows: Annotated[int, Opt(help="Fit the proxies and detectors on at most this many "
                                         "rows (a seeded sample stratified by label) and score "
                                         "the rest in chunks from what was fitted.",
                                    min=2)] = 50_000,
    engine: Annotated[str, engine_option("chunks outside the fitted sample are scored")] = "local",
    scheduler: Annotated[str | None, scheduler_option()] = None,
    image_size: Annotated[str | None, image_size_option()] = None,
) -> None:
    """Scan a dataset for poisoned rows: score, flag, explain, and optionally clean.

    Example: poisonguard scan bc-flipped.csv --out scan-out
    """
    from poisonguard import io
    from poisonguard.scan import scan as run_scan

    n_budget = parse_budget(budget)
    _check_fail_on(fail_on)
    if not 0.0 < self_test_rate <= 0.2:
        raise InputError(f"--self-test-rate must be in (0, 0.2] (got {self_test_rate:g})")
    names = _detector_list(detectors)
    _check_out(out)
    from poisonguard.engine import get_engine

    runner = get_engine(engine, scheduler)  # a bad --engine or --scheduler fails before work
    if write_clean is not None:
        io.file_format(write_clean)
    defence = None
    if harden is not None:
        from poisonguard.cli.harden import check_model_out, make_defense

        defence = make_defense(harden, harden_param or [], "--harden")
        model_out = model_out or out / "model"
        check_model_out(model_out, "--model-out")
    elif harden_param or model_out is not None:
        raise InputError("--harden-param and --model-out belong to --harden: give --harden NAME")
    whole = {"--reference": reference, "--self-test": self_test or None, "--harden": harden,
             "--write-clean": write_clean}
    needs = [flag for flag, value in whole.items() if value is not None]
    from poisonguard.formats import is_dataset_folder

    partitions = Path(data).is_dir() and not is_dataset_folder(data)  # image / HF folders load
    if partitions and needs:
        raise InputError(f"{data}: a folder is scanned as partitions, and {', '.join(needs)} "
                         "need the data loaded whole: give one data file")
    as_partitions = partitions or (
        engine == "dask" and Path(data).is_file() and Path(data).suffix.lower() in (".csv", ".parquet"))
    if as_partitions and not needs:  # an NPZ file is loaded here and its chunks shipped
        report, written = _scan_partitions(
            data, out, runner, label=label, id_col=id_col, source_col=source_col,
            detectors=names, budget=n_budget, seed=seed, model=model, embedder=embedder,
            quiet=quiet, sample_rows=sample_rows)
        _finish(report, data, written, fail_on)
        return
    with Steps(quiet=quiet) as steps:
        steps("load data")
        before = _file_stamp(data)
        ds = load_data(data, label=label, id_col=id_col, source_col=source_col,
                       image_size=image_size)
        ref = None
        if reference is not None:
            ref = load_data(reference, label=label, id_col=id_col, source_col=source_col,
                            image_size=image_size)
            _check_reference(data, ds, reference, ref)
        for path in _report_paths(out):  # before the scan, not after it
            io.check_output(path, "--out")
        if write_clean is not None:
            io.check_output(write_clean, "--write-clean")
            _check_write_clean(write_clean, ds, out)
        _check_classes(data, ds, label)
        if isinstance(n_budget, int) and n_budget > ds.n_rows:
            raise InputError(f"--budget of {n_budget} rows exceeds the {ds.n_rows} rows of {data}")
        provenance = None
        if before is not None:
            steps("hash rows")
            provenance = _fingerprint(data, before, label=label, id_col=id_col,
                                      source_col=source_col)
        try:  # a Dask cluster is started (or reached) only when there are chunks to score
            report = run_scan(ds, detectors=names, budget=n_budget, reference=ref, model=model,
                              embedder=embedder, random_state=seed, progress=steps,
                              sample_rows=sample_rows, engine=runner)
        except InputError as exc:
            raise _qualify(data, ds, exc) from None
        finally:
            runner.close()
        if self_test:
            from dataclasses import replace

            from poisonguard.selftest import self_test as run_self_test

            steps("self-test: plant canaries and scan the copy")
            result = run_self_test(ds, rate=self_test_rate, random_state=seed, scan_options={
                "detectors": names, "reference": ref, "model": model, "embedder": embedder})
            report = replace(report, self_test=result)
        steps("write reports")
        written = write_outputs(report, out, provenance=provenance)
        if write_clean is not None:
            if before is not None:  # the rows copied are the rows scanned
                _unchanged(data, before)
            written.append(_write_clean(report, ds, write_clean))
        if defence is not None and model_out is not None:
            from poisonguard.cli.harden import fit_and_save

            steps(f"harden: train {harden} on the unflagged rows")
            written += fit_and_save(
                defence, report.clean(), model_out, label=label, seed=seed, option="--harden",
                title=f"harden: {harden} on {ds.n_rows - report.n_flagged} unflagged rows",
                source={"sha256": provenance["sha256"] if provenance else None,
                        "file_rows": ds.n_rows})
    _finish(report, data, written, fail_on)


def _finish(report: ScanReport, data: str, written: list[Path], fail_on: float | None) -> None:
    """The summary tables; exit 1 when the flagged share exceeds ``fail_on``."""
    _summary(report, f"scan: {data}", written)
    share = report.n_flagged / report.dataset.n_rows
    if fail_on is not None and share > fail_on:
        typer.echo(f"flagged share {share:.1%} exceeds --fail-on {fail_on:g}", err=True)
        raise typer.Exit(EXIT_FINDINGS)


def _scan_partitions(data: str, out: Path, runner: Engine, *, label: str, id_col: str | None,
                     source_col: str | None, detectors: list[str] | None,
                     budget: float | int | None, seed: int, model: str, embedder: str,
                     quiet: bool, sample_rows: int) -> tuple[ScanReport, list[Path]]:
    """``scan`` of DATA read as partitions where ``runner`` runs (a folder, or any file with
    ``--engine dask``): hashed and scanned there, reports written here."""
    from poisonguard import io
    from poisonguard.scan_partitions import scan_partitions

    with Steps(quiet=quiet) as steps:
        for path in _report_paths(out):  # before the scan, not after it
            io.check_output(path, "--out")
        before = io.file_stamp(data)
        try:
            steps("hash rows")
            provenance = _fingerprint(data, before, label=label, id_col=id_col,
                                      source_col=source_col, engine=runner)
            report = scan_partitions(data, engine=runner, label=label, id_col=id_col,
                                     source_col=source_col, detectors=detectors, budget=budget,
                                     model=model, embedder=embedder, random_state=seed,
                                     progress=steps, sample_rows=sample_rows)
        except InputError as exc:
            text = str(exc)
            raise (exc if text.startswith((f"{data}:", "--")) else
                   InputError(f"{data}: {text}")) from None
        finally:
            runner.close()
        _unchanged(data, before)
        steps("write reports")
        written = write_outputs(report, out, provenance=provenance)
    return report, written


# ------------------------------------------------------------------------------ demo
def _detection_rows(report: ScanReport, masks: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Detection quality overall and per attack (each attack's rows against the clean rows)."""
    import numpy as np

    from poisonguard.evaluation.metrics import detection_metrics

    poisoned = np.logical_or.reduce(list(masks.values()))
    rows = []
    for name, mask in [("all poison", poisoned), *masks.items()]:
        keep = mask | ~poisoned
        m = detection_metrics(mask[keep], report.scores[keep], report.flagged[keep])
        rows.append({"poison": name, "rows": int(mask.sum()), "AUROC": m["auroc"],
                     "avg precision": m["average_precision"], "precision": m["precision"],
                     "recall": m["recall"], "F1": m["f1"]})
    return rows


@app.command("demo")
def demo(
    seed: Annotated[int, Opt(help="Random seed.", min=0, max=SEED_MAX)] = 0,
    out: Annotated[Path, Opt("--out", "-o", help="Directory for the scan's outputs.")] = Path(
        "demo-out"),
    quiet: Annotated[bool, Opt("--quiet", "-q", help="No progress on stderr.")] = False,
) -> None:
    """Poison digits (5 % patch backdoor + 5 % label flips), scan it, clean it, retrain.

    Example: poisonguard demo --out demo-out
    """
    import numpy as np

    from poisonguard.attacks import Backdoor, LabelFlip
    from poisonguard.datasets import load_dataset
    from poisonguard.evaluation.metrics import accuracy, attack_success_rate, split
    from poisonguard.models import fit_quiet, make_model
    from poisonguard.scan import scan as run_scan

    _check_out(out)
    start = time.perf_counter()
    if not quiet:
        typer.echo("demo: plants a 5 % patch backdoor and 5 % label flips in the training split of "
                   "scikit-learn's digits, scans it with the default detectors, and retrains a "
                   "logistic regression on the clean, poisoned and cleaned data (about a minute "
                   "on two cores)", err=True)
    with Steps(quiet=quiet) as steps:
        steps("poison digits")
        train, test = split(load_dataset("digits"), random_state=seed)
        rng = np.random.default_rng(seed)
        backdoor = Backdoor(trigger="patch", rate=0.05).poison(train, rng=rng)
        flips = LabelFlip(strategy="random", rate=0.05).poison(backdoor.dataset, rng=rng)
        src = flips.source_index  # rows of the backdoored set each final row came from
        carried = np.where(src >= 0, backdoor.mask[np.maximum(src, 0)], False)
        masks = {"backdoor (patch)": carried & ~flips.mask, "label flips": flips.mask}
        poisoned = flips.dataset
        report = run_scan(poisoned, random_state=seed, progress=steps)
        steps("write reports")
        written = write_outputs(report, out)
        steps("train victims")
        trigger = backdoor.trigger
        assert trigger is not None  # a backdoor always returns its trigger
        results = []
        for name, ds in (("clean data", train), ("poisoned data", poisoned),
                         ("cleaned by scan", report.clean())):
            victim = fit_quiet(make_model("logreg", ds), ds.X, ds.y)
            results.append({"trained on": name, "rows": ds.n_rows,
                            "clean accuracy": round(accuracy(victim, test), 3),
                            "backdoor success": round(attack_success_rate(victim, trigger, test), 3)})
        n_poisoned = int(np.logical_or.reduce(list(masks.values())).sum())
        detection = [{k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
                     for row in _detection_rows(report, masks)]
        titles = (f"detection: {n_poisoned} poisoned of {poisoned.n_rows} training rows, "
                  f"{report.n_flagged} flagged", f"logreg victims on {test.n_rows} clean test rows")
        written.append(_write_demo(out, seed, dict(zip(titles, (detection, results), strict=True))))
        report.to_html(out / "report.html", sections=list(zip(titles, (detection, results),
                                                               strict=True)))
    for title, rows in zip(titles, (detection, results), strict=True):
        echo_table([{k: f"{v:.3f}" if isinstance(v, float) else v for k, v in row.items()}
                    for row in rows], title=title)
    typer.echo(f"backdoor success: share of triggered test rows (not of class "
               f"{trigger.target_class}) predicted as class {trigger.target_class}")
    typer.echo(f"wrote {', '.join(str(p) for p in written)} "
               f"({time.perf_counter() - start:.0f} s)")
    typer.echo("next: poisonguard datasets export breast_cancer --out bc.csv && "
               "poisonguard scan bc.csv --out scan-out   (or your own CSV, Parquet or NPZ file)")


def _write_demo(out: Path, seed: int, tables: dict[str, list[dict[str, Any]]]) -> Path:
    """``demo.json``: the seed and the two tables the demo prints."""
    from poisonguard.io import write_text

    doc = {"seed": seed, "tables": [{"title": t, "rows": rows} for t, rows in tables.items()]}
    return write_text(out / "demo.json", json.dumps(doc, indent=2) + "\n")


# ------------------------------------------------------------------------------ catalog
@app.command("catalog")
def catalog(
    as_json: Annotated[bool, Opt("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """The field's map: attack families, their attacks, and the detectors that answer them.

    Example: poisonguard catalog --json
    """
    from rich.table import Table

    from poisonguard.catalog import SURVEY
    from poisonguard.catalog import catalog as build

    entries = build()
    if as_json:
        typer.echo(json.dumps({"families": [e.to_dict() for e in entries], "survey": SURVEY},
                              indent=2))
        return
    out = console()
    for entry in entries:
        info = entry.info
        table = Table(title=f"{entry.family}", show_header=False, title_justify="left")
        table.add_column("", style="bold", no_wrap=True)
        table.add_column("")
        for key, value in (("goal", info.goal), ("scope", info.scope), ("stealth", info.stealth),
                           ("attacker needs", info.needs)):
            table.add_row(key, value)
        table.add_row("attacks", "\n".join(f"{a['name']}: {a['summary']}" for a in entry.attacks))
        table.add_row("detectors", "\n".join(f"{d['name']}: {d['summary']}"
                                             for d in entry.detectors) or "(none registered)")
        table.add_row("attack papers", "\n".join(info.papers))
        defences = dict.fromkeys(p for d in entry.detectors for p in d["papers"])
        table.add_row("defence papers", "\n".join(defences) or "-")
        out.print(table)
    out.print(f"survey: {SURVEY}")


@app.command("detectors")
def list_detectors() -> None:
    """List the registered detectors, one line each.

    Example: poisonguard detectors
    """
    from poisonguard.detectors import DEFAULT_DETECTORS, DETECTORS

    def default(name: str, needs_reference: bool) -> str:
        if name not in DEFAULT_DETECTORS:
            return "no"
        return "with --reference" if needs_reference else "yes"

    echo_table([{"detector": name, "default": default(name, cls.needs_reference),
                 "what it flags": cls.summary} for name, cls in sorted(DETECTORS.items())])
