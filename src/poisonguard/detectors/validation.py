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

**Two phases.** ``fit`` learns the rules from the reference alone (:func:`learn_rules`: its
labels, column types, ranges and categories, image shape and pixel ranges, text length range
and unusual characters; :class:`ValidationState`, a few numbers per column or pixel); the rows
the evidence was fitted on play no part. ``score`` checks each row of any view against them —
the fitted rows or a chunk the evidence never saw give the same answer for the same row — one
rule at a time, keeping per row the number of rules broken and the first one's message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from poisonguard.detectors._base import Calibration, Detector, Scores, register

if TYPE_CHECKING:
    from poisonguard.dataset import Dataset
    from poisonguard.evidence import Evidence, View

__all__ = ["Rule", "Validation", "ValidationState", "apply_rules", "check_rules",
           "default_tolerance", "learn_rules"]

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


# ---------------------------------------------------------------------------- learned rules
@dataclass(frozen=True)
class _Numeric:
    """A numeric reference column: its dtype (named in messages), whether it has missing values,
    the range of its present values (``None`` when it has none) and whether they are whole."""

    col: Any
    dtype: str
    missing: bool
    lo: float | None
    hi: float | None
    whole: bool

    @classmethod
    def learn(cls, col: Any, ref: pd.Series) -> _Numeric:
        r = ref.to_numpy(dtype=np.float64, na_value=np.nan)
        ref_missing = np.isnan(r)
        r = r[~ref_missing]
        if not r.size:
            return cls(col, str(ref.dtype), bool(ref_missing.any()), None, None, False)
        return cls(col, str(ref.dtype), bool(ref_missing.any()), float(r.min()), float(r.max()),
                   _whole(r))

    def check(self, values: pd.Series, tolerance: float) -> list[Rule]:
        col = self.col
        raw = values.to_numpy()
        present = values.notna().to_numpy()
        if values.dtype.kind in "iufb":
            v = values.to_numpy(dtype=np.float64, na_value=np.nan)
            rules = []
        else:
            v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            bad = ~np.isfinite(v) & present
            rules = [Rule(f"type:{col}", bad, lambda row: f"column {col!r} = {raw[row]!r} is not a "
                          f"number (the reference column is {self.dtype})")]
            v = np.where(bad, np.nan, v)
        if not self.missing:
            rules.append(Rule(f"null:{col}", ~present, lambda row: (
                f"column {col!r} is missing a value (the reference has none missing)")))
        if self.lo is None or self.hi is None:
            return rules
        lo, hi = self.lo, self.hi
        low, high = _bounds(lo, hi, tolerance)
        with np.errstate(invalid="ignore"):
            outside = (v < low) | (v > high)
            rules.append(Rule(f"range:{col}", outside, lambda row: (
                f"column {col!r} = {_num(v[row])} outside the reference range "
                f"[{_num(lo)}, {_num(hi)}]")))
            if self.whole:
                fractional = np.isfinite(v) & _fractional(v)
                rules.append(Rule(f"integer:{col}", fractional, lambda row: (
                    f"column {col!r} = {_num(v[row])} is not a whole number (the reference has "
                    "only whole numbers)")))
        return rules


def _as_text(values: pd.Series) -> np.ndarray:
    """Values as text, a missing one as ``<missing>`` (allowed where the reference has one)."""
    text: np.ndarray = values.astype(str).to_numpy(dtype=object)
    text[values.isna().to_numpy()] = MISSING
    return text


@dataclass(frozen=True)
class _Categorical:
    """A categorical reference column: its categories (as text, sorted)."""

    col: Any
    known: tuple[str, ...]

    @classmethod
    def learn(cls, col: Any, ref: pd.Series) -> _Categorical:
        return cls(col, tuple(sorted(set(_as_text(ref).tolist()))))

    def check(self, values: pd.Series) -> Rule:
        col, known = self.col, list(self.known)
        v = _as_text(values)
        broken = ~np.isin(v, np.asarray(known, dtype=object))
        listing = _listing(known)
        return Rule(f"category:{col}", broken, lambda row: (
            f"column {col!r} = {v[row]!r} not among the reference categories ({listing})"))


@dataclass(frozen=True)
class _Images:
    """The reference's image shape, pixel range, whole-numberness and (``pixelwise``) each
    pixel's own range."""

    shape: tuple[int, ...]
    lo: float
    hi: float
    whole: bool
    pixel_lo: np.ndarray | None
    pixel_hi: np.ndarray | None


@dataclass(frozen=True)
class _Texts:
    """The reference's text length range and the characters it uses outside printable ASCII and
    whitespace."""

    lo: int
    hi: int
    unusual: frozenset[str]


@dataclass(frozen=True)
class ValidationState:
    """The rules learned from the trusted reference: its labels (as text, sorted), the
    tolerance that widens ranges, and by modality the columns (name, type, range, categories),
    the image shape and pixel ranges, or the text length range and unusual characters."""

    modality: str
    tolerance: float
    labels: tuple[str, ...]
    columns: tuple[_Numeric | _Categorical, ...] = ()
    images: _Images | None = None
    texts: _Texts | None = None


def learn_rules(reference: Dataset, *, tolerance: float | None = None,
                pixelwise: bool = True) -> ValidationState:
    """The rules of ``reference`` (see the module docstring); ``tolerance`` widens ranges
    (default :func:`default_tolerance` of the reference's rows)."""
    if tolerance is None:
        tolerance = default_tolerance(reference.n_rows)
    labels = tuple(sorted({str(c) for c in reference.classes}))
    if reference.modality == "tabular":
        ref = reference.frame()
        columns = tuple(_Numeric.learn(col, ref[col]) if ref[col].dtype.kind in "iuf"
                        else _Categorical.learn(col, ref[col]) for col in ref.columns)
        return ValidationState("tabular", tolerance, labels, columns=columns)
    if reference.modality == "image":
        ref_pix = np.asarray(reference.X, dtype=np.float64).reshape(reference.n_rows, -1)
        images = _Images(tuple(reference.X.shape[1:]), float(ref_pix.min()), float(ref_pix.max()),
                         _whole(ref_pix), ref_pix.min(axis=0) if pixelwise else None,
                         ref_pix.max(axis=0) if pixelwise else None)
        return ValidationState("image", tolerance, labels, images=images)
    ref_len = np.fromiter((len(t) for t in reference.X), dtype=np.int64, count=reference.n_rows)
    charset = set().union(*(set(t) for t in reference.X))
    texts = _Texts(int(ref_len.min()), int(ref_len.max()),
                   frozenset(c for c in charset if not _ordinary(c)))
    return ValidationState(reference.modality, tolerance, labels, texts=texts)


# ---------------------------------------------------------------------------- rules by modality
def _label_rules(state: ValidationState, data: Dataset) -> list[Rule]:
    y = np.asarray([str(v) for v in data.y], dtype=object)
    broken = ~np.isin(y, np.asarray(state.labels, dtype=object))
    listing = _listing(list(state.labels))
    return [Rule("label", broken,
                 lambda row: f"label {y[row]!r} not in the reference labels ({listing})")]


def _tabular_rules(state: ValidationState, data: Dataset) -> Iterator[Rule]:
    frame = data.frame()
    n = data.n_rows
    names = [spec.col for spec in state.columns]
    for spec in state.columns:
        col = spec.col
        if col not in frame.columns:
            yield _all_rows(n, f"missing:{col}", f"column {col!r} of the reference is missing")
        elif isinstance(spec, _Numeric):
            yield from spec.check(frame[col], state.tolerance)
        else:
            yield spec.check(frame[col])
    for col in frame.columns:
        if col not in names:
            yield _all_rows(n, f"extra:{col}", f"column {col!r} is not in the reference")


def _image_rules(spec: _Images, data: Dataset, tolerance: float) -> list[Rule]:
    shape, ref_shape = tuple(data.X.shape[1:]), spec.shape
    n = data.n_rows
    if shape != ref_shape:
        return [_all_rows(n, "shape", f"image shape {shape} differs from the reference shape "
                                      f"{ref_shape}")]
    pix = np.asarray(data.X, dtype=np.float64).reshape(n, -1)
    lo, hi = spec.lo, spec.hi
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
    if spec.whole:
        fractional = _fractional(pix)
        rules.append(Rule("pixel-integer", np.asarray(fractional.any(axis=1)), lambda row: (
            f"pixel {pixel(j := int(np.argmax(fractional[row])))} = {_num(pix[row, j])} is not a "
            "whole number (the reference has only whole numbers)")))
    if spec.pixel_lo is not None and spec.pixel_hi is not None:
        p_lo, p_hi = spec.pixel_lo, spec.pixel_hi
        pad = tolerance * (hi - lo)
        off = (pix < p_lo - pad) | (pix > p_hi + pad)
        p_excess = np.maximum(p_lo - pad - pix, pix - p_hi - pad)
        rules.append(Rule("pixelwise-range", np.asarray(off.any(axis=1)), lambda row: (
            f"pixel {pixel(j := worst(off, row, p_excess))} = {_num(pix[row, j])} outside its "
            f"reference range [{_num(p_lo[j])}, {_num(p_hi[j])}]")))
    return rules


def _text_rules(spec: _Texts, data: Dataset, tolerance: float) -> list[Rule]:
    length = np.fromiter((len(t) for t in data.X), dtype=np.int64, count=data.n_rows)
    lo, hi = spec.lo, spec.hi
    low, high = _bounds(lo, hi, tolerance)
    unseen = [sorted(c for c in set(t) if not _ordinary(c) and c not in spec.unusual)
              for t in data.X]
    return [
        Rule("text-length", (length < low) | (length > high), lambda row: (
            f"text of {length[row]} characters outside the reference length range [{lo}, {hi}]")),
        Rule("charset", np.asarray([bool(u) for u in unseen], dtype=bool), lambda row: (
            f"characters not in the reference: {_listing([repr(c) for c in unseen[row]])}")),
    ]


def apply_rules(state: ValidationState, data: Dataset) -> Iterator[Rule]:
    """The rules of ``state``, one at a time and in order, each with the rows of ``data`` that
    break it (one rule's arrays at a time: a chunk of many columns stays bounded)."""
    yield from _label_rules(state, data)
    if state.modality == "tabular":
        yield from _tabular_rules(state, data)
    elif state.modality == "image" and state.images is not None:
        yield from _image_rules(state.images, data, state.tolerance)
    elif state.texts is not None:
        yield from _text_rules(state.texts, data, state.tolerance)


def check_rules(reference: Dataset, data: Dataset, *, tolerance: float | None = None,
                pixelwise: bool = True) -> list[Rule]:
    """The rules learned from ``reference``, each with the rows of ``data`` that break it.

    ``reference`` and ``data`` must have the same modality (see :meth:`Validation.applies`);
    ``tolerance`` widens ranges (default :func:`default_tolerance` of the reference's rows).
    """
    return list(apply_rules(learn_rules(reference, tolerance=tolerance, pixelwise=pixelwise),
                            data))


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

    def fit(self, evidence: Evidence) -> ValidationState:
        """The rules learned from ``evidence.reference`` (the fitted rows play no part)."""
        reference: Any = evidence.reference
        return learn_rules(reference, tolerance=self.tolerance, pixelwise=self.pixelwise)

    def score(self, view: View, state: ValidationState) -> Scores:
        """1.0 where a row of ``view`` breaks at least one rule, else 0.0 (higher = more
        suspicious); the payload keeps, per row, how many rules it breaks and the message of the
        first one."""
        n = view.n_rows
        hits = np.zeros(n, dtype=np.int64)
        message = np.full(n, "", dtype=object)
        for rule in apply_rules(state, view.dataset):
            first = np.flatnonzero(rule.broken & (hits == 0))
            message[first] = [rule.message(int(row)) for row in first]
            hits += rule.broken
        return Scores((hits > 0).astype(np.float64), {"hits": hits, "message": message})

    def reasons(self, view: View, scores: Scores, rows: np.ndarray) -> list[str]:
        """The first rule a row breaks, and how many more."""
        hits, message = scores.payload["hits"], scores.payload["message"]
        out = []
        for row in np.asarray(rows, dtype=np.int64).tolist():
            if not hits[row]:
                out.append("breaks no rule learned from the reference")
                continue
            text = str(message[row])
            if hits[row] > 1:
                more = int(hits[row]) - 1
                text += f" (and {more} more rule{'s' if more > 1 else ''})"
            out.append(text)
        return out
