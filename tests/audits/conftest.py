"""Small trained models for the audit tests: digits MLPs with and without a 10 % patch
backdoor to class 3, a 5-class tabular HGB with a 5 % feature backdoor to class 2, and a
TF-IDF text model (trained once per session)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from poisonguard.audits._zoo import ZooCase, make_case
from poisonguard.dataset import Dataset
from poisonguard.datasets import load_dataset

TARGET = 3


@pytest.fixture(scope="package", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models on shared cores: one thread (torch, OpenMP) is ~20x faster than two that
    contend with other work."""
    from threadpoolctl import threadpool_limits

    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def digits_backdoored() -> ZooCase:
    return make_case(load_dataset("digits"), model="mlp", trigger="patch", rate=0.1,
                     target=TARGET, seed=0, epochs=20)


@pytest.fixture(scope="package")
def digits_clean() -> ZooCase:
    return make_case(load_dataset("digits"), model="mlp", trigger="patch", rate=0.0,
                     target=TARGET, seed=0, epochs=20)


def five_classes() -> Dataset:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=1500, n_features=20, n_informative=8, n_redundant=4,
                               n_classes=5, n_clusters_per_class=1, class_sep=1.5,
                               random_state=0)
    return Dataset(X, y, modality="tabular", name="five_classes")


@pytest.fixture(scope="package")
def tabular_backdoored() -> ZooCase:
    return make_case(five_classes(), model="hgb", trigger="feature", rate=0.05, target=2, seed=0)


@pytest.fixture(scope="package")
def text_case() -> ZooCase:
    return make_case(load_dataset("synthetic_text", n_rows=400), model="tfidf", trigger="token",
                     rate=0.1, target="pos", seed=0, n_clean=100)


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
