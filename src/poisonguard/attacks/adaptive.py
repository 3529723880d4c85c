"""Adaptive backdoors: poison built to slip past our own scan, and the loop that iterates
against it.

* ``adaptive-blend`` / ``adaptive-patch`` (Qi et al. 2023, "Revisiting the Assumption of
  Latent Separability for Backdoor Defenses", ICLR): the trigger is cut into pieces and each
  poisoned image gets only some of them, faintly, at training time (all of them at test time);
  a share of the budget goes to *cover* rows that carry the trigger with their correct label,
  which blurs the latent separation that spectral and clustering detectors rely on.
* ``spread-backdoor``: the trigger strength of a backdoor spread over more rows, each weaker.
* ``adaptive-backdoor``: a plain backdoor (any image or tabular trigger) run through the loop.

The loop (:func:`adapt`; ``rounds`` > 0 on every attack here) spends at most ``rounds`` + 1
scans. The attacker holds out a ``holdout`` share of its rows (never poisoned), poisons the
rest, runs the default :func:`~poisonguard.scan.scan` (default detectors, ``random_state=
scan_seed``, 0 as the scan's own default) on its poisoned copy, and swaps the ``swap`` share of
poison rows the scan scores highest for unused rows nearest (standardised features) to the
poison the scan ranked lowest; dropped rows never come back. It repeats while a logistic
regression trained on the poisoned copy (held-out rows left out) keeps its attack success on
the held-out rows at or above ``floor``, and keeps the round whose poison the scan ranks
lowest (AUROC of the scan's score on the attacker's own mask) among those at the floor; round
0 when none is. Every step is seeded: the same ``rng`` gives the same bytes.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from poisonguard._validation import check_rng
from poisonguard.attacks._base import Attack, PoisonResult, check_class, modify, register, take_rows
from poisonguard.attacks.triggers import KINDS, BlendTrigger, ShapeTrigger, Trigger, fit_trigger
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["Adaptation", "AdaptiveBackdoor", "AdaptiveBlend", "AdaptivePatch", "AdaptiveRound",
           "SpreadBackdoor", "adapt"]

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
class _Plan:
    """What the loop needs of an attack: its test-time trigger and target, the rows that may
    carry the backdoor (relabelled) or cover it (label kept), how many of each, and ``craft``:
    rows -> their poisoned features (the same rows always give the same features)."""

    trigger: Trigger
    target: Any
    payload_pool: np.ndarray
    n_payload: int
    n_cover: int
    craft: Callable[[np.ndarray], Any]


def _in(name: str, value: Any, low: float, high: float, *, closed_low: bool = False,
        closed_high: bool = True) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (low <= value if closed_low else low < value) and (
            value <= high if closed_high else value < high)
    if not ok:
        brackets = ("[" if closed_low else "(") + f"{low:g}, {high:g}" + ("]" if closed_high else ")")
        raise InputError(f"'{name}' must be in {brackets} (got {value!r})")
    return float(value)


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise InputError(f"'{name}' must be a whole number in [{low}, {high}] (got {value!r})")
    return int(value)


class _Evasive(Attack):
    """An attack that plans its poison (:class:`_Plan`) and can run the adaptive loop."""

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
    def _plan(self, dataset: Dataset, target: Any, rng: np.random.Generator) -> _Plan:
        """The attack's trigger, pools and crafting for ``dataset``."""

    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        return self._adapt(dataset, rng).result

    def _adapt(self, dataset: Dataset, rng: np.random.Generator) -> Adaptation:
        rounds = _whole("rounds", self.rounds, 0, MAX_ROUNDS)
        floor = _in("floor", self.floor, 0.0, 1.0, closed_low=True)
        holdout = _in("holdout", self.holdout, 0.0, 0.5)
        swap = _in("swap", self.swap, 0.0, 1.0)
        cover = _in("cover", self.cover, 0.0, 1.0, closed_low=True, closed_high=False)
        scan_seed = _whole("scan_seed", self.scan_seed, 0, 2**32 - 1)
        target = check_class(dataset, dataset.classes[0] if self.target_class is None
                             else self.target_class, "target_class")
        n = self.budget(dataset, dataset.n_rows)
        n_cover = round(cover * n)
        plan = self._plan(dataset, target, rng)
        plan = _Plan(plan.trigger, target, plan.payload_pool, n - n_cover, n_cover, plan.craft)
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
    >>> from poisonguard.datasets import load_dataset
    >>> run = adapt(AdaptiveBackdoor(rate=0.05, rounds=1), load_dataset("breast_cancer"),
    ...             rng=np.random.default_rng(0))
    >>> len(run.rounds), run.result.n_poisoned
    (2, 28)
    """
    if not isinstance(attack, _Evasive):
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


# ------------------------------------------------------------------------------- the loop
def _draw(attack: Attack, ds: Dataset, plan: _Plan, held: np.ndarray, rng: np.random.Generator
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


def _build(attack: Attack, ds: Dataset, plan: _Plan, payload: np.ndarray,
           cover: np.ndarray) -> PoisonResult:
    rows = np.sort(np.concatenate([payload, cover]))
    labels = np.array(ds.y[rows], copy=True)
    labels[np.isin(rows, payload)] = plan.target
    return modify(attack, ds, rows, X_rows=ds.features_like(plan.craft(rows)), y_rows=labels,
                  trigger=plan.trigger)


def _loop(attack: _Evasive, ds: Dataset, plan: _Plan,
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


def _swap(ds: Dataset, plan: _Plan, payload: np.ndarray, cover: np.ndarray, free: np.ndarray,
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


# ------------------------------------------------------------------- Qi et al. 2023 attacks
def _images(ds: Dataset, rows: np.ndarray) -> np.ndarray:
    return np.asarray(take_rows(ds.X, rows), dtype=np.float64)


def _piece_attack(ds: Dataset, pieces: np.ndarray, pattern: np.ndarray, shown: int,
                  alpha: float, rng: np.random.Generator) -> Callable[[np.ndarray], Any]:
    """Crafting for cut triggers: each row gets ``shown`` of the ``pieces`` (boolean masks
    ``(k, h, w)``), drawn once per row, blended towards ``pattern`` with opacity ``alpha``."""
    picks = np.argsort(rng.random((ds.n_rows, len(pieces))), axis=1)[:, :shown]

    def craft(rows: np.ndarray) -> Any:
        X = _images(ds, rows)
        opacity = alpha * pieces[picks[rows]].any(axis=1)
        if X.ndim == 4:
            opacity = opacity[..., None]
        return X + opacity * (pattern[None] - X)
    return craft


def _check_pieces(pieces: Any, shown: Any) -> tuple[int, int]:
    k = _whole("pieces", pieces, 2, 1024)
    return k, _whole("shown", shown, 1, k)


@register
class AdaptiveBlend(_Evasive):
    """Adaptive-Blend (Qi et al. 2023): a seeded noise pattern cut into ``pieces`` cells (a
    square grid); each poisoned image is blended with ``shown`` of them at opacity ``alpha``,
    the test-time trigger is the whole pattern at ``test_alpha``. ``cover`` is the share of the
    budget that carries the trigger with its correct label; the rest is relabelled to
    ``target_class`` (default: the first class). ``rounds`` > 0 runs the adaptive loop (module
    docstring) with ``floor``, ``holdout`` and ``swap``.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.datasets import load_dataset
    >>> res = AdaptiveBlend(rate=0.1).poison(load_dataset("digits"), rng=np.random.default_rng(0))
    >>> res.n_poisoned, res.trigger.kind, res.trigger.alpha
    (180, 'blend', 0.2)
    """

    name = "adaptive-blend"
    modalities = ("image",)
    summary = ("adaptive blend (Qi et al. 2023): trigger cut into pieces, a few per row, faint; "
               "cover rows keep their label")

    def __init__(self, *, rate: float | None = None, count: int | None = None,
                 target_class: Any = None, alpha: float = 0.15, test_alpha: float = 0.2,
                 pieces: int = 16, shown: int = 8, cover: float = 0.5, rounds: int = 0,
                 floor: float = 0.5, holdout: float = 0.2, swap: float = 0.34,
                 scan_seed: int = 0) -> None:
        self.rate = rate
        self.count = count
        self.target_class = target_class
        self.alpha = alpha
        self.test_alpha = test_alpha
        self.pieces = pieces
        self.shown = shown
        self.cover = cover
        self.rounds = rounds
        self.floor = floor
        self.holdout = holdout
        self.swap = swap
        self.scan_seed = scan_seed

    def _plan(self, dataset: Dataset, target: Any, rng: np.random.Generator) -> _Plan:
        alpha = _in("alpha", self.alpha, 0.0, 1.0, closed_high=False)
        k, shown = _check_pieces(self.pieces, self.shown)
        h, w = dataset.X.shape[1:3]
        side = math.isqrt(k)
        if side * side != k or side > min(h, w):
            raise InputError(f"'pieces' must be a square number of at most {min(h, w) ** 2} "
                             f"cells for {h}x{w} images (got {k})")
        trigger = fit_trigger(dataset, "blend", target, rng, alpha=self.test_alpha)
        assert isinstance(trigger, BlendTrigger)
        cell_r = np.minimum(np.arange(h) * side // h, side - 1)
        cell_c = np.minimum(np.arange(w) * side // w, side - 1)
        cell = cell_r[:, None] * side + cell_c[None, :]
        pieces = np.stack([cell == i for i in range(k)])
        pattern = np.asarray(trigger.pattern, dtype=np.float64)
        craft = _piece_attack(dataset, pieces, pattern, shown, alpha, rng)
        return _Plan(trigger, target, np.flatnonzero(dataset.y != target), 0, 0, craft)


@register
class AdaptivePatch(_Evasive):
    """Adaptive-Patch (Qi et al. 2023): ``pieces`` small square patches (side ``patch_size``,
    default 1/8 of the image side, at least 2 pixels) at seeded places among the darkest half
    of the mean image; each poisoned image gets ``shown`` of them at opacity ``alpha``, the
    test-time trigger is all of them at full value (a :class:`~poisonguard.attacks.triggers.
    ShapeTrigger`). ``cover``, ``target_class`` and the loop's parameters as for
    :class:`AdaptiveBlend`.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.datasets import load_dataset
    >>> res = AdaptivePatch(rate=0.1).poison(load_dataset("digits"), rng=np.random.default_rng(0))
    >>> res.n_poisoned, res.trigger.kind
    (180, 'shape')
    """

    name = "adaptive-patch"
    modalities = ("image",)
    summary = ("adaptive patch (Qi et al. 2023): several small patches, a few per row at low "
               "opacity, all at test time; cover rows keep their label")

    def __init__(self, *, rate: float | None = None, count: int | None = None,
                 target_class: Any = None, alpha: float = 0.5, pieces: int = 4, shown: int = 2,
                 patch_size: int | None = None, cover: float = 0.5, rounds: int = 0,
                 floor: float = 0.5, holdout: float = 0.2, swap: float = 0.34,
                 scan_seed: int = 0) -> None:
        self.rate = rate
        self.count = count
        self.target_class = target_class
        self.alpha = alpha
        self.pieces = pieces
        self.shown = shown
        self.patch_size = patch_size
        self.cover = cover
        self.rounds = rounds
        self.floor = floor
        self.holdout = holdout
        self.swap = swap
        self.scan_seed = scan_seed

    def _plan(self, dataset: Dataset, target: Any, rng: np.random.Generator) -> _Plan:
        alpha = _in("alpha", self.alpha, 0.0, 1.0)
        k, shown = _check_pieces(self.pieces, self.shown)
        h, w = dataset.X.shape[1:3]
        side = max(2, round(min(h, w) / 8)) if self.patch_size is None else _whole(
            "patch_size", self.patch_size, 1, min(h, w))
        mean = np.asarray(dataset.X, dtype=np.float64).mean(axis=0)
        mean = mean if mean.ndim == 2 else mean.mean(axis=2)
        places = [(r, c) for r in range(0, h - side + 1, side) for c in range(0, w - side + 1, side)]
        if k > len(places):
            raise InputError(f"'pieces' {k} patches of {side} pixels do not fit {h}x{w} images "
                             f"(at most {len(places)})")
        ink = np.array([mean[r:r + side, c:c + side].mean() for r, c in places])
        dark = np.argsort(ink, kind="stable")[:max(k, len(places) // 2)]
        chosen = [places[i] for i in np.sort(rng.choice(dark, k, replace=False))]
        pieces = np.zeros((k, h, w), dtype=bool)
        for i, (r, c) in enumerate(chosen):
            pieces[i, r:r + side, c:c + side] = True
        value = float(np.max(dataset.X))
        union: np.ndarray = np.any(pieces, axis=0)
        rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
        box = union[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        glyph = tuple("".join("#" if v else "." for v in line) for line in box)
        trigger = ShapeTrigger(glyph, int(rows[0]), int(cols[0]), value, target)
        pattern = np.full(dataset.X.shape[1:], value)
        craft = _piece_attack(dataset, pieces, pattern, shown, alpha, rng)
        return _Plan(trigger, target, np.flatnonzero(dataset.y != target), 0, 0, craft)


# ------------------------------------------------------------------ plain triggers, adapted
class _TriggerAttack(_Evasive):
    """An attack around one of the backdoor trigger families (image or tabular)."""

    modalities = ("image", "tabular")
    trigger: str | Trigger | None
    trigger_size: int | None
    trigger_value: float | None
    alpha: float | None
    columns: tuple[str, ...] | None

    def _trigger(self, dataset: Dataset, target: Any, rng: np.random.Generator) -> Trigger:
        if isinstance(self.trigger, Trigger):
            return self.trigger
        if self.trigger is not None and self.trigger not in KINDS[dataset.modality]:
            raise InputError(f"'trigger' for {dataset.modality} data must be one of "
                             f"{', '.join(KINDS[dataset.modality])} (got {self.trigger!r})")
        return fit_trigger(dataset, self.trigger, target, rng, size=self.trigger_size,
                           value=self.trigger_value, alpha=self.alpha,
                           columns=tuple(self.columns or ()))


@register
class SpreadBackdoor(_TriggerAttack):
    """A dirty-label backdoor whose trigger strength is spread thin: every poisoned row gets
    the trigger at ``strength`` (each changed value moved that share of the way from the row's
    own value to the trigger's), so ``rate / strength`` rows carry the trigger strength of a
    :class:`~poisonguard.attacks.Backdoor` at ``rate``. The test-time trigger is the full one.
    Triggers as for ``backdoor`` (image and tabular families); ``rounds`` > 0 runs the
    adaptive loop.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.datasets import load_dataset
    >>> res = SpreadBackdoor(rate=0.2, strength=0.25).poison(load_dataset("digits"),
    ...                                                     rng=np.random.default_rng(0))
    >>> res.n_poisoned, res.trigger.kind
    (359, 'patch')
    """

    name = "spread-backdoor"
    summary = "spread backdoor: the trigger at a fraction of its strength on proportionally more rows"

    def __init__(self, *, rate: float | None = None, count: int | None = None,
                 trigger: str | Trigger | None = None, target_class: Any = None,
                 strength: float = 0.25, trigger_size: int | None = None,
                 trigger_value: float | None = None, alpha: float | None = None,
                 columns: tuple[str, ...] | None = None, rounds: int = 0, floor: float = 0.5,
                 holdout: float = 0.2, swap: float = 0.34, scan_seed: int = 0) -> None:
        self.rate = rate
        self.count = count
        self.trigger = trigger
        self.target_class = target_class
        self.strength = strength
        self.trigger_size = trigger_size
        self.trigger_value = trigger_value
        self.alpha = alpha
        self.columns = columns
        self.rounds = rounds
        self.floor = floor
        self.holdout = holdout
        self.swap = swap
        self.scan_seed = scan_seed

    def _plan(self, dataset: Dataset, target: Any, rng: np.random.Generator) -> _Plan:
        strength = _in("strength", self.strength, 0.0, 1.0)
        trigger = self._trigger(dataset, target, rng)

        def craft(rows: np.ndarray) -> Any:
            clean = take_rows(dataset.X, rows)
            return _toward(clean, trigger.apply(clean), strength)
        return _Plan(trigger, target, np.flatnonzero(dataset.y != target), 0, 0, craft)


def _toward(clean: Any, triggered: Any, strength: float) -> Any:
    """``clean`` moved ``strength`` of the way to ``triggered``: numbers interpolated, other
    columns take the triggered value from half strength on."""
    if not isinstance(clean, pd.DataFrame):
        a = np.asarray(clean, dtype=np.float64)
        return a + strength * (np.asarray(triggered, dtype=np.float64) - a)
    out = triggered.copy()
    for col in clean.columns:
        if clean[col].dtype.kind in "iufb" and triggered[col].dtype.kind in "iufb":
            a = clean[col].to_numpy(dtype=np.float64)
            out[col] = a + strength * (triggered[col].to_numpy(dtype=np.float64) - a)
        elif strength < 0.5:
            out[col] = clean[col]
    return out


@register
class AdaptiveBackdoor(_TriggerAttack):
    """The dirty-label :class:`~poisonguard.attacks.Backdoor` (image and tabular trigger
    families, same trigger options) run through the adaptive loop for ``rounds`` rounds:
    scanned with the default scan, its highest-scored rows swapped for free rows like the ones
    the scan missed, the round the scan ranks lowest kept while the attacker's proxy keeps
    attack success ``floor`` on its ``holdout`` share of rows.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.datasets import load_dataset
    >>> res = AdaptiveBackdoor(rate=0.05, rounds=1).poison(load_dataset("breast_cancer"),
    ...                                                    rng=np.random.default_rng(0))
    >>> res.n_poisoned, res.trigger.kind
    (28, 'feature')
    """

    name = "adaptive-backdoor"
    summary = "backdoor that iterates against the default scan, keeping the poison it ranks lowest"

    def __init__(self, *, rate: float | None = None, count: int | None = None,
                 trigger: str | Trigger | None = None, target_class: Any = None,
                 trigger_size: int | None = None, trigger_value: float | None = None,
                 alpha: float | None = None, columns: tuple[str, ...] | None = None,
                 rounds: int = 3, floor: float = 0.5, holdout: float = 0.2,
                 swap: float = 0.34, scan_seed: int = 0) -> None:
        self.rate = rate
        self.count = count
        self.trigger = trigger
        self.target_class = target_class
        self.trigger_size = trigger_size
        self.trigger_value = trigger_value
        self.alpha = alpha
        self.columns = columns
        self.rounds = rounds
        self.floor = floor
        self.holdout = holdout
        self.swap = swap
        self.scan_seed = scan_seed

    def _plan(self, dataset: Dataset, target: Any, rng: np.random.Generator) -> _Plan:
        trigger = self._trigger(dataset, target, rng)
        return _Plan(trigger, target, np.flatnonzero(dataset.y != target), 0, 0,
                     lambda rows: trigger.apply(take_rows(dataset.X, rows)))
