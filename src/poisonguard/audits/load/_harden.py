"""Model folders written by ``poisonguard harden`` (``spec.json`` + ``arrays.npz``): the model
behind its own feature encoding, and the torch module of a network defence."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.audits._base import AuditedModel
from poisonguard.audits.load._query import Query, check_modality, same_classes, shape_for
from poisonguard.audits.load._torch import folded
from poisonguard.dataset import Dataset, Modality
from poisonguard.errors import InputError

__all__ = ["from_folder"]


def from_folder(folder: Path, modality: Modality | None, classes: Sequence[Any] | None,
                shape: tuple[int, ...] | None) -> AuditedModel:
    """The model of a ``harden`` folder, taking inputs in its own encoding (text: strings)."""
    from poisonguard.defenses._encoding import TableEncoding, read_encoding, tfidf
    from poisonguard.defenses._torch import TorchDefense
    from poisonguard.defenses.store import load_model

    if not (folder / "spec.json").exists():
        raise InputError(f"{folder}: not a model folder (no spec.json; `poisonguard harden "
                         "--out` writes one)")
    est, spec = load_model(folder)
    where = str(folder)
    labels = same_classes(np.asarray(est.classes_), classes, where)
    enc = read_encoding(spec, where)
    if "text" in enc:
        vec = tfidf(enc["text"], where)
        return AuditedModel(
            predict_proba=Query(lambda X: est.predict_proba(vec.transform(X.astype(str))),
                                shape=(), n_classes=len(labels), where=where, text=True,
                                encode=lambda ds: np.asarray(ds.X, dtype=object)),
            classes=labels, modality=check_modality("text", modality, where), input_shape=(),
            source=where)
    table = TableEncoding.read(enc, where)
    width = table.width
    cnn = isinstance(est, TorchDefense) and est.net == "cnn"
    if width != int(est.n_features_in_) and not cnn:
        raise InputError(f"{where}: the encoding gives {width} features, the model takes "
                         f"{est.n_features_in_}")
    found_modality: Modality = "image" if not table.frame and len(table.shape) >= 2 else "tabular"
    if table.frame:
        in_shape: tuple[int, ...] = (width,)
        if shape is not None and tuple(shape) != in_shape:
            raise InputError(f"{where}: the model takes {width} encoded features, the data has "
                             f"shape {list(shape)}")
    else:
        in_shape = shape_for(tuple(table.shape), shape, where)

    def raw(arr: np.ndarray) -> np.ndarray:
        flat = arr.reshape(len(arr), -1)
        out: np.ndarray = est.predict_proba(flat.reshape((len(arr), *est.shape_)) if cnn else flat)
        return out

    def encode(ds: Dataset) -> np.ndarray:
        flat = table.encode(ds)
        if flat.shape[1] != int(np.prod(in_shape)):
            raise InputError(f"{ds.name}: rows of {flat.shape[1]} values, the model takes "
                             f"{list(in_shape)}")
        return flat.reshape((len(flat), *in_shape))

    module = _defense_module(est, len(labels))
    return AuditedModel(
        predict_proba=Query(raw, shape=in_shape, n_classes=len(labels), where=where, encode=encode),
        classes=labels, modality=check_modality(found_modality, modality, where),
        input_shape=in_shape, module=module, source=where, feature_names=table.names)


def _defense_module(est: Any, keep: int) -> Any:
    """The torch module of a network defence, its scaling folded in (None for the others)."""
    from poisonguard.defenses._torch import TorchDefense
    from poisonguard.defenses.dpsgd import DPSGDClassifier

    if isinstance(est, TorchDefense):
        net = est._module()
        return folded(net, kind=est.net, offset=est.offset_, scale=est.scale_, keep=keep)
    if isinstance(est, DPSGDClassifier) and importlib.util.find_spec("torch") is not None:
        torch = importlib.import_module("torch")
        nn = torch.nn
        layers = sorted({k.split(".")[0] for k in est.state_}, key=int)
        mods: list[Any] = []
        for i, layer in enumerate(layers):
            w = np.asarray(est.state_[f"{layer}.weight"], dtype=np.float32)
            lin = nn.Linear(w.shape[1], w.shape[0])
            lin.load_state_dict({"weight": torch.from_numpy(w), "bias": torch.from_numpy(
                np.asarray(est.state_[f"{layer}.bias"], dtype=np.float32))})
            mods += [lin] if i == len(layers) - 1 else [lin, nn.Tanh()]
        return folded(nn.Sequential(*mods).eval(), kind="mlp", offset=est.mean_,
                      scale=est.scale_, keep=keep)
    return None
