"""Witches' Brew (gradient matching) beside IBM ART's GradientMatchingAttack, feature collision
and no poison, against small CNNs retrained from scratch.

Run ``python benchmarks/witches_brew.py`` (``--quick``: 2 digits targets and 1 Fashion-MNIST
target, one victim seed). The full run takes 10 digits targets (2 victim seeds) and 6
Fashion-MNIST targets (1 victim seed, a width-16 CNN, 10 epochs, 1 restart), less than planned
(8 targets, several seeds) to fit ~25 minutes on 2 shared CPUs: ART's attack costs ~15 s per 100
optimisation steps here, and each Fashion-MNIST victim ~40 s. Prints the table and writes it to
``benchmarks/results/witches-brew.md``.

The method (Geiping et al., "Witches' Brew: Industrial Scale Data Poisoning via Gradient
Matching", ICLR 2021): on a surrogate trained on clean data, take the gradient (with respect to
the weights) of the loss of the target input with the attacker's label; perturb correctly
labelled rows of the attacker's class, within an L-inf ball, so that the gradient of their
ordinary training loss points the same way (cosine similarity, signed Adam, restarts). A victim
trained on them is pushed to give the target the attacker's label, though every label is right.

Setup. Each data set is split 70 / 30 (stratified, seed 0); Fashion-MNIST is a stratified subset
of 6,000 training rows. One surrogate, a ``TorchCNNClassifier`` (the victim's architecture, seed
100), is trained on the clean training split; both gradient-matching implementations craft on
it. Targets: test rows the surrogate gets right, each with an attacker's label drawn from the
other classes (seeded); the same targets, labels, budget (1 % of the training rows, poisons from
the attacker's class) and eps (16/255 of the pixel range) for every attack. Ours:
``GradientMatching(steps, restarts)``; ART: ``max_epochs`` = steps, ``max_trials`` = restarts,
its learning-rate schedule's milestones scaled to the steps, the poisons in one batch (as ours),
images scaled to [0, 1] and its output scaled back (rounded to whole grey levels on Fashion-
MNIST, whose pixels are bytes). Feature collision: the registered attack with its defaults.
Victims: the same CNN retrained from scratch on the poisoned split, one per victim seed.
*success*: share of (target, victim seed) pairs where the victim gives the target the attacker's
label; *max change*: the largest change of a pixel, as a share of the pixel range (16/255 =
0.063; feature collision is not bounded); *p(label)*: the victim's mean probability of the
attacker's label on the target; *clean acc*: the victims' mean accuracy on the clean test split;
*s / target*: crafting time (surrogate excluded for both gradient-matching rows, feature
collision trains its own MLP); *peak MiB*: the process's peak RSS while crafting (``VmHWM``,
reset before each run).
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import re
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poisonguard import Dataset
from poisonguard.attacks import FeatureCollision, GradientMatching
from poisonguard.datasets import load_dataset
from poisonguard.evaluation import markdown_table, publish, split
from poisonguard.models.cnn import TorchCNNClassifier

RESULTS = Path(__file__).resolve().parent / "results" / "witches-brew.md"
RATE = 0.01
EPS = 16 / 255
SURROGATE_SEED = 100


@dataclass(frozen=True)
class Setup:
    data: str
    n_rows: int | None  # rows loaded before the 70 / 30 split
    targets: int
    seeds: tuple[int, ...]  # victim seeds
    epochs: int  # surrogate and victims
    width: int
    steps: int
    restarts: int


def setups(quick: bool) -> list[Setup]:
    if quick:
        return [Setup("digits", None, 2, (1,), 40, 32, 120, 2),
                Setup("fashion_mnist", 8572, 1, (1,), 10, 16, 120, 1)]
    return [Setup("digits", None, 10, (1, 2), 40, 32, 120, 2),
            Setup("fashion_mnist", 8572, 6, (1,), 10, 16, 120, 1)]


def peak_mib() -> float:
    """The process's peak RSS since the last :func:`reset_peak` (NaN where Linux's is absent)."""
    try:
        with open("/proc/self/status") as fh:
            found = re.search(r"VmHWM:\s+(\d+)", fh.read())
    except OSError:
        return float("nan")
    return int(found.group(1)) / 1024 if found else float("nan")


def reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def victim(ds: Dataset, setup: Setup, seed: int) -> TorchCNNClassifier:
    return TorchCNNClassifier(epochs=setup.epochs, width=setup.width, random_state=seed).fit(ds.X, ds.y)


def pick_targets(test: Dataset, surrogate: TorchCNNClassifier, n: int) -> list[tuple[int, int]]:
    """``n`` (test row, attacker's label) pairs: rows the surrogate gets right, labels of other
    classes, both seeded."""
    rng = np.random.default_rng(0)
    ok = np.flatnonzero(surrogate.predict(test.X) == test.y)
    rows = rng.permutation(ok)[:n]
    classes = test.classes.tolist()
    return [(int(r), int(rng.choice([c for c in classes if c != test.y[r]]))) for r in rows]


def art_gradient_matching(train: Dataset, surrogate: TorchCNNClassifier, x: np.ndarray, label: int,
                          count: int, setup: Setup) -> Dataset:
    """ART's Witches' Brew on the same surrogate, target, label, budget and eps."""
    import torch
    from art.attacks.poisoning import GradientMatchingAttack
    from art.estimators.classification import PyTorchClassifier

    X = np.asarray(train.X, dtype=np.float64)
    scale = surrogate.scale_
    lo, hi = float(X.min()) / scale, float(X.max()) / scale
    shape = (1, *X.shape[1:])
    clf = PyTorchClassifier(copy.deepcopy(surrogate.net_), loss=torch.nn.CrossEntropyLoss(),
                            input_shape=shape, nb_classes=len(train.classes), clip_values=(lo, hi))
    milestones = [max(1, round(setup.steps * m / 250)) for m in (100, 150, 200, 220)]
    attack = GradientMatchingAttack(
        clf, percent_poison=(count + 0.5) / train.n_rows, epsilon=EPS * (hi - lo),
        max_trials=setup.restarts, max_epochs=setup.steps,
        learning_rate_schedule=([1e-1, 1e-2, 1e-3, 1e-4], milestones), batch_size=max(128, count),
        clip_values=(lo, hi), verbose=0)
    np.random.seed(0)  # noqa: NPY002 -- ART draws its poison rows from the global RNG
    codes = np.searchsorted(train.classes, train.y)
    x_in = (X / scale)[:, None].astype(np.float32)
    t_in = (np.asarray(x, dtype=np.float64) / scale)[None, None].astype(np.float32)
    poisoned, _ = attack.poison(t_in, np.array([label]), x_in, codes)
    out = train.features_like(np.asarray(poisoned, dtype=np.float64)[:, 0] * scale)
    return train.replace(X=out)


def crafters(train: Dataset, surrogate: TorchCNNClassifier, x: np.ndarray, label: int, count: int,
             setup: Setup, art: bool) -> list[tuple[str, Callable[[], Dataset]]]:
    """The attacks of one target, each as ``() -> poisoned training split``."""
    def ours() -> Dataset:
        return GradientMatching(count=count, target=x, base_class=label, eps=EPS, steps=setup.steps,
                                restarts=setup.restarts, surrogate=surrogate).poison(
            train, rng=np.random.default_rng(0)).dataset

    def collision() -> Dataset:
        return FeatureCollision(count=count, target=x, base_class=label).poison(
            train, rng=np.random.default_rng(0)).dataset

    def peer() -> Dataset:
        return art_gradient_matching(train, surrogate, x, label, count, setup)

    return [("gradient-matching (ours)", ours), *([("ART GradientMatchingAttack", peer)] if art else []),
            ("feature-collision", collision)]


def run_target(name: str, craft: Callable[[], Dataset], train: Dataset, test: Dataset,
               x: np.ndarray, label: int, setup: Setup) -> dict[str, Any]:
    reset_peak()
    start = time.perf_counter()
    try:
        poisoned = craft()
    except Exception as exc:  # a peer that fails is a row, not a crash
        traceback.print_exc()
        return {"attack": name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}"}
    seconds, peak = time.perf_counter() - start, peak_mib()
    change = np.abs(np.asarray(poisoned.X, dtype=np.float64) - np.asarray(train.X, dtype=np.float64))
    linf = float(change.max() / np.ptp(np.asarray(train.X, dtype=np.float64)))
    wins, probs, accs = [], [], []
    for seed in setup.seeds:
        model = victim(poisoned, setup, seed)
        wins.append(int(model.predict(x[None])[0]) == label)
        probs.append(float(model.predict_proba(x[None])[0][label]))
        accs.append(float((model.predict(test.X) == test.y).mean()))
    return {"attack": name, "wins": wins, "p": probs, "acc": accs, "s": seconds, "peak": peak,
            "linf": linf}


def run_setup(setup: Setup, art: bool) -> list[dict[str, Any]]:
    ds = load_dataset(setup.data, n_rows=setup.n_rows, random_state=0) if setup.n_rows \
        else load_dataset(setup.data)
    train, test = split(ds, random_state=0)
    count = round(RATE * train.n_rows)
    surrogate = TorchCNNClassifier(epochs=setup.epochs, width=setup.width,
                                   random_state=SURROGATE_SEED).fit(train.X, train.y)
    clean = [victim(train, setup, s) for s in setup.seeds]
    runs: list[dict[str, Any]] = []
    for k, (row, label) in enumerate(pick_targets(test, surrogate, setup.targets)):
        x = np.asarray(test.X[row])
        runs.append({"attack": "no poison", "s": 0.0, "peak": float("nan"), "linf": 0.0,
                     "wins": [int(m.predict(x[None])[0]) == label for m in clean],
                     "p": [float(m.predict_proba(x[None])[0][label]) for m in clean],
                     "acc": [float((m.predict(test.X) == test.y).mean()) for m in clean]})
        crafts = crafters(train, surrogate, x, label, count, setup, art)
        for name, craft in crafts:
            runs.append(run_target(name, craft, train, test, x, label, setup))
        for r in runs[-len(crafts) - 1:]:
            r.update(data=setup.data, target=row)
        print(f"{setup.data} target {k + 1}/{setup.targets} (row {row}, label {label}): " + ", ".join(
            f"{r['attack']} {r.get('wins', r.get('error'))}" for r in runs[-len(crafts) - 1:]),
            file=sys.stderr, flush=True)
    for r in runs:
        r.update(train_rows=train.n_rows, count=count)
    return runs


def table(runs: list[dict[str, Any]], setups_: list[Setup]) -> pd.DataFrame:
    rows = []
    frame = pd.DataFrame(runs)
    for setup in setups_:
        part = frame[frame.data == setup.data]
        for attack, group in part.groupby("attack", sort=False):
            errors = group["error"].dropna() if "error" in group else pd.Series(dtype=object)
            ok = group[group["error"].isna()] if "error" in group else group
            wins = [w for ws in ok["wins"] for w in ws]
            rows.append({
                "attack": attack, "data": setup.data,
                "train rows / poisons": f"{int(group.train_rows.iloc[0])} / {int(group['count'].iloc[0])}",
                "targets": f"{len(ok)} x {len(setup.seeds)} victims",
                "success": f"{sum(wins)}/{len(wins)} = {np.mean(wins):.2f}" if wins else "-",
                "max change": float(ok["linf"].max()) if wins else np.nan,
                "p(label)": float(np.mean([p for ps in ok["p"] for p in ps])) if wins else np.nan,
                "clean acc": float(np.mean([a for acs in ok["acc"] for a in acs])) if wins else np.nan,
                "s / target": float(ok["s"].mean()) if wins and attack != "no poison" else np.nan,
                "peak MiB": float(ok["peak"].max()) if wins and attack != "no poison" else np.nan,
                "error": errors.iloc[0] if len(errors) else ""})
    out = pd.DataFrame(rows)
    return out if out["error"].astype(bool).any() else out.drop(columns="error")


def versions() -> str:
    import sklearn
    import torch

    out = [f"Python {platform.python_version()}", f"numpy {np.__version__}",
           f"scikit-learn {sklearn.__version__}", f"torch {torch.__version__}"]
    try:
        out.append(f"art {__import__('art').__version__}")
    except ImportError:
        out.append("art not installed")
    return ", ".join(out) + f", {platform.machine()}, {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 + 2 targets, one victim seed")
    parser.add_argument("--no-art", action="store_true", help="skip IBM ART")
    parser.add_argument("--data", nargs="*", default=None, help="digits and/or fashion_mnist")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import logging

    import torch

    logging.getLogger("art").setLevel(logging.ERROR)
    torch.set_num_threads(1)  # small models on shared cores: threads contend
    start = time.perf_counter()
    chosen = [s for s in setups(args.quick) if args.data is None or s.data in args.data]
    runs = [r for s in chosen for r in run_setup(s, not args.no_art)]
    wall = time.perf_counter() - start
    plan = "; ".join(f"{s.data}: {s.targets} targets, victim seeds {list(s.seeds)}, CNN width "
                     f"{s.width}, {s.epochs} epochs, {s.steps} steps x {s.restarts} restarts"
                     for s in chosen)
    text = "\n".join([
        "# Witches' Brew (gradient matching) against CNNs retrained from scratch", "",
        f"`{' '.join(['python benchmarks/witches_brew.py', *(argv if argv is not None else sys.argv[1:])])}`"
        f" — budget {RATE:.0%} of the training rows, eps 16/255 of the pixel range; {plan}; "
        f"{versions()}; wall {wall / 60:.1f} min.", "",
        __doc__.split("\n\n", 2)[2].strip(), "",
        markdown_table(table(runs, chosen))])
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
