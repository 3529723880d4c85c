"""``dp-sgd``: a small network trained with differentially private SGD (Opacus), with its
privacy budget and the poisoning bound that budget implies.

Each step clips every row's gradient to ``max_grad_norm`` and adds Gaussian noise; Opacus'
accountant turns the noise, the sampling rate and the number of steps into ``(epsilon,
delta)``. Differential privacy bounds poisoning too: ``k`` rows added, removed or changed can
raise the probability of any outcome of training by at most a factor ``exp(k epsilon)`` plus
``k exp((k - 1) epsilon) delta`` (group privacy), which :meth:`DPSGDClassifier.group_privacy`
reports. The bound is loose beyond a handful of rows unless ``epsilon`` is small — the
benchmark shows what it buys on real attacks.

The features are standardised with the training data's own mean and spread; those two
statistics are not privatised (scale with public bounds beforehand for a strict guarantee).
Needs ``pip install 'poisonguard[dp]'`` (Opacus, PyTorch).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from poisonguard.defenses._base import register
from poisonguard.defenses._torch import dense
from poisonguard.errors import DependencyError

__all__ = ["DPSGDClassifier", "require_opacus"]


def require_opacus() -> Any:
    """Import Opacus (and torch), or raise a one-line install hint."""
    import importlib

    try:
        importlib.import_module("torch")
        opacus = importlib.import_module("opacus")
    except ImportError:
        raise DependencyError("defence 'dp-sgd' needs Opacus: pip install torch==2.13.0 && "
                              "pip install 'poisonguard[dp]'") from None
    return opacus


@contextmanager
def _quiet_accountant() -> Iterator[None]:
    """Opacus warns that its RNG is not the secure one (we seed it on purpose: the same seed
    gives the same model), when the best Renyi order is at the edge of its grid (the bound is
    then valid but not the tightest), and torch about the per-row gradient hooks on the first
    layer; none is the user's to act on."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        warnings.filterwarnings("ignore", message="Optimal order is the")
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        yield


@register
class DPSGDClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """An MLP (one hidden layer; ``hidden=0``: linear) trained with DP-SGD.

    Parameters
    ----------
    epsilon : float, default 3.0
        Target privacy budget; ``inf`` trains without noise or clipping (the baseline).
    delta : float or None
        Default ``1 / n^1.1`` (below ``1 / n``, as the definition asks).
    max_grad_norm : float, default 1.0
        Per-row gradient clipping bound.
    epochs, batch_size, lr, hidden, random_state
        Training: SGD with momentum 0.9 on Poisson-sampled batches of expected size
        ``batch_size``.
    """

    name: ClassVar[str] = "dp-sgd"
    summary: ClassVar[str] = "differentially private SGD (Opacus): bounded influence of any k rows"
    papers: ClassVar[tuple[str, ...]] = (
        "Abadi et al. Deep Learning with Differential Privacy. CCS 2016",
        "Ma, Zhu, Hsu. Data Poisoning against Differentially-Private Learners. IJCAI 2019",
    )

    def __init__(self, epsilon: float = 3.0, delta: float | None = None,
                 max_grad_norm: float = 1.0, epochs: int = 30, batch_size: int = 256,
                 lr: float = 0.1, hidden: int = 64, random_state: int = 0) -> None:
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.hidden = hidden
        self.random_state = random_state

    def _check_params(self, n: int) -> float:
        eps = float(self.epsilon)
        if not eps > 0:
            raise ValueError(f"epsilon must be positive or inf (got {self.epsilon!r})")
        delta = float(self.delta) if self.delta is not None else 1.0 / max(n, 2) ** 1.1
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1) (got {self.delta!r})")
        for name, value in (("max_grad_norm", self.max_grad_norm), ("lr", self.lr)):
            if not float(value) > 0:
                raise ValueError(f"{name} must be positive (got {value!r})")
        for name, value in (("epochs", self.epochs), ("batch_size", self.batch_size)):
            if int(value) < 1:
                raise ValueError(f"{name} must be at least 1 (got {value!r})")
        if int(self.hidden) < 0:
            raise ValueError(f"hidden must be >= 0 (got {self.hidden!r})")
        return delta

    def _net(self, d: int, k: int) -> Any:
        from torch import nn

        if int(self.hidden) == 0:
            return nn.Sequential(nn.Linear(d, k))
        return nn.Sequential(nn.Linear(d, int(self.hidden)), nn.Tanh(),
                             nn.Linear(int(self.hidden), k))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # TF-IDF text, made dense (bounded) for the network
        return tags

    def fit(self, X: Any, y: Any) -> DPSGDClassifier:
        opacus = require_opacus()
        import torch

        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X, y = validate_data(self, X, y, dtype=np.float64, accept_sparse="csr")
        X = dense(X)
        check_classification_targets(y)
        delta = self._check_params(len(X))
        self.classes_, codes = np.unique(y, return_inverse=True)
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 1e-12, scale, 1.0)
        Xs = torch.from_numpy(((X - self.mean_) / self.scale_).astype(np.float32))
        ys = torch.from_numpy(codes.astype(np.int64))
        torch.manual_seed(int(self.random_state))
        generator = torch.Generator().manual_seed(int(self.random_state))
        net = self._net(X.shape[1], max(len(self.classes_), 2))
        opt = torch.optim.SGD(net.parameters(), lr=float(self.lr), momentum=0.9)
        data = torch.utils.data.TensorDataset(Xs, ys)
        loader = torch.utils.data.DataLoader(data, batch_size=min(int(self.batch_size), len(X)),
                                             shuffle=True, generator=generator)
        private = math.isfinite(float(self.epsilon))
        if private:
            with _quiet_accountant():
                engine = opacus.PrivacyEngine(accountant="rdp")
                net, opt, loader = engine.make_private_with_epsilon(
                    module=net, optimizer=opt, data_loader=loader, epochs=int(self.epochs),
                    target_epsilon=float(self.epsilon), target_delta=delta,
                    max_grad_norm=float(self.max_grad_norm), noise_generator=generator)
        loss_fn = torch.nn.CrossEntropyLoss()
        net.train()
        with _quiet_accountant():
            for _ in range(int(self.epochs)):
                for xb, yb in loader:
                    if len(yb) == 0:  # Poisson sampling can draw an empty batch
                        continue
                    opt.zero_grad()
                    loss_fn(net(xb), yb).backward()
                    opt.step()
        net.eval()
        module = net._module if hasattr(net, "_module") else net
        self.state_ = {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}
        with _quiet_accountant():
            self.epsilon_ = float(engine.get_epsilon(delta)) if private else math.inf
        self.delta_ = delta if private else 0.0
        self.noise_multiplier_ = float(getattr(opt, "noise_multiplier", 0.0)) if private else 0.0
        return self

    def group_privacy(self, k: int) -> tuple[float, float]:
        """``(k epsilon, k exp((k - 1) epsilon) delta)``: how far ``k`` poisoned rows can move
        the distribution of the trained model (group privacy)."""
        check_is_fitted(self, "state_")
        if k < 0:
            raise ValueError(f"k must be >= 0 (got {k})")
        if not math.isfinite(self.epsilon_):
            return math.inf, 1.0
        eps = k * self.epsilon_
        with np.errstate(over="ignore"):
            delta = float(min(1.0, k * np.exp((k - 1) * self.epsilon_) * self.delta_))
        return eps, delta

    def _logits(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "state_")
        X = dense(validate_data(self, X, dtype=np.float64, reset=False, accept_sparse="csr"))
        Z = (X - self.mean_) / self.scale_
        layers = sorted({key.split(".")[0] for key in self.state_}, key=int)
        for i, layer in enumerate(layers):
            Z = Z @ self.state_[f"{layer}.weight"].T.astype(np.float64) + self.state_[f"{layer}.bias"]
            if i < len(layers) - 1:
                Z = np.tanh(Z)
        out: np.ndarray = Z[:, :max(len(self.classes_), 1)]
        return out

    def predict_proba(self, X: Any) -> np.ndarray:
        from scipy.special import softmax

        out: np.ndarray = softmax(self._logits(X), axis=1)
        return out

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)
        out: np.ndarray = self.classes_[proba.argmax(axis=1)]
        return out
