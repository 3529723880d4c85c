"""``poisonguard harden`` trains a defended model; ``poisonguard certify`` proves what it
tolerates.

``harden DATA --defense NAME [--param KEY=VALUE ...] --out MODEL_DIR`` encodes the features (the
encoding is kept in the model), fits the defence and writes the model without pickle.
``certify MODEL_DIR TEST --out DIR`` writes ``certificates.csv`` (per test row: prediction and
the number of inserted / removed and of changed training rows it provably survives),
``curve.csv`` and ``curve.png`` (certified accuracy against that number).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from poisonguard.cli._common import (
    SEED_MAX,
    app,
    echo_table,
    image_size_option,
    key_value,
    load_data,
)
from poisonguard.errors import InputError

if TYPE_CHECKING:
    from poisonguard.dataset import Dataset

__all__ = ["certify", "check_model_out", "fit_and_save", "harden", "make_defense"]

Opt = typer.Option


def _parse_params(pairs: list[str], defense: str) -> dict[str, Any]:
    from poisonguard.defenses import DEFENSES

    known = DEFENSES[defense]().get_params(deep=False)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, value = key_value(pair)
        if key not in known or key in ("estimator", "n_jobs"):
            allowed = sorted(k for k in known if k not in ("estimator", "n_jobs"))
            raise InputError(f"--param {key}: not a parameter of {defense} "
                             f"(known: {', '.join(allowed)})")
        out[key] = value
    return out


@app.command("harden")
def harden(
    data: Annotated[str, typer.Argument(
        help="CSV, Parquet, NPZ or JSON Lines file, an image or Hugging Face folder, or a built-in "
             "data set name.")],
    out: Annotated[Path, Opt("--out", "-o", help="Model folder (spec.json + arrays.npz).")],
    defense: Annotated[str, Opt(help="robust-linear, dpa or fa (see `poisonguard defenses`).")] = (
        "robust-linear"),
    param: Annotated[list[str] | None, Opt(help="A defence parameter, KEY=VALUE (repeatable), "
                                                "e.g. loss=gce, n_partitions=50.")] = None,
    label: Annotated[str, Opt(help="Label column.")] = "label",
    id_col: Annotated[str | None, Opt(help="Row id column.")] = None,
    source_col: Annotated[str | None, Opt(help="Source column.")] = None,
    seed: Annotated[int, Opt(help="Random seed.", min=0, max=SEED_MAX)] = 0,
    image_size: Annotated[str | None, image_size_option()] = None,
) -> None:
    """Train a defended model on DATA and write it (no pickle).

    Example: poisonguard harden bc-flipped.csv --defense robust-linear --param loss=sce --out model-sce
    """
    model = make_defense(defense, param or [])
    ds = load_data(data, label=label, id_col=id_col, source_col=source_col, image_size=image_size)
    check_model_out(out)
    fit_and_save(model, ds, out, label=label, seed=seed, title=f"harden: {ds.name}")


def make_defense(defense: str, pairs: list[str], option: str = "--defense") -> Any:
    """A defence by name with ``KEY=VALUE`` parameters; unknown names and keys are one line."""
    from poisonguard.defenses import DEFENSES, get_defense

    if defense not in DEFENSES:
        raise InputError(f"{option} {defense!r}: unknown; known: {', '.join(sorted(DEFENSES))}")
    return get_defense(defense, **_parse_params(pairs, defense))


def check_model_out(out: Path, option: str = "--out") -> None:
    """Refuse, before any work, a model folder that is a file, or whose files would overwrite
    an input or cannot be written."""
    from poisonguard import io

    if out.exists() and not out.is_dir():
        raise InputError(f"{option} {out}: is a file, expected a folder")
    for name in ("spec.json", "arrays.npz"):
        io.check_target(out / name, option)


def fit_and_save(model: Any, ds: Dataset, out: Path, *, label: str, seed: int, title: str,
                 option: str = "--defense", source: dict[str, Any] | None = None) -> list[Path]:
    """Encode ``ds``, fit ``model`` on it, write the model folder ``out``, print a summary and
    return the files written. ``source``: what the caller already knows of the file the rows
    came from (its ``sha256``; ``file_rows`` when ``ds`` is a subset of it), so it is not read
    again."""
    import numpy as np

    from poisonguard.defenses._encoding import fit_encoding
    from poisonguard.defenses.store import save_model

    if ds.modality == "text" and not model.__sklearn_tags__().input_tags.sparse:
        raise InputError(f"{option} {model.name}: takes tabular or image data; text is encoded "
                         "as sparse TF-IDF, which it cannot train on")
    X, encoding = fit_encoding(ds)
    if ds.modality == "image" and getattr(model, "net", None) == "cnn":
        X = X.reshape((len(X), *np.shape(ds.X)[1:]))  # the CNN sees images, not flat rows
    try:
        model.fit(X, ds.y)
    except ValueError as exc:  # a parameter value the defence refuses
        raise InputError(f"{option} {model.name}: {str(exc).splitlines()[0]}") from None
    origin = ds.origin
    trained: dict[str, Any] = {"name": ds.name, "rows": ds.n_rows, "label": label, **(source or {})}
    if "sha256" not in trained:
        trained["sha256"] = _sha256(origin.path) if origin is not None and origin.path else None
    save_model(model, out, spec={"encoding": encoding, "trained_on": trained, "seed": seed})
    train_acc = float(np.mean(model.predict(X) == np.asarray(ds.y)))
    row: dict[str, Any] = {"defence": model.name, "rows": ds.n_rows, "features": X.shape[1],
                           "classes": len(model.classes_), "train accuracy": f"{train_acc:.3f}"}
    if hasattr(model, "epsilon_"):
        row["epsilon"] = f"{model.epsilon_:.3g}"
        row["delta"] = f"{model.delta_:.2g}"
    if hasattr(model, "estimators_"):
        row["models"] = len(model.estimators_)
        row["abstaining"] = model.n_abstaining_
    echo_table([row], title=title)
    written = [out / "spec.json", out / "arrays.npz"]
    typer.echo(f"wrote {written[0]} and {written[1]}", err=True)
    return written


def _sha256(path: str) -> str:
    from poisonguard.formats import data_sha256  # a file's, or an image / HF folder's digest

    return data_sha256(path)


@app.command("certify")
def certify(
    model_dir: Annotated[Path, typer.Argument(help="Model folder from `harden` (dpa or fa).")],
    test: Annotated[str, typer.Argument(help="Labelled test data (CSV, Parquet, NPZ or built-in).")],
    out: Annotated[Path, Opt("--out", "-o", help="Folder for certificates.csv, curve.csv, "
                                                 "curve.png.")],
    id_col: Annotated[str | None, Opt(help="Row id column of TEST.")] = None,
    source_col: Annotated[str | None, Opt(help="Source column of TEST.")] = None,
    image_size: Annotated[str | None, image_size_option()] = None,
) -> None:
    """Certify a partition ensemble on TEST: per row, how many poisoned training rows it
    provably tolerates; certified accuracy against that number.

    Example: poisonguard certify model-dpa bc.csv --out certify-dpa
    """
    import numpy as np
    import pandas as pd

    from poisonguard import io
    from poisonguard.defenses.store import load_model
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, expected a folder")
    model, spec = load_model(model_dir)
    if not hasattr(model, "certify"):
        raise InputError(f"{model_dir}: a {spec['defense']} model has no certificate; "
                         "harden with --defense dpa or fa")
    label = str(spec.get("trained_on", {}).get("label", "label"))
    ds = load_data(test, label=label, id_col=id_col, source_col=source_col, image_size=image_size)
    paths = [out / "certificates.csv", out / "curve.csv", out / "curve.png"]
    for path in paths:
        io.check_output(path, "--out")
    X = _encode_like(ds, spec, model_dir)
    cert = model.certify(X)
    y = np.asarray(ds.y)
    known = np.isin(y, model.classes_)
    correct = (cert.prediction == y) & known
    table = pd.DataFrame({"row_id": ds.ids, "label": y, "prediction": cert.prediction,
                          "correct": correct.astype(int), "radius": cert.radius,
                          "radius_changed": cert.radius_changed})
    top = int(cert.radius.max()) if len(cert.radius) else 0
    radii = np.arange(0, top + 2)
    curve = pd.DataFrame({"radius": radii,
                          "certified_accuracy": [float(np.mean(correct & (cert.radius >= r)))
                                                 for r in radii],
                          "certified_accuracy_changed": [
                              float(np.mean(correct & (cert.radius_changed >= r))) for r in radii]})
    # one group, certificates.csv last: it is never beside a curve of another run
    with io.atomic_paths([paths[1], paths[2], paths[0]]) as (curve_tmp, png_tmp, table_tmp):
        curve_tmp.write_text(curve.to_csv(index=False, float_format="%.6g"), encoding="utf-8")
        _plot(curve, png_tmp, title=f"{spec['defense']} on {ds.name}")
        table_tmp.write_text(io.neutralise_formulas(table).to_csv(index=False), encoding="utf-8")
    half = curve.loc[curve["certified_accuracy"] >= 0.5, "radius"]
    echo_table([{"rows": ds.n_rows, "accuracy": f"{float(np.mean(correct)):.3f}",
                 "median radius": f"{float(np.median(cert.radius)):.0f}",
                 "certified acc. at 1": f"{curve['certified_accuracy'].iloc[min(1, len(curve) - 1)]:.3f}",
                 "largest radius with >= 50 %": int(half.max()) if len(half) else "-"}],
               title=f"certify: {model_dir} on {test}")
    if (~known).any():
        typer.echo(f"note: {int((~known).sum())} test rows have labels the model never saw; "
                   "they count as wrong", err=True)
    typer.echo(f"wrote {', '.join(str(p) for p in paths)}", err=True)


def _encode_like(ds: Dataset, spec: dict[str, Any], where: Path) -> Any:
    """The features of ``ds`` encoded as the model's training data was."""
    import numpy as np

    from poisonguard.defenses._encoding import TableEncoding, read_encoding, tfidf

    enc = read_encoding(spec, where)
    if "text" in enc:
        if ds.modality != "text":
            raise InputError(f"{ds.name}: {ds.modality} data, but the model was trained on text")
        return tfidf(enc["text"], where).transform(np.asarray(ds.X, dtype=str))
    table = TableEncoding.read(enc, where)
    if not table.frame and not table.reorders(ds) and list(np.shape(ds.X)[1:]) != table.shape:
        raise InputError(f"{ds.name}: features of shape {list(np.shape(ds.X)[1:])}, but the model "
                         f"was trained on {table.shape}")
    return table.encode(ds)


def _plot(curve: Any, path: Path, *, title: str) -> None:
    """The certified-accuracy curve as PNG to ``path`` (a temporary path of the atomic writer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    fig, ax = plt.subplots(figsize=(6, 4))
    ax.step(curve["radius"], curve["certified_accuracy"], where="post",
            label="inserted or removed rows")
    ax.step(curve["radius"], curve["certified_accuracy_changed"], where="post",
            label="changed rows")
    ax.set_xlabel("poisoned training rows (radius)")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


@app.command("defenses")
def defenses() -> None:
    """List the defences.

    Example: poisonguard defenses
    """
    from poisonguard.defenses import DEFENSES

    echo_table([{"name": name, "what": cls.summary,
                 "certifies": "yes" if hasattr(cls, "certify") else "no"}
                for name, cls in sorted(DEFENSES.items())], title="defences")
