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
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
import scipy.sparse as sp

from poisonguard._validation import check_choice
from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.models.knn import Neighbors

if TYPE_CHECKING:
    from poisonguard.models.knn import NeighborIndex
    from poisonguard.models.proxies import Embedder, FittedProba, Projector, ProxyConfig

__all__ = ["EMBEDDERS", "PROBA_MODELS", "Evidence", "Neighbors", "View"]

PROBA_MODELS: tuple[str, ...] = ("auto", "logreg", "hgb")
EMBEDDERS: tuple[str, ...] = ("auto", "mlp", "cnn", "minilm")
_FEATURE_K = 20

Progress = Callable[[str], Any]
_T = TypeVar("_T")


class Evidence:
    """Lazily computed, cached views of ``dataset`` shared by all detectors.

    ``reference`` is a trusted dataset (for the ``validation`` detector and for scans of a batch
    against it). ``progress`` is called with a step name before each expensive step.
    """

    def __init__(self, dataset: Dataset, *, model: str | Any = "auto", embedder: str = "auto",
                 folds: int = 5, k: int = 10, reference: Dataset | None = None,
                 random_state: int = 0, progress: Progress | None = None,
                 classes: Any = None) -> None:
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
        self._classes = None if classes is None else np.asarray(classes)

    def __getstate__(self) -> dict[str, Any]:
        """What travels to a worker: everything but the progress callback."""
        state = dict(self.__dict__)
        state["_progress"] = None
        return state

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
        """Sorted distinct labels; ``labels`` index into it (all the data's classes when the
        evidence was fitted on a sample, see ``classes=``)."""
        if self._classes is not None:
            return self._classes
        return np.asarray(self.dataset.classes)

    @cached_property
    def labels(self) -> np.ndarray:
        """Integer label codes ``(n,)``."""
        return label_codes(self.classes, self.dataset)

    @property
    def config(self) -> ProxyConfig:
        """What the proxies are told besides the arrays."""
        from poisonguard.models.proxies import ProxyConfig

        return ProxyConfig(self.dataset.modality, len(self.classes), self.model, self.folds,
                           self.random_state)

    @cached_property
    def _encoded(self) -> tuple[Any, Any]:
        from poisonguard.models import describe_encoding, featurizer

        with self._step("features"):
            for line in describe_encoding(self.dataset):
                self.note(line)
            encoder = featurizer(self.dataset)
            return encoder, _as_features(encoder.fit_transform(self.dataset.X), self.dataset)

    @property
    def features(self) -> Any:
        """The modality's encoded numeric matrix (float64; scipy sparse for text). How messy
        tabular columns were encoded (missing values, dates, many categories) goes to ``notes``."""
        return self._encoded[1]

    @cached_property
    def proba(self) -> np.ndarray:
        """Out-of-fold predicted probabilities ``(n, n_classes)``; rows sum to 1."""
        from poisonguard.models.proxies import out_of_fold_proba

        F = self.features
        with self._step("proba"):
            proba, notes = out_of_fold_proba(F, self.labels, self.config)
        for line in notes:
            self.note(line)
        return proba

    @cached_property
    def _network(self) -> tuple[np.ndarray, np.ndarray, Embedder]:
        from poisonguard.models.proxies import train_embedding

        F = self.features
        with self._step("embedding"):
            out = train_embedding(self.dataset, F, self.labels, self.classes, self.embedder,
                                  self.config)
        for line in out[3]:
            self.note(line)
        return out[0], out[1], out[2]

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

    @property
    def feature_k(self) -> int:
        """Neighbours per row in the label-free feature view."""
        return min(max(self.k, _FEATURE_K), self.n_rows - 1)

    @cached_property
    def _label_free(self) -> tuple[Projector, np.ndarray]:
        from poisonguard.models.proxies import label_free_projector

        return label_free_projector(self.features, self.random_state)

    @cached_property
    def feature_neighbors(self) -> Neighbors:
        """The ``max(k, 20)`` nearest other rows in a label-free view of ``features``."""
        from poisonguard.models.knn import nearest_neighbors

        self.features  # noqa: B018 - encoded before the step's clock starts
        with self._step("feature neighbors"):
            view = self._label_free[1]
            return nearest_neighbors(view, self.feature_k, random_state=self.random_state)

    def computed(self) -> tuple[str, ...]:
        """Names of the fields computed so far."""
        names = ("classes", "labels", "_encoded", "proba", "_network", "neighbors",
                 "feature_neighbors")
        return tuple(n.lstrip("_").replace("network", "embedding").replace("encoded", "features")
                     for n in names if n in self.__dict__)

    # ------------------------------------------------------------------ the second phase
    def view(self, dataset: Dataset | None = None) -> View:
        """Row-local fields of ``dataset``'s rows computed from this evidence's fitted state
        (``None``: the fitted rows themselves, whose fields are the evidence's own)."""
        return View(self, dataset)

    @cached_property
    def fitted_proba(self) -> FittedProba:
        """The probability model refitted on every fitted row, for rows outside them."""
        from poisonguard.models.proxies import fit_proba_model

        with self._step("proba model"):
            return fit_proba_model(self.features, self.labels, self.config)

    @cached_property
    def neighbor_index(self) -> NeighborIndex:
        """The fitted rows' embeddings, searchable by new rows."""
        from poisonguard.models.knn import NeighborIndex

        return NeighborIndex(self.embedding, random_state=self.random_state)

    @cached_property
    def feature_index(self) -> NeighborIndex:
        """The fitted rows' label-free feature view, searchable by new rows."""
        from poisonguard.models.knn import NeighborIndex

        return NeighborIndex(self._label_free[1], random_state=self.random_state)


def label_codes(classes: np.ndarray, dataset: Dataset) -> np.ndarray:
    """Integer codes of ``dataset``'s labels into ``classes``; a label outside them is an error
    naming it."""
    y = np.asarray(dataset.y)
    codes = np.searchsorted(classes, y)
    bad = (codes >= len(classes)) | (np.asarray(classes[np.minimum(codes, len(classes) - 1)]) != y)
    if bad.any():
        raise InputError(f"{dataset.name or 'data'}: label {str(y[np.argmax(bad)])!r} is not one of "
                         f"the fitted classes ({', '.join(map(str, classes[:10]))})")
    return codes.astype(np.int64)


def _as_features(F: Any, dataset: Dataset) -> Any:
    if sp.issparse(F) and dataset.modality != "text":
        F = F.toarray()
    return F.astype(np.float64) if sp.issparse(F) else np.asarray(F, dtype=np.float64)


class View:
    """The row-local fields of some rows, computed from a fitted :class:`Evidence`: the second
    phase of a scan. The fitted rows' own view holds the evidence's fields; a view of other rows
    (a chunk of a large file, a partition on a worker) encodes them with the fitted featuriser,
    scores them with the probability model and network fitted on the sample, and finds their
    nearest *sample* rows. Neighbour indices always point into the fitted rows, so a detector
    reads their labels from ``evidence.labels``.

    Fields: ``dataset``, ``n_rows``, ``labels``, ``features``, ``proba``, ``embedding``,
    ``losses`` (for new rows a single column: the fitted network's loss), ``neighbors``,
    ``feature_neighbors``; ``in_sample`` says which kind of view this is.
    """

    def __init__(self, evidence: Evidence, dataset: Dataset | None = None) -> None:
        self.evidence = evidence
        self.in_sample = dataset is None or dataset is evidence.dataset
        self.dataset = evidence.dataset if dataset is None else dataset
        self._memo: dict[Hashable, Any] = {}

    @property
    def n_rows(self) -> int:
        """Rows in the view."""
        return self.dataset.n_rows

    @property
    def classes(self) -> np.ndarray:
        """The fitted classes."""
        return self.evidence.classes

    def memo(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """A value derived from this view's fields, computed once per ``key``."""
        if self.in_sample:
            return self.evidence.memo(key, compute)
        if key not in self._memo:
            self._memo[key] = compute()
        return cast(_T, self._memo[key])

    @cached_property
    def labels(self) -> np.ndarray:
        """Integer label codes into the fitted classes."""
        if self.in_sample:
            return self.evidence.labels
        return label_codes(self.evidence.classes, self.dataset)

    @cached_property
    def features(self) -> Any:
        """Encoded with the fitted featuriser."""
        if self.in_sample:
            return self.evidence.features
        return _as_features(self.evidence._encoded[0].transform(self.dataset.X), self.dataset)

    @cached_property
    def proba(self) -> np.ndarray:
        """Out-of-fold for fitted rows; from the model refitted on them for others."""
        if self.in_sample:
            return self.evidence.proba
        return self.evidence.fitted_proba.predict_proba(self.features)

    @cached_property
    def embedding(self) -> np.ndarray:
        """The fitted network's hidden layer."""
        if self.in_sample:
            return self.evidence.embedding
        return self.evidence._network[2].embed(self.dataset, self.features)

    @cached_property
    def losses(self) -> np.ndarray:
        """Per-epoch losses of fitted rows; the fitted network's loss ``(n, 1)`` for others."""
        if self.in_sample:
            return self.evidence.losses
        p = self.evidence._network[2].proba(self.dataset, self.embedding)  # no second pass
        own = p[np.arange(self.n_rows), self.labels]
        out: np.ndarray = -np.log(np.clip(own, 1e-12, None))[:, None].astype(np.float32)
        return out

    @property
    def neighbors(self) -> Neighbors:
        """Nearest other fitted rows (fitted rows) or nearest fitted rows (new rows)."""
        if self.in_sample:
            return self.evidence.neighbors
        return self.nearest(self.evidence.k)

    def nearest(self, k: int) -> Neighbors:
        """The ``k`` nearest fitted rows of each new row in embedding space. One query serves
        every ``k``: the widest asked so far is kept and narrower ones are its first columns
        (the same rows a narrower query finds, as both search the same cells)."""
        if self.in_sample:
            raise ValueError("nearest() is for rows outside the fitted sample; use neighbors")
        k = min(int(k), self.evidence.n_rows)
        wide: Neighbors | None = self._memo.get("nearest")
        if wide is None or wide.k < k:
            wide = self.evidence.neighbor_index.query(self.embedding, k)
            self._memo["nearest"] = wide
        if wide.k == k:
            return wide
        return Neighbors(wide.indices[:, :k], wide.distances[:, :k], wide.exact)

    @cached_property
    def feature_neighbors(self) -> Neighbors:
        """As ``neighbors``, in the label-free feature view."""
        if self.in_sample:
            return self.evidence.feature_neighbors
        projector = self.evidence._label_free[0]
        return self.evidence.feature_index.query(projector(self.features), self.evidence.feature_k)
