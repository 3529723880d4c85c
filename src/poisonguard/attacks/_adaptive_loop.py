"""The adaptive loop that iterates a backdoor against our own scan, and the base class of the
attacks that run it (:mod:`poisonguard.attacks.adaptive` describes both)."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from poisonguard._validation import check_in, check_rng, check_whole
from poisonguard.attacks._base import Attack, PoisonResult, check_class, modify
from poisonguard.attacks.triggers import Trigger
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["MAX_ROUNDS", "Adaptation", "AdaptiveRound", "Evasive", "Plan", "adapt"]

MAX_ROUNDS = 20


@dataclass(frozen=True)
class AdaptiveRound:
    """One round of the adaptive loop, as the attacker measured it on its own poison.

    ``swapped``: poison rows replaced before this round's scan; ``scan_auroc``: AUROC of the
    scan's combined score on the poison rows (0.5 = hidden among clean rows); ``flagged``:
    poison rows the scan flagged; ``proxy_success``: attack success of the proxy model on the
    attacker's held-out rows.
    """

    round: int
    swapped: int
    scan_auroc: float
    flagged: int
    proxy_success: float


@dataclass(frozen=True)
class Adaptation:
    """The poison an adaptive attack keeps (``result``), every round it ran, and which it kept."""

    result: PoisonResult
    rounds: tuple[AdaptiveRound, ...]
    kept: int


@dataclass(frozen=True)
class Plan:
    """What the loop needs of an attack: its test-time trigger and target, the rows that may
    carry the backdoor (relabelled) or cover it (label kept), how many of each, and ``craft``:
    rows -> their poisoned features (the same rows always give the same features)."""

    trigger: Trigger
    target: Any
    payload_pool: np.ndarray
    n_payload: int
    n_cover: int
    craft: Callable[[np.ndarray], Any]


class Evasive(Attack):
    """An attack that plans its poison (:class:`Plan`) and can run the adaptive loop."""

    family = "backdoor"
    adaptive = True
    target_class: Any
    cover: float = 0.0  # share of the budget that keeps its label (Qi et al.'s cover rows)
    rounds: int
    floor: float
    holdout: float
    swap: float
    scan_seed: int

    @abstractmethod
    def _plan(self, dataset: Dataset, target: Any, rng: np.random.Generator) -> Plan:
        """The attack's trigger, pools and crafting for ``dataset``."""

    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        return self._adapt(dataset, rng).result

    def _adapt(self, dataset: Dataset, rng: np.random.Generator) -> Adaptation:
        rounds = check_whole("rounds", self.rounds, 0, MAX_ROUNDS)
        floor = check_in("floor", self.floor, 0.0, 1.0, closed_low=True)
        holdout = check_in("holdout", self.holdout, 0.0, 0.5)
        swap = check_in("swap", self.swap, 0.0, 1.0)
        cover = check_in("cover", self.cover, 0.0, 1.0, closed_low=True, closed_high=False)
        scan_seed = check_whole("scan_seed", self.scan_seed, 0, 2**32 - 1)
        target = check_class(dataset, dataset.classes[0] if self.target_class is None
                             else self.target_class, "target_class")
        n = self.budget(dataset, dataset.n_rows)
        n_cover = round(cover * n)
        plan = self._plan(dataset, target, rng)
        plan = Plan(plan.trigger, target, plan.payload_pool, n - n_cover, n_cover, plan.craft)
        if rounds == 0:
            payload, cover_rows = _draw(self, dataset, plan, np.zeros(0, dtype=np.int64), rng)
            return Adaptation(_build(self, dataset, plan, payload, cover_rows), (), 0)
        return _loop(self, dataset, plan, (rounds, floor, holdout, swap, scan_seed), rng)


def adapt(attack: Attack, dataset: Dataset, *, rng: np.random.Generator) -> Adaptation:
    """Run ``attack`` (one of this module's, with its ``rounds``) and return the poison it keeps
    with the rounds it measured; ``attack.poison`` returns the same ``result``.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.attacks import AdaptiveBackdoor
    >>> from poisonguard.datasets import load_dataset
    >>> run = adapt(AdaptiveBackdoor(rate=0.05, rounds=1), load_dataset("breast_cancer"),
    ...             rng=np.random.default_rng(0))
    >>> len(run.rounds), run.result.n_poisoned
    (2, 28)
    """
    if not isinstance(attack, Evasive):
        raise InputError(f"the adaptive loop runs adaptive-backdoor, adaptive-blend, "
                         f"adaptive-patch and spread-backdoor (got {getattr(attack, 'name', attack)!r})")
    check_rng(rng)
    if not isinstance(dataset, Dataset):
        raise InputError(f"'dataset' must be a poisonguard Dataset (got {type(dataset).__name__})")
    if dataset.modality not in attack.modalities:
        raise InputError(f"attack {attack.name!r} supports {', '.join(attack.modalities)} data "
                         f"(got {dataset.modality})")
    if len(dataset.classes) < 2:
        raise InputError(f"the data has a single class ({dataset.classes.tolist()[0]!r}); poisoning "
                         "needs at least two")
    return attack._adapt(dataset, rng)


def _draw(attack: Attack, ds: Dataset, plan: Plan, held: np.ndarray, rng: np.random.Generator
          ) -> tuple[np.ndarray, np.ndarray]:
    """Seeded payload rows from the payload pool and cover rows from the other rows, none of
    them ``held``; an error when the budget does not fit."""
    payload_pool = np.setdiff1d(plan.payload_pool, held)
    n = plan.n_payload + plan.n_cover
    where = " outside the attacker's held-out rows" if len(held) else ""
    if plan.n_payload > len(payload_pool):
        raise InputError(f"budget of {n} rows is impossible for {attack.name!r}: only "
                         f"{len(payload_pool)} rows outside the target class{where} can carry "
                         f"its {plan.n_payload} relabelled rows")
    payload = np.sort(rng.choice(payload_pool, plan.n_payload, replace=False))
    cover_pool = np.setdiff1d(np.arange(ds.n_rows), np.concatenate([held, payload]))
    if plan.n_cover > len(cover_pool):
        raise InputError(f"budget of {n} rows is impossible for {attack.name!r}: only "
                         f"{plan.n_payload + len(cover_pool)} rows{where} are available")
    cover = np.sort(rng.choice(cover_pool, plan.n_cover, replace=False))
    return payload, cover


def _build(attack: Attack, ds: Dataset, plan: Plan, payload: np.ndarray,
           cover: np.ndarray) -> PoisonResult:
    rows = np.sort(np.concatenate([payload, cover]))
    labels = np.array(ds.y[rows], copy=True)
    labels[np.isin(rows, payload)] = plan.target
    return modify(attack, ds, rows, X_rows=ds.features_like(plan.craft(rows)), y_rows=labels,
                  trigger=plan.trigger)


def _loop(attack: Evasive, ds: Dataset, plan: Plan,
          settings: tuple[int, float, float, float, int], rng: np.random.Generator) -> Adaptation:
    """The adaptive loop (module docstring); ``settings``: rounds, floor, holdout, swap and
    the seed of the attacker's scan."""
    from poisonguard.evaluation.metrics import attack_success_rate, detection_metrics
    from poisonguard.models import fit_quiet, make_model
    from poisonguard.scan import scan

    rounds, floor, holdout, swap, seed = settings
    held = np.sort(rng.choice(ds.n_rows, max(1, round(holdout * ds.n_rows)), replace=False))
    train_rows = np.setdiff1d(np.arange(ds.n_rows), held)
    test = ds.take(held)
    payload, cover = _draw(attack, ds, plan, held, rng)
    free = np.setdiff1d(np.arange(ds.n_rows), np.concatenate([held, payload, cover]))
    log: list[AdaptiveRound] = []
    kept: tuple[int, float, PoisonResult] | None = None
    first: PoisonResult | None = None
    swapped = 0
    for r in range(rounds + 1):
        res = _build(attack, ds, plan, payload, cover)
        if first is None:
            first = res
        report = scan(res.dataset, random_state=seed)
        scores = report.scores
        auroc = detection_metrics(res.mask, scores)["auroc"]
        poisoned = res.dataset.take(train_rows)
        proxy = fit_quiet(make_model("logreg", poisoned, random_state=seed), poisoned.X, poisoned.y)
        success = attack_success_rate(proxy, plan.trigger, test)
        log.append(AdaptiveRound(r, swapped, auroc, int((report.flagged & res.mask).sum()), success))
        if success >= floor and (kept is None or auroc < kept[1]):
            kept = (r, auroc, res)
        if success < floor or r == rounds:
            break
        payload, cover, free, swapped = _swap(ds, plan, payload, cover, free, scores, swap)
        if not swapped:
            break
    chosen = kept if kept is not None else (0, log[0].scan_auroc, first)
    assert chosen[2] is not None
    return Adaptation(chosen[2], tuple(log), chosen[0])


def _swap(ds: Dataset, plan: Plan, payload: np.ndarray, cover: np.ndarray, free: np.ndarray,
          scores: np.ndarray, share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Drop the ``share`` of poison rows the scan scored highest; each is replaced by a free
    row of its kind (payload rows only from the payload pool) drawn at random. Dropped rows
    never come back."""
    rows = np.concatenate([payload, cover])
    order = rows[np.argsort(-scores[rows], kind="stable")]
    drop = order[:math.ceil(share * len(rows))]
    out: list[np.ndarray] = []
    for kind, pool in ((payload, np.intersect1d(free, plan.payload_pool)), (cover, free)):
        gone = np.intersect1d(kind, drop)
        pool = np.setdiff1d(pool, np.concatenate(out)) if out else pool
        fresh = pool[:0]
        if len(gone) and len(pool):
            # the free rows nearest the poison the scan ranked lowest: rows like the survivors
            fresh = _nearest(ds, pool, order[::-1][:max(1, len(order) // 2)], len(gone))
        keep = np.setdiff1d(kind, gone[:len(fresh)])
        out.append(np.sort(np.concatenate([keep, fresh])))
    used = np.concatenate(out)
    return out[0], out[1], np.setdiff1d(free, used), len(used) - len(np.intersect1d(used, rows))


def _nearest(ds: Dataset, pool: np.ndarray, anchors: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` rows of ``pool`` closest to any of ``anchors`` (standardised features)."""
    from sklearn.neighbors import NearestNeighbors

    from poisonguard.models import NumericCodec

    Z = NumericCodec.fit(ds).encode(ds.X)
    Z = (Z - Z.mean(axis=0)) / np.where(Z.std(axis=0) > 0, Z.std(axis=0), 1.0)
    dist, _ = NearestNeighbors(n_neighbors=1).fit(Z[anchors]).kneighbors(Z[pool])
    picked: np.ndarray = np.sort(pool[np.argsort(dist[:, 0], kind="stable")[:k]])
    return picked
