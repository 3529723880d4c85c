"""Proxy models behind :class:`poisonguard.evidence.Evidence`: out-of-fold probabilities and a
network whose hidden layer is the embedding, with per-row losses recorded after every epoch.

Proxies take arrays and a :class:`ProxyConfig` and return their result with its notes; they
never see an ``Evidence``. What they fit is kept (:class:`Embedder`, :class:`Projector`, the
probability model) so that rows outside the fitted sample can be viewed with the same state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.decomposition import TruncatedSVD
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier

from poisonguard.models import fit_quiet

if TYPE_CHECKING:
    from poisonguard.dataset import Dataset

__all__ = ["Embedder", "Projector", "ProxyConfig", "embedding_epochs", "fit_proba_model",
           "label_free_projector", "out_of_fold_proba", "proba_model", "train_embedding"]

_HGB_FROM_ROWS = 5000
# From 100,000 rows: 3 folds, each model trained on at most 200,000 rows of the other folds
# (1M rows: 5 folds of gradient boosting on 800,000 rows took ~6 min on 2 cores).
_FEWER_FOLDS_FROM = 100_000
_TRAIN_CAP = 200_000
_HIDDEN = 64
_SVD_DIM = 128
_VIEW_DIM = 64
_CNN_FROM_PIXELS = 16


@dataclass(frozen=True)
class ProxyConfig:
    """What every proxy needs besides the arrays: the data's ``modality``, the number of
    classes, the probability ``model`` (a name or an unfitted classifier), ``folds`` and the
    seed."""

    modality: str
    n_classes: int
    model: str | Any = "auto"
    folds: int = 5
    random_state: int = 0

    def n_folds(self, n_rows: int) -> int:
        """Folds asked of the cross-fitting on ``n_rows`` rows (3 from 100,000 rows; fewer when
        the smallest class is smaller)."""
        return self.folds if n_rows < _FEWER_FOLDS_FROM else min(self.folds, 3)


def proba_model(config: ProxyConfig, features: Any) -> Any:
    """The unfitted classifier behind ``Evidence.proba`` (it sees the encoded ``features``)."""
    model = config.model
    if not isinstance(model, str):
        return clone(model)
    if model == "auto":
        tabular = config.modality == "tabular" and not sp.issparse(features)
        model = "hgb" if tabular and features.shape[0] >= _HGB_FROM_ROWS else "logreg"
    if model == "hgb":
        return HistGradientBoostingClassifier(max_iter=100, random_state=config.random_state)
    c = 0.1 if config.modality == "image" else 1.0
    return LogisticRegression(max_iter=1000, C=c)


def _splitter(config: ProxyConfig, codes: np.ndarray, notes: list[str]) -> Any:
    n = len(codes)
    counts = np.bincount(codes, minlength=config.n_classes)
    smallest = int(counts[counts > 0].min())
    folds = config.n_folds(n)
    if smallest >= 2:
        return StratifiedKFold(n_splits=min(folds, smallest), shuffle=True,
                               random_state=config.random_state)
    notes.append("a class has a single row: folds are not stratified")
    return KFold(n_splits=min(config.folds, n), shuffle=True, random_state=config.random_state)


def out_of_fold_proba(features: Any, codes: np.ndarray, config: ProxyConfig
                      ) -> tuple[np.ndarray, list[str]]:
    """Cross-fitted class probabilities: each row scored by a model that did not see it, and
    the notes taken on the way.

    Classes missing from a training fold get probability 0 for that fold's rows; a training
    fold with a single class predicts it with certainty.
    """
    n = len(codes)
    notes: list[str] = []
    proba = np.zeros((n, config.n_classes))
    base = proba_model(config, features)
    rng = np.random.default_rng(config.random_state)
    for train, test in _splitter(config, codes, notes).split(np.zeros(n), codes):
        present = np.unique(codes[train])
        if len(present) == 1:
            proba[test, present[0]] = 1.0
            continue
        if len(train) > _TRAIN_CAP:  # a seeded sample of the other folds: still out-of-fold
            train = np.sort(rng.choice(train, _TRAIN_CAP, replace=False))
        fitted = fit_quiet(clone(base), features[train], codes[train])
        proba[test[:, None], np.asarray(fitted.classes_, dtype=np.int64)[None, :]] = \
            fitted.predict_proba(features[test])
    proba /= proba.sum(axis=1, keepdims=True)
    return proba, notes


@dataclass(frozen=True)
class FittedProba:
    """The probability model fitted on every sample row, for rows outside the sample."""

    model: Any
    n_classes: int

    def predict_proba(self, features: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` of new rows; rows sum to 1."""
        out = np.zeros((features.shape[0], self.n_classes))
        if self.model is None:
            return out + 1.0 / self.n_classes
        if isinstance(self.model, (int, np.integer)):  # a single class in the sample
            out[:, int(self.model)] = 1.0
            return out
        out[:, np.asarray(self.model.classes_, dtype=np.int64)] = self.model.predict_proba(features)
        out /= out.sum(axis=1, keepdims=True)
        return out


def fit_proba_model(features: Any, codes: np.ndarray, config: ProxyConfig) -> FittedProba:
    """The probability model fitted on all of ``features`` (at most ``_TRAIN_CAP`` seeded rows),
    which scores rows the sample does not hold."""
    present = np.unique(codes)
    if len(present) == 1:
        return FittedProba(int(present[0]), config.n_classes)
    rows = np.arange(len(codes))
    if len(rows) > _TRAIN_CAP:
        rows = np.sort(np.random.default_rng(config.random_state).choice(rows, _TRAIN_CAP,
                                                                       replace=False))
    model = fit_quiet(clone(proba_model(config, features)), features[rows], codes[rows])
    return FittedProba(model, config.n_classes)


def embedding_epochs(n_rows: int) -> int:
    """Epochs for the embedding network: 20 up to 20,000 rows, then fewer (5 at 80,000+)."""
    return int(np.clip(round(20 * 20000 / max(n_rows, 1)), 5, 20))


def _row_losses(proba: np.ndarray, codes: np.ndarray) -> np.ndarray:
    p = proba[np.arange(len(codes)), codes]
    out: np.ndarray = -np.log(np.clip(p, 1e-12, None))
    return out


@dataclass(frozen=True)
class _Standard:
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, Z: np.ndarray) -> _Standard:
        Z = np.asarray(Z, dtype=np.float64)
        sd = Z.std(axis=0)
        return cls(Z.mean(axis=0), np.where(sd > 1e-12, sd, 1.0))

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        out: np.ndarray = (np.asarray(Z, dtype=np.float64) - self.mean) / self.scale
        return out


@dataclass(frozen=True)
class Projector:
    """A fitted map of encoded features onto a few dense columns: a truncated SVD (``svd``;
    none when the features are narrow enough already), then, when ``standard`` is set,
    standardised columns."""

    svd: Any = None
    standard: _Standard | None = None

    def __call__(self, features: Any) -> np.ndarray:
        if self.svd is not None:
            Z = np.asarray(self.svd.transform(features), dtype=np.float64)
        else:
            Z = np.asarray(features.toarray() if sp.issparse(features) else features,
                           dtype=np.float64)
        return self.standard(Z) if self.standard is not None else Z


def _mlp_projector(features: Any, random_state: int) -> tuple[Projector, np.ndarray]:
    """The MLP's inputs: TF-IDF through a 128-d truncated SVD, standardised; dense features as
    they are. Returns the fitted projector and the projected sample."""
    if sp.issparse(features):
        dim = min(_SVD_DIM, features.shape[1] - 1, features.shape[0] - 1)
        if dim < 1:
            return Projector(), np.asarray(features.toarray(), dtype=np.float64)
        svd = TruncatedSVD(n_components=dim, random_state=random_state)
        reduced = svd.fit_transform(features)
        standard = _Standard.fit(reduced)
        return Projector(svd, standard), standard(reduced)
    return Projector(), np.asarray(features, dtype=np.float64)


def label_free_projector(features: Any, random_state: int) -> tuple[Projector, np.ndarray]:
    """``features`` as a dense matrix of at most 64 columns for neighbour search, fitted without
    the labels: as they are when narrow enough, else their leading 64 truncated-SVD components
    (not centred, so sparse TF-IDF stays sparse and wide pixels are not copied). Returns the
    fitted projector and the projected sample."""
    if not sp.issparse(features) and features.shape[1] <= _VIEW_DIM:
        return Projector(), np.asarray(features, dtype=np.float64)
    dim = min(_VIEW_DIM, features.shape[1] - 1, features.shape[0] - 1)
    if dim < 1:
        return Projector(), np.asarray(features.toarray() if sp.issparse(features) else features,
                                       dtype=np.float64)
    svd = TruncatedSVD(n_components=dim, random_state=random_state)
    view: np.ndarray = svd.fit_transform(features)
    return Projector(svd), view


@dataclass
class Embedder:
    """The fitted proxy network: ``embed(X, features)`` gives the hidden-layer representation of
    any rows, ``proba(X, features)`` its class probabilities (for losses of new rows).
    ``kind`` is ``mlp`` (``weights`` / ``biases`` of a one-hidden-layer network on
    ``projector(features)``, or on standardised MiniLM embeddings with ``minilm``) or ``cnn``."""

    kind: str
    n_classes: int
    projector: Projector = field(default_factory=Projector)
    weights: tuple[np.ndarray, ...] = ()
    biases: tuple[np.ndarray, ...] = ()
    minilm: _Standard | None = None
    cnn: Any = None
    classes: np.ndarray | None = None

    def _inputs(self, dataset: Dataset, features: Any) -> np.ndarray:
        if self.minilm is not None:
            from poisonguard.models.text import minilm_embedding

            return self.minilm(minilm_embedding(dataset))
        return self.projector(features)

    def _hidden(self, Z: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.maximum(Z @ self.weights[0] + self.biases[0], 0.0)
        return out

    def embed(self, dataset: Dataset, features: Any) -> np.ndarray:
        """Hidden-layer representation ``(n, e)`` (float32) of the rows of ``dataset`` (encoded
        as ``features``)."""
        if self.kind == "cnn":
            return np.asarray(self.cnn.embed(dataset.X), dtype=np.float32)
        Z = self._inputs(dataset, features)
        out = np.empty((len(Z), self.weights[0].shape[1]), dtype=np.float32)
        for part in _chunks(len(Z)):
            out[part] = self._hidden(Z[part])
        return out

    def proba(self, dataset: Dataset, hidden: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` of the proxy network for the rows of
        ``dataset`` whose hidden layer (:meth:`embed`) is ``hidden`` (the MLP's output layer
        reads it; the CNN runs on the images)."""
        if self.kind == "cnn":
            out = np.zeros((dataset.n_rows, self.n_classes))
            out[:, np.asarray(self.classes, dtype=np.int64)] = self.cnn.predict_proba(dataset.X)
            return out
        logits = np.asarray(hidden, dtype=np.float64) @ self.weights[1] + self.biases[1]
        if logits.shape[1] == 1:  # scikit-learn's binary output: one logistic unit
            p1 = 1.0 / (1.0 + np.exp(-logits[:, 0]))
            two: np.ndarray = np.stack([1.0 - p1, p1], axis=1)
            return two
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        out2: np.ndarray = z / z.sum(axis=1, keepdims=True)
        return out2


def _train_mlp(Z: np.ndarray, codes: np.ndarray, config: ProxyConfig
               ) -> tuple[np.ndarray, np.ndarray, MLPClassifier]:
    n = len(codes)
    epochs = embedding_epochs(n)
    batch = min(int(np.clip(n // 200, 64, 1024)), n)
    net = MLPClassifier(hidden_layer_sizes=(_HIDDEN,), batch_size=batch, learning_rate_init=2e-3,
                        alpha=1e-4, random_state=config.random_state)
    losses = np.empty((n, epochs), dtype=np.float32)
    classes = np.arange(config.n_classes)
    hidden = np.empty((n, _HIDDEN), dtype=np.float32)
    for epoch in range(epochs):
        net.partial_fit(Z, codes, classes=classes)
        for part in _chunks(n):  # bounded memory: a 1M-row pass is 10 small ones
            losses[part, epoch] = _row_losses(net.predict_proba(Z[part]), codes[part])
    for part in _chunks(n):
        hidden[part] = np.maximum(Z[part] @ net.coefs_[0] + net.intercepts_[0], 0.0)
    return hidden, losses, net


def _chunks(n: int, size: int = 100_000) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _train_cnn(X: Any, y: Any, codes: np.ndarray, classes: np.ndarray, config: ProxyConfig
               ) -> tuple[np.ndarray, np.ndarray, Embedder]:
    from poisonguard.models.cnn import TorchCNNClassifier

    epochs = min(embedding_epochs(len(codes)), 10)
    history: list[np.ndarray] = []
    cnn = TorchCNNClassifier(epochs=epochs, batch_size=128, random_state=config.random_state)

    def record(model: TorchCNNClassifier) -> None:
        proba = np.zeros((len(codes), len(classes)))
        proba[:, np.searchsorted(classes, model.classes_)] = model.predict_proba(X)
        history.append(_row_losses(proba, codes).astype(np.float32))

    cnn.fit(X, y, on_epoch=record)
    fitted = Embedder("cnn", config.n_classes, cnn=cnn,
                      classes=np.searchsorted(classes, cnn.classes_))
    return cnn.embed(X).astype(np.float32), np.stack(history, axis=1), fitted


def _mlp_embedder(net: MLPClassifier, config: ProxyConfig, projector: Projector,
                  minilm: _Standard | None = None) -> Embedder:
    return Embedder("mlp", config.n_classes, projector=projector,
                    weights=tuple(np.asarray(w) for w in net.coefs_),
                    biases=tuple(np.asarray(b) for b in net.intercepts_), minilm=minilm)


def train_embedding(dataset: Dataset, features: Any, codes: np.ndarray, classes: np.ndarray,
                    embedder: str, config: ProxyConfig
                    ) -> tuple[np.ndarray, np.ndarray, Embedder, list[str]]:
    """``(embedding, losses, fitted embedder, notes)`` from the proxy network chosen for the
    modality (``dataset``: the rows as they are, for the CNN and MiniLM)."""
    X, y = dataset.X, dataset.y
    modality = config.modality
    notes: list[str] = []
    if embedder == "auto":
        # On tiny images (digits' 8x8) the CNN is slower and worse than an MLP on pixels.
        small = modality == "image" and min(np.shape(X)[1:3]) < _CNN_FROM_PIXELS
        embedder = "cnn" if modality == "image" and not small else "mlp"
    if embedder == "cnn":
        if modality != "image":
            from poisonguard.errors import InputError

            raise InputError(f"embedder 'cnn' needs image data (got {modality})")
        try:
            import torch  # noqa: F401
        except ImportError:
            notes.append("torch is not installed: the image embedding is an MLP on pixels "
                         "(pip install torch==2.13.0 for the CNN)")
        else:
            hidden, losses, fitted = _train_cnn(X, y, codes, classes, config)
            return hidden, losses, fitted, notes
    if embedder == "minilm":
        from poisonguard.models.text import minilm_embedding

        raw = minilm_embedding(dataset)
        standard = _Standard.fit(raw)
        hidden, losses, net = _train_mlp(standard(raw), codes, config)
        return hidden, losses, _mlp_embedder(net, config, Projector(), standard), notes
    projector, inputs = _mlp_projector(features, config.random_state)
    hidden, losses, net = _train_mlp(inputs, codes, config)
    return hidden, losses, _mlp_embedder(net, config, projector), notes
