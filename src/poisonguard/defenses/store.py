"""Hardened models on disk without pickle: ``spec.json`` (what the model is) + ``arrays.npz``.

``spec.json`` names the defence, its parameters, the classes, the feature encoding (so test data
is encoded exactly as the training data was) and the data it was trained on. ``arrays.npz``
holds only numbers, read with ``allow_pickle=False``; every array is checked against the spec
(shape, finiteness) before a model is rebuilt from it. Supported: ``robust-linear``, ``dpa`` /
``fa`` whose base models are ``robust-linear`` or scikit-learn's ``LogisticRegression``, and
``dp-sgd`` (its privacy budget in the spec). The two files are written as one group (the spec
last), so a reader never pairs a spec with arrays of another model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from poisonguard.defenses._torch import NETS, TorchDefense
from poisonguard.defenses.dpsgd import DPSGDClassifier
from poisonguard.defenses.partition import FiniteAggregation, PartitionEnsemble, _Aggregation
from poisonguard.defenses.robust import RobustLinear
from poisonguard.errors import InputError

__all__ = ["FORMAT", "load_model", "save_model"]

FORMAT = "poisonguard-model/1"
_NETWORKS = ("abl", "robust-net")
_MAX_MODELS = 100_000


def _labels_json(classes: np.ndarray) -> list[Any]:
    return [c.item() if isinstance(c, np.generic) else c for c in classes.tolist()]


def _labels_array(values: list[Any], where: str) -> np.ndarray:
    if not isinstance(values, list) or not values:
        raise InputError(f"{where}: 'classes' must be a non-empty list")
    if all(isinstance(v, bool) for v in values) or not all(
            isinstance(v, int | str) and not isinstance(v, bool) for v in values):
        raise InputError(f"{where}: 'classes' must be integers or strings")
    if all(isinstance(v, int) for v in values):
        return np.asarray(values, dtype=np.int64)
    return np.asarray([str(v) for v in values])


def _linear_arrays(model: Any, prefix: str, classes: np.ndarray) -> dict[str, np.ndarray]:
    codes = np.searchsorted(classes, model.classes_).astype(np.int64)
    if isinstance(model, RobustLinear):
        return {f"{prefix}coef": model.coef_, f"{prefix}intercept": model.intercept_,
                f"{prefix}mean": model.mean_, f"{prefix}scale": model.scale_,
                f"{prefix}classes": codes, f"{prefix}kind": np.array([0])}
    if isinstance(model, LogisticRegression):
        return {f"{prefix}coef": model.coef_, f"{prefix}intercept": model.intercept_,
                f"{prefix}classes": codes, f"{prefix}kind": np.array([1])}
    raise InputError(f"cannot save a {type(model).__name__} without pickle; use robust-linear "
                     "or LogisticRegression as the base model")


def _array(arrays: Any, key: str, where: str, *, shape: tuple[int | None, ...],
           kind: str = "f") -> np.ndarray:
    if key not in arrays:
        raise InputError(f"{where}: arrays.npz lacks {key!r}")
    a = np.asarray(arrays[key])
    if a.dtype.kind not in ("iu" if kind == "i" else "fiu") or a.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(a.shape, shape, strict=True)):
        raise InputError(f"{where}: array {key!r} has shape {a.shape} ({a.dtype}); expected "
                         f"{tuple('*' if s is None else s for s in shape)}")
    if kind == "f" and not np.all(np.isfinite(a)):
        raise InputError(f"{where}: array {key!r} holds values that are not finite")
    return a


def _linear_from(arrays: Any, prefix: str, classes: np.ndarray, d: int, where: str) -> Any:
    kind = int(_array(arrays, f"{prefix}kind", where, shape=(1,), kind="i")[0])
    codes = _array(arrays, f"{prefix}classes", where, shape=(None,), kind="i")
    if len(codes) < 2 or codes.min() < 0 or codes.max() >= len(classes) or np.any(np.diff(codes) <= 0):
        raise InputError(f"{where}: array {prefix}classes is not a sorted subset of the classes")
    rows = 1 if kind == 1 and len(codes) == 2 else (len(codes) if kind == 1 else max(len(codes), 2))
    coef = _array(arrays, f"{prefix}coef", where, shape=(rows, d)).astype(np.float64)
    intercept = _array(arrays, f"{prefix}intercept", where, shape=(rows,)).astype(np.float64)
    if kind == 0:
        model = RobustLinear()
        model.mean_ = _array(arrays, f"{prefix}mean", where, shape=(d,)).astype(np.float64)
        model.scale_ = _array(arrays, f"{prefix}scale", where, shape=(d,)).astype(np.float64)
    elif kind == 1:
        model = LogisticRegression()
    else:
        raise InputError(f"{where}: unknown base model kind {kind} in {prefix}kind")
    model.coef_, model.intercept_ = coef, intercept
    model.classes_, model.n_features_in_ = classes[codes], d
    return model


def save_model(model: Any, path: str | Path, *, spec: dict[str, Any]) -> Path:
    """Write ``model`` (a fitted, supported defence) to the folder ``path``; ``spec`` adds the
    feature encoding and the training data's description."""
    from poisonguard.io import atomic_paths

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--out {folder}: is a file, expected a folder")
    classes = np.asarray(model.classes_)
    arrays: dict[str, Any] = {}
    if isinstance(model, RobustLinear):
        arrays.update(_linear_arrays(model, "", classes))
        members: list[Any] = []
    elif isinstance(model, TorchDefense):
        members = []
        arrays.update({f"net.{k}": v for k, v in model.state_.items()})
        arrays["offset"] = np.asarray(model.offset_, dtype=np.float64).reshape(-1)
        arrays["scale"] = np.asarray(model.scale_, dtype=np.float64).reshape(-1)
        spec = {**spec, "network": {"net": model.net, "width": int(model.width),
                                    "shape": list(model.shape_)}}
    elif isinstance(model, DPSGDClassifier):
        members = []
        arrays.update({"mean": model.mean_, "scale": model.scale_})
        arrays.update({f"net.{k}": v for k, v in model.state_.items()})
        privacy = {"epsilon": None if not np.isfinite(model.epsilon_) else model.epsilon_,
                   "delta": model.delta_, "noise_multiplier": model.noise_multiplier_}
        spec = {**spec, "privacy": privacy}
    elif isinstance(model, _Aggregation):
        arrays["offsets"] = np.asarray(model.offsets_, dtype=np.int64)
        members = []
        for i, est in enumerate(model.estimators_):
            if isinstance(est, int):
                members.append(int(est))  # a constant vote (-1: abstains)
            else:
                arrays.update(_linear_arrays(est, f"m{i}.", classes))
                members.append("linear")
    else:
        raise InputError(f"cannot save a {type(model).__name__}")
    doc = {"format": FORMAT, "defense": model.name, "params": _json_params(model),
           "classes": _labels_json(classes), "n_features": int(model.n_features_in_),
           "members": members, **spec}
    with atomic_paths([folder / "arrays.npz", folder / "spec.json"]) as (arr_tmp, spec_tmp):
        with arr_tmp.open("wb") as fh:
            np.savez_compressed(fh, **arrays)
        spec_tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return folder


def _json_params(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in model.get_params(deep=False).items():
        if key == "estimator":
            out[key] = None if value is None else {"name": type(value).__name__,
                                                   "params": _plain(value.get_params(deep=False))}
        else:
            out[key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return repr(value)


def load_model(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """``(model, spec)`` from a folder written by :func:`save_model`; anything else, or any
    array that does not match the spec, is an :class:`InputError` naming the folder."""
    from poisonguard.io import read_bytes, read_json, register_input

    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a model folder (harden --out writes one)")
    where = str(folder)
    spec = read_json(folder / "spec.json", "model spec")
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise InputError(f"{where}: spec.json is not a poisonguard model (no \"format\": \"{FORMAT}\")")
    classes = _labels_array(spec.get("classes"), where)  # type: ignore[arg-type]
    d = spec.get("n_features")
    if not isinstance(d, int) or isinstance(d, bool) or not 0 < d <= 10_000_000:
        raise InputError(f"{where}: 'n_features' must be a positive integer")
    members = spec.get("members")
    if not isinstance(members, list) or len(members) > _MAX_MODELS:
        raise InputError(f"{where}: 'members' must be a list of at most {_MAX_MODELS} entries")
    import io as _io
    import zipfile

    register_input(folder / "arrays.npz")
    raw = read_bytes(folder / "arrays.npz", "model arrays file")
    try:
        with zipfile.ZipFile(_io.BytesIO(raw)) as zf:
            declared = sum(i.file_size for i in zf.infolist())
        if declared > 64 * len(raw) + 2**26:  # far more than any real model compresses to
            raise InputError(f"{where}: arrays.npz declares {declared} bytes from {len(raw)}")
        arrays = dict(np.load(_io.BytesIO(raw), allow_pickle=False))
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise InputError(f"{where}: arrays.npz is not a numpy archive ({exc})") from None
    name = spec.get("defense")
    if name == "robust-linear":
        model = _linear_from(arrays, "", classes, d, where)
    elif name in ("dpa", "fa"):
        model = (PartitionEnsemble() if name == "dpa" else FiniteAggregation())
        model.classes_, model.n_features_in_ = classes, d
        offsets = _array(arrays, "offsets", where, shape=(None,), kind="i")
        if len(members) == 0 or len(offsets) == 0 or offsets.min() < 0 or offsets.max() >= len(members):
            raise InputError(f"{where}: 'offsets' do not fit {len(members)} models")
        model.offsets_ = offsets.astype(np.int64)
        estimators: list[Any] = []
        for i, m in enumerate(members):
            if m == "linear":
                estimators.append(_linear_from(arrays, f"m{i}.", classes, d, where))
            elif isinstance(m, int) and not isinstance(m, bool) and -1 <= m < len(classes):
                estimators.append(m)
            else:
                raise InputError(f"{where}: member {i} is {m!r}; expected \"linear\" or a class code")
        model.estimators_ = estimators
    elif name == "dp-sgd":
        model = _dpsgd_from(arrays, spec, classes, d, where)
    elif name in _NETWORKS:
        model = _network_from(name, arrays, spec, classes, where)
    else:
        raise InputError(f"{where}: unknown defence {name!r} in spec.json")
    return model, spec


def _dpsgd_from(arrays: Any, spec: dict[str, Any], classes: np.ndarray, d: int,
                where: str) -> DPSGDClassifier:
    params = spec.get("params")
    hidden = params.get("hidden") if isinstance(params, dict) else None
    if not isinstance(hidden, int) or isinstance(hidden, bool) or not 0 <= hidden <= 100_000:
        raise InputError(f"{where}: 'params.hidden' must be an integer >= 0")
    k = max(len(classes), 2)
    model = DPSGDClassifier(hidden=hidden)
    model.mean_ = _array(arrays, "mean", where, shape=(d,)).astype(np.float64)
    model.scale_ = _array(arrays, "scale", where, shape=(d,)).astype(np.float64)
    shapes = [(k, d)] if hidden == 0 else [(hidden, d), (k, hidden)]
    model.state_ = {}
    for i, (rows, cols) in enumerate(shapes):
        layer = str(2 * i)  # nn.Sequential positions: Linear, Tanh, Linear
        model.state_[f"{layer}.weight"] = _array(arrays, f"net.{layer}.weight", where,
                                                 shape=(rows, cols))
        model.state_[f"{layer}.bias"] = _array(arrays, f"net.{layer}.bias", where, shape=(rows,))
    found = spec.get("privacy")
    privacy: dict[str, Any] = found if isinstance(found, dict) else {}
    eps = privacy.get("epsilon")
    model.epsilon_ = float(eps) if isinstance(eps, int | float) else float("inf")
    delta = privacy.get("delta")
    model.delta_ = float(delta) if isinstance(delta, int | float) else 0.0
    model.noise_multiplier_ = 0.0
    model.classes_, model.n_features_in_ = classes, d
    return model


def _network_from(name: str, arrays: Any, spec: dict[str, Any], classes: np.ndarray,
                  where: str) -> Any:
    """A network defence rebuilt from its arrays; every tensor's shape is checked against the
    network the spec describes (building it needs torch)."""
    from poisonguard.defenses import DEFENSES
    from poisonguard.defenses._torch import make_net

    found = spec.get("network")
    net = found if isinstance(found, dict) else {}
    kind, width, shape = net.get("net"), net.get("width"), net.get("shape")
    if kind not in NETS or not isinstance(width, int) or isinstance(width, bool) \
            or not 0 < width <= 4096 or not isinstance(shape, list) or not 1 <= len(shape) <= 3 \
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 < s <= 100_000
                       for s in shape):
        raise InputError(f"{where}: 'network' in spec.json must give net (mlp or cnn), width "
                         "and shape")
    dims = tuple(int(s) for s in shape)
    # the first layer's stored weights must be what the spec describes before a network of that
    # size is built: a hand-edited shape or width cannot make us allocate more than was stored
    first = ("net.1.weight", (width, int(np.prod(dims)))) if kind == "mlp" else (
        "net.0.weight", (width, 1 if len(dims) == 2 else dims[-1], 3, 3))
    _array(arrays, first[0], where, shape=first[1])
    reference = make_net(str(kind), dims, max(len(classes), 2), width).state_dict()
    model = DEFENSES[name](net=kind, width=width)
    model.state_ = {}
    for key, tensor in reference.items():
        want = tuple(int(v) for v in tensor.shape)
        model.state_[key] = _array(arrays, f"net.{key}", where, shape=want).astype(np.float32)
    size = 1 if kind == "cnn" else int(np.prod(dims))
    offset = _array(arrays, "offset", where, shape=(size,)).astype(np.float64)
    scale = _array(arrays, "scale", where, shape=(size,)).astype(np.float64)
    if np.any(scale <= 0):
        raise InputError(f"{where}: array 'scale' holds values that are not positive")
    model.offset_ = float(offset[0]) if kind == "cnn" else offset.reshape(dims)
    model.scale_ = float(scale[0]) if kind == "cnn" else scale.reshape(dims)
    model.shape_, model.classes_ = dims, classes
    model.n_features_in_ = dims[0]
    return model
