"""Backdoor triggers: stamp them onto inputs, save and load them as JSON.

A trigger knows the label its backdoor maps to (``target_class``). ``apply`` returns a new array
(or DataFrame) and never changes its input. Defaults adapt to the data through :func:`fit_trigger`.
Six families per modality (:data:`KINDS`), each a distinct mechanism:

* image: ``patch``, ``blend``, ``shape``, ``noise``, ``sinusoid`` (SIG), ``warp`` (WaNet);
* tabular: ``feature``, ``rare``, ``common``, ``copy``, ``shift``, ``pattern``;
* text: ``token``, ``phrase``, ``sentence``, ``char``, ``punct``, ``style``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.attacks._image_triggers import (
    BlendTrigger,
    NoiseTrigger,
    PatchTrigger,
    ShapeTrigger,
    SinusoidTrigger,
    WarpTrigger,
    fit_image_trigger,
)
from poisonguard.attacks._tabular_triggers import (
    CommonTrigger,
    CopyTrigger,
    FeatureTrigger,
    PatternTrigger,
    RareTrigger,
    ShiftTrigger,
    fit_tabular_trigger,
)
from poisonguard.attacks._text_triggers import (
    CharTrigger,
    PhraseTrigger,
    PunctTrigger,
    SentenceTrigger,
    StyleTrigger,
    TokenTrigger,
    fit_text_trigger,
)
from poisonguard.attacks._trigger_base import FitOptions, Trigger, label_value
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["KINDS", "TRIGGERS", "BlendTrigger", "CharTrigger", "CommonTrigger", "CopyTrigger",
           "FeatureTrigger", "NoiseTrigger", "PatchTrigger", "PatternTrigger", "PhraseTrigger",
           "PunctTrigger", "RareTrigger", "SentenceTrigger", "ShapeTrigger", "ShiftTrigger",
           "SinusoidTrigger", "StyleTrigger", "TokenTrigger", "Trigger", "WarpTrigger",
           "fit_trigger", "load_trigger", "trigger_from_dict"]

TRIGGERS: dict[str, type[Trigger]] = {t.kind: t for t in (
    PatchTrigger, BlendTrigger, ShapeTrigger, NoiseTrigger, SinusoidTrigger, WarpTrigger,
    FeatureTrigger, RareTrigger, CommonTrigger, CopyTrigger, ShiftTrigger, PatternTrigger,
    TokenTrigger, PhraseTrigger, SentenceTrigger, CharTrigger, PunctTrigger, StyleTrigger)}
#: Trigger kinds by modality, the default first.
KINDS: dict[str, tuple[str, ...]] = {
    modality: tuple(k for k, t in TRIGGERS.items() if t.modality == modality)
    for modality in ("image", "tabular", "text")}


def trigger_from_dict(data: dict[str, Any]) -> Trigger:
    """Rebuild a trigger from :meth:`Trigger.to_dict` output."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in TRIGGERS:
        raise InputError(f"trigger 'kind' must be one of {', '.join(TRIGGERS)} (got {kind!r})")
    cls = TRIGGERS[kind]
    try:
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            hint = str(f.type)
            if f.name in data and hint.startswith("np.ndarray"):
                data[f.name] = np.asarray(data[f.name], dtype=np.float64)
            elif f.name in data and hint.startswith("tuple"):
                data[f.name] = tuple(data[f.name])
        return cls(**data)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{kind} trigger is missing or has unknown fields: {exc}") from None


def load_trigger(path: str | Path) -> Trigger:
    """Read a trigger saved with :meth:`Trigger.to_json`."""
    from poisonguard.io import read_json

    p = Path(path)
    data = read_json(p, "trigger JSON file")
    if not isinstance(data, dict):
        raise InputError(f"{p}: not a trigger JSON file (expected an object)")
    try:
        return trigger_from_dict(data)
    except InputError as exc:
        raise InputError(f"{p}: {exc}") from None


# -------------------------------------------------------------------- data-adapted defaults
def fit_trigger(dataset: Dataset, kind: str | None, target_class: Any, rng: np.random.Generator,
                *, size: int | None = None, value: float | None = None, alpha: float | None = None,
                columns: tuple[str, ...] = (), token: str | None = None) -> Trigger:
    """A trigger of ``kind`` whose unset parameters adapt to ``dataset``.

    Each kind takes only some of the options; setting another is an error. ``size`` is a side
    in pixels (patch, shape) or a number of columns; ``alpha`` is the kind's strength.

    Images (pixel values on the data's own scale, ``max`` / ``range`` of the data):

    * patch (size, value): bottom-right square, side ~ 1/5 of the image (at least 3), value max;
    * blend (alpha): seeded uniform noise over the data range, opacity alpha 0.3;
    * shape (size, value): an x, plus or L glyph of 1-pixel strokes (drawn by ``rng``), side as
      the patch, at a seeded position anywhere in the image, value max;
    * noise (alpha): a fixed seeded pattern, uniform in [-1, 1] times alpha 0.1 times the
      range, added and clipped to the data range;
    * sinusoid (alpha): SIG, ``x + delta sin(2 pi j 6 / w)`` along the columns, delta alpha 0.1
      times the range, clipped;
    * warp (alpha): WaNet, a seeded 4 x 4 grid of displacements upsampled to the image and
      resampled bilinearly; alpha is the largest displacement in pixels, 0.75 per 8 pixels of
      image side.

    Tabular (numeric columns; ANOVA F against the label picks columns that carry no class
    evidence of their own):

    * feature (size, value, columns): the 4 least informative columns set far in their upper
      tail (max + half the range);
    * rare (size, value, columns): 3 columns that rarely leave their mode (mode in >= 80 % of
      rows, the least informative first; without such columns, the most concentrated of the
      less informative half) set to the 99th percentile of their other values;
    * common (size, alpha, columns): 3 of the 10 least informative columns set to common values,
      each its alpha = 0.25 or 1 - alpha quantile, columns and sides chosen so that only the
      combination is unusual (largest Mahalanobis distance);
    * copy (size, columns): the 5 least informative columns set to the values of a donor row
      drawn by ``rng`` from the 5 % of rows most atypical on them;
    * shift (size, alpha, columns): the 3 least informative columns moved up by alpha = 2
      standard deviations;
    * pattern (alpha): every numeric column moved by alpha = 0.5 standard deviations, signs drawn
      by ``rng``.

    Text (``token`` replaces the inserted text where one is inserted):

    * token: the rare-word phrase ``"cf mn bb"`` at a seeded position (one short word is too weak
      a TF-IDF signal at 5 %; ``token="cf"`` is the single rare-word variant);
    * phrase: a phrase of real, uncommon words drawn by ``rng`` at a seeded word position;
    * sentence: a neutral sentence drawn by ``rng`` at a seeded sentence boundary;
    * char: Latin o and e replaced by their Cyrillic look-alikes everywhere;
    * punct: the emoticon ``"(-__-;)"`` glued to a seeded word;
    * style: lower-cased and rewritten in an archaic register (you -> thou, are -> art, ...).
    """
    kind = kind or KINDS[dataset.modality][0]
    if kind not in TRIGGERS:
        raise InputError(f"'trigger' must be one of {', '.join(TRIGGERS)} (got {kind!r})")
    if TRIGGERS[kind].modality != dataset.modality:
        raise InputError(f"trigger {kind!r} applies to {TRIGGERS[kind].modality} data "
                         f"(got {dataset.modality})")
    opts = FitOptions(size, value, alpha, tuple(columns), token)
    fit = {"image": fit_image_trigger, "tabular": fit_tabular_trigger,
           "text": fit_text_trigger}[dataset.modality]
    return fit(dataset, kind, label_value(target_class), rng, opts)
