"""``robust-net``: an MLP or a small CNN trained with a noise-robust loss (PyTorch).

The same losses as ``robust-linear`` (cross-entropy, label smoothing, GCE, SCE) on the shared
networks and training loop of :mod:`poisonguard.defenses._torch`. Bounded losses (GCE, SCE)
warm up with ``warmup`` epochs of cross-entropy: from a random start their gradients on hard
rows are too small to learn from.
"""

from __future__ import annotations

from typing import Any, ClassVar

from poisonguard.defenses._base import register
from poisonguard.defenses._torch import TorchDefense, row_loss, train_epochs
from poisonguard.models.cnn import require_torch

__all__ = ["ROBUST_NET_LOSSES", "RobustNet"]

ROBUST_NET_LOSSES = ("ce", "smooth", "gce", "sce")


@register
class RobustNet(TorchDefense):
    """A network trained with a robust loss.

    Parameters
    ----------
    net : {"mlp", "cnn"}, default "mlp"
    loss : {"ce", "smooth", "gce", "sce"}, default "gce"
    q, smoothing, sce_weights
        As in ``robust-linear``.
    epochs : int, default 30
    warmup : int, default 5
        Cross-entropy epochs (at most ``epochs``) before a bounded loss takes over.
    lr, weight_decay, batch_size, width, random_state
        Adam, L2 weight decay, mini-batch size, hidden width, seed.
    """

    name: ClassVar[str] = "robust-net"
    summary: ClassVar[str] = "MLP or CNN with a noise-robust loss (GCE, SCE, smoothing)"
    papers: ClassVar[tuple[str, ...]] = (
        "Zhang, Sabuncu. Generalized Cross Entropy Loss for Training Deep Neural Networks with "
        "Noisy Labels. NeurIPS 2018",
        "Wang et al. Symmetric Cross Entropy for Robust Learning with Noisy Labels. ICCV 2019",
    )

    def __init__(self, net: str = "mlp", loss: str = "gce", q: float = 0.7,
                 smoothing: float = 0.1, sce_weights: tuple[float, float] = (0.1, 1.0),
                 epochs: int = 30, warmup: int = 5, lr: float = 2e-3, weight_decay: float = 1e-4,
                 batch_size: int = 64, width: int = 64, random_state: int = 0) -> None:
        self.net = net
        self.loss = loss
        self.q = q
        self.smoothing = smoothing
        self.sce_weights = sce_weights
        self.epochs = epochs
        self.warmup = warmup
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.width = width
        self.random_state = random_state

    def _check_params(self) -> None:
        self._check_net()
        if self.loss not in ROBUST_NET_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(ROBUST_NET_LOSSES)} (got {self.loss!r})")
        if not 0.0 < float(self.q) <= 1.0:
            raise ValueError(f"q must be in (0, 1] (got {self.q!r})")
        if not 0.0 <= float(self.smoothing) < 1.0:
            raise ValueError(f"smoothing must be in [0, 1) (got {self.smoothing!r})")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1 (got {getattr(self, name)!r})")
        if int(self.warmup) < 0:
            raise ValueError(f"warmup must be >= 0 (got {self.warmup!r})")

    def fit(self, X: Any, y: Any) -> RobustNet:
        torch = require_torch()
        self._check_params()
        data, labels, model, generator = self._prepare(X, y)
        opt = torch.optim.Adam(model.parameters(), lr=float(self.lr),
                               weight_decay=float(self.weight_decay))
        bs = int(self.batch_size)
        bounded = self.loss in ("gce", "sce")
        warm = min(int(self.warmup), int(self.epochs)) if bounded else 0
        if warm:
            train_epochs(model, data, labels, epochs=warm, batch_size=bs, optimizer=opt,
                         loss=row_loss("ce"), generator=generator)
        loss = row_loss(self.loss, q=float(self.q), smoothing=float(self.smoothing),
                        sce_weights=(float(self.sce_weights[0]), float(self.sce_weights[1])))
        if int(self.epochs) - warm > 0:
            train_epochs(model, data, labels, epochs=int(self.epochs) - warm, batch_size=bs,
                         optimizer=opt, loss=loss, generator=generator)
        self._keep(model)
        return self
