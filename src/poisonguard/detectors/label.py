"""``label``: the probability that a row's label is wrong, from a confident-learning noise model.

1. **Posterior of the given labels.** Two held-out estimates of ``p(label | x)`` are pooled: the
   out-of-fold model probabilities ``P`` and the label distribution ``Q`` of the row's nearest
   neighbours in a label-free view of the features (``evidence.feature_neighbors``; the row
   itself is never among them). The pool is a weighted product of experts,
   ``softmax(a log P + b log Q)``, whose two weights ``a, b >= 0`` maximise the likelihood of
   the given labels. Both experts are held out, so this is honest stacking: an expert that only
   echoes the labels cannot be rewarded, and one that is uninformative gets little weight.
2. **Noise model.** The confident joint (Northcutt et al., 2021) counts, per given label ``i``,
   the rows whose pooled probability of class ``j`` reaches ``t_j`` — the mean probability of
   ``j`` over the rows labelled ``j`` — with one pseudo-count per cell (a uniform prior, so a
   class pair with no confident example is never ruled out), rescaled so that row ``i`` sums to
   the ``n_i`` rows labelled ``i``. Normalising its columns gives the transition matrix
   ``T[j, i] = P(label i | true class j)``.
3. **Score.** Bayes' rule with ``T``: ``P(wrong | x, label i) = sum_{j != i} pi_j T[j, i] /
   sum_j pi_j T[j, i]`` with ``pi`` the pooled posterior. Class-pair flips make ``T`` sparse and
   asymmetric, so only the rival classes that actually feed label ``i`` count against it.
4. **Decision boundary.** ``pi`` was learnt from the noisy labels, so the score above is
   conservative as a probability. The expected number of wrong labels is instead taken from the
   same formula with ``pi`` the *clean* posterior (``pooled @ inv(T)``, clipped, renormalised):
   ``N = sum_rows P(wrong)``. The score is then mapped monotonically (ranking kept) so that
   exactly the ``N`` highest rows score at least 0.5, the ensemble's threshold.

New rows (a chunk the evidence never saw) are scored with the state fitted on the fitted rows:
the same weights ``(a, b)`` pool the refitted model's probabilities and the label distribution
of the row's nearest *fitted* rows in the label-free view (their labels, and the smoothing
prior, come from the fitted rows), the same ``T`` gives ``P(wrong)``, and the same monotone map
(the fitted rows' count ``N`` and its cut value) puts it on the scale where 0.5 is the alarm.
A new row is therefore flagged when it looks at least as mislabelled as the ``N``-th most
suspect fitted row; ``N`` is not re-estimated per chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from scipy.optimize import minimize

from poisonguard.detectors._base import Calibration, Detector, Scores, register
from poisonguard.detectors.neighbors import neighbor_label_distribution

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence, View

__all__ = ["LabelQuality", "LabelState", "noise_transition", "pooled_posterior",
           "wrong_label_probability"]

_EPS = 1e-6
_FIT_ROWS = 50_000  # the two pooling weights are fitted on at most this many (evenly spaced) rows


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: np.ndarray = z / z.sum(axis=1, keepdims=True)
    return out


def _log_experts(view: View) -> tuple[np.ndarray, np.ndarray]:
    """``log P`` (the model's probabilities) and ``log Q`` (the labels of the rows' nearest
    fitted rows in the label-free view), both clipped at ``_EPS``, for the rows of ``view``."""
    log_p = np.log(np.clip(view.proba, _EPS, 1.0))
    log_q = np.log(np.clip(neighbor_label_distribution(
        view, neighbors=view.feature_neighbors), _EPS, 1.0))
    return log_p, log_q


def _pooling_weights(log_p: np.ndarray, log_q: np.ndarray,
                     labels: np.ndarray) -> tuple[float, float]:
    """The weights ``(a, b)`` of ``softmax(a log P + b log Q)`` that maximise the likelihood of
    the given ``labels`` (on at most ``_FIT_ROWS`` evenly spaced rows)."""
    fit = np.arange(0, len(labels), max(1, len(labels) // _FIT_ROWS))
    lp, lq, y = log_p[fit], log_q[fit], labels[fit]
    rows = np.arange(len(fit))

    def nll(w: np.ndarray) -> float:
        logits = w[0] * lp + w[1] * lq
        top = logits.max(axis=1)
        norm = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
        return float(np.mean(norm - logits[rows, y]))

    res = minimize(nll, np.array([0.5, 0.5]), method="L-BFGS-B", bounds=[(0.0, 10.0)] * 2)
    a, b = (float(v) for v in res.x)
    if a + b <= 1e-9:  # neither expert explains the labels better than a constant
        a = b = 0.5
    return a, b


def pooled_posterior(evidence: Evidence) -> np.ndarray:
    """``softmax(a log P + b log Q)``: model and feature-neighbour label probabilities pooled with
    weights fitted by maximum likelihood of the given labels, shape ``(n, n_classes)``."""
    log_p, log_q = _log_experts(evidence.view())
    a, b = _pooling_weights(log_p, log_q, evidence.labels)
    return _softmax(a * log_p + b * log_q)


def _class_thresholds(pooled: np.ndarray, labels: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``t_j``: the mean pooled probability of class ``j`` over the rows labelled ``j`` (1 for
    a class without rows)."""
    thresholds = np.ones(pooled.shape[1])
    for j in range(pooled.shape[1]):
        if counts[j]:
            thresholds[j] = max(float(pooled[labels == j, j].mean()), _EPS)
    return thresholds


def _transition(pooled: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(T, thresholds)``: the transition matrix of :func:`noise_transition` and the class
    thresholds ``t_j`` its confident joint used."""
    n_classes = pooled.shape[1]
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    thresholds = _class_thresholds(pooled, labels, counts)
    above = pooled >= thresholds
    confident = above.any(axis=1)
    likely = np.where(above, pooled, -1.0).argmax(axis=1)
    joint = np.ones((n_classes, n_classes))  # joint[given, true]
    np.add.at(joint, (labels[confident], likely[confident]), 1.0)
    joint *= (counts / joint.sum(axis=1))[:, None]
    out: np.ndarray = joint.T / np.maximum(joint.T.sum(axis=1, keepdims=True), 1e-300)
    return out, thresholds


def noise_transition(pooled: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``T[j, i] = P(given label i | true class j)`` from the calibrated confident joint (with one
    pseudo-count per cell), shape ``(n_classes, n_classes)``; rows sum to 1."""
    return _transition(pooled, labels)[0]



def wrong_label_probability(posterior: np.ndarray, labels: np.ndarray,
                            transition: np.ndarray) -> np.ndarray:
    """Bayes: ``P(true class != label | x, label)`` for class posterior ``posterior`` and noise
    ``transition`` (``T[j, i] = P(label i | class j)``)."""
    joint = posterior * transition[:, labels].T  # pi_j T[j, label]
    rows = np.arange(len(labels))
    total = joint.sum(axis=1)
    out: np.ndarray = np.clip(1.0 - joint[rows, labels] / np.maximum(total, 1e-300), 0.0, 1.0)
    return out


def _clean_posterior(pooled: np.ndarray, transition: np.ndarray) -> np.ndarray:
    """Undo the label noise: ``pooled = clean @ T``, so ``clean = pooled @ inv(T)`` (clipped at 0
    and renormalised); ``pooled`` itself when ``T`` is singular."""
    try:
        clean = np.clip(pooled @ np.linalg.inv(transition), 0.0, None)
    except np.linalg.LinAlgError:
        return pooled
    sums = clean.sum(axis=1, keepdims=True)
    out: np.ndarray = np.where(sums > 1e-12, clean / np.maximum(sums, 1e-12), pooled)
    return out


@dataclass(frozen=True)
class _Half:
    """The monotone map of :func:`_at_half`, fitted on the fitted rows' scores: ``count`` rows
    at or above 0.5; ``cut`` is the ``count``-th highest fitted score (the highest one when
    ``count <= 0``)."""

    count: int
    cut: float

    @classmethod
    def fit(cls, score: np.ndarray, count: int) -> _Half:
        if count <= 0:
            return cls(count, float(score.max()))
        return cls(count, float(np.sort(score)[::-1][min(count, len(score)) - 1]))

    def __call__(self, score: np.ndarray) -> np.ndarray:
        if self.count <= 0:
            scaled: np.ndarray = 0.5 * score / (self.cut + 1.0)
            return scaled
        cut = self.cut
        if cut <= 0.0:
            return np.where(score >= cut, 0.5 + 0.5 * score, 0.0)
        mapped = np.where(score >= cut, 0.5 + 0.5 * (score - cut) / max(1.0 - cut, 1e-12),
                          0.5 * score / cut)
        out: np.ndarray = np.clip(mapped, 0.0, 1.0)
        return out


def _at_half(score: np.ndarray, count: int) -> np.ndarray:
    """Monotone map of ``score`` onto [0, 1] putting its ``count``-th highest value at 0.5."""
    return _Half.fit(score, count)(score)


@dataclass(frozen=True)
class LabelState:
    """What scoring any rows needs from the fitted rows: the pooling weights ``(a, b)``, the
    transition matrix ``T[j, i] = P(label i | class j)``, the class thresholds ``t_j`` of its
    confident joint, and the map onto [0, 1] (``half``: the expected count ``N`` of wrong
    labels among the fitted rows and the fitted score that sits at 0.5)."""

    weights: tuple[float, float]
    transition: np.ndarray
    thresholds: np.ndarray
    half: _Half


def _rivals(pooled: np.ndarray, labels: np.ndarray,
            transition: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's most likely other class (weighed by ``T``) and ``P(label wrong)`` as the
    reason states it."""
    rows = np.arange(len(labels))
    joint = pooled * transition[:, labels].T
    own = joint[rows, labels]
    joint[rows, labels] = -1.0
    rival = joint.argmax(axis=1)
    total = np.maximum(own + joint.clip(0).sum(axis=1), 1e-300)
    wrong: np.ndarray = 1 - own / total
    return rival, wrong


@register
class LabelQuality(Detector):
    """Confident-learning label noise: the probability that the given label is wrong.

    ``fit`` learns the pooling weights, ``T`` and the map onto [0, 1] from the fitted rows;
    ``score`` applies them to any rows (new rows pool the refitted model with their nearest
    fitted rows' labels)."""

    name = "label"
    summary = "the model and the neighbours both favour another label"
    requires = ("proba", "feature_neighbors", "labels")
    calibration: ClassVar[Calibration] = "probability"
    answers = ("availability", "subpopulation", "backdoor")
    papers = ("Northcutt, Jiang, Chuang. Confident Learning: Estimating Uncertainty in Dataset "
              "Labels. JAIR 2021",)

    def fit(self, evidence: Evidence) -> LabelState | None:
        """The state (``None`` with a single class: no label can be wrong)."""
        if len(evidence.classes) < 2:
            return None
        labels = evidence.labels
        log_p, log_q = _log_experts(evidence.view())
        a, b = _pooling_weights(log_p, log_q, labels)
        pooled = _softmax(a * log_p + b * log_q)
        transition, thresholds = _transition(pooled, labels)
        wrong = wrong_label_probability(pooled, labels, transition)
        expected = wrong_label_probability(_clean_posterior(pooled, transition), labels,
                                           transition)
        return LabelState((a, b), transition, thresholds,
                          _Half.fit(wrong, round(float(expected.sum()))))

    def score(self, view: View, state: LabelState | None) -> Scores:
        """``P(label wrong)`` mapped so that 0.5 is the alarm; the payload keeps each row's
        label code, its rival class and the probability the reason states."""
        if state is None:
            return Scores(np.zeros(view.n_rows), {"single": True})
        labels = view.labels
        log_p, log_q = _log_experts(view)
        a, b = state.weights
        pooled = _softmax(a * log_p + b * log_q)
        wrong = wrong_label_probability(pooled, labels, state.transition)
        rival, shown = _rivals(pooled, labels, state.transition)
        return Scores(state.half(wrong), {"label": labels, "rival": rival, "wrong": shown})

    def reasons(self, view: View, scores: Scores, rows: np.ndarray) -> list[str]:
        p, classes = scores.payload, view.classes
        if p.get("single"):
            return ["a single class: no label can be wrong"] * len(rows)
        return [f"labelled {classes[p['label'][r]]} but looks like {classes[p['rival'][r]]} "
                f"(P(label wrong) {p['wrong'][r]:.0%})" for r in np.asarray(rows, dtype=np.int64)]
