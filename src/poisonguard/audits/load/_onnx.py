"""``.onnx`` graphs, run with onnxruntime: one self-contained file (external data is refused,
since it names other files to read), its output read as probabilities, log-probabilities or
logits (see :mod:`poisonguard.audits.load`)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.audits._base import AuditedModel
from poisonguard.audits.load._files import model_file, require
from poisonguard.audits.load._query import Query, class_labels, shape_for, softmax
from poisonguard.dataset import Modality
from poisonguard.errors import InputError

__all__ = ["from_onnx"]

_ONNX_FLOAT = {1: np.float32, 11: np.float64, 10: np.float16}  # TensorProto element types


def from_onnx(path: Path, modality: Modality | None, classes: Sequence[Any] | None,
              shape: tuple[int, ...] | None) -> AuditedModel:
    """The model of an ``.onnx`` file, its input layout and output kind read from the graph."""
    onnx = require("onnx", "reading .onnx models")
    ort = require("onnxruntime", "running .onnx models")
    data = model_file(path, "ONNX model")
    where = str(path)
    try:
        model = onnx.load_model_from_string(data)  # never follows external data
    except Exception:  # protobuf's DecodeError and onnx's own, no common base
        raise InputError(f"{path}: not an ONNX model (it does not parse)") from None
    if not len(model.graph.node) or not len(model.graph.output):
        raise InputError(f"{path}: not an ONNX model (no graph)")
    helper = importlib.import_module("onnx.external_data_helper")
    if any(helper.uses_external_data(t) for t in helper._get_all_tensors(model)):
        raise InputError(f"{path}: the model keeps weights in other files (external data); "
                         "save it as one self-contained .onnx file")
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise InputError(f"{path}: the graph takes {len(inputs)} inputs; an audit feeds one")
    tensor = inputs[0].type.tensor_type
    if not inputs[0].type.HasField("tensor_type") or tensor.elem_type not in _ONNX_FLOAT:
        raise InputError(f"{path}: input {inputs[0].name!r} is not a float tensor")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    dtype = _ONNX_FLOAT[tensor.elem_type]
    out_name, kind = _onnx_output(model, path)
    try:
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors derive from Exception only
        raise InputError(f"{path}: onnxruntime cannot load it ({str(exc).splitlines()[0][:200]})") from None
    in_shape, layout = _onnx_layout(dims[1:], shape, where)
    in_name = inputs[0].name

    def run(arr: np.ndarray) -> np.ndarray:
        x = arr.reshape((len(arr), *in_shape))
        if layout == "nchw":
            x = x[:, None] if x.ndim == 3 else np.moveaxis(x, -1, 1)
        elif layout == "flat":
            x = x.reshape(len(x), -1)
        elif layout == "nhw1":
            x = x[..., None]
        try:
            (out,) = session.run([out_name], {in_name: np.ascontiguousarray(x, dtype=dtype)})
        except Exception as exc:  # see above
            raise InputError(f"{path}: onnxruntime failed ({str(exc).splitlines()[0][:200]})") from None
        z = np.asarray(out, dtype=np.float64).reshape(len(arr), -1)
        if kind == "logits":
            return softmax(z)
        return np.exp(z) if kind == "log" else z

    probe = run(np.zeros((1, *in_shape)))
    k = probe.shape[1]
    labels = (class_labels(classes, "--classes") if classes is not None
              else np.arange(k, dtype=np.int64))
    if len(labels) != k:
        raise InputError(f"--classes: {len(labels)} given, the model {path} has {k} outputs")
    found: Modality = "image" if len(in_shape) >= 2 else "tabular"
    return AuditedModel(
        predict_proba=Query(run, shape=in_shape, n_classes=k, where=where), classes=labels,
        modality=modality or found, input_shape=in_shape, source=where)


def _onnx_output(model: Any, path: Path) -> tuple[str, str]:
    """The output to read and what it holds: ``prob``, ``log`` or ``logits``."""
    floats = [o for o in model.graph.output if o.type.HasField("tensor_type")
              and o.type.tensor_type.elem_type in _ONNX_FLOAT
              and len(o.type.tensor_type.shape.dim) == 2]
    if not floats:
        raise InputError(f"{path}: no output is a float tensor (n, classes); export class "
                         "scores (sklearn-onnx: options={'zipmap': False})")
    named = [o for o in floats if "prob" in o.name.lower()]
    out = (named or floats)[0]
    producer = next((n for n in model.graph.node if out.name in n.output), None)
    op = producer.op_type if producer is not None else ""
    if op == "LogSoftmax":
        return out.name, "log"
    if op == "Softmax" or named:
        return out.name, "prob"
    return out.name, "logits"


def _onnx_layout(dims: list[int | None], given: tuple[int, ...] | None,
                 where: str) -> tuple[tuple[int, ...], str]:
    """The input shape (channels last) and how a batch is laid out for the graph: ``flat``
    (n, d), ``same`` (as given), ``nchw`` (channels first) or ``nhw1`` (a channel of one)."""
    if any(d is None or d <= 0 for d in dims):
        if given is None:
            raise InputError(f"{where}: the input shape is not fixed in the graph "
                             f"({['?' if d is None else d for d in dims]}); give the data's shape")
        size = int(np.prod(given))
        if len(dims) == 1:
            return given, "flat"
        if len(dims) == len(given):
            return given, "same"
        raise InputError(f"{where}: cannot fit inputs of shape {list(given)} to {dims} "
                         f"({size} values)")
    fixed = tuple(int(d) for d in dims if d is not None)
    if len(fixed) == 1:
        return shape_for(fixed, given, where), "flat"
    if len(fixed) == 2:
        return shape_for(fixed, given, where), "same"
    if len(fixed) == 3:
        # channels first (PyTorch's export) when the first dim is 1 or 3 and the last is not;
        # channels last when the last is 1, 3 or 4
        c_first, c_last = fixed[0] in (1, 3) and fixed[2] not in (1, 3), fixed[2] in (1, 3, 4)
        if c_first:
            img = (fixed[1], fixed[2]) if fixed[0] == 1 else (fixed[1], fixed[2], fixed[0])
            if given is not None and tuple(given) != img:
                raise InputError(f"{where}: the model takes images {list(img)}, the data has "
                                 f"{list(given)}")
            return img, "nchw"
        if c_last:
            img = (fixed[0], fixed[1]) if fixed[2] == 1 else fixed
            if given is not None and tuple(given) != img:
                raise InputError(f"{where}: the model takes images {list(img)}, the data has "
                                 f"{list(given)}")
            return img, "nhw1" if fixed[2] == 1 else "same"
    raise InputError(f"{where}: cannot tell the image layout of input shape {list(fixed)}")
