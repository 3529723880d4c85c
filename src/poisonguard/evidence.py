"""Evidence: what detectors read about one dataset, computed once, lazily, and cached.

A scan trains its proxy models and builds its neighbour graph once; every detector reads the
same fields. Fields (each computed on first use):

``labels``      integer label codes ``(n,)`` into ``classes``.
``features``    the modality's encoded numeric matrix (standardised columns with missing
                values median-imputed and indicated, one-hot or frequency-encoded categories,
                scaled pixels, TF-IDF — sparse for text).
``proba``       out-of-fold predicted probabilities ``(n, n_classes)`` from ``folds``-fold
                cross-fitting of the probability model: no row is scored by a model that saw it.
``embedding``   ``(n, e)`` hidden-layer representation from a proxy network trained on all rows.
``neighbors``   the ``k`` nearest other rows in embedding space (:class:`Neighbors`).
``feature_neighbors`` the ``max(k, 20)`` nearest other rows in a label-free view of
                ``features`` (at most 64 dimensions; :class:`Neighbors`). The embedding network
                was fitted to the possibly wrong labels, so its neighbourhoods can echo them;
                these cannot.
``losses``      ``(n, epochs)`` per-row cross-entropy of the proxy network after each epoch.

Proxies by modality (``model`` / ``embedder`` override them): tabular — logistic regression
(histogram gradient boosting from 5,000 rows) for ``proba``, a one-hidden-layer MLP for the
embedding; images — logistic regression on pixels for ``proba`` and a small PyTorch CNN for the
embedding (an MLP on pixels, with a note, without torch); text — logistic regression on TF-IDF
and an MLP on a 128-d SVD of TF-IDF, or MiniLM sentence embeddings with ``embedder="minilm"``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar, cast

import numpy as np
import scipy.sparse as sp

from poisonguard._validation import check_choice
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError

__all__ = ["EMBEDDERS", "PROBA_MODELS", "Evidence", "Neighbors"]

PROBA_MODELS: tuple[str, ...] = ("auto", "logreg", "hgb")
EMBEDDERS: tuple[str, ...] = ("auto", "mlp", "cnn", "minilm")
_HGB_FROM_ROWS = 5000
_FEATURE_K = 20

Progress = Callable[[str], Any]
_T = TypeVar("_T")


@dataclass(frozen=True)
class Neighbors:
    """The ``k`` nearest other rows of every row: ``indices`` and ``distances``, shape ``(n, k)``,
    nearest first (a row is never its own neighbour). ``exact`` is False for the approximate
    index used on large data."""

    indices: np.ndarray
    distances: np.ndarray
    exact: bool = True

    @property
    def k(self) -> int:
        """Neighbours per row."""
        return int(self.indices.shape[1])


class Evidence:
    """Lazily computed, cached views of ``dataset`` shared by all detectors.

    ``reference`` is a trusted dataset (for the ``validation`` detector and for scans of a batch
    against it). ``progress`` is called with a step name before each expensive step.
    """

    def __init__(self, dataset: Dataset, *, model: str | Any = "auto", embedder: str = "auto",
                 folds: int = 5, k: int = 10, reference: Dataset | None = None,
                 random_state: int = 0, progress: Progress | None = None) -> None:
        if not isinstance(dataset, Dataset):
            raise InputError(f"Evidence needs a Dataset (got {type(dataset).__name__})")
        if dataset.n_rows < 2:
            raise InputError(f"{dataset.name or 'data'}: a scan needs at least 2 rows "
                             f"(got {dataset.n_rows})")
        if isinstance(model, str):
            check_choice("model", model, PROBA_MODELS)
        check_choice("embedder", embedder, EMBEDDERS)
        if not isinstance(folds, int) or folds < 2:
            raise InputError(f"'folds' must be an integer >= 2 (got {folds!r})")
        if not isinstance(k, int) or k < 1:
            raise InputError(f"'k' must be a positive integer (got {k!r})")
        self.dataset = dataset
        self.model = model
        self.embedder = embedder
        self.folds = folds
        self.k = min(k, dataset.n_rows - 1)
        self.reference = reference
        self.random_state = int(random_state)
        self.timings: dict[str, float] = {}
        self.notes: list[str] = []
        self._progress = progress
        self._memo: dict[Hashable, Any] = {}

    # ------------------------------------------------------------------ helpers
    @contextmanager
    def _step(self, name: str) -> Iterator[None]:
        if self._progress is not None:
            self._progress(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start

    def note(self, message: str) -> None:
        """Record a one-line note for the report (e.g. a fallback that was taken)."""
        if message not in self.notes:
            self.notes.append(message)

    def memo(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """A view derived from the fields and shared by detectors (e.g. a class's whitened
        embedding, read by ``spectral`` and ``clusters``), computed once per ``key``."""
        if key not in self._memo:
            self._memo[key] = compute()
        return cast(_T, self._memo[key])

    @property
    def n_rows(self) -> int:
        """Rows in the dataset."""
        return self.dataset.n_rows

    # ------------------------------------------------------------------ fields
    @cached_property
    def classes(self) -> np.ndarray:
        """Sorted distinct labels; ``labels`` index into it."""
        return np.asarray(self.dataset.classes)

    @cached_property
    def labels(self) -> np.ndarray:
        """Integer label codes ``(n,)``."""
        return np.searchsorted(self.classes, np.asarray(self.dataset.y)).astype(np.int64)

    @cached_property
    def features(self) -> Any:
        """The modality's encoded numeric matrix (float64; scipy sparse for text). How messy
        tabular columns were encoded (missing values, dates, many categories) goes to ``notes``."""
        from poisonguard.models import describe_encoding, featurizer

        with self._step("features"):
            for line in describe_encoding(self.dataset):
                self.note(line)
            F = featurizer(self.dataset).fit_transform(self.dataset.X)
            if sp.issparse(F) and self.dataset.modality != "text":
                F = F.toarray()
            return F.astype(np.float64) if sp.issparse(F) else np.asarray(F, dtype=np.float64)

    @cached_property
    def proba(self) -> np.ndarray:
        """Out-of-fold predicted probabilities ``(n, n_classes)``; rows sum to 1."""
        from poisonguard.models.proxies import out_of_fold_proba

        with self._step("proba"):
            return out_of_fold_proba(self, self.model)

    @cached_property
    def _network(self) -> tuple[np.ndarray, np.ndarray]:
        from poisonguard.models.proxies import train_embedding

        with self._step("embedding"):
            return train_embedding(self, self.embedder)

    @property
    def embedding(self) -> np.ndarray:
        """Hidden-layer representation ``(n, e)`` of a proxy network trained on all rows."""
        return self._network[0]

    @property
    def losses(self) -> np.ndarray:
        """Per-row cross-entropy ``(n, epochs)`` of the proxy network after each epoch."""
        return self._network[1]

    @cached_property
    def neighbors(self) -> Neighbors:
        """The ``k`` nearest other rows in (standardised) embedding space."""
        from poisonguard.models.knn import nearest_neighbors

        emb = self.embedding
        with self._step("neighbors"):
            return nearest_neighbors(emb, self.k, random_state=self.random_state)

    @cached_property
    def feature_neighbors(self) -> Neighbors:
        """The ``max(k, 20)`` nearest other rows in a label-free view of ``features``."""
        from poisonguard.models.knn import nearest_neighbors
        from poisonguard.models.proxies import label_free_view

        F = self.features
        with self._step("feature neighbors"):
            k = min(max(self.k, _FEATURE_K), self.n_rows - 1)
            return nearest_neighbors(label_free_view(self, F), k, random_state=self.random_state)

    def computed(self) -> tuple[str, ...]:
        """Names of the fields computed so far."""
        names = ("classes", "labels", "features", "proba", "_network", "neighbors",
                 "feature_neighbors")
        return tuple(n.lstrip("_").replace("network", "embedding") for n in names
                     if n in self.__dict__)
