"""``validation``: rules learned from a trusted reference dataset, checked row by row.

Rules by modality (``reference`` is ``evidence.reference``):

* every modality — the label is one of the reference labels (compared as text);
* tabular (arrays and DataFrames alike, column by column by name) — the reference's columns
  are all there and no others; a numeric column holds numbers, whole numbers when the reference
  has only whole numbers, inside the reference range; a categorical (text or boolean) column
  holds only categories seen in the reference; a value may be missing only in a column where
  the reference has missing values (ranges come from the present values);
* images — the reference's image shape; pixel values inside the reference range, whole numbers
  when the reference has only whole numbers, and (``pixelwise=True``) every pixel inside the
  range that pixel takes in the reference (a patch trigger in a corner that is always blank);
* text — length in characters inside the reference range; no character outside printable ASCII
  and whitespace that the reference never uses (zero-width characters, homoglyphs: the usual
  disguises of a text trigger). Unseen ASCII characters are ordinary and allowed.

**Ranges.** The range of a column (a pixel, the text length) is the reference's ``[min, max]``
widened on each side by ``tolerance`` times its width. Min/max rather than robust quantiles,
because the reference is trusted: every value it holds is legitimate, and quantile bounds would
reject a known share of clean rows by construction. The widening absorbs the fact that a
finite reference does not reach the true extremes (a new clean value exceeds the maximum of
``m`` reference values with probability ``1 / (m + 1)``, per column), and more so the smaller
the reference: by default ``tolerance = 0.1 + 2 / sqrt(m)`` (0.31 for 89 reference rows, 0.17
for 900, 0.12 for 10,000). On held-out halves of scikit-learn's data this rejects 0.6 % of
clean digits, no wine and 2.8 % of breast_cancer rows (heavy-tailed columns), while a
feature trigger set half a width past the maximum is still caught. A constant column allows
only its value. Integer-ness and categories are exact.

A row that breaks any rule scores 1, any other row 0 (calibration "probability"), and
``explain`` names the first rule it breaks, e.g. ``column 'age' = 212 outside the reference
range [18, 90]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from poisonguard.detectors._base import Calibration, Detector, register

if TYPE_CHECKING:
    from poisonguard.dataset import Dataset
    from poisonguard.evidence import Evidence

__all__ = ["Rule", "Validation", "check_rules", "default_tolerance"]

_SHOWN = 8  # categories / characters named in a message
MISSING = "<missing>"  # a missing categorical value, as the featurizer names it


@dataclass(frozen=True)
class Rule:
    """One learned rule: ``broken`` marks the rows that break it, ``message(row)`` says how."""

    name: str
    broken: np.ndarray
    message: Callable[[int], str]


def _num(v: float) -> str:
    return f"{v:.6g}"


def _listing(values: list[str]) -> str:
    shown = ", ".join(values[:_SHOWN])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _SHOWN else "")


def default_tolerance(reference_rows: int) -> float:
    """Range widening used when none is given: ``0.1 + 2 / sqrt(reference_rows)``."""
    return 0.1 + 2.0 / float(np.sqrt(max(reference_rows, 1)))


def _ordinary(char: str) -> bool:
    return char.isascii() and (char.isprintable() or char.isspace())


def _bounds(lo: float, hi: float, tolerance: float) -> tuple[float, float]:
    pad = tolerance * (hi - lo)
    return lo - pad, hi + pad


def _all_rows(n: int, name: str, text: str) -> Rule:
    return Rule(name, np.ones(n, dtype=bool), lambda row: text)


def _fractional(values: np.ndarray) -> np.ndarray:
    """True where a value is not a whole number (beyond floating-point noise)."""
    with np.errstate(invalid="ignore"):
        out: np.ndarray = np.abs(values - np.round(values)) > 1e-9 * np.maximum(np.abs(values), 1.0)
    return out


def _whole(values: np.ndarray) -> bool:
    return not bool(_fractional(values).any())


# ---------------------------------------------------------------------------- rules by modality
def _label_rules(reference: Dataset, data: Dataset) -> list[Rule]:
    known = {str(c) for c in reference.classes}
    y = np.asarray([str(v) for v in data.y], dtype=object)
    broken = ~np.isin(y, np.asarray(sorted(known), dtype=object))
    listing = _listing(sorted(known))
    return [Rule("label", broken,
                 lambda row: f"label {y[row]!r} not in the reference labels ({listing})")]


def _numeric_column(col: str, ref: pd.Series, values: pd.Series, tolerance: float) -> list[Rule]:
    r = ref.to_numpy(dtype=np.float64, na_value=np.nan)
    raw = values.to_numpy()
    present = values.notna().to_numpy()
    if values.dtype.kind in "iufb":
        v = values.to_numpy(dtype=np.float64, na_value=np.nan)
        rules = []
    else:
        v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(v) & present
        rules = [Rule(f"type:{col}", bad, lambda row: f"column {col!r} = {raw[row]!r} is not a "
                      f"number (the reference column is {ref.dtype})")]
        v = np.where(bad, np.nan, v)
    ref_missing = np.isnan(r)
    if not ref_missing.any():
        rules.append(Rule(f"null:{col}", ~present, lambda row: (
            f"column {col!r} is missing a value (the reference has none missing)")))
    r = r[~ref_missing]
    if not r.size:
        return rules
    lo, hi = float(r.min()), float(r.max())
    low, high = _bounds(lo, hi, tolerance)
    with np.errstate(invalid="ignore"):
        outside = (v < low) | (v > high)
        rules.append(Rule(f"range:{col}", outside, lambda row: (
            f"column {col!r} = {_num(v[row])} outside the reference range [{_num(lo)}, {_num(hi)}]")))
        if _whole(r):
            fractional = np.isfinite(v) & _fractional(v)
            rules.append(Rule(f"integer:{col}", fractional, lambda row: (
                f"column {col!r} = {_num(v[row])} is not a whole number (the reference has only "
                "whole numbers)")))
    return rules


def _as_text(values: pd.Series) -> np.ndarray:
    """Values as text, a missing one as ``<missing>`` (allowed where the reference has one)."""
    text: np.ndarray = values.astype(str).to_numpy(dtype=object)
    text[values.isna().to_numpy()] = MISSING
    return text


def _categorical_column(col: str, ref: pd.Series, values: pd.Series) -> Rule:
    known = sorted(set(_as_text(ref).tolist()))
    v = _as_text(values)
    broken = ~np.isin(v, np.asarray(known, dtype=object))
    listing = _listing(known)
    return Rule(f"category:{col}", broken, lambda row: (
        f"column {col!r} = {v[row]!r} not among the reference categories ({listing})"))


def _tabular_rules(reference: Dataset, data: Dataset, tolerance: float) -> list[Rule]:
    ref, frame = reference.frame(), data.frame()
    n = data.n_rows
    rules = []
    for col in ref.columns:
        if col not in frame.columns:
            rules.append(_all_rows(n, f"missing:{col}", f"column {col!r} of the reference is missing"))
        elif ref[col].dtype.kind in "iuf":
            rules.extend(_numeric_column(col, ref[col], frame[col], tolerance))
        else:
            rules.append(_categorical_column(col, ref[col], frame[col]))
    for col in frame.columns:
        if col not in ref.columns:
            rules.append(_all_rows(n, f"extra:{col}", f"column {col!r} is not in the reference"))
    return rules


def _image_rules(reference: Dataset, data: Dataset, tolerance: float, pixelwise: bool) -> list[Rule]:
    shape, ref_shape = tuple(data.X.shape[1:]), tuple(reference.X.shape[1:])
    n = data.n_rows
    if shape != ref_shape:
        return [_all_rows(n, "shape", f"image shape {shape} differs from the reference shape "
                                      f"{ref_shape}")]
    ref_pix = np.asarray(reference.X, dtype=np.float64).reshape(reference.n_rows, -1)
    pix = np.asarray(data.X, dtype=np.float64).reshape(n, -1)
    lo, hi = float(ref_pix.min()), float(ref_pix.max())
    low, high = _bounds(lo, hi, tolerance)

    def pixel(j: int) -> str:
        return str(tuple(int(i) for i in np.unravel_index(j, ref_shape)))

    def worst(mask: np.ndarray, row: int, excess: np.ndarray) -> int:
        return int(np.argmax(np.where(mask[row], excess[row], -np.inf)))

    out_of_range = (pix < low) | (pix > high)
    excess = np.maximum(low - pix, pix - high)
    rules = [Rule("pixel-range", np.asarray(out_of_range.any(axis=1)), lambda row: (
        f"pixel {pixel(j := worst(out_of_range, row, excess))} = {_num(pix[row, j])} outside the "
        f"reference range [{_num(lo)}, {_num(hi)}]"))]
    if _whole(ref_pix):
        fractional = _fractional(pix)
        rules.append(Rule("pixel-integer", np.asarray(fractional.any(axis=1)), lambda row: (
            f"pixel {pixel(j := int(np.argmax(fractional[row])))} = {_num(pix[row, j])} is not a "
            "whole number (the reference has only whole numbers)")))
    if pixelwise:
        p_lo, p_hi = ref_pix.min(axis=0), ref_pix.max(axis=0)
        pad = tolerance * (hi - lo)
        off = (pix < p_lo - pad) | (pix > p_hi + pad)
        p_excess = np.maximum(p_lo - pad - pix, pix - p_hi - pad)
        rules.append(Rule("pixelwise-range", off.any(axis=1), lambda row: (
            f"pixel {pixel(j := worst(off, row, p_excess))} = {_num(pix[row, j])} outside its "
            f"reference range [{_num(p_lo[j])}, {_num(p_hi[j])}]")))
    return rules


def _text_rules(reference: Dataset, data: Dataset, tolerance: float) -> list[Rule]:
    ref_len = np.fromiter((len(t) for t in reference.X), dtype=np.int64, count=reference.n_rows)
    length = np.fromiter((len(t) for t in data.X), dtype=np.int64, count=data.n_rows)
    lo, hi = int(ref_len.min()), int(ref_len.max())
    low, high = _bounds(lo, hi, tolerance)
    charset = set().union(*(set(t) for t in reference.X))
    unseen = [sorted(c for c in set(t) - charset if not _ordinary(c)) for t in data.X]
    return [
        Rule("text-length", (length < low) | (length > high), lambda row: (
            f"text of {length[row]} characters outside the reference length range [{lo}, {hi}]")),
        Rule("charset", np.asarray([bool(u) for u in unseen], dtype=bool), lambda row: (
            f"characters not in the reference: {_listing([repr(c) for c in unseen[row]])}")),
    ]


def check_rules(reference: Dataset, data: Dataset, *, tolerance: float | None = None,
                pixelwise: bool = True) -> list[Rule]:
    """The rules learned from ``reference``, each with the rows of ``data`` that break it.

    ``reference`` and ``data`` must have the same modality (see :meth:`Validation.applies`);
    ``tolerance`` widens ranges (default :func:`default_tolerance` of the reference's rows).
    """
    if tolerance is None:
        tolerance = default_tolerance(reference.n_rows)
    rules = _label_rules(reference, data)
    if data.modality == "tabular":
        rules += _tabular_rules(reference, data, tolerance)
    elif data.modality == "image":
        rules += _image_rules(reference, data, tolerance, pixelwise)
    else:
        rules += _text_rules(reference, data, tolerance)
    return rules


@register
class Validation(Detector):
    """1 for a row that breaks a rule learned from the trusted reference (column types,
    ranges, whole numbers, categories, labels, image shape and pixel ranges, text length and
    characters), else 0; higher = more suspicious. See the module docstring for the rules.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard import Dataset
    >>> from poisonguard.evidence import Evidence
    >>> ref = Dataset(np.array([[18.0], [50.0], [90.0]]), [0, 1, 0], feature_names=["age"])
    >>> data = Dataset(np.array([[30.0], [212.0], [40.0]]), [0, 0, 1], feature_names=["age"])
    >>> ev = Evidence(data, reference=ref)
    >>> Validation().suspicion(ev).tolist()
    [0.0, 1.0, 0.0]
    >>> Validation().explain(ev, np.array([1]))
    ["column 'age' = 212 outside the reference range [18, 90]"]
    """

    name = "validation"
    two_phase = False  # scores only the rows it was fitted on (one-phase shortcuts)
    summary = "breaks a rule learned from the trusted reference data"
    requires = ("reference",)
    calibration: ClassVar[Calibration] = "probability"
    needs_reference = True
    answers = ("availability", "backdoor", "targeted")
    papers = (
        "Breck, Polyzotis, Roy, Whang, Zinkevich. Data Validation for Machine Learning. "
        "MLSys 2019",
        "Schelter, Lange, Schmidt, Celikel, Biessmann, Grafberger. Automating Large-Scale Data "
        "Quality Verification. VLDB 2018",
    )

    def __init__(self, *, tolerance: float | None = None, pixelwise: bool = True) -> None:
        self.tolerance = tolerance
        self.pixelwise = pixelwise

    def applies(self, evidence: Evidence) -> str | None:
        why = super().applies(evidence)
        if why is None and evidence.reference is not None and (
                evidence.reference.modality != evidence.dataset.modality):
            why = (f"the reference is {evidence.reference.modality} data, the scanned data "
                   f"{evidence.dataset.modality}")
        return why

    def _rules(self, evidence: Evidence) -> list[Rule]:
        reference: Any = evidence.reference
        return check_rules(reference, evidence.dataset, tolerance=self.tolerance,
                           pixelwise=self.pixelwise)

    def suspicion(self, evidence: Evidence) -> np.ndarray:
        """1.0 where a row breaks at least one rule, else 0.0; higher = more suspicious."""
        broken = np.zeros(evidence.n_rows, dtype=bool)
        for rule in self._rules(evidence):
            broken |= rule.broken
        return broken.astype(np.float64)

    def explain(self, evidence: Evidence, rows: np.ndarray) -> list[str]:
        rules = self._rules(evidence)
        out = []
        for row in np.asarray(rows, dtype=np.int64).tolist():
            hits = [rule for rule in rules if rule.broken[row]]
            if not hits:
                out.append("breaks no rule learned from the reference")
                continue
            text = hits[0].message(row)
            if len(hits) > 1:
                text += f" (and {len(hits) - 1} more rule{'s' if len(hits) > 2 else ''})"
            out.append(text)
        return out
