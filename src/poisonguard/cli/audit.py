"""``poisonguard audit``: was a trained model poisoned? ``poisonguard audits`` lists the audits.

``audit MODEL --data CLEAN --out DIR`` (short for ``audit run``) reads MODEL without pickle (a
``harden`` folder, ``.safetensors`` with ``--arch``, ``.onnx`` or ``.skops``; see
:mod:`poisonguard.audits.load`), runs the audits on the clean sample and writes, as one group,
``audit.json`` (every report) with, per audit that recovered a trigger, ``trigger-<audit>.npz``
and, for image models, ``trigger-<audit>.png``. Exit 0: no audit calls the model suspicious;
1: at least one does; 2: bad input; 3: integrity failure.

``audit strip MODEL INPUTS --data CLEAN --frr 0.01 --out DIR`` screens incoming inputs with
STRIP at run time and writes ``strip.csv`` (``row_id``, ``entropy``, ``flagged``).

``audit`` is a command group whose default command is ``run``: any first argument that is not
a subcommand name (``run``, ``strip``) is the MODEL of ``audit run`` (a model file named
``strip`` is given as ``./strip``).
"""

from __future__ import annotations

import inspect
import json
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from poisonguard.cli._common import EXIT_FINDINGS, SEED_MAX, app, echo_table, key_value, load_data
from poisonguard.errors import InputError

if TYPE_CHECKING:
    from poisonguard.audits import AuditedModel, AuditReport
    from poisonguard.dataset import Dataset

__all__ = ["audit_run", "audit_strip", "list_audits"]


class _DefaultRun(TyperGroup):
    """A group that runs ``run`` when its first argument names no subcommand."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # Typer's own click Context
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


audit_app = typer.Typer(
    cls=_DefaultRun, no_args_is_help=True,
    help="Audit a trained model for a backdoor: `poisonguard audit MODEL --data CLEAN --out DIR` "
         "(= `audit run`), or screen inputs with `audit strip`.")
app.add_typer(audit_app, name="audit")

Opt = typer.Option
_MODEL_HELP = ("The model: a folder from `poisonguard harden`, weights .safetensors (with "
               "--arch), .onnx, or a scikit-learn .skops file. Never unpickled.")


@app.command("audits")
def list_audits() -> None:
    """List the registered model audits.

    Example: poisonguard audits
    """
    from poisonguard.audits import AUDITS

    echo_table([{"audit": name, "data": ",".join(cls.modalities),
                 "needs torch model": "yes" if cls.needs_module else "no",
                 "what it does": getattr(cls, "summary", (cls.__doc__ or "").split("\n")[0])}
                for name, cls in sorted(AUDITS.items())], title="audits")


def _classes(text: str | None) -> list[Any] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.split(",")]
    if not all(items):
        raise InputError(f"--classes {text!r}: expected comma-separated labels, e.g. 0,1,2")
    try:
        return [int(t) for t in items]
    except ValueError:
        return items


def _audit_names(text: str | None) -> list[str] | None:
    from poisonguard.audits import AUDITS

    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise InputError("--audit: name at least one audit (see `poisonguard audits`)")
    for name in names:
        if name not in AUDITS:
            raise InputError(f"--audit {name!r}: unknown; known: {', '.join(AUDITS.names())}")
    if len(set(names)) != len(names):
        raise InputError(f"--audit {text!r}: an audit is named twice")
    return names


def _audit_params(names: list[str], pairs: list[str]) -> dict[str, dict[str, Any]]:
    """Constructor arguments per audit from ``KEY=VALUE`` (every audit taking KEY) and
    ``AUDIT.KEY=VALUE`` (that audit); values are JSON, else text."""
    from poisonguard.audits import AUDITS

    accepted = {n: [p for p in inspect.signature(AUDITS.get(n).__init__).parameters
                    if p != "self"] for n in names}
    out: dict[str, dict[str, Any]] = {n: {} for n in names}
    for pair in pairs:
        key, value = key_value(pair, "KEY=VALUE or AUDIT.KEY=VALUE")
        target, _, name = key.rpartition(".")
        if target and target not in names:
            raise InputError(f"--param {key}: {target!r} is not among the audits run "
                             f"({', '.join(names)})")
        takers = [n for n in ([target] if target else names) if name in accepted[n]]
        if not takers:
            known = "; ".join(f"{n}: {', '.join(accepted[n])}" for n in ([target] if target else names))
            raise InputError(f"--param {key}: not a parameter of {target or ' or '.join(names)} "
                             f"(known: {known})")
        for n in takers:
            out[n][name] = value
    return out


def _load(model: Path, data: str, *, arch: Path | None, classes: str | None,
          label: str) -> tuple[AuditedModel, Dataset]:
    """The model and the clean sample in its input space."""
    import numpy as np

    from poisonguard.audits.load import inputs_for, load_audited

    labels = _classes(classes)
    clean = load_data(data, label=label)
    shape = None if clean.is_frame or clean.modality == "text" else tuple(np.shape(clean.X)[1:])
    audited = load_audited(model, arch=arch, modality=clean.modality, classes=labels,
                           input_shape=shape)
    sample = inputs_for(audited, clean)
    known = np.isin(np.asarray(sample.y).astype(str), np.asarray(audited.classes).astype(str))
    if not known.all():
        typer.echo(f"note: {int((~known).sum())} of {sample.n_rows} rows of {data} have labels "
                   "the model does not know (set --classes to the model's labels)", err=True)
    return audited, sample


def _rng(seed: int, name: str) -> Any:
    """One generator per audit: its result does not depend on which other audits ran."""
    import numpy as np

    return np.random.default_rng([seed, zlib.crc32(name.encode())])


@audit_app.command("run")
def audit_run(
    model: Annotated[Path, typer.Argument(help=_MODEL_HELP, show_default=False)],
    data: Annotated[str, Opt("--data", help="Clean sample of the data the model works on "
                                            "(CSV, Parquet, NPZ or a built-in data set).")],
    out: Annotated[Path, Opt("--out", "-o", help="Folder for audit.json, trigger-<audit>.npz "
                                                 "and (image models) trigger-<audit>.png.")],
    audit: Annotated[str | None, Opt(help="Comma-separated audits (see `poisonguard audits`); "
                                          "default: every audit that fits the model.")] = None,
    arch: Annotated[Path | None, Opt(help="Architecture spec (JSON) of .safetensors weights: "
                                          "kind, input_shape, classes, width.")] = None,
    classes: Annotated[str | None, Opt(help="Comma-separated class labels in the order of the "
                                            "model's outputs (ONNX; default 0..k-1).")] = None,
    label: Annotated[str, Opt(help="Label column of the clean sample.")] = "label",
    seed: Annotated[int, Opt(help="Random seed (same seed, same report).", min=0,
                             max=SEED_MAX)] = 0,
    param: Annotated[list[str] | None, Opt(help="An audit parameter, KEY=VALUE or "
                                                "AUDIT.KEY=VALUE (repeatable), e.g. "
                                                "neural-cleanse.steps=100.")] = None,
) -> None:
    """Audit MODEL for a backdoor on a clean sample; exit 1 when an audit calls it suspicious.

    Example: poisonguard audit model/ --data clean.npz --out audit/ --audit neural-cleanse
    """
    from poisonguard import io
    from poisonguard.audits import AUDITS

    names = _audit_names(audit)
    params = _audit_params(names or list(AUDITS.names()), param or [])
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, expected a folder")
    audited, sample = _load(model, data, arch=arch, classes=classes, label=label)
    chosen, skipped = [], []
    for name in names or AUDITS.names():
        runner = AUDITS.get(name)(**params[name])
        try:
            runner.check(audited, sample)
        except InputError as exc:
            if names is not None:
                raise
            skipped.append({"audit": name, "reason": str(exc)})
            continue
        chosen.append((name, runner))
    if not chosen:
        raise InputError(f"{model}: no audit fits this model ({'; '.join(s['reason'] for s in skipped)})")
    image = audited.modality == "image"
    outputs: dict[str, list[Path]] = {
        name: [out / f"trigger-{name}.npz", *([out / f"trigger-{name}.png"] if image else [])]
        for name, _ in chosen}
    for path in [p for paths in outputs.values() for p in paths] + [out / "audit.json"]:
        io.check_target(path, "--out")
    for entry in skipped:
        typer.echo(f"note: skipped {entry['audit']}: {entry['reason']}", err=True)
    reports = [runner.audit(audited, sample, rng=_rng(seed, name)) for name, runner in chosen]
    written = _write(out, reports, outputs, audited, {
        "model": str(model), "data": data, "rows": sample.n_rows, "seed": seed,
        "skipped": skipped})
    echo_table([{"audit": r.audit, "suspicious": "YES" if r.suspicious else "no",
                 "score": float(r.score), "threshold": float(r.threshold),
                 "target": "-" if r.target is None else str(r.target),
                 "seconds": f"{r.seconds:.1f}"} for r in reports], title=f"audit: {model}")
    typer.echo(f"wrote {', '.join(str(p) for p in written)}", err=True)
    if any(r.suspicious for r in reports):
        raise typer.Exit(EXIT_FINDINGS)


def _write(out: Path, reports: list[AuditReport], outputs: dict[str, list[Path]],
           model: AuditedModel, run: dict[str, Any]) -> list[Path]:
    """``audit.json`` and the triggers, as one group (``audit.json`` last)."""
    import numpy as np

    from poisonguard import io

    files: list[tuple[Path, Any]] = []
    entries = []
    for report in reports:
        entry = report.to_dict()
        arrays = {k: np.asarray(v) for k, v in report.trigger.items()}
        entry["files"] = []
        if arrays:
            npz, *png = outputs[report.audit]
            files.append((npz, ("npz", arrays)))
            entry["files"].append(npz.name)
            if png:
                files.append((png[0], ("png", (arrays, report.audit, model.input_shape))))
                entry["files"].append(png[0].name)
        entries.append(entry)
    doc = {**run, "modality": model.modality, "input_shape": list(model.input_shape),
           "classes": [c.item() if isinstance(c, np.generic) else c for c in model.classes],
           "torch_module": model.module is not None, "source": model.source,
           "suspicious": any(r.suspicious for r in reports), "audits": entries}
    targets = [p for p, _ in files] + [out / "audit.json"]
    with io.atomic_paths(targets) as tmps:
        for tmp, (_, (kind, payload)) in zip(tmps, files, strict=False):
            if kind == "npz":
                with tmp.open("wb") as fh:
                    np.savez_compressed(fh, **payload)
            else:
                trig, name, shape = payload
                _plot_trigger(trig, name, shape, tmp)
        tmps[-1].write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")
    return targets


def _plot_trigger(arrays: dict[str, Any], audit: str, shape: tuple[int, ...], path: Path) -> None:
    """The trigger's image-shaped arrays (mask, pattern, ...) side by side, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    shown = {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()
             if int(np.size(v)) == int(np.prod(shape)) or np.shape(v)[:2] == shape[:2]}
    if "mask" in shown and "pattern" in shown and np.shape(shown["mask"])[:2] == np.shape(
            shown["pattern"])[:2]:
        mask = shown["mask"].reshape(*shape[:2], -1)
        shown["mask x pattern"] = (mask * shown["pattern"].reshape(*shape[:2], -1)).squeeze()
    fig, axes = plt.subplots(1, max(len(shown), 1), figsize=(3 * max(len(shown), 1), 3.2),
                             squeeze=False)
    for ax, (key, value) in zip(axes[0], shown.items(), strict=False):
        img = value.reshape(*shape[:2], -1) if value.size % (shape[0] * shape[1]) == 0 else value
        img = img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img
        if img.ndim == 3:  # colour: each channel to [0, 1]
            lo, hi = img.min(), img.max()
            ax.imshow((img - lo) / (hi - lo if hi > lo else 1.0))
        elif key == "mask":  # a mask's scale is fixed: 0 keeps the input, 1 takes the pattern
            ax.imshow(img, cmap="gray", vmin=0.0, vmax=1.0)
        else:
            ax.imshow(img, cmap="gray")
        ax.set_title(key)
        ax.axis("off")
    fig.suptitle(f"{audit}: recovered trigger")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)


@audit_app.command("strip")
def audit_strip(
    model: Annotated[Path, typer.Argument(help=_MODEL_HELP, show_default=False)],
    inputs: Annotated[str, typer.Argument(help="Inputs to screen (CSV, Parquet or NPZ; a label "
                                               "column, if any, is ignored).")],
    data: Annotated[str, Opt("--data", help="Clean sample: overlays and the entropy threshold "
                                            "come from it.")],
    out: Annotated[Path, Opt("--out", "-o", help="Folder for strip.csv (row_id, entropy, "
                                                 "flagged).")],
    frr: Annotated[float, Opt(help="False rejection rate on clean inputs that sets the "
                                   "threshold, in (0, 1).")] = 0.01,
    arch: Annotated[Path | None, Opt(help="Architecture spec (JSON) of .safetensors "
                                          "weights.")] = None,
    classes: Annotated[str | None, Opt(help="Comma-separated class labels in the order of the "
                                            "model's outputs (ONNX; default 0..k-1).")] = None,
    label: Annotated[str, Opt(help="Label column of the clean sample and of INPUTS.")] = "label",
    seed: Annotated[int, Opt(help="Random seed.", min=0, max=SEED_MAX)] = 0,
    param: Annotated[list[str] | None, Opt(help="A STRIP parameter, KEY=VALUE (repeatable), "
                                                "e.g. n_overlays=20.")] = None,
) -> None:
    """Flag inputs carrying a trigger (STRIP): low prediction entropy under superimposition.

    Example: poisonguard audit strip model/ incoming.npz --data clean.npz --frr 0.01 --out strip/
    """
    import numpy as np
    import pandas as pd

    from poisonguard import io
    from poisonguard.audits import AUDITS
    from poisonguard.audits.load import inputs_for

    if "strip" not in AUDITS:
        raise InputError(f"no 'strip' audit is registered (known: {', '.join(AUDITS.names())})")
    if not 0.0 < frr < 1.0:
        raise InputError(f"--frr must be in (0, 1) (got {frr})")
    params = _audit_params(["strip"], [p if "." in p.partition("=")[0] else f"strip.{p}"
                                       for p in (param or [])])["strip"]
    target = out / "strip.csv"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, expected a folder")
    audited, sample = _load(model, data, arch=arch, classes=classes, label=label)
    screened = inputs_for(audited, load_data(inputs, label=label))
    io.check_target(target, "--out")
    strip = AUDITS.get("strip")(**params)
    if not (callable(getattr(strip, "threshold", None)) and callable(getattr(strip, "entropies", None))):
        raise InputError("the registered 'strip' audit has no input filter (threshold, entropies)")
    strip.check(audited, sample)
    rng = _rng(seed, "strip")
    cut = float(strip.threshold(audited, sample, frr=frr, rng=rng))  # type: ignore[attr-defined]
    entropy = np.asarray(strip.entropies(audited, screened.X, sample, rng=rng),  # type: ignore[attr-defined]
                         dtype=np.float64)
    flagged = entropy <= cut
    table = pd.DataFrame({"row_id": screened.ids, "entropy": entropy,
                          "flagged": flagged.astype(int)})
    io.report_csv(table, target, float_format="%.6g")
    echo_table([{"inputs": screened.n_rows, "flagged": int(flagged.sum()),
                 "threshold (entropy)": cut, "frr": frr}], title=f"strip: {model} on {inputs}")
    typer.echo(f"wrote {target}", err=True)
    if flagged.any():
        raise typer.Exit(EXIT_FINDINGS)
