"""Model audits: Neural Cleanse and STRIP over a zoo of clean and backdoored models, with IBM
ART's Neural Cleanse and STRIP side by side where they run.

Run ``python benchmarks/audit.py`` (``--quick`` for a small zoo). Prints the tables and writes
them to ``benchmarks/results/audit.md``.

The zoo (:func:`poisonguard.audits._zoo.make_case`): each model is trained on a seeded 70 % split
of its data, backdoored (a trigger stamped on ``rate`` of the training rows of other classes,
relabelled to the target) or clean; the audit gets 200 held-out clean rows, the rest of the
held-out rows are the test rows. Digits: the shared MLP (256 units) and CNN (width 16), 20
epochs; Fashion-MNIST (6,000 rows): the CNN, 8 epochs; a 10-class tabular problem
(``make_classification``, 20 features): HGB (query-only) and the MLP; SMS spam: TF-IDF +
logistic regression (query-only, text: STRIP only).

Per audit: AUROC of "backdoored or not" with the audit's score as the ranking; at the audit's
own rule, the share of backdoored models called suspicious (TPR) and of clean ones (FPR); the
share of backdoored models whose target it names; Neural Cleanse's trigger IoU (recovered mask
> 0.5 against the positions the real trigger changes); seconds per model. STRIP as a model
audit sees traffic: 180 clean test inputs of other classes plus 20 with the model's trigger
stamped (for a clean model, the trigger it was not trained on). STRIP as an input filter:
false acceptance (triggered inputs not flagged) at the threshold that rejects 1 % of the clean
sample.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.metrics import roc_auc_score

from poisonguard.audits import NeuralCleanse, Strip
from poisonguard.audits._zoo import ZooCase, make_case
from poisonguard.audits.strip import SUPERPOSITIONS
from poisonguard.dataset import Dataset
from poisonguard.datasets import load_dataset
from poisonguard.errors import PoisonguardError
from poisonguard.evaluation import markdown_table, publish

RESULTS = Path(__file__).resolve().parent / "results" / "audit.md"
TRAFFIC = (180, 20)  # clean and triggered inputs the STRIP audit sees
EFFECTIVE = 0.5  # a backdoored model whose trigger works on at least this share of inputs
NAN = float("nan")


@dataclass(frozen=True)
class Spec:
    data: str
    model: str
    trigger: str
    rate: float  # 0: clean
    target: int
    seed: int
    epochs: int = 20


def ten_classes() -> Dataset:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=2000, n_features=20, n_informative=10, n_redundant=4,
                               n_classes=10, n_clusters_per_class=1, class_sep=1.5,
                               random_state=0)
    return Dataset(X, y, modality="tabular", name="tabular10")


def load(name: str) -> Dataset:
    if name == "tabular10":
        return ten_classes()
    if name == "fashion_mnist":
        return load_dataset("fashion_mnist", n_rows=6000)
    return load_dataset(name)


def zoo(quick: bool) -> list[Spec]:
    """Backdoored models over triggers, rates, targets and seeds; as many clean ones."""
    specs: list[Spec] = []
    if quick:
        cases = [("digits", "mlp", "patch", 0.1), ("digits", "cnn", "blend", 0.05),
                 ("tabular10", "hgb", "feature", 0.05), ("sms_spam", "tfidf", "token", 0.02)]
        for k, (data, model, trig, rate) in enumerate(cases):
            specs.append(Spec(data, model, trig, rate, target=(3 * k + 1) % 10 if data != "sms_spam"
                              else 1, seed=k))
            specs.append(Spec(data, model, trig, 0.0, target=0, seed=k + 10))
        return specs
    k = 0
    for model in ("mlp", "cnn"):
        for trig in ("patch", "blend", "shape"):
            for rate in (0.01, 0.1) if trig != "shape" else (0.05,):
                specs.append(Spec("digits", model, trig, rate, target=k % 10, seed=k))
                k += 1
    for trig, rate in (("patch", 0.05), ("blend", 0.05), ("patch", 0.02)):
        specs.append(Spec("fashion_mnist", "cnn", trig, rate, target=k % 10, seed=k, epochs=8))
        k += 1
    for model in ("hgb", "mlp"):
        for rate in (0.02, 0.1) if model == "hgb" else (0.02, 0.05, 0.1):
            specs.append(Spec("tabular10", model, "feature", rate, target=k % 10, seed=k))
            k += 1
    for rate in (0.01, 0.02, 0.05):
        specs.append(Spec("sms_spam", "tfidf", "token", rate, target=1, seed=k))
        k += 1
    clean = [Spec(s.data, s.model, s.trigger, 0.0, target=s.target, seed=s.seed + 100,
                  epochs=s.epochs) for s in specs]
    return specs + clean


def build(spec: Spec) -> ZooCase:
    data = load(spec.data)
    return make_case(data, model=spec.model, trigger=spec.trigger, rate=spec.rate,
                     target=data.classes[spec.target], seed=spec.seed, epochs=spec.epochs)


def iou(recovered: Any, truth: np.ndarray | None) -> float:
    if truth is None or recovered is None:
        return float("nan")
    found = np.asarray(recovered) > 0.5
    return float((found & truth).sum() / max((found | truth).sum(), 1))


def others(case: ZooCase) -> np.ndarray:
    X: np.ndarray = np.asarray(case.test.X)[case.test.y != case.target]
    return X


def art_classifier(case: ZooCase) -> Any:
    """The model's torch module, with a softmax (ART's STRIP reads probabilities from
    ``predict``), as an ART ``PyTorchClassifier``."""
    import torch
    from art.estimators.classification import PyTorchClassifier

    net = torch.nn.Sequential(case.model.module, torch.nn.Softmax(dim=1))
    X = np.asarray(case.clean.X, dtype=np.float32)
    return PyTorchClassifier(net, loss=torch.nn.CrossEntropyLoss(),
                             input_shape=tuple(case.model.input_shape),
                             nb_classes=case.model.n_classes,
                             clip_values=(float(X.min()), float(X.max())))


def art_neural_cleanse(case: ZooCase) -> str:
    """What ART's Neural Cleanse says when handed a torch model."""
    from art.defences.transformer.poisoning import NeuralCleanse as ArtNC

    try:
        ArtNC(art_classifier(case))(art_classifier(case), steps=10)
    except Exception as exc:  # what a user of ART meets
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return "ran"


def art_strip(case: ZooCase, X: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """ART's STRIP (mitigate on the clean sample, 20 overlays, false_acceptance_rate 0.01, which
    sets the threshold at the 1 % quantile of a normal fitted to the clean entropies): which of
    ``X`` it abstains on, and the seconds it took."""
    import logging

    from art.defences.transformer.poisoning import STRIP as ArtSTRIP

    logging.getLogger("art").setLevel(logging.ERROR)
    np.random.seed(seed)  # noqa: NPY002 -- ART draws its overlays from the global RNG
    start = time.perf_counter()
    clf = ArtSTRIP(art_classifier(case))(num_samples=20, false_acceptance_rate=0.01)
    clf.mitigate(np.asarray(case.clean.X, dtype=np.float32))
    out = clf.predict(np.asarray(X, dtype=np.float32))
    return np.all(out == 0, axis=1), time.perf_counter() - start


def run_case(spec: Spec, art: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    case = build(spec)
    row: dict[str, Any] = {"name": case.name, "data": spec.data, "model": spec.model,
                           "trigger": spec.trigger, "rate": spec.rate,
                           "backdoored": case.backdoored, "target": case.target,
                           "accuracy": case.accuracy, "attack_success": case.attack_success,
                           "train_s": time.perf_counter() - t0}
    rng = np.random.default_rng(spec.seed)
    if case.model.modality != "text":
        report = NeuralCleanse().audit(case.model, case.clean, rng=rng)
        row.update(nc_score=report.score, nc_suspicious=report.suspicious,
                   nc_target=report.target, nc_iou=iou(report.trigger.get("mask"), case.mask),
                   nc_s=report.seconds, nc_mode=report.details["mode"])
    X = others(case)
    n_clean, n_trig = TRAFFIC
    traffic = np.concatenate([X[:n_clean], np.asarray(case.trigger.apply(X[n_clean:n_clean + n_trig]))])
    report = Strip().audit(case.model, case.clean, rng=rng, inputs=traffic)
    row.update(strip_score=report.score, strip_suspicious=report.suspicious,
               strip_target=report.target, strip_s=report.seconds)
    triggered = np.asarray(case.trigger.apply(X))
    # the triggered inputs the backdoor works on (STRIP's paper: every trojaned input does)
    works = np.asarray(case.model.predict(triggered)) == case.target
    row["effective_share"] = float(works.mean())
    for superposition in SUPERPOSITIONS:
        t1 = time.perf_counter()
        fitted = Strip(superposition=superposition).fit(case.model, case.clean, frr=0.01, rng=rng)
        passed = ~fitted.filter(triggered, rng=rng).flagged
        key = "" if superposition == "strongest" else f"_{superposition}"
        row.update({f"strip_far{key}": float(passed.mean()),
                    f"strip_far_effective{key}": float(passed[works].mean()) if works.any() else NAN,
                    f"strip_frr_test{key}": float(fitted.filter(X, rng=rng).flagged.mean()),
                    f"strip_filter_s{key}": time.perf_counter() - t1})
    if art and case.model.module is not None and case.model.modality == "image":
        flagged, seconds = art_strip(case, triggered, spec.seed)
        clean_flagged, _ = art_strip(case, X, spec.seed + 1)
        row.update(art_strip_far=float(1 - flagged.mean()),
                   art_strip_far_effective=float(1 - flagged[works].mean()) if works.any() else NAN,
                   art_strip_frr_test=float(clean_flagged.mean()), art_strip_s=seconds)
    print(f"{case.name}: acc {case.accuracy:.3f} asr {case.attack_success:.3f} "
          f"NC {row.get('nc_score', float('nan')):.2f} -> {row.get('nc_target')} "
          f"STRIP {row['strip_score']:.2f} FAR {row['strip_far']:.2f} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return row


def rate_of(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else float("nan")


def audit_table(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    works = ~frame.backdoored | (frame.attack_success >= EFFECTIVE)
    groups = [("all", frame), (f"backdoors with attack success >= {EFFECTIVE:g}", frame[works]),
              ("images", frame[frame.data.isin(["digits", "fashion_mnist"])]),
              ("tabular", frame[frame.data == "tabular10"]), ("text", frame[frame.data == "sms_spam"])]
    for audit, prefix in (("Neural Cleanse", "nc"), ("STRIP (audit of traffic)", "strip")):
        for group, part in groups:
            part = part[part[f"{prefix}_score"].notna()] if f"{prefix}_score" in part else part[:0]
            bad, good = part[part.backdoored], part[~part.backdoored]
            if not len(bad) or not len(good):
                continue
            auroc = roc_auc_score(part.backdoored.astype(int), part[f"{prefix}_score"])
            named = (bad[f"{prefix}_target"] == bad.target) & bad[f"{prefix}_suspicious"]
            rows.append({"audit": audit, "models": group, "backdoored / clean": f"{len(bad)} / {len(good)}",
                         "AUROC": auroc, "TPR at rule": rate_of(bad[f"{prefix}_suspicious"]),
                         "FPR at rule": rate_of(good[f"{prefix}_suspicious"]),
                         "target named": rate_of(named),
                         "trigger IoU": bad.nc_iou.mean() if prefix == "nc" else float("nan"),
                         "s / model": part[f"{prefix}_s"].mean()})
    return rows


def filter_table(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    bad = frame[frame.backdoored]
    for (data, trig), part in bad.groupby(["data", "trigger"], sort=True):
        row = {"data": data, "trigger": trig, "models": len(part),
               "triggered inputs sent to the target": part.effective_share.mean(),
               "FAR ours": part.strip_far.mean(),
               "FAR ours, effective": part.strip_far_effective.mean(),
               "clean test rejected, ours": part.strip_frr_test.mean(),
               "s ours": part.strip_filter_s.mean()}
        if data in ("digits", "fashion_mnist"):
            row.update({"FAR add": part.strip_far_add.mean(),
                        "FAR add, effective": part.strip_far_effective_add.mean(),
                        "FAR blend": part.strip_far_blend.mean(),
                        "FAR blend, effective": part.strip_far_effective_blend.mean()})
        if "art_strip_far" in part and part.art_strip_far.notna().any():
            row.update({"FAR ART": part.art_strip_far.mean(),
                        "FAR ART, effective": part.art_strip_far_effective.mean(),
                        "clean test rejected, ART": part.art_strip_frr_test.mean(),
                        "s ART": part.art_strip_s.mean()})
        rows.append(row)
    return rows


def versions() -> str:
    out = [f"Python {platform.python_version()}", f"numpy {np.__version__}",
           f"scikit-learn {sklearn.__version__}"]
    for mod in ("torch", "art"):
        try:
            out.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            out.append(f"{mod} not installed")
    return ", ".join(out) + f", {platform.machine()}, {os.cpu_count()} CPUs"


NOTE = """\
AUROC ranks the models by the audit's score (Neural Cleanse: the anomaly index of the class with
the smallest trigger; STRIP: -log10 of the one-sided Fisher p-value that the traffic holds more
low-entropy inputs than the clean sample). *TPR / FPR at rule*: share of backdoored / clean
models called suspicious by the audit's own rule (anomaly index >= 2; p <= 0.01). *Target
named*: share of backdoored models called suspicious with the right target. *Trigger IoU*:
recovered mask (> 0.5) against the positions the real trigger changes (a blend trigger changes
every pixel, so a small recovered mask scores low there by construction). Neural Cleanse does not
take text models; tabular HGB models are audited query-only (greedy feature-subset search), the
others by gradients.
"""

FILTER_NOTE = """\
STRIP as an input filter on the backdoored models: the threshold rejects 1 % of the clean
sample (200 rows; ours: empirical quantile of the clean entropies, each clean input superimposed
with 20 other clean inputs; ART: the 1 % quantile of a normal fitted to them, its
`false_acceptance_rate=0.01`). *FAR*: share of triggered test inputs (other classes) not
flagged; *effective*: among the triggered inputs the model sends to the target (the inputs the
backdoor works on; STRIP's paper measures models whose every trojaned input does); *clean test
rejected*: share of clean test inputs flagged (the realised FRR). *Ours* is the default
superposition (`strongest`: each pixel from whichever image departs more from the clean
sample's median pixel); *add* and *blend* are the other two (`Strip(superposition=...)`). ART runs
on the torch image models only (wrapped as a `PyTorchClassifier` with a softmax); it takes the
entropy along the overlays axis (`scipy.stats.entropy(..., axis=0)`), not along the classes as
the paper does, and draws overlays from the global NumPy RNG (seeded here).
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small zoo (8 models)")
    parser.add_argument("--no-art", action="store_true", help="skip IBM ART's STRIP")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)  # tiny models: threads that contend for 2 shared cores cost ~20x
    start = time.perf_counter()
    rows = []
    art = not args.no_art
    with threadpool_limits(1):
        for spec in zoo(args.quick):
            try:
                rows.append(run_case(spec, art))
            except PoisonguardError as exc:  # e.g. a data set that is not installed
                print(f"skipped {spec}: {exc}", flush=True)
    frame = pd.DataFrame(rows)
    art_nc = "not run (--no-art)"
    if art:
        first = next(s for s in zoo(args.quick) if s.data == "digits")
        try:
            art_nc = art_neural_cleanse(build(first))
        except ImportError as exc:
            art_nc = f"ART not installed ({exc})"
        except Exception:
            art_nc = traceback.format_exc().strip().splitlines()[-1]
    command = f"`python benchmarks/audit.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
    zoo_cols = ["name", "accuracy", "attack_success", "nc_score", "nc_target", "nc_iou",
                "strip_score", "strip_target", "strip_far", "strip_far_effective"]
    parts = [f"# Model audits: Neural Cleanse and STRIP\n\n{command} — {versions()}.\n",
             "## Backdoored or not: audits over the zoo\n", NOTE,
             markdown_table(pd.DataFrame(audit_table(frame))),
             f"\nIBM ART's Neural Cleanse on a torch model: {art_nc} (ART implements it for "
             "Keras models only).\n",
             "\n## STRIP as an input filter: false acceptance at 1 % false rejection\n",
             FILTER_NOTE, markdown_table(pd.DataFrame(filter_table(frame))),
             "\n## The zoo, model by model\n",
             "Accuracy and attack success on the test rows (for a clean model: how often the "
             "trigger it was not trained on sends inputs to the target).\n",
             markdown_table(frame[[c for c in zoo_cols if c in frame]])]
    parts.append(f"\nTotal wall time {(time.perf_counter() - start) / 60:.1f} min.\n")
    publish("\n".join(parts), args.out)


if __name__ == "__main__":
    main()
