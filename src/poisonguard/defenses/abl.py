"""``abl``: Anti-Backdoor Learning (Li et al., 2021) for small networks (PyTorch).

Backdoor rows are learned *fast*: a trigger is a simpler feature than the class itself, so
their training loss drops to near zero in the first epochs. ABL uses that in three stages:

1. **Isolate.** Train for ``isolation_epochs`` with local gradient ascent (LGA): a row whose
   loss is below ``gamma`` is pushed back up (``sign(loss - gamma) * loss``), so clean rows hover
   around ``gamma`` while the rows that still fall below it are the ones learned unusually
   easily. The ``isolation`` share with the lowest loss is set apart.
2. **Learn.** Train on the rest for ``epochs`` as usual.
3. **Unlearn.** Gradient *ascent* on the isolated rows for ``unlearning_epochs``: the network
   forgets the trigger -> target shortcut while the clean rows keep the rest.

Networks: ``net="mlp"`` (one hidden layer, any numeric features) or ``"cnn"`` (two conv
blocks, images ``(n, h, w[, c])``). One training loop (:func:`train_epochs`) serves every stage.
The trained weights are kept as numpy arrays (``state_``); prediction needs torch for the CNN
only. Needs ``pip install torch==2.13.0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from poisonguard.defenses._base import register
from poisonguard.models.cnn import require_torch

__all__ = ["AntiBackdoorLearning", "make_net", "train_epochs"]


def make_net(kind: str, shape: tuple[int, ...], n_classes: int, width: int) -> Any:
    """An MLP over flattened features or a small CNN over images of ``shape`` (h, w[, c])."""
    nn = require_torch().nn
    if kind == "mlp":
        d = int(np.prod(shape))
        return nn.Sequential(nn.Flatten(), nn.Linear(d, width), nn.ReLU(), nn.Linear(width, n_classes))
    channels = 1 if len(shape) == 2 else int(shape[-1])
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        nn.Flatten(), nn.Linear(8 * width, 64), nn.ReLU(), nn.Linear(64, n_classes))


def train_epochs(net: Any, X: Any, y: Any, *, epochs: int, batch_size: int,
                 optimizer: Any, loss: Callable[[Any, Any], Any], generator: Any,
                 on_epoch: Callable[[int], None] | None = None) -> None:
    """The one training loop: shuffled mini-batches (``generator``), ``loss(logits, labels)``
    returns per-row losses whose mean is minimised; ``on_epoch(epoch)`` after each epoch."""
    torch = require_torch()
    n = len(y)
    net.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            optimizer.zero_grad()
            loss(net(X[idx]), y[idx]).mean().backward()
            optimizer.step()
        if on_epoch is not None:
            on_epoch(epoch)
    net.eval()


@register
class AntiBackdoorLearning(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Isolate the rows learned fastest, train on the rest, unlearn the isolated ones.

    Parameters
    ----------
    net : {"mlp", "cnn"}, default "mlp"
    isolation : float, default 0.05
        Share of rows isolated (the paper uses 1 %; more is safer when the poison rate is
        unknown, and costs a little clean accuracy).
    gamma : float, default 0.5
        LGA loss floor.
    isolation_epochs, epochs, unlearning_epochs : int
    lr, unlearning_lr : float
        Adam learning rates for training and for the unlearning ascent.
    batch_size, width, random_state
    """

    name: ClassVar[str] = "abl"
    summary: ClassVar[str] = "anti-backdoor learning: isolate fast-learned rows, then unlearn them"
    papers: ClassVar[tuple[str, ...]] = (
        "Li et al. Anti-Backdoor Learning: Training Clean Models on Poisoned Data. NeurIPS 2021",)

    def __init__(self, net: str = "mlp", isolation: float = 0.05, gamma: float = 0.5,
                 isolation_epochs: int = 5, epochs: int = 20, unlearning_epochs: int = 5,
                 lr: float = 2e-3, unlearning_lr: float = 5e-4, batch_size: int = 64,
                 width: int = 64, random_state: int = 0) -> None:
        self.net = net
        self.isolation = isolation
        self.gamma = gamma
        self.isolation_epochs = isolation_epochs
        self.epochs = epochs
        self.unlearning_epochs = unlearning_epochs
        self.lr = lr
        self.unlearning_lr = unlearning_lr
        self.batch_size = batch_size
        self.width = width
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.net not in ("mlp", "cnn"):
            raise ValueError(f"net must be mlp or cnn (got {self.net!r})")
        if not 0.0 < float(self.isolation) < 0.5:
            raise ValueError(f"isolation must be in (0, 0.5) (got {self.isolation!r})")
        for name in ("isolation_epochs", "epochs", "batch_size", "width"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1 (got {getattr(self, name)!r})")
        if int(self.unlearning_epochs) < 0:
            raise ValueError(f"unlearning_epochs must be >= 0 (got {self.unlearning_epochs!r})")

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

    def fit(self, X: Any, y: Any) -> AntiBackdoorLearning:
        torch = require_torch()
        F = torch.nn.functional
        self._check_params()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        arr, y = validate_data(self, X, y, dtype=np.float64, allow_nd=True)
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
        k = max(len(self.classes_), 2)
        model = make_net(self.net, self.shape_, k, int(self.width))
        opt = torch.optim.Adam(model.parameters(), lr=float(self.lr))
        gamma, bs = float(self.gamma), int(self.batch_size)

        def lga(logits: Any, target: Any) -> Any:
            loss = F.cross_entropy(logits, target, reduction="none")
            return torch.sign(loss - gamma) * loss

        train_epochs(model, data, labels, epochs=int(self.isolation_epochs), batch_size=bs,
                     optimizer=opt, loss=lga, generator=generator)
        with torch.no_grad():
            losses = F.cross_entropy(model(data), labels, reduction="none").numpy()
        n_iso = max(1, round(float(self.isolation) * len(y)))
        isolated = np.argsort(losses, kind="stable")[:n_iso]
        keep = np.ones(len(y), dtype=bool)
        keep[isolated] = False
        self.isolated_ = np.sort(isolated)

        def ce(logits: Any, target: Any) -> Any:
            return F.cross_entropy(logits, target, reduction="none")

        rest = torch.from_numpy(np.flatnonzero(keep))
        train_epochs(model, data[rest], labels[rest], epochs=int(self.epochs), batch_size=bs,
                     optimizer=opt, loss=ce, generator=generator)
        if int(self.unlearning_epochs) > 0:
            iso = torch.from_numpy(isolated)
            ascent = torch.optim.Adam(model.parameters(), lr=float(self.unlearning_lr))
            train_epochs(model, data[iso], labels[iso], epochs=int(self.unlearning_epochs),
                         batch_size=bs, optimizer=ascent,
                         loss=lambda logits, target: -ce(logits, target), generator=generator)
        self.state_ = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
        return self

    def _module(self) -> Any:
        torch = require_torch()
        model = make_net(self.net, self.shape_, max(len(self.classes_), 2), int(self.width))
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in self.state_.items()})
        model.eval()
        return model

    def predict_proba(self, X: Any) -> np.ndarray:
        torch = require_torch()
        check_is_fitted(self, "state_")
        arr = validate_data(self, X, dtype=np.float64, allow_nd=True, reset=False)
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
