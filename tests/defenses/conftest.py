"""Shared data for the defence tests."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse


@pytest.fixture(scope="package")
def toy_tfidf() -> tuple[sparse.csr_matrix, np.ndarray]:
    """400 five-word texts of two overlapping vocabularies as TF-IDF (sparse), labels 0 / 1."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(0)
    words = np.array(["win", "cash", "prize", "lunch", "meet", "today", "call", "now", "home"])
    texts = [" ".join(rng.choice(words[:4] if i % 2 else words[3:], 5)) for i in range(400)]
    return sparse.csr_matrix(TfidfVectorizer().fit_transform(texts)), np.arange(400) % 2
