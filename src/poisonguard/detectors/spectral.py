"""Spectral signatures: per class, rows far out along the directions poison stretches the embedding.

Tran et al. centre each class's embedding, take its top singular vector and score every row by its
squared projection on it: a poisoned sub-population shifts the class mean and leaves a strong
direction behind. On real proxy embeddings that classic form is weak (measured AUROC 0.58-0.75 on
backdoors of digits): clean classes are anisotropic, so the top direction is usually their own
largest spread, and the mean is dragged towards the poison. The default ``robust`` variant follows
SPECTRE (Hayase et al.): reduce the class to ``dim`` principal components, estimate the clean
core's mean and covariance robustly (minimum-covariance-determinant style concentration steps on
the most compact half of the class, several deterministic starts), whiten with it, and score the
quantum-entropy weighting of the whitened row (``alpha = 0``, the measured best, is the whitened
squared norm; large ``alpha`` is the squared projection on the top whitened direction). Each
class's scores are divided by the median over its own core, so a class where half the rows are
poison is still scored against its clean half, and classes are comparable; the detector returns
the square root (a robust distance in core standard deviations), whose lighter tail suits the
ensemble's ``tail`` calibration.

Two phases: :meth:`Spectral.fit` keeps, per class of the fitted rows, the whitening (class mean,
principal axes, core mean and whitening transform; :class:`Whitening`), the quantum-entropy
directions and weights, the core's median score and the class's sorted fitted scores (for the
reasons' ranks); the classic variant keeps the class mean, the top singular vector and its
median. A new row is scored with the state of its *given* label's class: whitened by that
class's fitted transform and divided by that class's fitted core median, so a row whose label
was flipped, or which carries a trigger, lies as far out as it would among the fitted rows. A
new row of a class with too few fitted rows to whiten scores 0, as the class's fitted rows do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from poisonguard.detectors._base import Detector, Scores, register

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence, View

__all__ = ["Spectral", "SpectralClass", "SpectralState", "WhitenedClass", "Whitening",
           "whiten_class", "whitened_rows"]

_MIN_ROWS = 6
_SHRINK = 0.1


@dataclass(frozen=True)
class Whitening:
    """The map from raw embedding rows of one class to its whitened coordinates: centre on the
    class ``mean`` ``(d,)``, project on the principal ``axes`` ``(d, k)``, centre on the robust
    core's ``center`` ``(k,)`` and multiply by ``transform`` ``(k, k)``."""

    mean: np.ndarray
    axes: np.ndarray
    center: np.ndarray
    transform: np.ndarray

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        """Whitened coordinates ``(m, k)`` of embedding ``rows`` ``(m, d)``."""
        X = np.asarray(rows, dtype=np.float64) - self.mean
        out: np.ndarray = (X @ self.axes - self.center) @ self.transform
        return out


@dataclass(frozen=True)
class WhitenedClass:
    """One class's embedding rows in robustly whitened coordinates.

    ``coords`` ``(m, k)``: rows centred on the robust core mean and whitened by the core
    covariance (``k`` may be 0 when the rows do not vary); ``core``: True for the rows of the
    most compact half that estimated them; ``whitening``: the fitted map that gives other rows'
    coordinates (``None`` when ``k`` is 0).
    """

    coords: np.ndarray
    core: np.ndarray
    whitening: Whitening | None = None


def _concentrate(Z: np.ndarray, start: np.ndarray, h: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Concentration steps from ``start`` (rows): mean, shrunk covariance, log-determinant."""
    d = Z.shape[1]
    keep = start
    mu = Z[keep].mean(axis=0)
    cov = np.eye(d)
    for _ in range(10):
        B = Z[keep]
        mu = B.mean(axis=0)
        raw = np.atleast_2d(np.cov(B, rowvar=False))
        scale = max(float(np.trace(raw)) / d, 1e-12)
        cov = (1.0 - _SHRINK) * raw + _SHRINK * scale * np.eye(d)
        diff = Z - mu
        dist = np.einsum("ij,ij->i", diff @ np.linalg.inv(cov), diff)
        new = np.sort(np.argsort(dist, kind="stable")[:h])
        if np.array_equal(new, keep):
            break
        keep = new
    return mu, cov, float(np.linalg.slogdet(cov)[1])


def whiten_class(rows: np.ndarray, dim: int = 10) -> WhitenedClass:
    """Whiten one class's embedding ``rows`` by a robust estimate of its clean core.

    The rows are reduced to at most ``dim`` principal components (fewer for small classes);
    concentration steps from the half nearest the coordinate-wise median and from both ends of
    the first three components keep the start whose covariance has the smallest determinant.
    """
    X = np.array(rows, dtype=np.float64)  # a copy: centred in place
    m = len(X)
    if m < _MIN_ROWS:
        return WhitenedClass(np.zeros((m, 0)), np.ones(m, dtype=bool))
    mean = X.mean(axis=0)
    X -= mean
    # principal axes from the d x d scatter matrix: no m x d factor for a 500,000-row class
    values, vectors = np.linalg.eigh(X.T @ X)
    s = np.sqrt(np.clip(values[::-1], 0.0, None))
    vt = vectors[:, ::-1].T
    rank = int((s > 1e-6 * max(float(s[0]), 1e-300)).sum()) if s[0] > 1e-12 else 0
    k = min(dim, rank, (m - 1) // 3)
    if k < 1:
        return WhitenedClass(np.zeros((m, 0)), np.ones(m, dtype=bool))
    Z = X @ vt[:k].T
    del X
    h = max(k + 1, (m + 1) // 2)
    median = np.median(Z, axis=0)
    starts = [np.sort(np.argsort(((Z - median) ** 2).sum(axis=1), kind="stable")[:h])]
    for j in range(min(3, k)):
        order = np.argsort(Z[:, j], kind="stable")
        starts += [np.sort(order[:h]), np.sort(order[-h:])]
    best = min((_concentrate(Z, start, h) for start in starts), key=lambda t: t[2])
    mu, cov = best[0], best[1]
    values, vectors = np.linalg.eigh(cov)
    transform = vectors / np.sqrt(np.maximum(values, 1e-12))
    Y = (Z - mu) @ transform
    dist = (Y ** 2).sum(axis=1)
    core = dist <= np.sort(dist)[h - 1]
    return WhitenedClass(Y, core, Whitening(mean, np.ascontiguousarray(vt[:k].T), mu, transform))


def whitened(evidence: Evidence, code: int, dim: int = 10) -> WhitenedClass:
    """:func:`whiten_class` of the embedding rows labelled ``code``, computed once per evidence
    (``spectral`` and ``clusters`` both read it)."""

    def compute() -> WhitenedClass:
        return whiten_class(evidence.embedding[evidence.labels == code], dim)

    return evidence.memo(("whitened", code, dim), compute)


def whitened_rows(view: View, code: int, dim: int, whitening: Whitening | None) -> np.ndarray:
    """Whitened coordinates of the rows of ``view`` labelled ``code``, in the order they come:
    the fitted rows' own :func:`whitened` coordinates, or new rows mapped by the class's fitted
    ``whitening`` (``(m, 0)`` without one); computed once per view (``spectral`` and
    ``clusters`` both read them)."""
    if view.in_sample:
        return whitened(view.evidence, code, dim).coords

    def compute() -> np.ndarray:
        rows = view.embedding[view.labels == code]
        return np.zeros((len(rows), 0)) if whitening is None else whitening(rows)

    return view.memo(("whitened rows", code, dim), compute)


def _que_basis(Y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The whitened directions and their weights of the quantum-entropy score (``None`` for
    ``alpha = 0``)."""
    if alpha == 0.0:
        return None
    values, vectors = np.linalg.eigh(Y.T @ Y / len(Y))
    weights = np.exp(alpha * (values - values.max()) / max(float(values.max()) - 1.0, 1e-9))
    return vectors, weights


def _que_apply(Y: np.ndarray, basis: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """Quantum-entropy score of whitened rows ``Y`` with the directions and weights ``basis``
    fitted by :func:`_que_basis` (``None``: the squared norm)."""
    if basis is None:
        out: np.ndarray = (Y ** 2).sum(axis=1)
        return out
    vectors, weights = basis
    out = ((Y @ vectors) ** 2 @ weights) / weights.sum() * Y.shape[1]
    return out


def _que(Y: np.ndarray, alpha: float) -> np.ndarray:
    """Quantum-entropy score of whitened rows: ``alpha = 0`` is the squared norm, large
    ``alpha`` the squared projection on the top direction (times the dimension)."""
    return _que_apply(Y, _que_basis(Y, alpha))


def _classic_fit(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Tran et al.'s state of one class: its mean, the top singular vector of the mean-centred
    rows and the median squared projection on it (``None`` for a class too small or flat)."""
    X = np.asarray(rows, dtype=np.float64)
    if len(X) < 3:
        return None
    mean = X.mean(axis=0)
    X = X - mean
    _, s, vt = np.linalg.svd(X, full_matrices=False)
    if s[0] <= 1e-12:
        return None
    direction = vt[0].copy()
    proj = (X @ direction) ** 2
    return mean, direction, max(float(np.median(proj)), 1e-12 * float(proj.max()), 1e-300)


def _classic_apply(rows: np.ndarray, fitted: tuple[np.ndarray, np.ndarray, float] | None
                   ) -> np.ndarray:
    """Squared projection of ``rows`` on a class's top singular vector over its median."""
    if fitted is None:
        return np.zeros(len(rows))
    mean, direction, median = fitted
    X = np.asarray(rows, dtype=np.float64) - mean
    out: np.ndarray = (X @ direction) ** 2 / median
    return out


def _classic(rows: np.ndarray) -> np.ndarray:
    """Tran et al.: squared projection on the top singular vector of the mean-centred rows,
    divided by its class median."""
    return _classic_apply(rows, _classic_fit(rows))


@dataclass(frozen=True)
class SpectralClass:
    """What scoring a row of one class needs: ``ranked`` (the class's fitted scores, sorted),
    and for the robust score the ``whitening``, the quantum-entropy ``basis`` (``None`` for
    ``alpha = 0``) and the core's median score ``scale`` (0: the class scores 0); for the classic
    score ``classic`` (mean, top singular vector, median squared projection)."""

    ranked: np.ndarray
    whitening: Whitening | None = None
    basis: tuple[np.ndarray, np.ndarray] | None = None
    scale: float = 0.0
    classic: tuple[np.ndarray, np.ndarray, float] | None = None


@dataclass(frozen=True)
class SpectralState:
    """Per class code of the fitted rows, its :class:`SpectralClass`."""

    classes: dict[int, SpectralClass] = field(default_factory=dict)


@register
class Spectral(Detector):
    """Spectral signatures per class on the proxy embedding; higher = more suspicious.

    ``robust=True`` (default) is the SPECTRE-style robust whitening described in the module
    docstring; ``robust=False`` the classic Tran et al. score. ``dim`` bounds the principal
    components kept per class; ``alpha`` is the quantum-entropy weight (0: whitened distance).
    New rows are scored with the fitted state of their given label's class.

    Examples
    --------
    >>> from poisonguard.datasets import make_tabular
    >>> from poisonguard.evidence import Evidence
    >>> ev = Evidence(make_tabular(n_rows=120, random_state=0))
    >>> scores = Spectral().suspicion(ev)
    >>> scores.shape, bool((scores >= 0).all())
    ((120,), True)
    """

    name: ClassVar[str] = "spectral"
    summary: ClassVar[str] = "far from its class's robust core along the embedding's spectral directions"
    requires: ClassVar[tuple[str, ...]] = ("embedding", "labels")
    calibration = "tail"
    answers: ClassVar[tuple[str, ...]] = ("backdoor", "targeted")
    papers: ClassVar[tuple[str, ...]] = (
        "Tran, Li, Madry. Spectral Signatures in Backdoor Attacks. NeurIPS 2018",
        "Hayase, Kong, Somani, Oh. SPECTRE: Defending Against Backdoor Attacks Using Robust "
        "Statistics. ICML 2021",
    )

    def __init__(self, *, robust: bool = True, dim: int = 10, alpha: float = 0.0) -> None:
        self.robust = robust
        self.dim = dim
        self.alpha = alpha

    def _robust_class(self, white: WhitenedClass) -> tuple[np.ndarray, SpectralClass]:
        """A class's robust distances (0 when it cannot be whitened) and its state (without
        ``ranked``)."""
        m = len(white.coords)
        if white.coords.shape[1] == 0:
            return np.zeros(m), SpectralClass(np.zeros(0))
        basis = _que_basis(white.coords, float(self.alpha))
        score = _que_apply(white.coords, basis)
        scale = float(np.median(score[white.core]))
        if not scale > 1e-12:
            return np.zeros(m), SpectralClass(np.zeros(0), white.whitening, basis, 0.0)
        return np.sqrt(score / scale), SpectralClass(np.zeros(0), white.whitening, basis, scale)

    def fit(self, evidence: Evidence) -> SpectralState:
        """Per class: the whitening, quantum-entropy basis and core scale (robust), or the mean,
        top direction and median (classic), and the class's sorted fitted scores."""
        emb = evidence.embedding  # float32; each class is cast on its own
        labels = evidence.labels
        out = np.zeros(len(labels))
        states: dict[int, SpectralClass] = {}
        for code in np.unique(labels):
            idx = np.flatnonzero(labels == code)
            if not self.robust:
                fitted = _classic_fit(emb[idx])
                out[idx] = np.sqrt(_classic_apply(emb[idx], fitted))
                states[int(code)] = SpectralClass(np.zeros(0), classic=fitted)
                continue
            out[idx], states[int(code)] = self._robust_class(
                whitened(evidence, int(code), self.dim))
        out = np.nan_to_num(out, nan=0.0, posinf=0.0)
        return SpectralState({code: SpectralClass(np.sort(out[labels == code]), s.whitening,
                                                  s.basis, s.scale, s.classic)
                              for code, s in states.items()})

    def score(self, view: View, state: SpectralState) -> Scores:
        """Per-class robust distance (core standard deviations) of each row, with its class's
        fitted state; higher = more suspicious. The payload keeps the row's rank among the
        fitted rows of its class (``rank``, 1 = highest) and their number (``of``)."""
        labels = view.labels
        out = np.zeros(len(labels))
        for code in np.unique(labels):
            fitted = state.classes.get(int(code))
            if fitted is None:  # a class without fitted rows
                continue
            idx = np.flatnonzero(labels == code)
            if not self.robust:
                out[idx] = np.sqrt(_classic_apply(view.embedding[idx], fitted.classic))
                continue
            if fitted.whitening is None or fitted.scale <= 1e-12:
                continue
            Y = whitened_rows(view, int(code), self.dim, fitted.whitening)
            out[idx] = np.sqrt(_que_apply(Y, fitted.basis) / fitted.scale)
        out = np.nan_to_num(out, nan=0.0, posinf=0.0)
        rank = np.ones(len(labels), dtype=np.int64)
        of = np.zeros(len(labels), dtype=np.int64)
        for code in np.unique(labels):
            fitted = state.classes.get(int(code))
            if fitted is None:
                continue
            idx = np.flatnonzero(labels == code)
            same = fitted.ranked
            rank[idx] = len(same) - np.searchsorted(same, out[idx], side="right") + 1
            of[idx] = len(same)
        return Scores(out, {"labels": labels, "rank": rank, "of": of})

    def reasons(self, view: View, scores: Scores, rows: np.ndarray) -> list[str]:
        """The row's distance and how it ranks among the fitted rows of its class."""
        p = scores.payload
        lines = []
        for r in np.asarray(rows, dtype=np.int64):
            cls = view.classes[p["labels"][r]]
            where = (f"#{p['rank'][r]} of {p['of'][r]} rows in that class" if view.in_sample
                     else f"#{p['rank'][r]} against the {p['of'][r]} fitted rows of that class")
            lines.append(f"{scores.suspicion[r]:.1f} robust SDs from the core of class "
                         f"{cls!s} in embedding space ({where})")
        return lines
