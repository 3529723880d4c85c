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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from scipy.optimize import minimize

from poisonguard.detectors._base import Calibration, Detector, register
from poisonguard.detectors.neighbors import neighbor_label_distribution

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence

__all__ = ["LabelQuality", "noise_transition", "pooled_posterior", "wrong_label_probability"]

_EPS = 1e-6
_FIT_ROWS = 50_000  # the two pooling weights are fitted on at most this many (evenly spaced) rows


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: np.ndarray = z / z.sum(axis=1, keepdims=True)
    return out


def pooled_posterior(evidence: Evidence) -> np.ndarray:
    """``softmax(a log P + b log Q)``: model and feature-neighbour label probabilities pooled with
    weights fitted by maximum likelihood of the given labels, shape ``(n, n_classes)``."""
    labels = evidence.labels
    log_p = np.log(np.clip(evidence.proba, _EPS, 1.0))
    log_q = np.log(np.clip(neighbor_label_distribution(
        evidence, neighbors=evidence.feature_neighbors), _EPS, 1.0))
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
    return _softmax(a * log_p + b * log_q)


def noise_transition(pooled: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``T[j, i] = P(given label i | true class j)`` from the calibrated confident joint (with one
    pseudo-count per cell), shape ``(n_classes, n_classes)``; rows sum to 1."""
    n_classes = pooled.shape[1]
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    thresholds = np.ones(n_classes)
    for j in range(n_classes):
        if counts[j]:
            thresholds[j] = max(float(pooled[labels == j, j].mean()), _EPS)
    above = pooled >= thresholds
    confident = above.any(axis=1)
    likely = np.where(above, pooled, -1.0).argmax(axis=1)
    joint = np.ones((n_classes, n_classes))  # joint[given, true]
    np.add.at(joint, (labels[confident], likely[confident]), 1.0)
    joint *= (counts / joint.sum(axis=1))[:, None]
    out: np.ndarray = joint.T / np.maximum(joint.T.sum(axis=1, keepdims=True), 1e-300)
    return out


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


def _at_half(score: np.ndarray, count: int) -> np.ndarray:
    """Monotone map of ``score`` onto [0, 1] putting its ``count``-th highest value at 0.5."""
    if count <= 0:
        return 0.5 * score / (float(score.max()) + 1.0)
    cut = float(np.sort(score)[::-1][min(count, len(score)) - 1])
    if cut <= 0.0:
        return np.where(score >= cut, 0.5 + 0.5 * score, 0.0)
    mapped = np.where(score >= cut, 0.5 + 0.5 * (score - cut) / max(1.0 - cut, 1e-12),
                      0.5 * score / cut)
    out: np.ndarray = np.clip(mapped, 0.0, 1.0)
    return out


def _scores(evidence: Evidence) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = evidence.labels
    pooled = pooled_posterior(evidence)
    transition = noise_transition(pooled, labels)
    wrong = wrong_label_probability(pooled, labels, transition)
    expected = wrong_label_probability(_clean_posterior(pooled, transition), labels, transition)
    return _at_half(wrong, round(float(expected.sum()))), pooled, transition


@register
class LabelQuality(Detector):
    """Confident-learning label noise: the probability that the given label is wrong."""

    name = "label"
    two_phase = False  # scores only the rows it was fitted on (one-phase shortcuts)
    summary = "the model and the neighbours both favour another label"
    requires = ("proba", "feature_neighbors", "labels")
    calibration: ClassVar[Calibration] = "probability"
    answers = ("availability", "subpopulation", "backdoor")
    papers = ("Northcutt, Jiang, Chuang. Confident Learning: Estimating Uncertainty in Dataset "
              "Labels. JAIR 2021",)

    def suspicion(self, evidence: Evidence) -> np.ndarray:
        if len(evidence.classes) < 2:
            return np.zeros(evidence.n_rows)
        return _scores(evidence)[0]

    def explain(self, evidence: Evidence, rows: np.ndarray) -> list[str]:
        classes, labels = evidence.classes, evidence.labels
        if len(classes) < 2:
            return ["a single class: no label can be wrong"] * len(rows)
        _, pooled, transition = _scores(evidence)
        rows = np.asarray(rows, dtype=np.int64)
        joint = pooled[rows] * transition[:, labels[rows]].T
        own = joint[np.arange(len(rows)), labels[rows]]
        joint[np.arange(len(rows)), labels[rows]] = -1.0
        rival = joint.argmax(axis=1)
        out = []
        for i, r in enumerate(rows):
            total = max(float(own[i] + joint[i].clip(0).sum()), 1e-300)
            out.append(f"labelled {classes[labels[r]]} but looks like {classes[rival[i]]} "
                       f"(P(label wrong) {1 - own[i] / total:.0%})")
        return out
