"""What every network defence shares: the two networks, the one training loop, per-row robust
losses, and a scikit-learn base class (validation, scaling, prediction from stored weights).

Weights are kept as numpy arrays (``state_``) so a fitted model can be stored without pickle;
prediction rebuilds the network from them. Needs ``pip install torch==2.13.0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from poisonguard.models._loop import make_net, train_epochs
from poisonguard.models.cnn import require_torch

__all__ = ["NETS", "TorchDefense", "make_net", "row_loss", "train_epochs"]

NETS = ("mlp", "cnn")
_RCE_A = float(np.log(1e-4))


def row_loss(name: str, *, q: float = 0.7, smoothing: float = 0.1,
             sce_weights: tuple[float, float] = (0.1, 1.0)) -> Callable[[Any, Any], Any]:
    """Per-row loss on logits: ``ce``, ``smooth`` (label smoothing), ``gce`` (``(1 - p_y^q) /
    q``) or ``sce`` (``a CE - b A (1 - p_y)``, ``A = log 1e-4``), as in ``robust-linear``."""
    torch = require_torch()
    F = torch.nn.functional

    def loss(logits: Any, target: Any) -> Any:
        if name == "ce":
            return F.cross_entropy(logits, target, reduction="none")
        if name == "smooth":
            return F.cross_entropy(logits, target, reduction="none", label_smoothing=smoothing)
        p_y = torch.softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
        if name == "gce":
            return (1.0 - p_y.clamp_min(1e-12) ** q) / q
        a, b = sce_weights
        return a * F.cross_entropy(logits, target, reduction="none") - b * _RCE_A * (1.0 - p_y)

    return loss


class TorchDefense(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Base of the network defences: ``net``, ``width``, ``random_state`` and ``_train``."""

    net: str
    width: int
    random_state: int

    def _check_net(self) -> None:
        if self.net not in NETS:
            raise ValueError(f"net must be mlp or cnn (got {self.net!r})")
        if int(self.width) < 1:
            raise ValueError(f"width must be at least 1 (got {self.width!r})")

    def _tensor(self, X: Any) -> Any:
        torch = require_torch()
        arr = np.asarray(X, dtype=np.float32)
        if arr.ndim < 2 or (self.net == "cnn" and arr.ndim not in (3, 4)):
            want = "images (n, h, w[, c])" if self.net == "cnn" else "2-D features"
            raise ValueError(f"net {self.net!r} needs {want}; got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError("Input X contains NaN or infinity")
        arr = ((arr - self.offset_) / self.scale_).astype(np.float32)
        if self.net == "cnn":
            arr = arr[:, None] if arr.ndim == 3 else np.moveaxis(arr, -1, 1)
        return torch.from_numpy(np.ascontiguousarray(arr))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # TF-IDF text, made dense (bounded) for the network
        return tags

    def _prepare(self, X: Any, y: Any) -> tuple[Any, Any, Any, Any]:
        """Validate, learn the scaling, seed torch: ``(data, labels, network, generator)``."""
        torch = require_torch()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        arr, y = validate_data(self, X, y, dtype=np.float64, allow_nd=True, accept_sparse="csr")
        arr = dense(arr)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.shape_ = tuple(int(s) for s in arr.shape[1:])
        if self.net == "cnn":  # pixels: one offset and scale for the whole image
            self.offset_: Any = 0.0
            self.scale_: Any = float(max(np.abs(arr).max(), 1e-12))
        else:
            self.offset_ = arr.reshape(len(arr), -1).mean(axis=0).reshape(self.shape_)
            spread = arr.reshape(len(arr), -1).std(axis=0).reshape(self.shape_)
            self.scale_ = np.where(spread > 1e-12, spread, 1.0)
        data, labels = self._tensor(arr), torch.from_numpy(codes.astype(np.int64))
        torch.manual_seed(int(self.random_state))
        generator = torch.Generator().manual_seed(int(self.random_state))
        model = make_net(self.net, self.shape_, max(len(self.classes_), 2), int(self.width))
        return data, labels, model, generator

    def _keep(self, model: Any) -> None:
        self.state_ = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}

    def _module(self) -> Any:
        torch = require_torch()
        model = make_net(self.net, self.shape_, max(len(self.classes_), 2), int(self.width))
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in self.state_.items()})
        model.eval()
        return model

    def predict_proba(self, X: Any) -> np.ndarray:
        torch = require_torch()
        check_is_fitted(self, "state_")
        arr = dense(validate_data(self, X, dtype=np.float64, allow_nd=True, reset=False,
                                   accept_sparse="csr"))
        if tuple(arr.shape[1:]) != self.shape_:
            raise ValueError(f"X has rows of shape {arr.shape[1:]}, but {type(self).__name__} is "
                             f"expecting {self.shape_}")
        with torch.no_grad():
            proba = torch.softmax(self._module()(self._tensor(arr)), dim=1).numpy()
        out: np.ndarray = proba[:, :len(self.classes_)].astype(np.float64)
        out /= out.sum(axis=1, keepdims=True)
        return out

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        out: np.ndarray = self.classes_[proba.argmax(axis=1)]
        return out


DENSE_LIMIT = 2**31  # bytes: the most a sparse input (TF-IDF text) may take once made dense


def dense(arr: Any) -> np.ndarray:
    """Networks take dense rows: a sparse matrix (text features) is made dense when it fits in
    :data:`DENSE_LIMIT` bytes, and refused with its size otherwise."""
    if not sp.issparse(arr):
        return np.asarray(arr)
    n, d = arr.shape
    if n * d * 8 > DENSE_LIMIT:
        raise ValueError(f"sparse input of {n:,} x {d:,} needs {n * d * 8 / 2**30:.1f} GiB dense; "
                         f"networks take at most {DENSE_LIMIT / 2**30:.0f} GiB: use fewer features "
                         "or a linear defence")
    return np.asarray(arr.toarray())
