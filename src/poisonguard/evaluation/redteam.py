"""Red-team a dataset: every applicable attack at a few budgets, clean vs poisoned model.

:func:`evaluate_attack` runs one attack on a training split and measures the retrained model
on a clean test split; :func:`run_redteam` does that for every registered attack and budget
and returns a :class:`RedteamReport` that writes a table (CSV, Markdown, JSON) and plots.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from poisonguard.attacks import (
    ATTACKS,
    Attack,
    Backdoor,
    CleanLabelBackdoor,
    FeatureCollision,
    GradientMatching,
    LabelFlip,
    Subpopulation,
    get_attack,
)
from poisonguard.attacks._base import PoisonResult, append_rows
from poisonguard.attacks.subpopulation import select_group
from poisonguard.dataset import Dataset
from poisonguard.errors import DependencyError, InputError
from poisonguard.evaluation.metrics import accuracy, attack_success_rate, group_accuracy, split
from poisonguard.io import write_text
from poisonguard.models import featurizer, fit_quiet, make_model

__all__ = ["AttackOutcome", "RedteamReport", "evaluate_attack", "markdown_table", "publish",
           "run_redteam"]

NAN = float("nan")
TRIGGERS_BY_MODALITY = {"image": ("patch", "blend"), "tabular": ("feature",), "text": ("token",)}


@dataclass(frozen=True)
class AttackOutcome:
    """One attack at one budget: clean vs poisoned model on a clean test split.

    ``attack_success`` is, by attack: backdoors, the share of triggered test rows predicted
    as the target class; targeted attacks, the share of targets given the attacker's label;
    subpopulation, 1 - accuracy on the attacked group; privacy attacks, the ROC AUC of
    membership inference on their targets (LiRA, 8 models on random halves of the training
    split, each with the poison; 0.5 is chance); others, the rise in test error. Group
    columns are filled for attacks that report a group (subpopulation; NaN otherwise);
    ``group_rows`` is the number of test rows in the attacked group. ``note`` says why a run was skipped (its
    metrics are then NaN).
    """

    attack: str
    variant: str
    budget: float
    n_poisoned: int
    clean_accuracy: float
    poisoned_accuracy: float
    attack_success: float
    clean_group_accuracy: float = NAN
    group_accuracy: float = NAN
    clean_rest_accuracy: float = NAN
    rest_accuracy: float = NAN
    group_rows: int = 0
    seconds: float = 0.0
    note: str = ""


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(AttackOutcome))


def _budget(attack: Attack, train: Dataset) -> float:
    if attack.rate is not None:
        return float(attack.rate)
    return float(attack.count or 0) / train.n_rows


def _test_group(attack: Attack, train: Dataset, test: Dataset, group: np.ndarray) -> np.ndarray:
    """The attacked group's rows in ``test``.

    Rows matching the attack's ``where`` filter when it has one, else the rows whose nearest
    training row (in the modality's features, fitted on ``train``) is in ``group``.
    """
    where = getattr(attack, "where", None)
    if isinstance(where, str):
        try:
            return select_group(test, where, 2, 1, np.random.default_rng(0))
        except InputError:  # no test row matches: the group is empty there
            return np.zeros(test.n_rows, dtype=bool)
    feats = featurizer(train).fit(train.X, train.y)
    nearest = NearestNeighbors(n_neighbors=1).fit(feats.transform(train.X))
    idx = nearest.kneighbors(feats.transform(test.X), return_distance=False)[:, 0]
    out: np.ndarray = np.asarray(group, dtype=bool)[idx]
    return out


def evaluate_attack(attack: Attack, train: Dataset, test: Dataset, *, model: Any = "logreg",
                    seed: int = 0, variant: str = "", clean_model: Any = None,
                    result: Any = None) -> AttackOutcome:
    """Poison ``train`` with ``attack`` (``np.random.default_rng(seed)``), retrain, measure.

    ``clean_model`` is a model already fitted on ``train`` (fitted here when omitted); the
    poisoned model is ``make_model(model, ...)`` fitted on the poisoned copy. ``result``: the
    attack's result when it was already run (another model measured on the same rows).
    """
    start = time.perf_counter()
    if clean_model is None:
        clean_model = fit_quiet(make_model(model, train, random_state=seed), train.X, train.y)
    if result is None:
        result = attack.poison(train, rng=np.random.default_rng(seed))
    poisoned = result.dataset
    victim = fit_quiet(make_model(model, poisoned, random_state=seed), poisoned.X, poisoned.y)
    clean_acc, poisoned_acc = accuracy(clean_model, test), accuracy(victim, test)
    groups: dict[str, Any] = {}
    if result.trigger is not None:
        success = attack_success_rate(victim, result.trigger, test)
    elif attack.family == "privacy" and result.target is not None:
        success = _membership_auc(model, train, result, seed)
    elif result.target is not None:
        success = float(np.mean(np.asarray(victim.predict(result.target.X)) == result.target.label))
    elif result.group is not None:
        in_group = _test_group(attack, train, test, result.group)
        groups = {"clean_group_accuracy": group_accuracy(clean_model, test, in_group),
                  "group_accuracy": group_accuracy(victim, test, in_group),
                  "clean_rest_accuracy": group_accuracy(clean_model, test, ~in_group),
                  "rest_accuracy": group_accuracy(victim, test, ~in_group),
                  "group_rows": int(in_group.sum())}
        success = 1.0 - groups["group_accuracy"]
    else:
        success = clean_acc - poisoned_acc
    return AttackOutcome(attack.name, variant, _budget(attack, train), result.n_poisoned, clean_acc,
                         poisoned_acc, success, seconds=time.perf_counter() - start, **groups)


def _membership_auc(model: Any, train: Dataset, result: PoisonResult, seed: int) -> float:
    """LiRA's ROC AUC on a privacy attack's targets: 8 models on random halves of the training
    split (targets in it), every one trained with the attack's injected rows too."""
    from poisonguard.evaluation.membership import lira, run_shadow_models

    assert result.target is not None
    target = result.target
    rest = train.take(~np.isin(train.ids, np.asarray(target.ids, dtype=str)))
    X = append_rows(rest.X, target.X)
    y = np.concatenate([rest.y, np.asarray(target.label, dtype=rest.y.dtype)])
    poison = result.dataset.take(result.mask)
    run = run_shadow_models(lambda s: make_model(model, train, random_state=s), X, y, n_models=8,
                            targets=list(range(rest.n_rows, len(y))), extra=(poison.X, poison.y),
                            rng=np.random.default_rng(seed))
    return lira(run).auc


# ----------------------------------------------------------------------------- the plan
_Factory = Callable[[float], list[Attack]]


def _majority(train: Dataset) -> Any:
    """The most common label (ties: the smallest): targeted budgets fit it most often."""
    labels, counts = np.unique(train.y, return_counts=True)
    return labels[int(np.argmax(counts))]


def _targets(train: Dataset, test: Dataset, clean_model: Any, base: Any, n: int,
             seed: int) -> list[Any]:
    """Up to ``n`` seeded test inputs of other classes than ``base`` the clean model gets right."""
    ok = (test.y != base) & (np.asarray(clean_model.predict(test.X)) == test.y)
    rows = np.random.default_rng(seed).permutation(np.flatnonzero(ok))[:n]
    return [test.take([int(r)]).X for r in rows]


def _plan(name: str, train: Dataset, test: Dataset, clean_model: Any, seed: int,
          n_targets: int) -> list[tuple[str, _Factory]]:
    """``(variant, budget -> attacks)`` for one registered attack; several attacks are averaged."""
    target = _majority(train)
    if name == LabelFlip.name:
        source = _majority(train.take(train.y != target))
        return [("random", lambda b: [LabelFlip(rate=b, strategy="random")]),
                ("class", lambda b: [LabelFlip(rate=b, strategy="class", source_class=source,
                                               target_class=target)]),
                ("greedy", lambda b: [LabelFlip(rate=b, strategy="greedy", random_state=seed)])]
    if name == Backdoor.name:
        def backdoor(kind: str) -> _Factory:
            return lambda b: [Backdoor(rate=b, trigger=kind, target_class=target)]

        return [(kind, backdoor(kind)) for kind in TRIGGERS_BY_MODALITY[train.modality]]
    if name == CleanLabelBackdoor.name:
        kind = TRIGGERS_BY_MODALITY[train.modality][0]
        return [(kind, lambda b: [CleanLabelBackdoor(rate=b, trigger=kind, target_class=target)])]
    if name in (FeatureCollision.name, GradientMatching.name):
        targets = _targets(train, test, clean_model, target, n_targets, seed)
        crafter = FeatureCollision if name == FeatureCollision.name else GradientMatching
        return [(f"{len(targets)} targets", lambda b: [crafter(
            rate=b, target=t, base_class=target, random_state=seed) for t in targets])]
    if name == Subpopulation.name:
        return [("cluster", lambda b: [Subpopulation(rate=b)])]
    cls = get_attack(name)
    if cls.family == "privacy":
        return [("membership AUC", lambda b: [cls(rate=b)])]  # type: ignore[call-arg]
    return [("default", lambda b: [cls(rate=b)])]  # type: ignore[call-arg]


def _mean(outcomes: Sequence[AttackOutcome]) -> AttackOutcome:
    """Outcomes of one setting over several targets: metrics averaged, seconds summed."""
    fixed = {"attack", "variant", "budget", "n_poisoned", "clean_accuracy", "group_rows", "note",
             "seconds"}
    numbers: dict[str, Any] = {f.name: float(np.mean([getattr(o, f.name) for o in outcomes]))
                               for f in fields(AttackOutcome) if f.name not in fixed}
    return replace(outcomes[0], seconds=sum(o.seconds for o in outcomes), **numbers)


def _skipped(name: str, variant: str, budget: float, clean_acc: float, why: str) -> AttackOutcome:
    return AttackOutcome(name, variant, budget, 0, clean_acc, NAN, NAN, note=why)


def _attack_names(dataset: Dataset, attacks: Iterable[str] | None) -> list[str]:
    if attacks is None:
        return sorted(n for n, cls in ATTACKS.items() if dataset.modality in cls.modalities
                      and not cls.adaptive and cls.family != "privacy")
    names = list(attacks)
    for name in names:
        cls = get_attack(name)
        if dataset.modality not in cls.modalities:
            raise InputError(f"attack {name!r} supports {', '.join(cls.modalities)} data "
                             f"(got {dataset.modality})")
    return names


def _check_budgets(budgets: Sequence[float]) -> tuple[float, ...]:
    out = tuple(budgets)
    if not out:
        raise InputError("'budgets' must hold at least one fraction")
    for b in out:
        if isinstance(b, bool) or not isinstance(b, int | float) or not 0.0 < float(b) <= 1.0:
            raise InputError(f"each budget must be a fraction in (0, 1] (got {b!r})")
    return tuple(float(b) for b in out)


def run_redteam(dataset: Dataset, *, model: Any = "logreg",
                budgets: Sequence[float] = (0.01, 0.05, 0.1), attacks: Iterable[str] | None = None,
                seed: int = 0, test_size: float = 0.3, n_targets: int = 3,
                defense: Any = None) -> RedteamReport:
    """Every applicable registered attack at each budget against a clean baseline (the
    adaptive variants, which run our scan in their loop, and privacy attacks, which train
    shadow models, only when named in ``attacks``).

    The data is split (stratified, ``seed``), the clean model is trained once, and each attack
    poisons the training split with ``np.random.default_rng(seed)`` before a model of the same
    kind is retrained. Label flips run as random, class-pair and greedy; backdoors with each
    trigger of the modality; feature collision and gradient matching are averaged over
    ``n_targets`` test targets. A budget an attack cannot meet, or an attack whose optional
    dependency is missing, gives a row with a ``note`` and NaN metrics. With a
    ``defense`` (a classifier from :mod:`poisonguard.defenses`, or any scikit-learn classifier),
    every attack also runs against it on the same poisoned rows: columns
    ``defended_clean_accuracy``, ``defended_poisoned_accuracy`` and ``defended_attack_success``.

    Examples
    --------
    >>> from poisonguard.datasets import load_dataset
    >>> report = run_redteam(load_dataset("digits", n_rows=400), attacks=["backdoor"],
    ...                      budgets=[0.1])
    >>> report.table[["variant", "budget", "n_poisoned"]].values.tolist()
    [['patch', 0.1, 28], ['blend', 0.1, 28]]
    """
    if not isinstance(dataset, Dataset):
        raise InputError(f"'dataset' must be a poisonguard Dataset (got {type(dataset).__name__})")
    if len(dataset.classes) < 2:
        raise InputError(f"{dataset.name}: one class in {dataset.n_rows} rows; a red team needs "
                         "at least 2")
    fractions = _check_budgets(budgets)
    names = _attack_names(dataset, attacks)
    if isinstance(n_targets, bool) or not isinstance(n_targets, int) or n_targets < 1:
        raise InputError(f"'n_targets' must be a positive integer (got {n_targets!r})")
    train, test = split(dataset, test_size=test_size, random_state=seed)
    clean = fit_quiet(make_model(model, train, random_state=seed), train.X, train.y)
    clean_acc = accuracy(clean, test)
    guarded = None if defense is None else fit_quiet(
        make_model(defense, train, random_state=seed), train.X, train.y)
    rows: list[AttackOutcome] = []
    defended: list[AttackOutcome | None] = []
    for name in names:
        for variant, factory in _plan(name, train, test, clean, seed, n_targets):
            for b in fractions:
                try:
                    planned = factory(b)
                    results = [a.poison(train, rng=np.random.default_rng(seed)) for a in planned]
                    runs = [evaluate_attack(a, train, test, model=model, seed=seed, variant=variant,
                                            clean_model=clean, result=r)
                            for a, r in zip(planned, results, strict=True)]
                    shielded = [] if defense is None else [  # the same poisoned rows
                        evaluate_attack(a, train, test, model=defense, seed=seed, variant=variant,
                                        clean_model=guarded, result=r)
                        for a, r in zip(planned, results, strict=True)]
                except (InputError, DependencyError) as exc:  # e.g. torch not installed
                    rows.append(_skipped(name, variant, b, clean_acc, str(exc)))
                    defended.append(None)
                    continue
                rows.append(_mean(runs) if runs else _skipped(
                    name, variant, b, clean_acc, "no test row can serve as a target"))
                defended.append(_mean(shielded) if shielded else None)
    table = pd.DataFrame([asdict(r) for r in rows], columns=list(COLUMNS))
    label = model if isinstance(model, str) else type(model).__name__
    if defense is not None:
        guarded_acc = accuracy(guarded, test)
        table["defended_clean_accuracy"] = guarded_acc
        table["defended_poisoned_accuracy"] = [NAN if d is None else d.poisoned_accuracy
                                               for d in defended]
        table["defended_attack_success"] = [NAN if d is None else d.attack_success
                                            for d in defended]
        label += f" vs {getattr(defense, 'name', type(defense).__name__)}"
    return RedteamReport(table, dataset.name, label, seed)


# ---------------------------------------------------------------------------- the report
def _cell(value: Any, digits: int) -> str:
    if isinstance(value, float | np.floating):
        return "-" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def publish(text: str, path: str | Path) -> Path:
    """Print a benchmark's Markdown on stdout and write it to ``path`` (atomically)."""
    from poisonguard.io import write_text

    print(text)
    return write_text(path, text)


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """``frame`` as a GitHub Markdown table, floats to ``digits`` decimals, NaN as ``-``."""
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_cell(v, digits) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def _json_value(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass(frozen=True, eq=False)
class RedteamReport:
    """The red-team table (one row per attack, variant and budget; columns :data:`COLUMNS`)."""

    table: pd.DataFrame
    dataset_name: str
    model: str
    seed: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: dataset, model, seed and the rows (NaN as None)."""
        records = [{k: _json_value(v) for k, v in row.items()}
                   for row in self.table.to_dict("records")]
        return {"dataset": self.dataset_name, "model": self.model, "seed": self.seed,
                "rows": records}

    def to_markdown(self) -> str:
        """A titled Markdown table."""
        title = f"# Red team: {self.dataset_name} ({self.model}, seed {self.seed})\n\n"
        return title + markdown_table(self.table.drop(columns=["note"]) if not self.table[
            "note"].astype(bool).any() else self.table)

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write ``redteam.csv``, ``.md``, ``.json`` and three PNG plots; return their paths."""
        from poisonguard.evaluation.plots import plot_accuracy, plot_subgroups, plot_success

        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: exists and is not a directory")
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / name for name in ("redteam.csv", "redteam.md", "redteam.json")]
        write_text(paths[0], self.table.to_csv(index=False, float_format="%.6g"))
        write_text(paths[1], self.to_markdown())
        write_text(paths[2], json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        title = f"{self.dataset_name} ({self.model})"
        for name, plot in (("accuracy.png", plot_accuracy), ("success.png", plot_success),
                           ("subgroups.png", plot_subgroups)):
            paths.append(plot(self.table, out / name, title=title))
        return paths
