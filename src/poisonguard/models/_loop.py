"""The networks and the one training loop that every torch model in poisonguard uses: the
scan's proxy CNN (:mod:`poisonguard.models.cnn`) and the network defences
(:mod:`poisonguard.defenses`)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["make_net", "train_epochs"]


def _torch() -> Any:
    return importlib.import_module("torch")  # callers have checked that torch is installed


def make_net(kind: str, shape: tuple[int, ...], n_classes: int, width: int) -> Any:
    """An MLP over flattened features or a small CNN over images of ``shape`` (h, w[, c])."""
    nn = _torch().nn
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
    torch = _torch()
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
