"""A small convolutional classifier in PyTorch with the scikit-learn interface (optional extra)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from poisonguard.errors import DependencyError
from poisonguard.models._loop import make_net, train_epochs

__all__ = ["TorchCNNClassifier", "require_torch"]


def require_torch() -> Any:
    """Import torch, or raise a one-line install hint."""
    try:
        import torch
    except ImportError:
        raise DependencyError("model 'cnn' needs PyTorch: pip install torch==2.13.0 "
                              "(or pip install 'poisonguard[torch]')") from None
    return torch


class TorchCNNClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Two conv blocks and a linear head, trained with Adam; images ``(n, h, w[, c])``.

    Pixels are scaled by the training maximum. Deterministic for a given ``random_state`` on CPU.
    """

    def __init__(self, *, epochs: int = 15, batch_size: int = 64, lr: float = 2e-3,
                 width: int = 32, random_state: int = 0) -> None:
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.width = width
        self.random_state = random_state

    def _tensor(self, X: Any) -> Any:
        torch = require_torch()
        arr = np.asarray(X, dtype=np.float32) / self.scale_
        arr = arr[:, None] if arr.ndim == 3 else np.moveaxis(arr, -1, 1)
        return torch.from_numpy(np.ascontiguousarray(arr))

    def fit(self, X: Any, y: Any, *, on_epoch: Any = None) -> TorchCNNClassifier:
        """Train on images ``X`` and labels ``y``; ``on_epoch(self)`` is called after each epoch
        (the network is in eval mode during the call)."""
        torch = require_torch()
        torch.manual_seed(self.random_state)
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self.scale_ = float(max(np.abs(np.asarray(X, dtype=np.float64)).max(), 1e-12))
        data = self._tensor(X)
        target = torch.from_numpy(codes.astype(np.int64))
        self.net_ = make_net("cnn", tuple(np.shape(X)[1:]), len(self.classes_), self.width)
        opt = torch.optim.Adam(self.net_.parameters(), lr=self.lr)
        gen = torch.Generator().manual_seed(self.random_state)

        def mean_ce(logits: Any, labels: Any) -> Any:
            return torch.nn.functional.cross_entropy(logits, labels)

        def after_epoch(_: int) -> None:
            self.net_.eval()
            on_epoch(self)
            self.net_.train()

        train_epochs(self.net_, data, target, epochs=self.epochs, batch_size=self.batch_size,
                     optimizer=opt, loss=mean_ce, generator=gen,
                     on_epoch=after_epoch if on_epoch is not None else None)
        return self

    def _forward(self, X: Any, net: Any) -> np.ndarray:
        torch = require_torch()
        with torch.no_grad():
            data = self._tensor(X)
            out = [net(data[s:s + 1024]) for s in range(0, len(data), 1024)]
        arr: np.ndarray = torch.cat(out).numpy().astype(np.float64)
        return arr

    def embed(self, X: Any) -> np.ndarray:
        """Penultimate-layer activations ``(n, 64)`` of images ``X``."""
        return self._forward(X, self.net_[:-1])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in :attr:`classes_` order."""
        logits = self._forward(X, self.net_)
        logits -= logits.max(axis=1, keepdims=True)
        proba: np.ndarray = np.exp(logits)
        proba /= proba.sum(axis=1, keepdims=True)
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels."""
        out: np.ndarray = self.classes_[self.predict_proba(X).argmax(axis=1)]
        return out
