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
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from poisonguard._validation import check_in, check_whole
from poisonguard.attacks._adaptive_loop import Adaptation, AdaptiveRound, Evasive, Plan, adapt
from poisonguard.attacks._base import register, take_rows
from poisonguard.attacks.triggers import KINDS, BlendTrigger, ShapeTrigger, Trigger, fit_trigger
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["Adaptation", "AdaptiveBackdoor", "AdaptiveBlend", "AdaptivePatch", "AdaptiveRound",
           "SpreadBackdoor", "adapt"]

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
    k = check_whole("pieces", pieces, 2, 1024)
    return k, check_whole("shown", shown, 1, k)


@register
class AdaptiveBlend(Evasive):
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

    def _plan(self, dataset: Dataset, target: Any, rng: np.random.Generator) -> Plan:
        alpha = check_in("alpha", self.alpha, 0.0, 1.0, closed_high=False)
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
        return Plan(trigger, target, np.flatnonzero(dataset.y != target), 0, 0, craft)


@register
class AdaptivePatch(Evasive):
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

    def _plan(self, dataset: Dataset, target: Any, rng: np.random.Generator) -> Plan:
        alpha = check_in("alpha", self.alpha, 0.0, 1.0)
        k, shown = _check_pieces(self.pieces, self.shown)
        h, w = dataset.X.shape[1:3]
        side = max(2, round(min(h, w) / 8)) if self.patch_size is None else check_whole(
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
        return Plan(trigger, target, np.flatnonzero(dataset.y != target), 0, 0, craft)


# ------------------------------------------------------------------ plain triggers, adapted
class _TriggerAttack(Evasive):
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

    def _plan(self, dataset: Dataset, target: Any, rng: np.random.Generator) -> Plan:
        strength = check_in("strength", self.strength, 0.0, 1.0)
        trigger = self._trigger(dataset, target, rng)

        def craft(rows: np.ndarray) -> Any:
            clean = take_rows(dataset.X, rows)
            return _toward(clean, trigger.apply(clean), strength)
        return Plan(trigger, target, np.flatnonzero(dataset.y != target), 0, 0, craft)


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

    def _plan(self, dataset: Dataset, target: Any, rng: np.random.Generator) -> Plan:
        trigger = self._trigger(dataset, target, rng)
        return Plan(trigger, target, np.flatnonzero(dataset.y != target), 0, 0,
                    lambda rows: trigger.apply(take_rows(dataset.X, rows)))
