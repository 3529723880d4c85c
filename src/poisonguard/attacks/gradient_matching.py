"""Witches' Brew (Geiping et al. 2021): targeted clean-label poisoning by gradient matching.

A surrogate network is trained on the clean data. The attacker wants the target input(s) to get
its label ``base_class``; the gradient of that adversarial loss with respect to the surrogate's
weights says which way training should move them. Rows of ``base_class`` (labels kept) are then
perturbed, each coordinate by at most ``eps`` of the data's range, so that the gradient of their
ordinary training loss points the same way: cosine similarity maximised with signed Adam, the step
cut tenfold at 3/8, 5/8 and 7/8 of ``steps``, from ``restarts`` random starts of which the best
aligned is kept. Training on the poisons then moves the target towards ``base_class`` for
models like the surrogate; how far that carries to a victim trained from scratch is measured in
``benchmarks/results/witches-brew.md`` (at 1 % of the rows and 16/255, small CNNs on digits and
Fashion-MNIST barely move).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from poisonguard._validation import check_choice, check_in, check_whole
from poisonguard.attacks._base import Attack, PoisonResult, Target, register, set_rows
from poisonguard.attacks._targeted import plan_target
from poisonguard.dataset import Dataset
from poisonguard.errors import DependencyError, InputError
from poisonguard.models import NumericCodec
from poisonguard.models._loop import make_net, train_epochs
from poisonguard.models.cnn import TorchCNNClassifier, require_torch

__all__ = ["GradientMatching"]


def _torch() -> Any:
    """Import torch, or raise a one-line install hint naming this attack."""
    try:
        return require_torch()
    except DependencyError:
        raise DependencyError("attack 'gradient-matching' needs PyTorch: pip install torch==2.13.0 "
                              "(or pip install 'poisonguard[torch]')") from None


@dataclass(frozen=True)
class _Space:
    """Rows as points ``v`` (images in channels-first layout, tables as numeric codes) that the
    surrogate reads as ``(v - shift) / scale``; crafting moves each coordinate by at most ``bound``
    inside ``[lo, hi]``, and by whole units where ``integer``."""

    shift: Any
    scale: Any
    lo: Any
    hi: Any
    bound: Any
    integer: Any
    codec: NumericCodec | None = None

    def encode(self, X: Any) -> np.ndarray:
        if self.codec is not None:
            return self.codec.encode(X)
        arr = np.asarray(X, dtype=np.float64)
        return arr[:, None] if arr.ndim == 3 else np.moveaxis(arr, -1, 1)

    def decode(self, v: np.ndarray, template: Dataset) -> Any:
        if self.codec is not None:
            return self.codec.decode(v)
        arr = v[:, 0] if template.X.ndim == 3 else np.moveaxis(v, 1, -1)
        return template.features_like(arr)

    def step(self, v0: np.ndarray, delta: np.ndarray) -> np.ndarray:
        """The crafted points for ``delta`` in [-1, 1] (in units of ``bound``)."""
        change = np.clip(v0 + self.bound * delta, self.lo, self.hi) - v0
        change = np.where(self.integer, np.trunc(change), change)  # rounding must not pass eps
        out: np.ndarray = v0 + change
        return out


@register
class GradientMatching(Attack):
    """Make target inputs be classified as ``base_class`` with correctly labelled poisons.

    ``eps`` bounds each coordinate's change as a share of the data's range (pixels: the range of
    all pixel values; tables: each column's range, integer columns in whole units; categories
    are left alone). ``steps`` signed-Adam steps of size ``lr`` (a share of ``eps``) from each
    of ``restarts`` random starts. The surrogate (``network``, trained with ``random_state`` for
    ``epochs``, ``width`` channels or units): ``"cnn"``, a
    :class:`~poisonguard.models.cnn.TorchCNNClassifier` (images only); ``"mlp"``, one hidden
    layer on standardised codes or scaled pixels; ``"auto"``, the CNN for images. A fitted
    ``TorchCNNClassifier`` trained on the data's classes may be handed in as ``surrogate``.
    Poisons are the ``base_class`` rows with the largest surrogate gradient norm. ``target``:
    one or more inputs; when omitted a seeded row of another class is taken out of the data and
    used as the target. Needs PyTorch.

    Examples
    --------
    >>> from poisonguard.datasets import make_images
    >>> ds = make_images(n_rows=120, random_state=0)
    >>> res = GradientMatching(count=4, steps=5, restarts=1, epochs=2, width=4).poison(
    ...     ds, rng=np.random.default_rng(0))
    >>> res.n_poisoned, res.target.label, bool(np.abs(res.dataset.X - ds.take(
    ...     res.source_index).X).max() <= 16 / 255 * np.ptp(ds.X) + 1e-12)
    (4, 0, True)
    """

    name = "gradient-matching"
    family = "targeted"
    summary = "targeted clean-label (Witches' Brew): poison gradients aligned with the target's"
    modalities = ("tabular", "image")

    def __init__(self, *, rate: float | None = None, count: int | None = None,
                 target: Any = None, base_class: Any = None, eps: float = 16 / 255,
                 steps: int = 120, restarts: int = 4, lr: float = 0.2, epochs: int = 15,
                 width: int = 32, network: str = "auto", surrogate: Any = None,
                 random_state: int = 0) -> None:
        self.rate = rate
        self.count = count
        self.target = target
        self.base_class = base_class
        self.eps = eps
        self.steps = steps
        self.restarts = restarts
        self.lr = lr
        self.epochs = epochs
        self.width = width
        self.network = network
        self.surrogate = surrogate
        self.random_state = random_state

    def _poison(self, dataset: Dataset, rng: np.random.Generator) -> PoisonResult:
        eps = check_in("eps", self.eps, 0.0, 1.0)
        steps = check_whole("steps", self.steps, 1, 100_000)
        restarts = check_whole("restarts", self.restarts, 1, 1000)
        lr = check_in("lr", self.lr, 0.0, 10.0)
        check_whole("epochs", self.epochs, 1, 10_000)
        check_whole("width", self.width, 1, 4096)
        self._check_surrogate(dataset)
        network = self._network(dataset)
        plan = plan_target(self, dataset, rng, many=True)
        dataset, keep, base, target_X, pool, n = (plan.dataset, plan.keep, plan.base, plan.target_X,
                                                  plan.pool, plan.n)
        torch = _torch()
        with torch.random.fork_rng(devices=[]):
            net, space = self._surrogate(dataset, eps, network)
            if not np.any(np.asarray(space.bound) > 0):
                raise InputError(f"'eps' {eps:g} moves no feature: the data has no numeric "
                                 "feature with a range")
            v_all = space.encode(dataset.X)
            codes = np.searchsorted(dataset.classes, dataset.y)
            base_code = int(np.searchsorted(dataset.classes, base))
            norms = _grad_norms(net, space, v_all[pool], codes[pool])
            rows = np.sort(pool[np.argsort(-norms, kind="stable")[:n]])
            v0 = v_all[rows]
            delta = _craft(net, space, v0, codes[rows], space.encode(target_X), base_code,
                           steps=steps, restarts=restarts, lr=lr, rng=rng)
        X_rows = space.decode(space.step(v0, delta), dataset)
        mask = np.zeros(dataset.n_rows, dtype=bool)
        mask[rows] = True
        out = dataset.replace(X=set_rows(dataset.X, rows, X_rows))
        return self.result(out, mask, keep, target=Target(target_X, base, plan.target_ids))

    def _check_surrogate(self, dataset: Dataset) -> None:
        if self.surrogate is None:
            return
        model = self.surrogate
        if dataset.modality != "image" or not isinstance(model, TorchCNNClassifier) \
                or not hasattr(model, "net_"):
            raise InputError("'surrogate' must be a fitted TorchCNNClassifier, for image data "
                             f"(got {type(model).__name__} for {dataset.modality} data)")
        if not np.array_equal(np.asarray(model.classes_), dataset.classes):
            raise InputError(f"'surrogate' was trained on classes {list(model.classes_)}, the data "
                             f"has {dataset.classes.tolist()}")

    def _network(self, dataset: Dataset) -> str:
        network = check_choice("network", self.network, ("auto", "cnn", "mlp"))
        if network == "auto":
            network = "cnn" if dataset.modality == "image" else "mlp"
        if network == "cnn" and dataset.modality != "image":
            raise InputError(f"'network' 'cnn' needs image data (got {dataset.modality})")
        if self.surrogate is not None and network != "cnn":
            raise InputError("'surrogate' is a CNN: leave 'network' at 'auto' or 'cnn' "
                             f"(got {network!r})")
        return network

    def _surrogate(self, dataset: Dataset, eps: float, network: str) -> tuple[Any, _Space]:
        """The surrogate network (eval mode) and the space it reads rows in."""
        torch = _torch()
        if dataset.modality == "image":
            X = np.asarray(dataset.X, dtype=np.float64)
            lo, hi = float(X.min()), float(X.max())
            whole = dataset.X.dtype.kind in "iub"
            if network == "cnn":
                model = self.surrogate
                if model is None:
                    model = TorchCNNClassifier(epochs=self.epochs, width=self.width,
                                               random_state=self.random_state).fit(X, dataset.y)
                return model.net_, _Space(0.0, model.scale_, lo, hi, eps * (hi - lo), whole)
            space = _Space(0.0, max(abs(lo), abs(hi), 1e-12), lo, hi, eps * (hi - lo), whole)
        else:
            space = _table_space(dataset, eps)
        torch.manual_seed(self.random_state)
        v = space.encode(dataset.X)
        net = make_net("mlp", v.shape[1:], len(dataset.classes), self.width)
        inputs = torch.from_numpy(((v - space.shift) / space.scale).astype(np.float32))
        labels = torch.from_numpy(np.searchsorted(dataset.classes, dataset.y).astype(np.int64))
        train_epochs(net, inputs, labels, epochs=self.epochs, batch_size=32,
                     optimizer=torch.optim.Adam(net.parameters(), lr=1e-2),
                     loss=torch.nn.functional.cross_entropy,
                     generator=torch.Generator().manual_seed(self.random_state))
        return net, space

def _table_space(dataset: Dataset, eps: float) -> _Space:
    """Numeric codes, standardised for the network; numbers move by ``eps`` of their column's
    range (whole units for integer columns), one-hot categories not at all."""
    codec = NumericCodec.fit(dataset)
    Z = codec.encode(dataset.X)
    n_num = len(codec.numeric) if dataset.is_frame else Z.shape[1]
    numeric = np.arange(Z.shape[1]) < n_num
    if dataset.is_frame:
        integer = np.zeros(Z.shape[1], dtype=bool)
        integer[:n_num] = [dataset.X[c].dtype.kind in "iub" for c in codec.numeric]
    else:
        integer = np.full(Z.shape[1], np.asarray(dataset.X).dtype.kind in "iub")
    return _Space(Z.mean(axis=0), Z.std(axis=0) + 1e-9, codec.lo, codec.hi,
                  np.where(numeric, eps * (codec.hi - codec.lo), 0.0), integer, codec)


def _tensors(*arrays: Any) -> list[Any]:
    torch = _torch()
    return [torch.as_tensor(np.asarray(a, dtype=np.float32)) for a in arrays]


def _flat_grad(net: Any, inputs: Any, labels: Any, *, create_graph: bool) -> Any:
    """The gradient of the mean cross-entropy with respect to every weight, as one vector."""
    torch = _torch()
    loss = torch.nn.functional.cross_entropy(net(inputs), labels)
    grads = torch.autograd.grad(loss, list(net.parameters()), create_graph=create_graph)
    return torch.cat([g.reshape(-1) for g in grads])


def _grad_norms(net: Any, space: _Space, v: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each row's weight-gradient norm of its own training loss."""
    torch = _torch()
    shift, scale = _tensors(space.shift, space.scale)
    inputs = (torch.from_numpy(v.astype(np.float32)) - shift) / scale
    labels = torch.from_numpy(codes.astype(np.int64))
    return np.array([float(_flat_grad(net, inputs[i:i + 1], labels[i:i + 1],
                                      create_graph=False).norm()) for i in range(len(v))])


def _craft(net: Any, space: _Space, v0: np.ndarray, codes: np.ndarray, v_target: np.ndarray,
           base_code: int, *, steps: int, restarts: int, lr: float,
           rng: np.random.Generator) -> np.ndarray:
    """The perturbation (in units of ``space.bound``, in [-1, 1]) whose poison gradient is best
    aligned with the target's adversarial gradient, over ``restarts`` random starts."""
    torch = _torch()
    cos = torch.nn.functional.cosine_similarity
    shift, scale, lo, hi, bound, start = _tensors(space.shift, space.scale, space.lo,
                                                  space.hi, space.bound, v0)
    labels = torch.from_numpy(codes.astype(np.int64))
    wanted = torch.full((len(v_target),), base_code, dtype=torch.int64)
    t_in = (torch.from_numpy(v_target.astype(np.float32)) - shift) / scale
    goal = _flat_grad(net, t_in, wanted, create_graph=False).detach()

    def alignment(delta: Any, create_graph: bool) -> Any:
        v = torch.minimum(torch.maximum(start + bound * delta, lo), hi)
        grad = _flat_grad(net, (v - shift) / scale, labels, create_graph=create_graph)
        return cos(grad, goal, dim=0)

    best, best_delta = -np.inf, np.zeros_like(v0)
    milestones = sorted({max(1, steps * k // 8) for k in (3, 5, 7)})
    for _ in range(restarts):
        delta = torch.from_numpy(rng.uniform(-1.0, 1.0, size=v0.shape).astype(np.float32))
        delta.requires_grad_(True)
        opt = torch.optim.Adam([delta], lr=lr)
        schedule = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
        for _ in range(steps):
            (grad,) = torch.autograd.grad(-alignment(delta, True), [delta])
            delta.grad = grad.sign()
            opt.step()
            schedule.step()
            with torch.no_grad():
                delta.clamp_(-1.0, 1.0)
        score = float(alignment(delta.detach(), False))
        if score > best:
            best, best_delta = score, delta.detach().numpy().astype(np.float64)
    return best_delta
