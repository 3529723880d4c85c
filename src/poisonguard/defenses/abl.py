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
blocks, images ``(n, h, w[, c])``). One training loop (``models._loop.train_epochs``) serves
every stage. The trained weights are kept as numpy arrays (``state_``); prediction rebuilds the
network from them. Needs ``pip install torch==2.13.0``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from poisonguard.defenses._base import register
from poisonguard.defenses._torch import TorchDefense, make_net, row_loss, train_epochs
from poisonguard.models.cnn import require_torch

__all__ = ["AntiBackdoorLearning", "make_net", "train_epochs"]


@register
class AntiBackdoorLearning(TorchDefense):
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
        self._check_net()
        if not 0.0 < float(self.isolation) < 0.5:
            raise ValueError(f"isolation must be in (0, 0.5) (got {self.isolation!r})")
        for name in ("isolation_epochs", "epochs", "batch_size", "width"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1 (got {getattr(self, name)!r})")
        if int(self.unlearning_epochs) < 0:
            raise ValueError(f"unlearning_epochs must be >= 0 (got {self.unlearning_epochs!r})")

    def fit(self, X: Any, y: Any) -> AntiBackdoorLearning:
        torch = require_torch()
        F = torch.nn.functional
        self._check_params()
        data, labels, model, generator = self._prepare(X, y)
        n_rows = len(labels)
        opt = torch.optim.Adam(model.parameters(), lr=float(self.lr))
        gamma, bs = float(self.gamma), int(self.batch_size)

        def lga(logits: Any, target: Any) -> Any:
            loss = F.cross_entropy(logits, target, reduction="none")
            return torch.sign(loss - gamma) * loss

        train_epochs(model, data, labels, epochs=int(self.isolation_epochs), batch_size=bs,
                     optimizer=opt, loss=lga, generator=generator)
        with torch.no_grad():
            losses = F.cross_entropy(model(data), labels, reduction="none").numpy()
        n_iso = max(1, round(float(self.isolation) * n_rows))
        isolated = np.argsort(losses, kind="stable")[:n_iso]
        keep = np.ones(n_rows, dtype=bool)
        keep[isolated] = False
        self.isolated_ = np.sort(isolated)

        ce = row_loss("ce")

        rest = torch.from_numpy(np.flatnonzero(keep))
        train_epochs(model, data[rest], labels[rest], epochs=int(self.epochs), batch_size=bs,
                     optimizer=opt, loss=ce, generator=generator)
        if int(self.unlearning_epochs) > 0:
            iso = torch.from_numpy(isolated)
            ascent = torch.optim.Adam(model.parameters(), lr=float(self.unlearning_lr))
            train_epochs(model, data[iso], labels[iso], epochs=int(self.unlearning_epochs),
                         batch_size=bs, optimizer=ascent,
                         loss=lambda logits, target: -ce(logits, target), generator=generator)
        self._keep(model)
        return self
