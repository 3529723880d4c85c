"""``robust-linear``: a multinomial linear classifier trained with a loss that noisy labels
cannot pull far.

Features are standardised; the weights minimise ``mean loss + penalty`` by full-batch L-BFGS
(an L1 part through the split ``w = w+ - w-`` with bounds, so the problem stays smooth). Losses,
on the softmax ``p`` of a row labelled ``y``:

``ce``         ``-log p_y`` (plain training, the baseline);
``smooth``     label smoothing: ``-(1 - e) log p_y - e/K sum_k log p_k``;
``gce``        generalised cross-entropy (Zhang & Sabuncu 2018): ``(1 - p_y^q) / q``, between
               cross-entropy (``q -> 0``) and the noise-tolerant mean absolute error (``q = 1``);
``sce``        symmetric cross-entropy (Wang et al. 2019): ``a CE + b RCE`` with the reverse
               term ``RCE = -A (1 - p_y)``, ``A = log 1e-4``;
``bootstrap``  hard bootstrapping (Reed et al. 2015): the target is ``b y + (1 - b) onehot(argmax
               p)``, with ``p`` from the previous round (``rounds`` refits);
``trimmed``    trimmed loss (Shen & Sanghavi 2019): fit, drop the ``trim`` share of rows with the
               highest loss, refit on the rest (``rounds`` times); the dropped rows of the last
               round are ``dropped_``.

Bounded losses (``gce``, ``sce``) start from the cross-entropy solution, so they refine a good
model rather than search from zero.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy import sparse
from scipy.optimize import minimize
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from poisonguard.defenses._base import register

__all__ = ["LOSSES", "RobustLinear"]

LOSSES = ("ce", "smooth", "gce", "sce", "bootstrap", "trimmed")
_RCE_A = float(np.log(1e-4))


def _loss_grad(Z: np.ndarray, T: np.ndarray, loss: str, q: float, eps: float, sce: tuple[float, float],
               weight: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean loss over rows (weighted) and its gradient w.r.t. the logits ``Z``; ``T`` is the
    target distribution per row (one-hot labels, or bootstrap targets)."""
    logp = log_softmax(Z, axis=1)
    p = np.exp(logp)
    n_classes = Z.shape[1]
    w = weight[:, None] / weight.sum()
    if loss in ("ce", "bootstrap", "trimmed"):
        value = -(T * logp).sum(axis=1)
        grad = p - T
    elif loss == "smooth":
        target = (1.0 - eps) * T + eps / n_classes
        value = -(target * logp).sum(axis=1)
        grad = p - target
    elif loss == "gce":
        py = (p * T).sum(axis=1)
        pq = np.power(np.maximum(py, 1e-300), q)
        value = (1.0 - pq) / q
        grad = -pq[:, None] * (T - p)
    else:  # sce
        a, b = sce
        py = (p * T).sum(axis=1)
        value = -a * (T * logp).sum(axis=1) - b * _RCE_A * (1.0 - py)
        grad = a * (p - T) + b * _RCE_A * py[:, None] * (T - p)
    return float((value * w[:, 0]).sum()), grad * w


@register
class RobustLinear(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Linear classifier with a robust loss (module docstring) and L1 / L2 / elastic-net
    regularisation.

    Parameters
    ----------
    loss : {"ce", "smooth", "gce", "sce", "bootstrap", "trimmed"}, default "gce"
    alpha : float, default 1e-3
        Penalty strength (per row, on standardised features).
    l1_ratio : float, default 0.0
        0: L2 (ridge); 1: L1 (lasso); in between: elastic net.
    q : float, default 0.7
        ``gce`` exponent.
    smoothing : float, default 0.1
        ``smooth`` mass spread over all classes.
    sce_weights : tuple, default (0.1, 1.0)
        ``sce`` weights of CE and RCE.
    beta : float, default 0.8
        ``bootstrap`` weight of the given label.
    trim : float, default 0.1
        ``trimmed`` share of rows dropped each round.
    rounds : int, default 3
        Refits for ``bootstrap`` and ``trimmed``.
    max_iter : int, default 300
        L-BFGS iterations per fit.

    Examples
    --------
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> model = RobustLinear(loss="gce").fit(X, y)
    >>> round(model.score(X, y), 2) >= 0.95
    True
    """

    name: ClassVar[str] = "robust-linear"
    summary: ClassVar[str] = "linear model with a noise-robust loss (GCE, SCE, trimmed, ...)"
    papers: ClassVar[tuple[str, ...]] = (
        "Zhang, Sabuncu. Generalized Cross Entropy Loss for Training Deep Neural Networks with "
        "Noisy Labels. NeurIPS 2018",
        "Wang et al. Symmetric Cross Entropy for Robust Learning with Noisy Labels. ICCV 2019",
        "Reed et al. Training Deep Neural Networks on Noisy Labels with Bootstrapping. ICLR 2015",
        "Shen, Sanghavi. Learning with Bad Training Data via Iterative Trimmed Loss "
        "Minimization. ICML 2019",
    )

    def __init__(self, loss: str = "gce", alpha: float = 1e-3, l1_ratio: float = 0.0,
                 q: float = 0.7, smoothing: float = 0.1,
                 sce_weights: tuple[float, float] = (0.1, 1.0), beta: float = 0.8,
                 trim: float = 0.1, rounds: int = 3, max_iter: int = 300) -> None:
        self.loss = loss
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.q = q
        self.smoothing = smoothing
        self.sce_weights = sce_weights
        self.beta = beta
        self.trim = trim
        self.rounds = rounds
        self.max_iter = max_iter

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # TF-IDF features stay sparse
        return tags

    def _check_params(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)} (got {self.loss!r})")
        checks = (("alpha", self.alpha, 0.0, np.inf), ("l1_ratio", self.l1_ratio, 0.0, 1.0),
                  ("q", self.q, 1e-6, 1.0), ("smoothing", self.smoothing, 0.0, 1.0),
                  ("beta", self.beta, 0.0, 1.0), ("trim", self.trim, 0.0, 0.9))
        for name, value, lo, hi in checks:
            if not lo <= float(value) <= hi:
                raise ValueError(f"{name} must be in [{lo:g}, {hi:g}] (got {value!r})")
        if int(self.rounds) < 1 or int(self.max_iter) < 1:
            raise ValueError("rounds and max_iter must be at least 1")

    def fit(self, X: Any, y: Any) -> RobustLinear:
        self._check_params()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X, y = validate_data(self, X, y, dtype=np.float64, accept_sparse="csr")
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if sparse.issparse(X):  # scaled, not centred: the zeros stay zeros
            self.mean_ = np.zeros(X.shape[1])
            scale = np.sqrt(np.asarray(X.multiply(X).mean(axis=0)).ravel())
        else:
            self.mean_ = X.mean(axis=0)
            scale = X.std(axis=0)
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        Xs = self._standardise(X)
        k = max(len(self.classes_), 2)
        onehot = np.eye(k)[codes]
        keep = np.ones(Xs.shape[0], dtype=bool)
        self.n_iter_ = 0
        W = np.zeros((Xs.shape[1] + 1, k))
        if self.loss in ("gce", "sce"):  # start from the cross-entropy solution
            W = self._solve(Xs, onehot, "ce", W, keep)
        target = onehot
        rounds = int(self.rounds) if self.loss in ("bootstrap", "trimmed") else 1
        for _ in range(rounds):
            W = self._solve(Xs, target, self.loss, W, keep)
            if self.loss == "bootstrap":
                pred = np.eye(k)[self._logits(Xs, W).argmax(axis=1)]
                target = self.beta * onehot + (1.0 - self.beta) * pred
            elif self.loss == "trimmed":
                logp = log_softmax(self._logits(Xs, W), axis=1)
                losses = -(onehot * logp).sum(axis=1)
                cut = np.quantile(losses, 1.0 - float(self.trim))
                keep = losses <= cut
        self.dropped_ = np.flatnonzero(~keep)
        self.coef_, self.intercept_ = W[:-1].T, W[-1]
        return self

    def _standardise(self, X: Any) -> Any:
        if sparse.issparse(X):
            return sparse.csr_matrix(X.multiply(1.0 / self.scale_[None, :]))
        return (X - self.mean_) / self.scale_

    @staticmethod
    def _logits(Xs: Any, W: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.asarray(Xs @ W[:-1]) + W[-1]
        return out

    def _solve(self, Xs: Any, T: np.ndarray, loss: str, W0: np.ndarray,
               keep: np.ndarray) -> np.ndarray:
        d1, k = W0.shape
        l1 = float(self.alpha) * float(self.l1_ratio)
        l2 = float(self.alpha) * (1.0 - float(self.l1_ratio))
        weight = keep.astype(np.float64)
        mask = np.ones((d1, k))
        mask[-1] = 0.0  # no penalty on the intercept

        def split(v: np.ndarray) -> np.ndarray:
            w: np.ndarray = (v[:d1 * k] - v[d1 * k:]) if l1 > 0 else v
            return w.reshape(d1, k)

        def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
            W = split(v)
            value, gZ = _loss_grad(self._logits(Xs, W), T, loss, float(self.q),
                                   float(self.smoothing),
                                   (float(self.sce_weights[0]), float(self.sce_weights[1])),
                                   weight)
            gW = np.vstack([np.asarray(Xs.T @ gZ), gZ.sum(axis=0, keepdims=True)])
            value += 0.5 * l2 * float((mask * W * W).sum())
            gW = gW + l2 * mask * W
            if l1 > 0:
                value += l1 * float((mask[None] * v.reshape(2, d1, k)).sum())
                g = np.concatenate([(gW + l1 * mask).ravel(), (-gW + l1 * mask).ravel()])
                return value, g
            return value, gW.ravel()

        if l1 > 0:
            v0 = np.concatenate([np.maximum(W0, 0).ravel(), np.maximum(-W0, 0).ravel()])
            bounds = [(0.0, None)] * len(v0)
        else:
            v0, bounds = W0.ravel(), None
        res = minimize(objective, v0, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": int(self.max_iter)})
        self.n_iter_ = getattr(self, "n_iter_", 0) + max(int(res.nit), 1)
        out: np.ndarray = split(np.asarray(res.x))
        return out

    def _all_logits(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, dtype=np.float64, reset=False, accept_sparse="csr")
        out: np.ndarray = np.asarray(self._standardise(X) @ self.coef_.T) + self.intercept_
        return out[:, :max(len(self.classes_), 1)]

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits per class; for two classes, the second's minus the first's (scikit-learn)."""
        z = self._all_logits(X)
        if z.shape[1] == 2:
            diff: np.ndarray = z[:, 1] - z[:, 0]
            return diff
        return z

    def predict_proba(self, X: Any) -> np.ndarray:
        out: np.ndarray = np.exp(log_softmax(self._all_logits(X), axis=1))
        return out

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        out: np.ndarray = self.classes_[proba.argmax(axis=1)]
        return out
