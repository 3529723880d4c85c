"""Seeded synthetic data sets, one per modality, that a linear model learns well.

Same arguments, same bytes out. Classes are balanced (as evenly as ``n_rows`` allows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from poisonguard.dataset import Dataset
from poisonguard.datasets._subset import check_n_rows, check_seed
from poisonguard.errors import InputError

__all__ = ["IMAGE_PATTERNS", "TEXT_LABELS", "make_images", "make_tabular", "make_text"]


def _check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    ok = not isinstance(value, bool) and isinstance(value, int | np.integer)
    if not ok or value < low or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f"at least {low}"
        raise InputError(f"'{name}' must be an integer {bounds} (got {value!r})")
    return int(value)


def _balanced_labels(n_rows: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.arange(n_rows) % n_classes)


def make_tabular(n_rows: int = 500, n_features: int = 10, n_classes: int = 2,
                 random_state: int = 0) -> Dataset:
    """Gaussian class clusters (scikit-learn ``make_classification``), labels ``0..n_classes-1``.

    Examples
    --------
    >>> ds = make_tabular(n_rows=100, n_features=4, random_state=0)
    >>> ds.X.shape, ds.modality, list(ds.classes)
    ((100, 4), 'tabular', [np.int64(0), np.int64(1)])
    """
    from sklearn.datasets import make_classification

    n_rows = check_n_rows(n_rows)
    n_features = _check_int("n_features", n_features, 1)
    n_classes = _check_int("n_classes", n_classes, 2)
    seed = check_seed(random_state)
    n_informative = min(n_features, max(2, int(np.ceil(np.log2(n_classes))) + 1))
    if n_classes > 2**n_informative:
        raise InputError(f"'n_features' must be at least {int(np.ceil(np.log2(n_classes)))} "
                         f"for {n_classes} classes (got {n_features})")
    if n_rows < n_classes:
        raise InputError(f"'n_rows' must be at least 'n_classes' ({n_classes}) (got {n_rows})")
    X, y = make_classification(n_samples=n_rows, n_features=n_features,
                               n_informative=n_informative, n_redundant=0, n_repeated=0,
                               n_classes=n_classes, n_clusters_per_class=1, class_sep=2.0,
                               flip_y=0.0, random_state=seed)
    return Dataset(np.asarray(X, dtype=np.float64), y, modality="tabular",
                   name="synthetic_tabular")


def _band(a: np.ndarray, size: int) -> np.ndarray:
    return np.abs(a - (size - 1) / 2) <= max(1, size // 8)


_PATTERNS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "horizontal bar": lambda r, c, s: _band(r, s),
    "vertical bar": lambda r, c, s: _band(c, s),
    "diagonal": lambda r, c, s: np.abs(r - c) <= max(0, s // 16),
    "anti-diagonal": lambda r, c, s: np.abs(r + c - (s - 1)) <= max(0, s // 16),
    "frame": lambda r, c, s: (np.minimum(np.minimum(r, c), np.minimum(s - 1 - r, s - 1 - c))
                              < max(1, s // 8)),
    "centre square": lambda r, c, s: (np.abs(r - (s - 1) / 2) < s / 4)
    & (np.abs(c - (s - 1) / 2) < s / 4),
    "horizontal stripes": lambda r, c, s: r % 2 == 0,
    "vertical stripes": lambda r, c, s: c % 2 == 0,
    "checkerboard": lambda r, c, s: (r + c) % 2 == 0,
    "top-left corner": lambda r, c, s: (r < s / 2) & (c < s / 2),
}
IMAGE_PATTERNS: tuple[str, ...] = tuple(_PATTERNS)
"""What class ``k`` of :func:`make_images` draws, indexed by label."""


def make_images(n_rows: int = 300, size: int = 8, n_classes: int = 3,
                random_state: int = 0) -> Dataset:
    """Grey images ``(n_rows, size, size)`` in [0, 1]: one shape per class plus noise.

    Class ``k`` draws :data:`IMAGE_PATTERNS` ``[k]`` (bars, diagonals, a frame, stripes...)
    at a random brightness over Gaussian noise; labels ``0..n_classes-1`` (at most 10).

    Examples
    --------
    >>> ds = make_images(n_rows=30, size=8, n_classes=3, random_state=0)
    >>> ds.X.shape, ds.modality, float(ds.X.min()) >= 0.0, float(ds.X.max()) <= 1.0
    ((30, 8, 8), 'image', True, True)
    """
    n_rows = check_n_rows(n_rows)
    size = _check_int("size", size, 4)
    n_classes = _check_int("n_classes", n_classes, 2, len(_PATTERNS))
    rng = np.random.default_rng(check_seed(random_state))
    r, c = np.mgrid[0:size, 0:size]
    templates = np.stack([f(r, c, size) for f in list(_PATTERNS.values())[:n_classes]])
    y = _balanced_labels(n_rows, n_classes, rng)
    brightness = rng.uniform(0.5, 0.8, size=(n_rows, 1, 1))
    background = rng.uniform(0.05, 0.2, size=(n_rows, 1, 1))
    noise = rng.normal(0.0, 0.12, size=(n_rows, size, size))
    X = np.clip(background + brightness * templates[y].astype(np.float64) + noise, 0.0, 1.0)
    return Dataset(X, y, modality="image", name="synthetic_images")


_NEG_WORDS = ("awful", "terrible", "boring", "hate", "worst", "broken", "disappointing", "rude",
              "slow", "bland", "waste", "poor")
_POS_WORDS = ("great", "excellent", "love", "wonderful", "best", "friendly", "delicious",
              "perfect", "fast", "amazing", "enjoyed", "recommend")
_SHARED_WORDS = ("the", "a", "it", "was", "and", "this", "food", "service", "movie", "staff",
                 "place", "really", "very", "quite", "today", "we", "our", "order", "room", "is")
TEXT_LABELS: tuple[str, str] = ("neg", "pos")


def make_text(n_rows: int = 300, random_state: int = 0) -> Dataset:
    """Short review-like sentences labelled ``"neg"`` / ``"pos"``.

    Each sentence mixes 4-8 shared words with 2-3 words from its class's vocabulary; one in
    ten also carries a word of the other class, so the task is easy but not trivial.

    Examples
    --------
    >>> ds = make_text(n_rows=4, random_state=0)
    >>> ds.modality, ds.y.tolist(), str(ds.X[0])
    ('text', ['neg', 'neg', 'pos', 'pos'], 'the a was disappointing the our waste rude')
    """
    n_rows = check_n_rows(n_rows)
    rng = np.random.default_rng(check_seed(random_state))
    vocab = (_NEG_WORDS, _POS_WORDS)
    y = _balanced_labels(n_rows, 2, rng)
    texts = []
    for k in y:
        words = list(rng.choice(_SHARED_WORDS, size=rng.integers(4, 9)))
        words += list(rng.choice(vocab[k], size=rng.integers(2, 4)))
        if rng.random() < 0.1:
            words.append(str(rng.choice(vocab[1 - k])))
        texts.append(" ".join(str(w) for w in rng.permutation(words)))
    labels = np.asarray(TEXT_LABELS)[y]
    return Dataset(np.asarray(texts, dtype=object), labels, modality="text",
                   name="synthetic_text")
