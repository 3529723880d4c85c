"""Small trained models, backdoored or clean, for the audits' tests and benchmark.

:func:`make_case` splits a data set, plants a backdoor in the training part (or not), trains a
model on it and returns a :class:`ZooCase`: the model as an :class:`AuditedModel`, a clean
sample for the audit, the held-out test rows, and the ground truth (trigger, target, the
input positions the trigger touches). Models: ``cnn`` and ``mlp`` (the shared torch networks of
:mod:`poisonguard.models._loop`, with a differentiable module that takes raw inputs), ``hgb``
(scikit-learn histogram gradient boosting, query-only) and ``tfidf`` (TF-IDF + logistic
regression for text, query-only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from poisonguard.attacks.backdoor import Backdoor
from poisonguard.attacks.triggers import Trigger, fit_trigger
from poisonguard.audits._base import AuditedModel
from poisonguard.dataset import Dataset
from poisonguard.evaluation import split
from poisonguard.models._loop import make_net, train_epochs
from poisonguard.models.cnn import require_torch

__all__ = ["MODELS", "ZooCase", "make_case", "torch_model", "train_net", "trigger_mask"]

MODELS = ("cnn", "mlp", "hgb", "tfidf")
_BATCH = 2048


@dataclass(frozen=True, eq=False)
class ZooCase:
    """A trained model and its ground truth.

    ``trigger`` is the trigger planted, or for a clean model (``rate`` 0) the one that would
    have been (to stamp test inputs with); ``target`` its target class; ``mask`` the input
    positions (input shape, bool) the trigger changes, None for text; ``accuracy`` the clean
    test accuracy; ``attack_success`` the share of test rows outside the target class that
    the trigger sends to it (for a clean model: how often the unplanted trigger does).
    """

    name: str
    model: AuditedModel
    clean: Dataset
    test: Dataset
    trigger: Trigger
    target: Any
    rate: float
    mask: np.ndarray | None
    accuracy: float
    attack_success: float

    @property
    def backdoored(self) -> bool:
        return self.rate > 0


def torch_model(net: Any, classes: np.ndarray, modality: Any, input_shape: tuple[int, ...], *,
                offset: Any = 0.0, scale: Any = 1.0, image: bool = False) -> AuditedModel:
    """An :class:`AuditedModel` over a torch network that takes scaled inputs: the module it
    exposes takes raw inputs ``(n, *input_shape)`` (``(x - offset) / scale``, images moved to
    channels-first when ``image``) and returns logits."""
    torch = require_torch()

    class RawInputs(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("offset", torch.as_tensor(np.asarray(offset, np.float32)))
            self.register_buffer("scale", torch.as_tensor(np.asarray(scale, np.float32)))

        def forward(self, x: Any) -> Any:
            z = (x - self.offset) / self.scale
            if image:
                z = z[:, None] if z.dim() == 3 else z.permute(0, 3, 1, 2)
            return self.net(z)

    module = RawInputs().eval()

    def predict_proba(X: Any) -> np.ndarray:
        arr = np.asarray(X, dtype=np.float32)
        with torch.no_grad():
            out = [torch.softmax(module(torch.from_numpy(arr[s:s + _BATCH])), dim=1).numpy()
                   for s in range(0, len(arr), _BATCH)]
        proba: np.ndarray = np.concatenate(out).astype(np.float64)
        return proba

    return AuditedModel(predict_proba, np.asarray(classes), modality, input_shape, module=module)


def train_net(train: Dataset, *, kind: str = "cnn", epochs: int = 10, width: int = 16,
              lr: float = 2e-3, batch_size: int = 64, seed: int = 0) -> AuditedModel:
    """Train the shared MLP or CNN with cross-entropy; a seeded, deterministic run on CPU."""
    torch = require_torch()
    X = np.asarray(train.X, dtype=np.float64)
    classes, codes = np.unique(train.y, return_inverse=True)
    shape = tuple(int(s) for s in X.shape[1:])
    image = kind == "cnn"
    if train.modality == "image":  # pixels: one scale for the whole image
        offset: Any = 0.0
        scale: Any = float(max(np.abs(X).max(), 1e-12))
    else:
        offset = X.mean(axis=0)
        spread = X.std(axis=0)
        scale = np.where(spread > 1e-12, spread, 1.0)
    torch.manual_seed(seed)
    net = make_net(kind, shape, len(classes), width)
    model = torch_model(net, classes, train.modality, shape, offset=offset, scale=scale,
                        image=image)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    data = torch.from_numpy(X.astype(np.float32))
    labels = torch.from_numpy(codes.astype(np.int64))
    module = model.module
    module.train()
    train_epochs(module, data, labels, epochs=epochs, batch_size=batch_size, optimizer=opt,
                 loss=lambda logits, y: torch.nn.functional.cross_entropy(logits, y,
                                                                        reduction="none"),
                 generator=torch.Generator().manual_seed(seed))
    module.eval()
    return model


def _sklearn_model(estimator: Any, train: Dataset) -> AuditedModel:
    estimator.fit(train.X, train.y)
    shape = () if train.modality == "text" else tuple(int(s) for s in np.shape(train.X)[1:])
    return AuditedModel(estimator.predict_proba, np.asarray(estimator.classes_), train.modality,
                        shape)


def _hgb(train: Dataset, seed: int) -> AuditedModel:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return _sklearn_model(HistGradientBoostingClassifier(max_iter=100, random_state=seed), train)


def _tfidf(train: Dataset, seed: int) -> AuditedModel:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(TfidfVectorizer(max_features=5000),
                         LogisticRegression(C=10.0, max_iter=1000, random_state=seed))
    return _sklearn_model(pipe, train)


def trigger_mask(trigger: Trigger, X: Any) -> np.ndarray:
    """The input positions (shape of one input, bool) that ``trigger`` changes on any row of
    ``X`` (images and tabular arrays)."""
    arr = np.asarray(X, dtype=np.float64)
    changed = np.abs(np.asarray(trigger.apply(np.asarray(X)), dtype=np.float64) - arr) > 1e-9
    out: np.ndarray = np.asarray(changed.any(axis=0))
    return out


def make_case(data: Dataset, *, model: str, trigger: str | None = None, rate: float = 0.1,
              target: Any = None, seed: int = 0, n_clean: int = 200, epochs: int = 10,
              width: int = 16) -> ZooCase:
    """Split ``data`` (70/30, seeded), plant a ``trigger`` backdoor (default: the modality's
    first family) at ``rate`` of the training rows to ``target`` (``rate`` 0: a clean model;
    the trigger is still fitted, to stamp test inputs with), train ``model`` and keep
    ``n_clean`` held-out rows (at most half) as the audit's clean sample (the rest are the
    test rows)."""
    rng = np.random.default_rng(seed)
    train, held = split(data, test_size=0.3, random_state=seed)
    order = rng.permutation(held.n_rows)
    n_clean = min(n_clean, held.n_rows // 2)
    clean, test = held.take(np.sort(order[:n_clean])), held.take(np.sort(order[n_clean:]))
    target = data.classes[0] if target is None else target
    planted = fit_trigger(train, trigger, target, rng)
    if rate > 0:
        train = Backdoor(rate=rate, trigger=planted, target_class=target).poison(
            train, rng=rng).dataset
    fit: dict[str, Callable[[Dataset, int], AuditedModel]] = {
        "cnn": lambda d, s: train_net(d, kind="cnn", epochs=epochs, width=width, seed=s),
        "mlp": lambda d, s: train_net(d, kind="mlp", epochs=epochs, width=4 * width, seed=s),
        "hgb": _hgb, "tfidf": _tfidf}
    audited = fit[model](train, seed)
    accuracy = float(np.mean(audited.predict(test.X) == test.y))
    others = test.take(test.y != target)
    success = float(np.mean(audited.predict(planted.apply(others.X)) == target))
    mask = None if data.modality == "text" else trigger_mask(planted, test.X)
    what = f"{planted.kind} {rate:.0%} -> {target}" if rate > 0 else f"clean ({planted.kind})"
    return ZooCase(f"{data.name} {model} {what} seed {seed}", audited, clean, test, planted,
                   target, rate, mask, accuracy, success)
