"""Hardening: robust losses, scan-then-train and cleanlab against label flips; certified
partition ensembles (DPA, FA) with an attack audit.

Run ``python benchmarks/harden.py`` (``--quick`` for one seed and fewer cases; ``--only labels``
etc. for one section). Prints the tables and writes them to ``benchmarks/results/harden.md``,
and the certified-accuracy curves to ``harden-certify.png`` next to it.

Sections:

* ``labels``   random and class-pair label flips at 10 %, 20 % and 40 % of the training split
               (class-pair: that share of the last class relabelled as the first, the
               asymmetric noise of the GCE / SCE papers) on digits, Fashion-MNIST, SMS spam
               (TF-IDF), German credit and spambase. Test accuracy of ``RobustLinear`` with
               each loss, of cleanlab's ``CleanLearning`` around a scikit-learn logistic
               regression with the same L2 penalty on the same standardised features, and of
               ``scan`` then ``RobustLinear`` (ce / sce) on ``clean()``; the unpoisoned model
               (ce) for reference. Time of every defence as a ratio to plain training.
* ``certify``  certified accuracy against inserted / removed training rows for DPA and FA
               (base ``RobustLinear(loss="ce")``) on digits and Fashion-MNIST, by radius, and
               the largest radius at which at least half the test set stays certified.
* ``audit``    the certificates against the strongest insertion there is for 1-NN base models
               on digits: copies of a certified test point labelled with the binding rival,
               placed in the buckets worth the most votes. ``radius`` rows must change nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from poisonguard import Dataset
from poisonguard.attacks import get_attack
from poisonguard.datasets import load_dataset
from poisonguard.defenses import FiniteAggregation, PartitionEnsemble, RobustLinear, partition_index
from poisonguard.evaluation import markdown_table, publish, split
from poisonguard.models._codec import NumericCodec
from poisonguard.scan import scan

RESULTS = Path(__file__).resolve().parent / "results" / "harden.md"
LABEL_DATA = ("digits", "fashion_mnist", "sms_spam", "credit", "spambase")
RATES = (0.1, 0.2, 0.4)
ROBUST = ("smooth", "gce", "sce", "bootstrap", "trimmed")
OURS = (*ROBUST, "scan→ce", "scan→sce")
METHODS = ("ce", *ROBUST, "CleanLearning", "scan→ce", "scan→sce")
ALPHA = 1e-3  # RobustLinear's default L2 strength (per row, standardised features)
FASHION_TRAIN = 6000  # label flips: Fashion-MNIST training rows (test 30 % on top)
TFIDF_FEATURES = 1000
CERT_RADII = (0, 1, 2, 5, 10, 20, 50, 100)
AUDIT_POINTS = 20


def fmt(x: float) -> str:
    return "—" if x != x else f"{x:.3f}"


# ---------------------------------------------------------------------- data and features
def label_data(name: str, seed: int) -> Dataset:
    if name == "fashion_mnist":  # 6,000 training rows after the 70 / 30 split
        return load_dataset(name, n_rows=round(FASHION_TRAIN / 0.7), random_state=seed)
    return load_dataset(name)


def featuriser(train: Dataset) -> Callable[[Dataset], np.ndarray]:
    """Features learnt from the training split only: TF-IDF for text (dense, the
    ``TFIDF_FEATURES`` most frequent terms), the numeric encoding (images flattened) otherwise.
    Label flips leave the features alone, so the poisoned split encodes the same way."""
    if train.modality == "text":
        vec = TfidfVectorizer(max_features=TFIDF_FEATURES, min_df=2, sublinear_tf=True)
        vec.fit(np.asarray(train.X, dtype=object))
        return lambda ds: np.asarray(vec.transform(np.asarray(ds.X, dtype=object)).toarray())
    codec = NumericCodec.fit(train)
    return lambda ds: codec.encode(ds.X)


def flip_attack(train: Dataset, strategy: str, rate: float) -> Any:
    """``random``: ``rate`` of all rows to another class; ``class``: ``rate`` of the last
    class's rows relabelled as the first class."""
    if strategy == "random":
        return get_attack("label-flip")(strategy="random", rate=rate)
    n_source = int((np.asarray(train.y) == train.classes[-1]).sum())
    return get_attack("label-flip")(strategy="class", count=round(rate * n_source))


# ---------------------------------------------------------------------- labels
def run_methods(train: Dataset, poisoned: Dataset, mask: np.ndarray, test: Dataset,
                seed: int) -> dict[str, Any]:
    """Accuracy and seconds of every method trained on ``poisoned``; scan's recall / precision."""
    from cleanlab.classification import CleanLearning

    enc = featuriser(train)
    Xp, yp = enc(poisoned), np.asarray(poisoned.y)
    Xt, yt = enc(test), np.asarray(test.y)
    acc: dict[str, float] = {}
    secs: dict[str, float] = {}

    def timed(label: str, fit: Callable[[], Any], extra: float = 0.0) -> None:
        t0 = time.perf_counter()
        model = fit()
        secs[label] = time.perf_counter() - t0 + extra
        acc[label] = float((np.asarray(model.predict(Xt)) == yt).mean())

    for loss in ("ce", *ROBUST):
        timed(loss, lambda loss=loss: RobustLinear(loss=loss, alpha=ALPHA).fit(Xp, yp))
    # the same model in scikit-learn: C sum(loss) + |w|^2 / 2 is n C (mean loss + |w|^2 / (2 n C))
    classes = train.classes
    codes = np.searchsorted(classes, yp)
    base = make_pipeline(StandardScaler(), LogisticRegression(C=1.0 / (ALPHA * len(yp)), max_iter=1000))

    class _Decoded:
        def __init__(self, cl: Any) -> None:
            self.cl = cl

        def predict(self, X: np.ndarray) -> np.ndarray:
            out: np.ndarray = classes[self.cl.predict(X)]
            return out

    timed("CleanLearning", lambda: _Decoded(CleanLearning(base, seed=seed).fit(Xp, codes)))
    t0 = time.perf_counter()
    rep = scan(poisoned, random_state=seed)
    scan_s = time.perf_counter() - t0
    kept = rep.clean()
    Xc, yc = enc(kept), np.asarray(kept.y)
    for loss in ("ce", "sce"):
        timed(f"scan→{loss}", lambda loss=loss: RobustLinear(loss=loss, alpha=ALPHA).fit(Xc, yc),
              extra=scan_s)
    found = rep.flagged & mask
    return {"acc": acc, "s": secs,
            "scan recall": found.sum() / max(mask.sum(), 1),
            "scan precision": found.sum() / max(rep.n_flagged, 1)}


def section_labels(seeds: list[int], names: tuple[str, ...], rates: tuple[float, ...],
                   fashion_cases: set[tuple[str, float]] | None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    times: list[dict[str, Any]] = []  # one per run: method -> seconds, and the data set
    for name in names:
        splits = {seed: split(label_data(name, seed), random_state=seed) for seed in seeds}
        unpoisoned: dict[int, float] = {}
        for seed, (train, test) in splits.items():
            enc = featuriser(train)
            model = RobustLinear(loss="ce", alpha=ALPHA).fit(enc(train), np.asarray(train.y))
            unpoisoned[seed] = float((model.predict(enc(test)) == np.asarray(test.y)).mean())
        for strategy in ("random", "class"):
            for rate in rates:
                if name == "fashion_mnist" and fashion_cases is not None and \
                        (strategy, rate) not in fashion_cases:
                    continue
                case_seeds = seeds[:1] if name == "fashion_mnist" else seeds
                acc: dict[str, list[float]] = {}
                for seed in case_seeds:
                    train, test = splits[seed]
                    res = flip_attack(train, strategy, rate).poison(train, rng=np.random.default_rng(seed))
                    got = run_methods(train, res.dataset, np.asarray(res.mask, dtype=bool), test, seed)
                    acc.setdefault("unpoisoned", []).append(unpoisoned[seed])
                    for m in METHODS:
                        acc.setdefault(m, []).append(got["acc"][m])
                    for key in ("scan recall", "scan precision"):
                        acc.setdefault(key, []).append(got[key])
                    acc.setdefault("flipped", []).append(float(np.mean(res.mask)))
                    times.append({"data": name, **got["s"]})
                mean = {k: float(np.mean(v)) for k, v in acc.items()}
                best = max(OURS, key=lambda m: mean[m])
                within = mean[best] >= mean["unpoisoned"] - 0.01
                beats = mean[best] > mean["CleanLearning"]
                at_target = abs(rate - 0.2) < 1e-9
                rows.append({
                    "data": name, "flips": "random" if strategy == "random" else "class-pair",
                    "rate": f"{rate:.0%}", "rows flipped": f"{mean['flipped']:.1%}",
                    "seeds": str(len(case_seeds)),
                    **{k: fmt(mean[k]) for k in ("unpoisoned", *METHODS)},
                    "scan recall / precision": f"{mean['scan recall']:.2f} / {mean['scan precision']:.2f}",
                    "best ours": f"{best} {mean[best]:.3f}",
                    "best ours within 1 pt of unpoisoned (at 20 %)":
                        ("met" if within else "FAIL") if at_target else ("yes" if within else "no"),
                    "best ours > CleanLearning": "met" if beats else "FAIL",
                })
                print(rows[-1], flush=True)
    return rows, times


def time_table(times: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per method: mean seconds per run and the mean ratio to plain training (ce) of the same
    run, over all runs and per data set."""
    frame = pd.DataFrame(times)
    out = []
    for m in METHODS:
        ratio = frame[m] / frame["ce"]
        row: dict[str, Any] = {"method": m, "mean s / run": f"{frame[m].mean():.2f}",
                               "x plain (all runs)": f"{ratio.mean():.2f}"}
        for name, group in frame.groupby("data", sort=False):
            row[f"x plain: {name}"] = f"{(group[m] / group['ce']).mean():.2f}"
        out.append(row)
    return out


# ---------------------------------------------------------------------- certify
def cert_data(name: str, quick: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Digits: 1,400 train / 397 test. Fashion-MNIST: 20,000 train / 2,000 test (5,000 / 1,000
    with --quick)."""
    if name == "digits":
        ds = load_dataset("digits")
        train, test = split(ds, test_size=397 / ds.n_rows, random_state=0)
    else:
        n_train, n_test = (5000, 1000) if quick else (20000, 2000)
        ds = load_dataset(name, n_rows=n_train + n_test, random_state=0)
        train, test = split(ds, test_size=n_test / ds.n_rows, random_state=0)
    codec = NumericCodec.fit(train)
    return (codec.encode(train.X), np.asarray(train.y), codec.encode(test.X), np.asarray(test.y),
            f"{train.n_rows:,} / {test.n_rows:,}")


def make_ensemble(method: str, base: Any, k: int, d: int) -> Any:
    if method == "DPA":
        return PartitionEnsemble(base, n_partitions=k)
    return FiniteAggregation(base, n_partitions=k, spread=d)


def section_certify(configs: dict[str, list[tuple[str, int, int]]], quick: bool
                    ) -> tuple[list[dict[str, Any]], dict[str, list[tuple[str, np.ndarray]]]]:
    rows: list[dict[str, Any]] = []
    curves: dict[str, list[tuple[str, np.ndarray]]] = {}
    for name, cases in configs.items():
        X, y, Xt, yt, sizes = cert_data(name, quick)
        t0 = time.perf_counter()
        single = RobustLinear(loss="ce", alpha=ALPHA).fit(X, y)
        rows.append({"data": name, "train / test": sizes, "defence": "single model (no certificate)",
                     "models": "1", "fit s": f"{time.perf_counter() - t0:.1f}",
                     "r=0": fmt(float((single.predict(Xt) == yt).mean())),
                     **{f"r={r}": "—" for r in CERT_RADII[1:]},
                     "largest r with >= 50 % certified": "—", "abstaining models": "—"})
        print(rows[-1], flush=True)
        for method, k, d in cases:
            t0 = time.perf_counter()
            model = make_ensemble(method, RobustLinear(loss="ce", alpha=ALPHA), k, d).fit(X, y)
            fit_s = time.perf_counter() - t0
            cert = model.certify(Xt)
            reach = k // 2  # every model agreeing certifies floor(k / 2) rows (DPA and FA)
            curve = np.array([cert.certified_accuracy(yt, r) for r in range(reach + 1)])
            label = f"DPA k={k}" if method == "DPA" else f"FA k={k} d={d}"
            curves.setdefault(name, []).append((label, curve))
            half = np.flatnonzero(curve >= 0.5)
            rows.append({"data": name, "train / test": sizes, "defence": label,
                         "models": str(k * d), "fit s": f"{fit_s:.1f}",
                         **{f"r={r}": fmt(float(curve[r])) if r <= reach else "—" for r in CERT_RADII},
                         "largest r with >= 50 % certified": str(half.max()) if len(half) else "none",
                         "abstaining models": str(model.n_abstaining_)})
            print(rows[-1], flush=True)
    return rows, curves


def plot_curves(curves: dict[str, list[tuple[str, np.ndarray]]], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.0 * len(curves), 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, lines) in zip(axes, curves.items(), strict=True):
        for label, curve in lines:
            ax.plot(np.arange(len(curve)), curve, label=label,
                    linestyle="-" if label.startswith("DPA") else "--")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("radius (training rows inserted or removed)")
        ax.set_ylabel("certified accuracy")
        ax.set_ylim(0, 1)
        ax.axhline(0.5, color="grey", linewidth=0.5)
        ax.set_title(name)
        ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", metadata={"Software": None})


# ---------------------------------------------------------------------- audit
def bucket_power(model: Any, x: np.ndarray) -> tuple[int, np.ndarray, int]:
    """The binding rival for ``x`` (the one that leaves the smallest radius), the buckets in
    order of the votes a rival-labelled copy of ``x`` in them is worth against it (2 per
    model voting the prediction, 1 per model voting a third class), and the model count."""
    mv = model.model_votes(x[None, :])[0]
    m = len(mv)
    n_classes = len(model.classes_)
    counts = np.bincount(mv[mv >= 0], minlength=n_classes)
    c = int(counts.argmax())
    best: tuple[int, int, np.ndarray] | None = None
    for rival in range(n_classes):
        if rival == c:
            continue
        margin = counts[c] - counts[rival] - int(rival < c)
        weight = np.where(mv == c, 2, np.where(mv == rival, 0, 1))
        power = np.array([weight[(j + model.offsets_) % m].sum() for j in range(m)])
        order = np.argsort(-power, kind="stable")
        fits = int((np.cumsum(power[order]) <= margin).sum())
        if best is None or fits < best[0]:
            best = (fits, rival, order)
    assert best is not None
    return best[1], best[2], m


def poison_rows(x: np.ndarray, label: Any, buckets: np.ndarray, m: int,
                rng: np.random.Generator) -> np.ndarray:
    """One jittered copy of ``x`` (labelled ``label``) hashing into each of ``buckets``."""
    wanted = {int(b) for b in buckets}
    found: dict[int, np.ndarray] = {}
    while len(found) < len(wanted):
        cand = x + rng.normal(0.0, 1e-3, size=(4 * m, x.size))
        parts = partition_index(cand, np.full(len(cand), label), m)
        for row, p in zip(cand, parts, strict=True):
            if int(p) in wanted and int(p) not in found:
                found[int(p)] = row
    return np.stack([found[int(b)] for b in buckets])


def section_audit(cases: list[tuple[str, int, int]], n_points: int) -> list[dict[str, Any]]:
    X, y, Xt, yt, _ = cert_data("digits", quick=True)
    rng = np.random.default_rng(0)
    rows = []
    for method, k, d in cases:
        t0 = time.perf_counter()
        model = make_ensemble(method, KNeighborsClassifier(1), k, d).fit(X, y)
        cert = model.certify(Xt)
        pool = np.flatnonzero(cert.radius >= 1)
        pool = pool[np.argsort(cert.radius[pool], kind="stable")]
        picked = pool[np.unique(np.linspace(0, len(pool) - 1, min(n_points, len(pool))).round().astype(int))]
        held = beyond = 0
        for i in picked:
            r = int(cert.radius[i])
            rival, order, m = bucket_power(model, Xt[i])
            rows_r1 = poison_rows(Xt[i], model.classes_[rival], order[:r + 1], m, rng)
            labels = np.full(r + 1, model.classes_[rival])
            for n_rows in (r, r + 1):
                attacked = make_ensemble(method, KNeighborsClassifier(1), k, d).fit(
                    np.vstack([X, rows_r1[:n_rows]]), np.concatenate([y, labels[:n_rows]]))
                same = attacked.predict(Xt[i:i + 1])[0] == cert.prediction[i]
                if n_rows == r:
                    held += int(same)
                else:
                    beyond += int(not same)
        n = len(picked)
        label = f"DPA k={k}" if method == "DPA" else f"FA k={k} d={d}"
        ok = held == n and (method != "DPA" or beyond == n)
        rows.append({"defence (1-NN base)": label, "clean acc": fmt(float((cert.prediction == yt).mean())),
                     "points": str(n), "radii": f"{cert.radius[picked].min()}-{cert.radius[picked].max()}",
                     "changed by radius rows": str(n - held), "changed by radius + 1 rows": str(beyond),
                     "s": f"{time.perf_counter() - t0:.1f}",
                     "target": "met" if ok else "FAIL"})
        print(rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------------- main
def versions() -> str:
    out = [f"Python {platform.python_version()}", f"numpy {np.__version__}",
           f"scikit-learn {sklearn.__version__}"]
    for mod in ("cleanlab", "art"):
        try:
            out.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            out.append(f"{mod} not installed")
    return ", ".join(out) + f", {platform.machine()}, {os.cpu_count()} CPUs, " \
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--only", nargs="+", default=["labels", "certify", "audit"],
                        choices=["labels", "certify", "audit"])
    parser.add_argument("--data", nargs="+", default=list(LABEL_DATA), help="label-flip data sets")
    parser.add_argument("--quick", action="store_true", help="one seed, fewer cases")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    seeds = args.seeds[:1] if args.quick else args.seeds
    start = time.perf_counter()
    parts = [f"# Hardening benchmark\n\n`python benchmarks/harden.py {' '.join(argv or sys.argv[1:])}`"
             f" — seeds {seeds}; {versions()}.\n"]
    if "labels" in args.only:
        rates = (0.2,) if args.quick else RATES
        fashion = {("random", 0.2)} if args.quick else FASHION_CASES
        rows, times = section_labels(seeds, tuple(args.data), rates, fashion)
        parts += ["## Label flips: test accuracy after training on the poisoned split\n",
                  LABELS_NOTE, markdown_table(pd.DataFrame(rows)),
                  "\n## Cost: seconds per run and the ratio to plain training (ce) of the same run\n",
                  TIME_NOTE, markdown_table(pd.DataFrame(time_table(times)))]
    curves: dict[str, list[tuple[str, np.ndarray]]] = {}
    if "certify" in args.only:
        configs = {"digits": DIGITS_CERT[:4] if args.quick else DIGITS_CERT,
                   "fashion_mnist": FASHION_CERT[:1] if args.quick else FASHION_CERT}
        rows, curves = section_certify(configs, args.quick)
        png = args.out.parent / "harden-certify.png"
        plot_curves(curves, png)
        parts += ["## Certified accuracy by radius (rows inserted or removed)\n", CERT_NOTE,
                  markdown_table(pd.DataFrame(rows)), f"\nCurves: `{png.name}`.\n"]
    if "audit" in args.only:
        cases = DIGITS_CERT[:2] if args.quick else DIGITS_CERT
        rows = section_audit(cases, 5 if args.quick else AUDIT_POINTS)
        parts += ["## Audit: the strongest insertion attack on 1-NN ensembles (digits)\n",
                  AUDIT_NOTE, markdown_table(pd.DataFrame(rows))]
    parts.append(f"\nTotal wall time {(time.perf_counter() - start) / 60:.1f} min.\n")
    publish("\n".join(parts), args.out)


DIGITS_CERT = [("DPA", 10, 1), ("FA", 10, 4), ("DPA", 20, 1), ("FA", 20, 4), ("FA", 10, 8),
               ("FA", 20, 8), ("DPA", 50, 1), ("FA", 50, 4), ("FA", 50, 8)]
FASHION_CERT = [("DPA", 50, 1), ("FA", 50, 4), ("DPA", 200, 1), ("FA", 200, 4)]
FASHION_CASES = {(s, r) for s in ("random", "class") for r in RATES} - {("class", 0.1)}

LABELS_NOTE = """\
Model everywhere: `RobustLinear` (multinomial linear, standardised features, L2 `alpha=1e-3`)
with the loss named by the column; `ce` is plain training on the poisoned split, `unpoisoned`
the same model on the clean split. `CleanLearning`: cleanlab 2.9 (5-fold out-of-fold
probabilities, prune, refit) around `StandardScaler + LogisticRegression(C = 1 / (alpha n))`,
the same penalty. `scan→ce` / `scan→sce`: `poisonguard.scan` on the poisoned split, then
`RobustLinear` on `report.clean()`. *Best ours* is the best of the robust losses and the two
scan variants. Random flips move `rate` of all training rows to another class; class-pair flips
relabel `rate` of the last class (digit 9, Fashion class 9 "ankle boot", spam, Good credit,
spam) as the first (`rows flipped` gives the share of all rows). Features: TF-IDF of the
1,000 most frequent terms fitted on the training split (SMS), flattened pixels (images), the
numeric encoding (tables). Fashion-MNIST, cut for time: 6,000 training rows, one seed, and no
class-pair 10 % case (60 rows, 1 % of the split).
The 1-point target applies at 20 %; at 10 % and 40 % it is shown as yes / no.
"""
TIME_NOTE = """\
Wall time on a shared 2-CPU machine (other jobs were running: treat single numbers as rough).
scan→* includes the scan. Ratios are per run, then averaged.
"""
CERT_NOTE = """\
Base model `RobustLinear(loss="ce")` for every part. DPA: `k` parts; FA: `k d` buckets and
models, each model on `d` buckets (1 / `k` of the rows). `r=N`: share of the test set predicted
right and certified against N inserted or removed training rows; `—`: beyond the largest radius
`k` models can certify (floor(k / 2)). IBM ART's `DeepPartitionEnsemble` is not run: it only
takes neural-network classifiers (its `EnsembleClassifier` refuses anything without
`NeuralNetworkMixin`), so it cannot use the same base model, and it has no certificates.
"""
AUDIT_NOTE = """\
Base model 1-NN, so one copy of the test point (jittered by N(0, 1e-3) so that copies hash to
different buckets) labelled with the rival class makes every model its bucket feeds vote for
that rival: the strongest insertion there is. For each configuration, 20 test points with
radius >= 1, spread over the radii; the rival is the class that binds the certificate, the copies
go to the buckets worth the most votes against it. `radius` rows must never change a certified
prediction (target). `radius + 1` rows: DPA's certificate is exact, so all must change; FA's
bound counts shared models twice and need not be tight (shown for information).
"""


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
