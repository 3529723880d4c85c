"""A multinomial logistic surrogate with analytic input gradients, in codec space."""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, softmax
from sklearn.linear_model import LogisticRegression

from poisonguard.models import fit_quiet

__all__ = ["LinearSurrogate"]


class LinearSurrogate:
    """Logistic regression on standardised codes ``Z``; exposes logits and their gradients.

    ``classes`` are the label values in column order of :meth:`proba`.
    """

    def __init__(self, Z: np.ndarray, y: np.ndarray, *, C: float = 1.0) -> None:
        self.mean = Z.mean(axis=0)
        self.std = Z.std(axis=0) + 1e-9
        clf = fit_quiet(LogisticRegression(C=C, max_iter=3000), (Z - self.mean) / self.std, y)
        self.classes: np.ndarray = clf.classes_
        W, b = clf.coef_, clf.intercept_
        if W.shape[0] == 1:  # binary: logits (0, w.x + b)
            W = np.vstack([np.zeros_like(W), W])
            b = np.concatenate([[0.0], b])
        self.W = W / self.std  # gradient of each logit with respect to raw codes
        self.b = b - self.W @ self.mean

    def logits(self, Z: np.ndarray) -> np.ndarray:
        """Class logits of rows ``Z``."""
        out: np.ndarray = Z @ self.W.T + self.b
        return out

    def proba(self, Z: np.ndarray) -> np.ndarray:
        """Class probabilities of rows ``Z``."""
        out: np.ndarray = softmax(self.logits(Z), axis=1)
        return out

    def log_proba(self, Z: np.ndarray) -> np.ndarray:
        """Log class probabilities of rows ``Z``."""
        out: np.ndarray = log_softmax(self.logits(Z), axis=1)
        return out

    def grad_log_proba(self, Z: np.ndarray, cls: np.ndarray) -> np.ndarray:
        """Gradient of ``log p(cls_i | Z_i)`` with respect to each row ``Z_i``.

        ``cls`` holds column indices into :attr:`classes`.
        """
        p = self.proba(Z)
        out: np.ndarray = self.W[cls] - p @ self.W
        return out

    def index(self, labels: np.ndarray) -> np.ndarray:
        """Column indices of label values."""
        return np.searchsorted(self.classes, labels)
