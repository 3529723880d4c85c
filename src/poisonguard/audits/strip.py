"""STRIP (Gao et al., ACSAC 2019): an input that carries a trigger keeps its prediction when it
is superimposed with other inputs; a clean input does not.

Each input is superimposed with ``n_overlays`` clean inputs drawn by ``rng``. Images, by
``superposition``: ``"strongest"`` (the default) keeps at each pixel whichever of the two
values departs more from the clean sample's median pixel value (the background: on dark
images the brighter value, on bright images the darker), so a trigger keeps its full strength
where a 50 / 50 average would halve it; ``"add"`` adds the two images and clips to the clean
sample's range (the paper's code); ``"blend"`` averages them, ``(1 - weight) x + weight c``.
Text has a ``share`` of its words replaced by words of the clean text; tabular rows a random
``share`` of their features taken from the clean row. The input's *entropy* is the mean
Shannon entropy of the model's predictions on its superimpositions, divided by
``log(n_classes)`` so that it lies in [0, 1]. Low entropy is suspicious.

Two uses:

* **input filter** — :meth:`Strip.fit` sets the entropy threshold at the ``frr`` quantile of
  the clean sample's own entropies (each clean input superimposed with the *other* clean
  inputs) and returns a :class:`StripFilter`; ``filter(inputs)`` flags the inputs below it.
  :meth:`Strip.threshold` and :meth:`Strip.entropies` are the two halves, for a CLI.
* **model audit** — :meth:`Strip.audit` asks whether a set of inputs holds more low-entropy
  inputs than a clean sample does: the suspect inputs (``inputs=``), or, without them, a
  seeded half of the sample itself against the other half. The score is ``-log10`` of the
  one-sided Fisher exact p-value comparing the share flagged among the suspects with the
  share flagged among the calibration inputs; suspicious at ``score >= -log10(alpha)``.
  STRIP only sees triggers that are present in the inputs: on a clean sample of a backdoored
  model it has nothing to find, and says so in the report's notes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from poisonguard._validation import check_choice
from poisonguard.audits._base import Audit, AuditedModel, AuditReport, register
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["SUPERPOSITIONS", "Pixels", "Strip", "StripFilter", "StripVerdict", "superimpose"]

_CHUNK = 8192  # superimposed inputs per call of predict_proba


def _inputs(data: Any) -> Any:
    """The input array of a :class:`Dataset` or of an array-like of inputs."""
    X = data.X if isinstance(data, Dataset) else data
    if isinstance(X, np.ndarray) and X.dtype == object:
        return X
    if isinstance(X, list | tuple) and X and isinstance(X[0], str):
        return np.asarray(X, dtype=object)
    try:
        return np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError("STRIP needs numeric inputs, or texts for a text model (got "
                         "non-numeric columns)") from None


SUPERPOSITIONS = ("strongest", "add", "blend")


@dataclass(frozen=True)
class Pixels:
    """What image superposition needs of the clean sample: its median pixel value
    (``background``) and its range."""

    background: float
    low: float
    high: float

    @classmethod
    def of(cls, pool: Any) -> Pixels:
        arr = np.asarray(pool, dtype=np.float64)
        return cls(float(np.median(arr)), float(arr.min()), float(arr.max()))


def superimpose(x: Any, overlays: Any, modality: str, *, weight: float, share: float,
                rng: np.random.Generator, superposition: str = "strongest",
                pixels: Pixels | None = None) -> Any:
    """``x`` (one input) superimposed with each of ``overlays`` (clean inputs), as STRIP does
    for ``modality`` (see the module); ``pixels`` defaults to the overlays' own."""
    if modality == "image":
        a, b = np.asarray(x, dtype=np.float64)[None], np.asarray(overlays, dtype=np.float64)
        if superposition == "blend":
            return (1.0 - weight) * a + weight * b
        px = Pixels.of(b) if pixels is None else pixels
        if superposition == "add":
            return np.clip(a + b - px.background, px.low, px.high)
        return np.where(np.abs(a - px.background) >= np.abs(b - px.background), a, b)
    if modality == "tabular":
        over = np.asarray(overlays)
        take = rng.random(over.shape) < share
        return np.where(take, over, np.asarray(x)[None])
    words = str(x).split()
    out = np.empty(len(overlays), dtype=object)
    for k, other in enumerate(overlays):
        pool = str(other).split()
        swap = rng.random(len(words)) < share
        picks = rng.integers(len(pool), size=len(words)) if pool else np.zeros(len(words), int)
        out[k] = " ".join(pool[p] if s and pool else w for w, s, p in zip(words, swap, picks, strict=True))
    return out


@dataclass(frozen=True, eq=False)
class StripVerdict:
    """What the filter says about each input: ``entropy`` in [0, 1] (lower is more
    suspicious), ``flagged`` (entropy below ``threshold``)."""

    entropy: np.ndarray
    flagged: np.ndarray
    threshold: float


@dataclass(frozen=True, eq=False)
class StripFilter:
    """A fitted STRIP input filter: the model, the clean overlays and the entropy threshold.
    ``frr`` is the share of clean inputs it rejects on the calibration sample."""

    strip: Strip
    model: AuditedModel
    overlays: Any
    threshold: float
    frr: float

    def filter(self, inputs: Any, *, rng: np.random.Generator) -> StripVerdict:
        """Entropy of each input and whether it is flagged (``entropy < threshold``)."""
        entropy = self.strip._entropy(self.model, _inputs(inputs), self.overlays, rng, exclude=False)
        return StripVerdict(entropy, entropy < self.threshold, self.threshold)


@register
class Strip(Audit):
    """STRIP: entropy of the predictions on an input superimposed with clean inputs.

    Parameters
    ----------
    n_overlays : int
        Clean inputs superimposed on each input (the paper's N, 20 here; ART's default too).
    superposition : {"strongest", "add", "blend"}
        How images are superimposed (see the module).
    weight : float
        Images, ``"blend"``: the overlay's weight.
    share : float
        Text and tabular: the share of words or features taken from the overlay.
    frr : float
        False rejection rate on clean inputs that sets the filter's threshold.
    alpha : float
        Audit: significance of the one-sided Fisher test (the score's threshold is
        ``-log10(alpha)``).
    max_inputs : int
        Audit: the most suspect inputs and calibration inputs scored (seeded subsets).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.audits._zoo import make_case
    >>> from poisonguard.datasets import make_tabular
    >>> case = make_case(make_tabular(n_rows=300), model="hgb", rate=0.0, n_clean=60)
    >>> strip = Strip(n_overlays=5)
    >>> fitted = strip.fit(case.model, case.clean, rng=np.random.default_rng(0))
    >>> verdict = fitted.filter(case.test, rng=np.random.default_rng(1))
    >>> verdict.entropy.shape == (case.test.n_rows,), 0.0 <= fitted.threshold <= 1.0
    (True, True)
    """

    name: ClassVar[str] = "strip"
    summary: ClassVar[str] = "entropy of predictions on inputs superimposed with clean inputs"

    def __init__(self, *, n_overlays: int = 20, superposition: str = "strongest",
                 weight: float = 0.5, share: float = 0.5, frr: float = 0.01, alpha: float = 0.01,
                 max_inputs: int = 1000) -> None:
        check_choice("superposition", superposition, SUPERPOSITIONS)
        for key, value in (("n_overlays", n_overlays), ("max_inputs", max_inputs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"'{key}' must be an integer of at least 1 (got {value!r})")
        for key, share_ in (("weight", weight), ("share", share), ("frr", frr), ("alpha", alpha)):
            if not 0.0 < share_ < 1.0:
                raise InputError(f"'{key}' must be in (0, 1) (got {share_!r})")
        self.n_overlays = n_overlays
        self.superposition = superposition
        self.weight = weight
        self.share = share
        self.frr = frr
        self.alpha = alpha
        self.max_inputs = max_inputs

    # ------------------------------------------------------------------------ the filter
    def entropies(self, model: AuditedModel, inputs: Any, clean: Dataset, *,
                  rng: np.random.Generator) -> np.ndarray:
        """Normalised entropy in [0, 1] of each of ``inputs`` (a Dataset or an array of
        inputs) superimposed with ``n_overlays`` inputs of ``clean``; lower is more
        suspicious."""
        self.check(model, clean)
        return self._entropy(model, _inputs(inputs), _inputs(clean), rng, exclude=False)

    def threshold(self, model: AuditedModel, clean: Dataset, *, frr: float | None = None,
                  rng: np.random.Generator) -> float:
        """The entropy threshold that rejects ``frr`` (default: the audit's) of ``clean``:
        the ``frr`` quantile of the clean inputs' entropies, each superimposed with other
        clean inputs."""
        self.check(model, clean)
        frr = self.frr if frr is None else frr
        if not 0.0 < frr < 1.0:
            raise InputError(f"'frr' must be in (0, 1) (got {frr!r})")
        X = _inputs(clean)
        if len(X) < 2:
            raise InputError(f"STRIP needs at least 2 clean inputs (got {len(X)})")
        return float(np.quantile(self._entropy(model, X, X, rng, exclude=True), frr))

    def fit(self, model: AuditedModel, clean: Dataset, *, frr: float | None = None,
            rng: np.random.Generator) -> StripFilter:
        """A :class:`StripFilter` whose threshold rejects ``frr`` of the clean inputs."""
        frr = self.frr if frr is None else frr
        threshold = self.threshold(model, clean, frr=frr, rng=rng)
        return StripFilter(self, model, _inputs(clean), threshold, frr)

    def _entropy(self, model: AuditedModel, X: Any, pool: Any, rng: np.random.Generator,
                 *, exclude: bool) -> np.ndarray:
        """Entropies of ``X`` against overlays from ``pool``; ``exclude``: ``X`` is ``pool``
        and an input is never superimposed with itself."""
        n, m, k = len(X), len(pool), self.n_overlays
        if exclude:
            picks = (np.arange(n)[:, None] + 1 + rng.integers(m - 1, size=(n, k))) % m
        else:
            picks = rng.integers(m, size=(n, k))
        per_chunk = max(1, _CHUNK // k)
        out = np.empty(n)
        log_k = np.log(max(model.n_classes, 2))
        pixels = Pixels.of(pool) if model.modality == "image" else None
        for start in range(0, n, per_chunk):
            rows = range(start, min(n, start + per_chunk))
            mixed = [superimpose(X[i], pool[picks[i]], model.modality, weight=self.weight,
                                 share=self.share, rng=rng, superposition=self.superposition,
                                 pixels=pixels) for i in rows]
            batch = np.concatenate(mixed)
            proba = np.clip(np.asarray(model.predict_proba(batch), dtype=np.float64), 1e-12, 1.0)
            h = -(proba * np.log(proba)).sum(axis=1) / log_k
            out[start:start + len(rows)] = h.reshape(len(rows), k).mean(axis=1)
        return out

    # ------------------------------------------------------------------------- the audit
    def audit(self, model: AuditedModel, clean: Dataset, *, rng: np.random.Generator,
              inputs: Any = None) -> AuditReport:
        """Does ``inputs`` (default: half of ``clean``) hold more low-entropy inputs than
        ``clean``? (See the module for the rule; higher score is more suspicious.)"""
        from scipy.stats import fisher_exact

        start = time.perf_counter()
        self.check(model, clean)
        X = _inputs(clean)
        notes: list[str] = []
        if inputs is None:
            order = rng.permutation(len(X))
            half = len(X) // 2
            calib, suspects = X[np.sort(order[:half])], X[np.sort(order[half:])]
            notes.append("no suspect inputs: half of the clean sample was tested against the "
                         "other half; STRIP cannot see a backdoor whose trigger is absent from "
                         "the inputs")
        else:
            calib, suspects = X, _inputs(inputs)
        if len(calib) < 2 or len(suspects) < 1:
            raise InputError(f"STRIP needs at least 2 clean inputs and 1 suspect input (got "
                             f"{len(calib)} and {len(suspects)})")
        calib = _subset(calib, self.max_inputs, rng)
        suspects = _subset(suspects, self.max_inputs, rng)
        calib_h = self._entropy(model, calib, calib, rng, exclude=True)
        threshold = float(np.quantile(calib_h, self.frr))
        h = self._entropy(model, suspects, calib, rng, exclude=False)
        flagged = h < threshold
        k_s, n_s = int(flagged.sum()), len(h)
        k_c, n_c = int((calib_h < threshold).sum()), len(calib_h)
        p = float(fisher_exact([[k_s, n_s - k_s], [k_c, n_c - k_c]], alternative="greater")[1])
        score = max(0.0, float(-np.log10(max(p, 1e-300))))
        cut = float(-np.log10(self.alpha))
        predicted = np.asarray(model.predict_proba(suspects)).argmax(axis=1)
        classes = np.asarray(model.classes)
        per_class = []
        for c in range(model.n_classes):
            rows = predicted == c
            per_class.append({"class": _plain(classes[c]), "n_inputs": int(rows.sum()),
                              "flagged": int(flagged[rows].sum()),
                              "mean_entropy": round(float(h[rows].mean()), 4) if rows.any() else None})
        suspicious = score >= cut
        target = None
        if suspicious:
            target = classes[int(np.bincount(predicted[flagged], minlength=model.n_classes).argmax())]
        details = {"entropy_threshold": round(threshold, 6), "frr": self.frr,
                   "flagged_share": round(k_s / n_s, 4), "calibration_flagged_share": round(k_c / n_c, 4),
                   "n_suspects": n_s, "n_calibration": n_c, "p_value": p,
                   "n_overlays": self.n_overlays}
        return AuditReport(self.name, suspicious, score, cut, target=target,
                           per_class=tuple(per_class), details=details, notes=tuple(notes),
                           seconds=time.perf_counter() - start)


def _subset(X: Any, limit: int, rng: np.random.Generator) -> Any:
    if len(X) <= limit:
        return X
    return X[np.sort(rng.choice(len(X), limit, replace=False))]


def _plain(label: Any) -> Any:
    return label.item() if isinstance(label, np.generic) else label
