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
from poisonguard.attacks._trigger_base import TEXT_MAX, FitOptions, Trigger, label_value
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


_INT_MIN = {"size": 1}  # other integer fields (row, col, seed) start at 0
_Scalar = str | int | float | bool


def trigger_from_dict(data: dict[str, Any]) -> Trigger:
    """Rebuild a trigger from :meth:`Trigger.to_dict` output.

    Each field is checked against its declared type before anything is built: integers are
    integers (no 1e9 for a patch size), texts at most :data:`TEXT_MAX` characters, numbers
    finite; sizes are then checked against the data when the trigger is applied.
    """
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in TRIGGERS:
        raise InputError(f"trigger 'kind' must be one of {', '.join(TRIGGERS)} (got {_show(kind)})")
    cls = TRIGGERS[kind]
    fields = {f.name: str(f.type) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown, missing = sorted(set(data) - set(fields)), [f for f in fields if f not in data]
    if unknown or missing:
        wrong = [f"{m!r} missing" for m in missing] + [f"{u!r} unknown" for u in unknown]
        raise InputError(f"{kind} trigger is missing or has unknown fields: {', '.join(wrong)}")
    return cls(**{name: _field(kind, name, hint, data[name]) for name, hint in fields.items()})


def _show(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer of thousands of digits
        return "a number of thousands of digits"
    return text if len(text) <= 40 else f"{text[:37]}..."


def _field(kind: str, name: str, hint: str, value: Any) -> Any:
    """``value`` of field ``name`` as its type ``hint`` says, or a one-line error."""
    def bad(expected: str) -> InputError:
        return InputError(f"{kind} trigger field '{name}' must be {expected} (got {_show(value)})")

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v)

    def text(v: Any) -> bool:
        return isinstance(v, str) and len(v) <= TEXT_MAX

    if hint == "int":
        low = _INT_MIN.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value < 2**63:
            raise bad(f"an integer of at least {low}")
        return value
    if hint == "float":
        if not number(value):
            raise bad("a finite number")
        return float(value)
    if hint == "str":
        if not text(value):
            raise bad(f"a text of at most {TEXT_MAX:,} characters")
        return value
    if hint.startswith("np.ndarray"):
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise bad("an array of numbers") from None
        if not np.all(np.isfinite(arr)):
            raise bad("an array of finite numbers")
        return arr
    if hint.startswith("tuple"):
        item = hint.removeprefix("tuple[").split(",")[0]
        check, expected = {"str": (text, f"texts of at most {TEXT_MAX:,} characters"),
                           "float": (number, "finite numbers")}.get(
            item, (lambda v: isinstance(v, _Scalar) or v is None, "plain values"))
        if not isinstance(value, list | tuple) or not all(check(v) for v in value):
            raise bad(f"a list of {expected}")
        return tuple(value)
    if not isinstance(value, _Scalar):  # target_class: a label
        raise bad("a label (a text or a number)")
    return value


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
