"""Scan quality and speed, side by side with cleanlab and IBM ART on the same data and seeds.

Run ``python benchmarks/scan.py`` (``--quick`` for one seed and fewer cases; ``--only flips``
etc. for one section). Prints the tables and writes them to ``benchmarks/results/scan.md``.

Sections:

* ``flips``    random and class-pair label flips at 10 % and 20 %: our default scan and our
               ``label`` detector against cleanlab (``find_label_issues`` and label-quality
               scores on the same out-of-fold probabilities) and plain kNN label disagreement
               (k = 10, encoded features). Class-pair flips take ``rate * n`` rows of the last
               class, capped at half of that class (digits and wine have no class that big).
* ``backdoor`` patch and blend triggers on digits and Fashion-MNIST, token on SMS spam, a
               feature trigger on breast_cancer, at 1 %, 5 % and 10 %: recall at a 5 %
               false-positive rate and flagged-set F1 against ART's ``SpectralSignatureDefense``
               (told the true poison rate, its best case, and its default 0.33) and
               ``ActivationDefence``, both on a PyTorch model trained on the poisoned rows.
* ``other``    subpopulation, clean-label backdoor and feature collision: AUROC.
* ``retrain``  a logistic-regression victim trained on ``clean()`` vs on the unpoisoned rows.
* ``selftest`` ``scan --self-test`` on real data: the cost against the plain scan (target
               <= 2.5x) and, per planted family, the recall and AUROC it reports, next to the
               false-positive rate on the copy's untouched rows.
* ``speed``    default scan of ``make_classification`` 100k x 20 and 1M x 20 rows in a child
               process (wall time and peak RSS), and the ``label`` detector vs cleanlab time.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.datasets import make_classification
from sklearn.neighbors import NearestNeighbors

from poisonguard import Dataset
from poisonguard.attacks import get_attack
from poisonguard.datasets import load_dataset
from poisonguard.detectors import get_detector
from poisonguard.evaluation import accuracy, attack_success_rate, markdown_table, publish, split
from poisonguard.evaluation.metrics import detection_metrics
from poisonguard.evidence import Evidence
from poisonguard.models import fit_quiet, make_model
from poisonguard.scan import scan

RESULTS = Path(__file__).resolve().parent / "results" / "scan.md"
FLIP_DATA = ("breast_cancer", "digits", "wine", "credit", "sms_spam", "make_classification")
BACKDOORS = (("digits", "patch"), ("digits", "blend"), ("fashion_mnist", "patch"),
             ("fashion_mnist", "blend"), ("sms_spam", "token"), ("breast_cancer", "feature"))
FASHION_ROWS = 6000


def data(name: str, seed: int = 0) -> Dataset:
    """A benchmark data set by name (``make_classification`` is 20,000 rows x 20)."""
    if name == "make_classification":
        X, y = make_classification(20000, n_features=20, n_informative=10, random_state=0)
        return Dataset(X, y, name=name)
    if name == "fashion_mnist":
        return load_dataset(name, n_rows=FASHION_ROWS, random_state=seed)
    return load_dataset(name)


def fmt(x: float) -> str:
    return "—" if x != x else f"{x:.3f}"


def knn_disagreement(ev: Evidence, k: int = 10) -> np.ndarray:
    """Plain kNN label disagreement on the encoded features (the simple peer)."""
    F = ev.features
    nn = NearestNeighbors(n_neighbors=k + 1).fit(F)
    idx = nn.kneighbors(F, return_distance=False)[:, 1:]
    out: np.ndarray = (ev.labels[idx] != ev.labels[:, None]).mean(axis=1)
    return out


def cleanlab_scores(ev: Evidence) -> tuple[np.ndarray, np.ndarray, float]:
    """cleanlab's issue mask and 1 - label quality on our out-of-fold probabilities, and time."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    t0 = time.perf_counter()
    flagged = find_label_issues(ev.labels, ev.proba)
    scores = 1.0 - get_label_quality_scores(ev.labels, ev.proba)
    return np.asarray(flagged, dtype=bool), scores, time.perf_counter() - t0


def flip_attack(ds: Dataset, strategy: str, rate: float) -> Any:
    if strategy == "random":
        return get_attack("label-flip")(strategy="random", rate=rate)
    source = ds.classes[-1]
    pool = int((np.asarray(ds.y) == source).sum())
    return get_attack("label-flip")(strategy="class", count=min(round(rate * ds.n_rows), pool // 2))


def section_flips(seeds: list[int], names: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        for strategy in ("random", "class"):
            for rate in (0.1, 0.2):
                acc: dict[str, list[float]] = {}
                for seed in seeds:
                    ds = data(name, seed)
                    res = flip_attack(ds, strategy, rate).poison(ds, rng=np.random.default_rng(seed))
                    rep = scan(res.dataset, random_state=seed)
                    ev = Evidence(res.dataset, random_state=seed)
                    label = get_detector("label")
                    _ = ev.proba, ev.feature_neighbors  # both sides get the evidence precomputed
                    t0 = time.perf_counter()
                    ours_label = label.suspicion(ev)
                    label_s = time.perf_counter() - t0
                    cl_flag, cl_score, cl_s = cleanlab_scores(ev)
                    knn = knn_disagreement(ev)
                    m = res.mask
                    scan_m = rep.evaluate(m)
                    lab_m = detection_metrics(m, ours_label, ours_label >= 0.5)
                    cl_m = detection_metrics(m, cl_score, cl_flag)
                    knn_m = detection_metrics(m, knn, knn > 0.5)
                    for key, val in {
                        "scan AUROC": scan_m["auroc"], "scan F1": scan_m["f1"],
                        "label AUROC": lab_m["auroc"], "label F1": lab_m["f1"],
                        "cleanlab AUROC": cl_m["auroc"], "cleanlab F1": cl_m["f1"],
                        "kNN AUROC": knn_m["auroc"], "kNN F1": knn_m["f1"],
                        "label s": label_s, "cleanlab s": cl_s, "scan s": rep.timings["total"],
                    }.items():
                        acc.setdefault(key, []).append(val)
                mean = {k: float(np.mean(v)) for k, v in acc.items()}
                peer_auroc = max(mean["cleanlab AUROC"], mean["kNN AUROC"])
                ok_auroc = mean["scan AUROC"] >= peer_auroc - 1e-9
                ok_f1 = mean["scan F1"] >= mean["cleanlab F1"] - 1e-9
                if peer_auroc >= 0.98:
                    ok_f1 = ok_f1 and mean["scan F1"] >= 0.9
                rows.append({"data": name, "flips": strategy, "rate": rate,
                             **{k: fmt(v) for k, v in mean.items() if not k.endswith(" s")},
                             "scan s": f"{mean['scan s']:.1f}",
                             "label/cleanlab time": f"{mean['label s'] / max(mean['cleanlab s'], 1e-9):.2f}",
                             "target": "met" if ok_auroc and ok_f1 else
                             f"FAIL ({'AUROC' if not ok_auroc else ''}{' F1' if not ok_f1 else ''})"})
                print(rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------------- ART peers
def _art_inputs(ds: Dataset, seed: int) -> tuple[np.ndarray, Any, tuple[int, ...]]:
    """Inputs and an untrained torch network for ART: the CNN for images, an MLP otherwise."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    n_classes = len(ds.classes)
    if ds.modality == "image":
        X = np.asarray(ds.X, dtype=np.float32)
        X = X / max(float(X.max()), 1e-12)
        X = X[:, None] if X.ndim == 3 else np.moveaxis(X, -1, 1)
        c, h, w = X.shape[1:]
        net = nn.Sequential(nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                            nn.Flatten(), nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, n_classes))
        return np.ascontiguousarray(X), net, (c, h, w)
    ev = Evidence(ds, random_state=seed)
    F = ev.features
    if hasattr(F, "toarray"):
        from sklearn.decomposition import TruncatedSVD

        F = TruncatedSVD(128, random_state=seed).fit_transform(F)
    X = np.asarray(F, dtype=np.float32)
    net = nn.Sequential(nn.Linear(X.shape[1], 64), nn.ReLU(), nn.Linear(64, n_classes))
    return X, net, (X.shape[1],)


def art_defences(ds: Dataset, rate: float, seed: int) -> dict[str, np.ndarray]:
    """Flag masks of ART's spectral signatures (true rate, default rate) and activation
    clustering, on a PyTorch model trained on the (poisoned) rows."""
    import torch
    from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
    from art.estimators.classification import PyTorchClassifier

    X, net, shape = _art_inputs(ds, seed)
    codes = np.searchsorted(ds.classes, np.asarray(ds.y))
    onehot = np.eye(len(ds.classes), dtype=np.float32)[codes]
    clf = PyTorchClassifier(model=net, loss=torch.nn.CrossEntropyLoss(),
                            optimizer=torch.optim.Adam(net.parameters(), lr=2e-3),
                            input_shape=shape, nb_classes=len(ds.classes))
    clf.fit(X, onehot, batch_size=128, nb_epochs=10, verbose=False)
    out = {}
    for label, pp in (("ART spectral (true rate)", rate), ("ART spectral (0.33)", 0.33)):
        _, clean = SpectralSignatureDefense(clf, X, onehot, expected_pp_poison=pp).detect_poison()
        out[label] = np.asarray(clean) == 0
    _, clean = ActivationDefence(clf, X, onehot).detect_poison(nb_clusters=2, nb_dims=10,
                                                                reduce="PCA")
    out["ART activation"] = np.asarray(clean) == 0
    return out


def section_backdoor(seeds: list[int], cases: tuple[tuple[str, str], ...],
                     rates: tuple[float, ...]) -> list[dict[str, Any]]:
    rows = []
    for name, trigger in cases:
        for rate in rates:
            acc: dict[str, list[float]] = {}
            for seed in seeds:
                ds = data(name, seed)
                res = get_attack("backdoor")(trigger=trigger, rate=rate).poison(
                    ds, rng=np.random.default_rng(seed))
                m = res.mask
                rep = scan(res.dataset, random_state=seed)
                ours = rep.evaluate(m)
                for key, val in (("scan AUROC", ours["auroc"]),
                                 ("scan recall@FPR5%", ours["recall_at_fpr05"]),
                                 ("scan F1", ours["f1"]), ("scan FPR", ours["fpr"]),
                                 ("scan s", rep.timings["total"])):
                    acc.setdefault(key, []).append(val)
                try:
                    t0 = time.perf_counter()
                    peers = art_defences(res.dataset, rate, seed)
                    acc.setdefault("ART s", []).append(time.perf_counter() - t0)
                    for label, flags in peers.items():
                        acc.setdefault(f"{label} F1", []).append(
                            detection_metrics(m, flags.astype(float), flags)["f1"])
                except Exception as exc:  # the comparison must not sink our own numbers
                    print(f"ART failed on {name}/{trigger}: {type(exc).__name__}: {exc}", flush=True)
            mean = {k: float(np.mean(v)) for k, v in acc.items()}
            art_best = max((v for k, v in mean.items() if k.startswith("ART") and k.endswith("F1")),
                           default=float("nan"))
            ok = mean["scan recall@FPR5%"] >= 0.95 and mean["scan FPR"] <= 0.05 and \
                (art_best != art_best or mean["scan F1"] >= art_best - 1e-9)
            rows.append({"data": name, "trigger": trigger, "rate": rate,
                         **{k: (f"{v:.1f}" if k.endswith(" s") else fmt(v)) for k, v in mean.items()},
                         "target": "met" if ok else "FAIL"})
            print(rows[-1], flush=True)
    return rows


def section_other(seeds: list[int]) -> list[dict[str, Any]]:
    cases: list[tuple[str, str, Callable[[], Any]]] = [
        ("digits", "subpopulation", lambda: get_attack("subpopulation")(rate=0.05)),
        ("breast_cancer", "subpopulation", lambda: get_attack("subpopulation")(rate=0.05)),
        ("digits", "clean-label-backdoor", lambda: get_attack("clean-label-backdoor")(rate=0.05)),
        ("breast_cancer", "clean-label-backdoor",
         lambda: get_attack("clean-label-backdoor")(rate=0.05)),
        ("digits", "feature-collision", lambda: get_attack("feature-collision")(count=30)),
        ("breast_cancer", "feature-collision", lambda: get_attack("feature-collision")(count=30)),
        ("digits", "availability", lambda: get_attack("availability")(rate=0.05)),
    ]
    rows = []
    for name, attack, make in cases:
        acc: dict[str, list[float]] = {}
        for seed in seeds:
            ds = data(name, seed)
            res = make().poison(ds, rng=np.random.default_rng(seed))
            rep = scan(res.dataset, random_state=seed)
            ev = rep.evaluate(res.mask)
            for key in ("auroc", "average_precision", "f1", "fpr"):
                acc.setdefault(key, []).append(ev[key])
            best = max((k for k in ev if k.startswith("auroc_")), key=lambda k: ev[k])
            acc.setdefault(f"best: {best[6:]}", []).append(ev[best])
        mean = {k: float(np.mean(v)) for k, v in acc.items()}
        rows.append({"data": name, "attack": attack, **{k: fmt(v) for k, v in mean.items()},
                     "target": "met" if mean["auroc"] >= 0.8 else "below 0.8"})
        print(rows[-1], flush=True)
    return rows


def section_retrain(seeds: list[int]) -> list[dict[str, Any]]:
    cases = [("digits", "patch"), ("digits", "blend"), ("breast_cancer", "feature"),
             ("sms_spam", "token")]
    rows = []
    for name, trigger in cases:
        acc: dict[str, list[float]] = {}
        for seed in seeds:
            train, test = split(data(name, seed), random_state=seed)
            res = get_attack("backdoor")(trigger=trigger, rate=0.05).poison(
                train, rng=np.random.default_rng(seed))
            rep = scan(res.dataset, random_state=seed)
            for label, ds in (("unpoisoned", train), ("poisoned", res.dataset),
                              ("cleaned", rep.clean())):
                model = fit_quiet(make_model("logreg", ds), ds.X, ds.y)
                acc.setdefault(f"{label} acc", []).append(accuracy(model, test))
                assert res.trigger is not None
                acc.setdefault(f"{label} ASR", []).append(
                    attack_success_rate(model, res.trigger, test))
        mean = {k: float(np.mean(v)) for k, v in acc.items()}
        ok = mean["cleaned acc"] >= mean["unpoisoned acc"] - 0.01 and mean["cleaned ASR"] <= 0.05
        rows.append({"data": name, "backdoor 5 %": trigger, **{k: fmt(v) for k, v in mean.items()},
                     "target": "met" if ok else "FAIL"})
        print(rows[-1], flush=True)
    return rows


def speed_child(n: int) -> None:
    """Run in a child process: one default scan of n x 20 rows; print JSON timings."""
    X, y = make_classification(n, n_features=20, n_informative=10, random_state=0)
    ds = Dataset(X, y, name=f"make_classification {n}")
    t0 = time.perf_counter()
    rep = scan(ds, random_state=0)
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "seconds": total, "peak_mib": peak, "flagged": rep.n_flagged,
                      "timings": {k: round(v, 2) for k, v in rep.timings.items()}}))


def label_vs_cleanlab_time(n: int) -> dict[str, Any]:
    X, y = make_classification(n, n_features=20, n_informative=10, random_state=0, flip_y=0.05)
    ev = Evidence(Dataset(X, y), random_state=0)
    _ = ev.proba, ev.feature_neighbors
    t0 = time.perf_counter()
    get_detector("label").suspicion(ev)
    ours = time.perf_counter() - t0
    _, _, theirs = cleanlab_scores(ev)
    return {"rows": n, "label s": f"{ours:.2f}", "cleanlab s": f"{theirs:.2f}",
            "ratio": f"{ours / theirs:.2f}"}


SELFTEST_DATA = ("digits", "breast_cancer", "spambase", "pima", "sms_spam", "penguins")


def section_selftest(seeds: list[int]) -> list[dict[str, Any]]:
    from poisonguard.selftest import self_test

    rows = []
    for name in SELFTEST_DATA:
        for seed in seeds:
            ds = data(name, seed)
            t0 = time.perf_counter()
            scan(ds, random_state=seed)
            plain = time.perf_counter() - t0
            t0 = time.perf_counter()
            res = self_test(ds, rate=0.02, random_state=seed)
            extra = time.perf_counter() - t0
            ratio = (plain + extra) / plain
            families = {r.family: (f"{r.recall:.2f} / {r.auroc:.3f}" if not r.skipped
                                   else "skipped") for r in res.rows}
            rows.append({"data": name, "seed": seed, "rows": ds.n_rows,
                         "scan s": f"{plain:.1f}", "with self-test s": f"{plain + extra:.1f}",
                         "ratio": f"{ratio:.2f}", **families,
                         "FPR": f"{res.false_positive_rate:.3f}",
                         "target": "met" if ratio <= 2.5 else "FAIL"})
            print(rows[-1], flush=True)
    return rows


def section_speed(sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--speed-child", str(n)], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        got = json.loads(out)
        target_s, target_mib = (30, None) if n <= 100_000 else (300, 4096)
        ok = got["seconds"] <= target_s and (target_mib is None or got["peak_mib"] <= target_mib)
        steps = ", ".join(f"{k} {v:.1f}" for k, v in got["timings"].items() if v >= 0.5)
        rows.append({"rows": n, "seconds": f"{got['seconds']:.1f}",
                     "peak MiB": f"{got['peak_mib']:.0f}", "flagged": got["flagged"],
                     "steps (s)": steps, "target": "met" if ok else "FAIL"})
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--only", nargs="+", default=["flips", "backdoor", "other", "retrain",
                                                       "selftest", "speed"])
    parser.add_argument("--quick", action="store_true", help="one seed, fewer cases")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--speed-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    if args.speed_child is not None:
        speed_child(args.speed_child)
        return
    seeds = args.seeds[:1] if args.quick else args.seeds
    start = time.perf_counter()
    parts = [f"# Scan benchmark\n\n`python benchmarks/scan.py {' '.join(argv or sys.argv[1:])}`"
             f" — seeds {seeds}; Python {platform.python_version()}, scikit-learn "
             f"{sklearn.__version__}, {platform.machine()}.\n"]
    if "flips" in args.only:
        names = ("breast_cancer", "digits", "wine") if args.quick else FLIP_DATA
        parts += ["## Label flips\n", markdown_table(pd.DataFrame(section_flips(seeds, names)))]
    if "backdoor" in args.only:
        cases = BACKDOORS[:2] + BACKDOORS[4:] if args.quick else BACKDOORS
        rates = (0.05,) if args.quick else (0.01, 0.05, 0.1)
        parts += ["## Backdoors\n", markdown_table(pd.DataFrame(section_backdoor(seeds, cases, rates)))]
    if "other" in args.only:
        parts += ["## Other attacks\n", markdown_table(pd.DataFrame(section_other(seeds)))]
    if "retrain" in args.only:
        parts += ["## Retraining on clean()\n", markdown_table(pd.DataFrame(section_retrain(seeds)))]
    if "selftest" in args.only:
        parts += ["## scan --self-test: cost and what it reports (recall / AUROC per family, 2 %"
                  " each)\n", markdown_table(pd.DataFrame(section_selftest(seeds)))]
    if "speed" in args.only:
        parts += ["## Speed (default scan, make_classification x 20, child process)\n",
                  markdown_table(pd.DataFrame(section_speed(args.sizes))),
                  "## label detector vs cleanlab (same out-of-fold probabilities)\n",
                  markdown_table(pd.DataFrame([label_vs_cleanlab_time(n) for n in (20_000, 100_000)]))]
    parts.append(f"\nTotal wall time {(time.perf_counter() - start) / 60:.1f} min.\n")
    text = "\n".join(parts)
    publish(text, args.out)


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
