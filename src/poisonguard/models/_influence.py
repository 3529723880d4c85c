"""First-order influence of training rows on a softmax-linear model's clean loss.

For a model with weights ``theta`` (classes x features, bias column included) trained on rows
``x_i`` with labels ``y_i``, adding a row ``(x, c)`` moves the weights by about
``-H^-1 (p(x) - e_c) x^T`` and so changes the total loss on the true labels by about
``-<V, (p(x) - e_c) x^T>`` with ``V = H^-1 G`` (``G`` the loss gradient, ``H`` the Hessian).
Greedy label flips and availability injections both climb this quantity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse

__all__ = ["MAX_HESSIAN", "flip_gain", "influence_direction", "with_bias"]

MAX_HESSIAN = 3000  # parameters (classes x features) up to which the exact Hessian is used


def with_bias(F: Any) -> Any:
    """``F`` with a column of ones appended (dense or sparse)."""
    ones = np.ones((F.shape[0], 1))
    return sparse.hstack([F, ones]).tocsr() if sparse.issparse(F) else np.hstack([F, ones])


def influence_direction(F: Any, proba: np.ndarray, truth: np.ndarray, C: float) -> np.ndarray:
    """``V = H^-1 G`` (classes x features) for rows ``F`` (bias included) and true labels.

    ``proba`` are the model's probabilities on ``F``; ``truth`` column indices of the true
    labels; ``C`` the inverse L2 strength. The Hessian is exact up to :data:`MAX_HESSIAN`
    parameters and the identity beyond (a gradient-alignment approximation).
    """
    n, K = proba.shape
    onehot = np.zeros_like(proba)
    onehot[np.arange(n), truth] = 1.0
    G = np.asarray((F.T @ (proba - onehot)).T)  # (K, D)
    D = G.shape[1]
    if K * D > MAX_HESSIAN or sparse.issparse(F):
        return G
    S = proba[:, :, None] * (np.eye(K)[None] - proba[:, None, :])  # (n, K, K)
    blocks = np.empty((K, D, K, D))
    for a in range(K):  # block (a, b) is F^T diag(S[:, a, b]) F; blocks are symmetric in (a, b)
        for b in range(a, K):
            block = F.T @ (S[:, a, b, None] * F)
            blocks[a, :, b, :] = block
            blocks[b, :, a, :] = block.T
    H = blocks.reshape(K * D, K * D)
    H += np.eye(K * D) / C
    V: np.ndarray = np.linalg.solve(H, G.reshape(-1)).reshape(K, D)
    return V


def flip_gain(F: Any, V: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """First-order rise of the clean loss from relabelling row i as class c, shape (n, classes).

    ``V`` comes from :func:`influence_direction`. The true class of each row gets ``-inf`` so
    that ``argmax`` names the most damaging flip.
    """
    u = np.asarray(F @ V.T)
    rows = np.arange(len(truth))
    gain: np.ndarray = u - u[rows, truth][:, None]
    gain[rows, truth] = -np.inf
    return gain
