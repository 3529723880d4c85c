"""The gate's quality: drift false alarms on clean batches, alarms on real shifts, and how much
of an injected poisoning ends in quarantine, per batch, side by side over seeds.

Run ``python benchmarks/gate.py`` (``--batches 20`` for a quick look). Data: digits, Fashion-
MNIST (6,000 rows, flattened pixels) and breast_cancer, each split once into a trusted
reference and a pool; every batch is drawn from the pool (seeded). Prints the tables and writes
them to ``benchmarks/results/gate.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.attacks import get_attack
from poisonguard.dataset import Dataset
from poisonguard.datasets import load_dataset
from poisonguard.evaluation import markdown_table, publish
from poisonguard.gate import gate
from poisonguard.monitor import DriftMonitor, Profile

RESULTS = Path(__file__).resolve().parent / "results" / "gate.md"


def split(name: str, reference_share: float = 0.6) -> tuple[Dataset, Dataset]:
    ds = load_dataset(name, n_rows=6000, random_state=0) if name == "fashion_mnist" \
        else load_dataset(name)
    if ds.modality == "image":
        ds = Dataset(np.asarray(ds.X, dtype=np.float64).reshape(ds.n_rows, -1), ds.y,
                     name=ds.name)
    order = np.random.default_rng(0).permutation(ds.n_rows)
    cut = int(reference_share * ds.n_rows)
    return ds.take(order[:cut]), ds.take(order[cut:])


def draw(pool: Dataset, size: int, seed: int) -> Dataset:
    idx = np.random.default_rng(seed).choice(pool.n_rows, size=min(size, pool.n_rows),
                                             replace=False)
    return pool.take(np.sort(idx))


def shifted(batch: Dataset, kind: str, rng: np.random.Generator) -> Dataset:
    X = np.asarray(batch.X, dtype=np.float64).copy()
    sd = X.std(axis=0) + 1e-9
    if kind == "mean +1 SD, 3 columns":
        cols = rng.choice(X.shape[1], 3, replace=False)
        X[:, cols] += sd[cols]
    elif kind == "scale x1.5, all columns":
        X = X.mean(axis=0) + 1.5 * (X - X.mean(axis=0))
    elif kind == "noise 0.5 SD":
        X = X + rng.normal(size=X.shape) * 0.5 * sd
    elif kind == "one class dropped":
        keep = batch.y != batch.classes[0]
        return batch.take(keep)
    return batch.replace(X=X)


def section_drift(names: list[str], batches: int, size: int) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        ref, pool = split(name)
        profile = Profile.fit(ref, random_state=0)
        monitor = DriftMonitor(random_state=0)
        t0 = time.perf_counter()
        clean = [monitor.check(profile, draw(pool, size, s)).drift for s in range(batches)]
        per = (time.perf_counter() - t0) / batches
        rows.append({"data": name, "batch": f"clean x{batches}", "rows": size,
                     "alarm rate": f"{np.mean(clean):.3f}", "s/check": f"{per:.2f}",
                     "target": "met" if np.mean(clean) <= 0.05 else "FAIL"})
        print(rows[-1], flush=True)
        for kind in ("mean +1 SD, 3 columns", "scale x1.5, all columns", "noise 0.5 SD",
                     "one class dropped"):
            hits = [monitor.check(profile, shifted(draw(pool, size, s), kind,
                                                   np.random.default_rng(s))).drift
                    for s in range(min(batches, 20))]
            rows.append({"data": name, "batch": kind, "rows": size,
                         "alarm rate": f"{np.mean(hits):.3f}", "s/check": "",
                         "target": "met" if np.mean(hits) >= 0.9 else "FAIL"})
            print(rows[-1], flush=True)
    return rows


POISONS = {
    "label flips 10 %": lambda: get_attack("label-flip")(strategy="random", rate=0.1),
    "class-pair flips 10 %": lambda: get_attack("label-flip")(strategy="class", rate=0.1),
    "backdoor 10 %": lambda: get_attack("backdoor")(rate=0.1),
    "subpopulation 10 %": lambda: get_attack("subpopulation")(rate=0.1),
}


def section_poison(names: list[str], seeds: int, size: int) -> list[dict[str, Any]]:
    rows = []
    for name in names:
        ref, pool = split(name)
        profile = Profile.fit(ref, random_state=0)
        for label, make in POISONS.items():
            got: dict[str, list[float]] = {}
            for seed in range(seeds):
                batch = draw(pool, size, 1000 + seed)
                try:
                    res = make().poison(batch, rng=np.random.default_rng(seed))
                except Exception as exc:  # an attack that does not apply to this data
                    print(f"{name}/{label}: {type(exc).__name__}: {exc}", flush=True)
                    break
                t0 = time.perf_counter()
                out = gate(res.dataset, ref, profile=profile, random_state=seed)
                got.setdefault("s/batch", []).append(time.perf_counter() - t0)
                q, m = out.quarantined, res.mask
                got.setdefault("poison quarantined", []).append(q[m].mean() if m.any() else np.nan)
                got.setdefault("clean quarantined", []).append(q[~m].mean())
                got.setdefault("rejected", []).append(float(out.status == "rejected"))
            if not got:
                continue
            mean = {k: float(np.nanmean(v)) for k, v in got.items()}
            ok = mean["poison quarantined"] >= 0.9 and mean["clean quarantined"] <= 0.05
            rows.append({"data": name, "poison": label, "batch rows": size,
                         **{k: f"{v:.3f}" if k != "s/batch" else f"{v:.1f}" for k, v in mean.items()},
                         "target": "met" if ok else "FAIL"})
            print(rows[-1], flush=True)
    return rows


def section_speed(rows: int) -> list[dict[str, Any]]:
    from sklearn.datasets import make_classification

    X, y = make_classification(2 * rows, n_features=30, n_informative=12, random_state=0)
    ref = Dataset(X[:rows], y[:rows], name="reference")
    batch = Dataset(X[rows:], y[rows:], name="batch")
    t0 = time.perf_counter()
    profile = Profile.fit(ref, random_state=0)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    DriftMonitor(random_state=0).check(profile, batch)
    check_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = gate(batch, ref, profile=profile, random_state=0)
    gate_s = time.perf_counter() - t0
    return [{"reference rows": rows, "batch rows": rows, "columns": 30,
             "profile s": f"{fit_s:.1f}", "drift check s": f"{check_s:.2f}",
             "gate s (drift + scan)": f"{gate_s:.1f}", "quarantined": int(out.quarantined.sum())}]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", nargs="+", default=["digits", "breast_cancer", "fashion_mnist"])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    parts = [f"# Gate benchmark\n\n`python benchmarks/gate.py {' '.join(argv or sys.argv[1:])}`"
             f" — Python {platform.python_version()}, {platform.machine()}.\n",
             "## Drift: clean batches (false alarms) and shifted batches (alarms)\n",
             markdown_table(pd.DataFrame(section_drift(args.data, args.batches, 200))),
             "## Poisoned batches through the gate (reference rows trusted)\n",
             markdown_table(pd.DataFrame(section_poison(args.data, args.seeds, 400))),
             "## Time per 10,000-row batch\n",
             markdown_table(pd.DataFrame(section_speed(10_000))),
             f"\nTotal wall time {(time.perf_counter() - start) / 60:.1f} min.\n"]
    text = "\n".join(parts)
    publish(text, args.out)


if __name__ == "__main__":
    main()
