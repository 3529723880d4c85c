"""Proxy models behind :class:`poisonguard.evidence.Evidence`: out-of-fold probabilities and a
network whose hidden layer is the embedding, with per-row losses recorded after every epoch."""

from __future__ import annotations

from collections.abc import Iterator
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
    from poisonguard.evidence import Evidence

__all__ = ["embedding_epochs", "label_free_view", "out_of_fold_proba", "proba_model",
           "train_embedding"]

_HGB_FROM_ROWS = 5000
# From 100,000 rows: 3 folds, each model trained on at most 200,000 rows of the other folds
# (1M rows: 5 folds of gradient boosting on 800,000 rows took ~6 min on 2 cores).
_FEWER_FOLDS_FROM = 100_000
_TRAIN_CAP = 200_000
_HIDDEN = 64
_SVD_DIM = 128
_VIEW_DIM = 64
_CNN_FROM_PIXELS = 16


def proba_model(ev: Evidence, model: str | Any) -> Any:
    """The unfitted classifier behind ``ev.proba`` (it sees ``ev.features``)."""
    if not isinstance(model, str):
        return clone(model)
    if model == "auto":
        tabular = ev.dataset.modality == "tabular" and not sp.issparse(ev.features)
        model = "hgb" if tabular and ev.n_rows >= _HGB_FROM_ROWS else "logreg"
    if model == "hgb":
        return HistGradientBoostingClassifier(max_iter=100, random_state=ev.random_state)
    c = 0.1 if ev.dataset.modality == "image" else 1.0
    return LogisticRegression(max_iter=1000, C=c)


def _splitter(ev: Evidence) -> Any:
    counts = np.bincount(ev.labels, minlength=len(ev.classes))
    smallest = int(counts[counts > 0].min())
    folds = ev.folds if ev.n_rows < _FEWER_FOLDS_FROM else min(ev.folds, 3)
    if smallest >= 2:
        return StratifiedKFold(n_splits=min(folds, smallest), shuffle=True,
                               random_state=ev.random_state)
    ev.note("a class has a single row: folds are not stratified")
    return KFold(n_splits=min(ev.folds, ev.n_rows), shuffle=True, random_state=ev.random_state)


def out_of_fold_proba(ev: Evidence, model: str | Any) -> np.ndarray:
    """Cross-fitted class probabilities: each row scored by a model that did not see it.

    Classes missing from a training fold get probability 0 for that fold's rows; a training
    fold with a single class predicts it with certainty.
    """
    F, codes, n_classes = ev.features, ev.labels, len(ev.classes)
    proba = np.zeros((ev.n_rows, n_classes))
    base = proba_model(ev, model)
    rng = np.random.default_rng(ev.random_state)
    for train, test in _splitter(ev).split(np.zeros(ev.n_rows), codes):
        present = np.unique(codes[train])
        if len(present) == 1:
            proba[test, present[0]] = 1.0
            continue
        if len(train) > _TRAIN_CAP:  # a seeded sample of the other folds: still out-of-fold
            train = np.sort(rng.choice(train, _TRAIN_CAP, replace=False))
        fitted = fit_quiet(clone(base), F[train], codes[train])
        proba[test[:, None], np.asarray(fitted.classes_, dtype=np.int64)[None, :]] = \
            fitted.predict_proba(F[test])
    proba /= proba.sum(axis=1, keepdims=True)
    return proba


def embedding_epochs(n_rows: int) -> int:
    """Epochs for the embedding network: 20 up to 20,000 rows, then fewer (5 at 80,000+)."""
    return int(np.clip(round(20 * 20000 / max(n_rows, 1)), 5, 20))


def _row_losses(proba: np.ndarray, codes: np.ndarray) -> np.ndarray:
    p = proba[np.arange(len(codes)), codes]
    out: np.ndarray = -np.log(np.clip(p, 1e-12, None))
    return out


def _standardise(Z: np.ndarray) -> np.ndarray:
    Z = np.asarray(Z, dtype=np.float64)
    sd = Z.std(axis=0)
    out: np.ndarray = (Z - Z.mean(axis=0)) / np.where(sd > 1e-12, sd, 1.0)
    return out


def _mlp_inputs(ev: Evidence) -> np.ndarray:
    F = ev.features
    if sp.issparse(F):
        dim = min(_SVD_DIM, F.shape[1] - 1, ev.n_rows - 1)
        if dim < 1:
            return np.asarray(F.toarray(), dtype=np.float64)
        svd = TruncatedSVD(n_components=dim, random_state=ev.random_state)
        return _standardise(svd.fit_transform(F))
    return np.asarray(F, dtype=np.float64)


def label_free_view(ev: Evidence, F: Any) -> np.ndarray:
    """``features`` as a dense matrix of at most 64 columns for neighbour search, computed
    without the labels: as they are when narrow enough, else their leading 64 truncated-SVD
    components (not centred, so sparse TF-IDF stays sparse and wide pixels are not copied)."""
    if not sp.issparse(F) and F.shape[1] <= _VIEW_DIM:
        return np.asarray(F, dtype=np.float64)
    dim = min(_VIEW_DIM, F.shape[1] - 1, ev.n_rows - 1)
    if dim < 1:
        return np.asarray(F.toarray() if sp.issparse(F) else F, dtype=np.float64)
    view: np.ndarray = TruncatedSVD(n_components=dim, random_state=ev.random_state).fit_transform(F)
    return view


def _train_mlp(ev: Evidence, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, n_classes = ev.labels, len(ev.classes)
    epochs = embedding_epochs(ev.n_rows)
    batch = min(int(np.clip(ev.n_rows // 200, 64, 1024)), ev.n_rows)
    net = MLPClassifier(hidden_layer_sizes=(_HIDDEN,), batch_size=batch, learning_rate_init=2e-3,
                        alpha=1e-4, random_state=ev.random_state)
    losses = np.empty((ev.n_rows, epochs), dtype=np.float32)
    classes = np.arange(n_classes)
    hidden = np.empty((ev.n_rows, _HIDDEN), dtype=np.float32)
    for epoch in range(epochs):
        net.partial_fit(Z, codes, classes=classes)
        for part in _chunks(ev.n_rows):  # bounded memory: a 1M-row pass is 10 small ones
            losses[part, epoch] = _row_losses(net.predict_proba(Z[part]), codes[part])
    for part in _chunks(ev.n_rows):
        hidden[part] = np.maximum(Z[part] @ net.coefs_[0] + net.intercepts_[0], 0.0)
    return hidden, losses


def _chunks(n: int, size: int = 100_000) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _train_cnn(ev: Evidence) -> tuple[np.ndarray, np.ndarray]:
    from poisonguard.models.cnn import TorchCNNClassifier

    X, codes = ev.dataset.X, ev.labels
    epochs = min(embedding_epochs(ev.n_rows), 10)
    history: list[np.ndarray] = []
    cnn = TorchCNNClassifier(epochs=epochs, batch_size=128, random_state=ev.random_state)

    def record(model: TorchCNNClassifier) -> None:
        proba = np.zeros((len(codes), len(ev.classes)))
        proba[:, np.searchsorted(ev.classes, model.classes_)] = model.predict_proba(X)
        history.append(_row_losses(proba, codes).astype(np.float32))

    cnn.fit(X, ev.dataset.y, on_epoch=record)
    return cnn.embed(X).astype(np.float32), np.stack(history, axis=1)


def train_embedding(ev: Evidence, embedder: str) -> tuple[np.ndarray, np.ndarray]:
    """``(embedding, losses)`` from the proxy network chosen for the modality."""
    modality = ev.dataset.modality
    if embedder == "auto":
        # On tiny images (digits' 8x8) the CNN is slower and worse than an MLP on pixels.
        small = modality == "image" and min(np.shape(ev.dataset.X)[1:3]) < _CNN_FROM_PIXELS
        embedder = "cnn" if modality == "image" and not small else "mlp"
    if embedder == "cnn":
        if modality != "image":
            from poisonguard.errors import InputError

            raise InputError(f"embedder 'cnn' needs image data (got {modality})")
        try:
            import torch  # noqa: F401
        except ImportError:
            ev.note("torch is not installed: the image embedding is an MLP on pixels "
                    "(pip install torch==2.13.0 for the CNN)")
        else:
            return _train_cnn(ev)
    if embedder == "minilm":
        from poisonguard.models.text import minilm_embedding

        Z = _standardise(minilm_embedding(ev.dataset))
        return _train_mlp(ev, Z)
    return _train_mlp(ev, _mlp_inputs(ev))
