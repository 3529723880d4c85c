"""Membership inference as a measurement: the loss attack and LiRA over shadow models.

:func:`run_shadow_models` trains ``n_models`` models, each on a random half of a population
(every row is in exactly half of them), and records for every target row the logit-scaled
confidence of its true label, ``log(p / (1 - p))``, under every model. Each model then plays
the victim in turn, the others its shadows (leave one out), which gives one (model, target)
pair per cell, a member pair when the target was in that model's half:

* :func:`loss_attack` thresholds the loss of the true label (Yeom et al. 2018): one global
  threshold, no shadow models needed.
* :func:`lira` is the likelihood-ratio attack (Carlini et al. 2022): per target, Gaussians fitted
  to the confidence under the shadows that trained on it (IN) and that did not (OUT); the score
  is the log likelihood ratio (``online``) or, with only the OUT Gaussian, how far the
  confidence lies above it (``offline``). Means are per target; the variance is pooled over
  targets unless ``per_target_variance`` (the paper's choice with many shadows). Pooled is the
  default because it is the more robust: on digits with 64 models and a Truth Serum poison,
  per-target variances gave TPR 0.9 % at 1 % FPR against 12 % pooled (tight, non-Gaussian
  per-target spreads put a few non-members far in a tail).

:func:`membership_metrics` turns any score (higher = more likely a member) into ROC AUC and
the true-positive rate at 0.1 % and 1 % false positives. Rows every model trains on (an
attacker's poison) go in ``extra``. Scores are deterministic for a seed.

Examples
--------
>>> from sklearn.datasets import load_breast_cancer
>>> from sklearn.linear_model import LogisticRegression
>>> X, y = load_breast_cancer(return_X_y=True)
>>> run = run_shadow_models(lambda s: LogisticRegression(max_iter=5000), X[:200], y[:200],
...                         n_models=4, rng=np.random.default_rng(0))
>>> run.confidence.shape, int(run.member.sum())
((4, 200), 400)
>>> result = lira(run)
>>> result.n_members, result.n_non_members, 0.0 <= result.auc <= 1.0
(400, 400, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve

from poisonguard._validation import check_rng
from poisonguard.attacks._base import append_rows, take_rows
from poisonguard.errors import InputError

__all__ = ["MembershipResult", "ShadowRun", "lira", "logit_confidence", "loss_attack",
           "membership_metrics", "run_shadow_models"]

ModelFactory = Callable[[int], Any]
FPR_LEVELS = (0.001, 0.01)


@dataclass(frozen=True)
class MembershipResult:
    """How well a membership score separates member from non-member (model, target) pairs.

    ``tpr_at_0_1_fpr`` / ``tpr_at_1_fpr``: the share of member pairs caught at the highest
    threshold that keeps the false-positive rate at or below 0.1 % / 1 %. A level below
    ``1 / n_non_members`` cannot be resolved: the rate is then read at zero false positives
    (a lower bound) and ``note`` says so.
    """

    method: str
    auc: float
    tpr_at_0_1_fpr: float
    tpr_at_1_fpr: float
    n_members: int
    n_non_members: int
    note: str = ""

    @property
    def resolves_0_1_fpr(self) -> bool:
        """True when there are enough non-member pairs (1,000) to resolve 0.1 % FPR."""
        return self.n_non_members >= 1000


@dataclass(frozen=True, eq=False)
class ShadowRun:
    """Confidences of every target under models trained on random halves of a population.

    ``confidence[m, t]``: logit-scaled confidence of target ``t``'s true label under model
    ``m``; ``member[m, t]``: whether ``t`` was in model ``m``'s training half; ``accuracy[m]``:
    model ``m``'s accuracy on the test rows (NaN without them); ``seconds``: training time.
    """

    confidence: np.ndarray
    member: np.ndarray
    accuracy: np.ndarray
    seconds: float

    @property
    def n_models(self) -> int:
        """Number of models trained."""
        return int(self.member.shape[0])


def logit_confidence(proba: Any, y: Any, classes: Any) -> np.ndarray:
    """``log(p_y / (1 - p_y))`` per row, the probability mass of the other classes summed
    (exact when ``p_y`` is near 1); labels the model never saw get ``p_y = 0``."""
    P = np.asarray(proba, dtype=np.float64)
    cls = np.asarray(classes)
    labels = np.asarray(y)
    col = np.searchsorted(cls, labels)
    seen = (col < len(cls)) & (cls[np.minimum(col, len(cls) - 1)] == labels)
    col = np.where(seen, np.minimum(col, len(cls) - 1), 0)
    rows = np.arange(len(P))
    p_y = np.where(seen, P[rows, col], 0.0)
    own = seen[:, None] & (np.arange(P.shape[1])[None, :] == col[:, None])
    rest = np.where(own, 0.0, P).sum(axis=1)  # summed, not 1 - p_y: exact near p_y = 1
    tiny = 1e-300
    out: np.ndarray = np.log(np.maximum(p_y, tiny)) - np.log(np.maximum(rest, tiny))
    return out


def _rows(X: Any, what: str) -> int:
    n = len(X)
    if n == 0:
        raise InputError(f"'{what}' has no rows")
    return n


def _check_pair(pair: Any, what: str) -> tuple[Any, np.ndarray]:
    if not (isinstance(pair, tuple) and len(pair) == 2):
        raise InputError(f"'{what}' must be a tuple (X, y) (got {type(pair).__name__})")
    X, y = pair
    y = np.asarray(y)
    if _rows(X, what) != len(y):
        raise InputError(f"'{what}' has {len(X)} rows of X but {len(y)} labels")
    return X, y


def run_shadow_models(make_model: ModelFactory, X: Any, y: Any, *, rng: np.random.Generator,
                      n_models: int = 16, targets: Sequence[int] | None = None,
                      extra: tuple[Any, Any] | None = None,
                      test: tuple[Any, Any] | None = None) -> ShadowRun:
    """Train ``n_models`` models on random halves of ``(X, y)`` and record the targets'
    confidences.

    Parameters
    ----------
    make_model
        ``make_model(seed)`` returns an unfitted classifier with ``fit``, ``predict_proba``
        and ``classes_`` (any scikit-learn classifier, ``DPSGDClassifier``, a pipeline).
    X, y
        The population (array, DataFrame or strings: whatever the models take).
    rng
        Draws the halves (each row in exactly ``n_models // 2`` models) and the model seeds.
    n_models
        At least 4.
    targets
        Row positions in ``X`` to measure (default: every row).
    extra
        ``(X, y)`` rows added to every model's training half (e.g. an attacker's poison).
    test
        ``(X, y)`` rows on which each model's accuracy is recorded.
    """
    check_rng(rng)
    n = _rows(X, "X")
    y = np.asarray(y)
    if len(y) != n:
        raise InputError(f"'y' has {len(y)} labels for {n} rows of X")
    if isinstance(n_models, bool) or not isinstance(n_models, int | np.integer) or n_models < 4:
        raise InputError(f"'n_models' must be an integer >= 4 (got {n_models!r})")
    idx = np.arange(n) if targets is None else np.asarray(targets)
    if idx.ndim != 1 or idx.size == 0 or idx.dtype.kind not in "iu" or idx.min() < 0 \
            or idx.max() >= n or len(np.unique(idx)) != idx.size:
        shown = np.array2string(np.asarray(targets), threshold=6)
        raise InputError(f"'targets' must be distinct row positions in [0, {n}) (got {shown})")
    X_extra, y_extra = _check_pair(extra, "extra") if extra is not None else (None, None)
    X_test, y_test = _check_pair(test, "test") if test is not None else (None, None)
    member_all = rng.random((n_models, n)).argsort(axis=0) < n_models // 2
    seeds = rng.integers(0, 2**31 - 1, size=n_models)
    X_targets, y_targets = take_rows(X, idx), y[idx]
    conf = np.empty((n_models, idx.size))
    acc = np.full(n_models, np.nan)
    start = time.perf_counter()
    for m in range(n_models):
        rows = np.flatnonzero(member_all[m])
        X_train, y_train = take_rows(X, rows), y[rows]
        if X_extra is not None:
            X_train = append_rows(X_train, X_extra)
            y_train = np.concatenate([y_train, np.asarray(y_extra, dtype=y.dtype)])
        model = make_model(int(seeds[m]))
        model.fit(X_train, y_train)
        conf[m] = logit_confidence(model.predict_proba(X_targets), y_targets, model.classes_)
        if X_test is not None:
            acc[m] = float(np.mean(np.asarray(model.predict(X_test)) == y_test))
    return ShadowRun(conf, member_all[:, idx], acc, time.perf_counter() - start)


def membership_metrics(score: Any, member: Any, *, method: str = "score") -> MembershipResult:
    """ROC AUC and TPR at 0.1 % and 1 % FPR of ``score`` (higher = more likely a member)
    against the boolean ``member``; needs at least one pair of each kind."""
    s = np.asarray(score, dtype=np.float64).ravel()
    truth = np.asarray(member, dtype=bool).ravel()
    if s.shape != truth.shape:
        raise InputError(f"'score' and 'member' must have the same size ({s.size} != {truth.size})")
    if not np.isfinite(s).all():
        raise InputError("'score' must be finite")
    n_in, n_out = int(truth.sum()), int((~truth).sum())
    if n_in == 0 or n_out == 0:
        raise InputError(f"'member' needs both members and non-members (got {n_in} and {n_out})")
    fpr, tpr, _ = roc_curve(truth, s, drop_intermediate=False)
    at = [float(tpr[np.searchsorted(fpr, level, side="right") - 1]) for level in FPR_LEVELS]
    note = ""
    if n_out < 100:
        note = (f"{n_out} non-member pairs resolve neither 1 % nor 0.1 % FPR (100 / 1,000 "
                "needed): both TPRs are read at the lowest FPR that fits, a lower bound")
    elif n_out < 1000:
        note = (f"{n_out} non-member pairs cannot resolve 0.1 % FPR (1,000 needed): its TPR is "
                "read at zero false positives, a lower bound")
    return MembershipResult(method, float(roc_auc_score(truth, s)), at[0], at[1], n_in, n_out,
                            note)


def loss_attack(run: ShadowRun) -> MembershipResult:
    """Score each pair by minus the cross-entropy loss of the true label (one global
    threshold; Yeom et al. 2018)."""
    score = -np.logaddexp(0.0, -run.confidence)  # log p_y from the logit confidence
    return membership_metrics(score, run.member, method="loss")


def lira(run: ShadowRun, *, online: bool = True,
         per_target_variance: bool = False) -> MembershipResult:
    """The likelihood-ratio attack, each model the victim of the others (see the module).

    ``online`` compares the IN and OUT Gaussians, else the OUT one alone; variances are pooled
    over targets unless ``per_target_variance``.
    """
    conf, member = run.confidence, run.member
    n_models = run.n_models
    score = np.empty_like(conf)
    for m in range(n_models):
        others = np.arange(n_models) != m
        c, inside = conf[others], member[others]
        mu_out, var_out = _gaussian(c, ~inside, per_target_variance)
        if online:
            mu_in, var_in = _gaussian(c, inside, per_target_variance)
            score[m] = (norm.logpdf(conf[m], mu_in, np.sqrt(var_in))
                        - norm.logpdf(conf[m], mu_out, np.sqrt(var_out)))
        else:
            score[m] = norm.logcdf(conf[m], mu_out, np.sqrt(var_out))
    return membership_metrics(score, member, method="lira-online" if online else "lira-offline")


def _gaussian(c: np.ndarray, side: np.ndarray, per_target: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-target mean and variance (pooled over targets unless ``per_target``) of ``c`` over
    the models in ``side``."""
    k = side.sum(axis=0)
    if (k == 0).any():
        raise InputError("every target needs shadow models with and without it; use more models")
    mu = np.where(side, c, 0.0).sum(axis=0) / k
    sq = np.where(side, (c - mu) ** 2, 0.0)
    if per_target:
        var = sq.sum(axis=0) / np.maximum(k - 1, 1)
    else:
        var = np.full(c.shape[1], sq.sum() / max(int(k.sum()) - c.shape[1], 1))
    return mu, np.maximum(var, 1e-6)
