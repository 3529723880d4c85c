"""PyTorch networks: ``.safetensors`` weights read with one of our architecture specs (see
:mod:`poisonguard.audits.load`), a network put behind its preprocessing so that it takes inputs
in the data's own space, and the probabilities of such a module."""

from __future__ import annotations

import json
import stat
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from poisonguard.audits._base import AuditedModel
from poisonguard.audits.load._files import model_file, require
from poisonguard.audits.load._query import (
    Query,
    check_modality,
    class_labels,
    same_classes,
    shape_for,
)
from poisonguard.dataset import Modality
from poisonguard.errors import InputError

__all__ = ["ARCH_FORMAT", "folded", "from_safetensors", "torch_raw"]

ARCH_FORMAT = "poisonguard-arch/1"
SPEC_MAX_BYTES = 2**20  # an architecture spec
_MAX_PARAMS = 2**28  # parameters of a network built from an architecture spec
_FLOAT_DTYPES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}


def _arch(path: Path) -> dict[str, Any]:
    """The architecture spec at ``path``, every key checked, defaults filled in."""
    from poisonguard.io import read_json

    where = f"--arch {path}"
    try:
        st = path.lstat()
    except OSError:
        raise InputError(f"{where}: no such architecture spec") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{where}: not a regular file, expected an architecture spec (JSON)")
    if st.st_size > SPEC_MAX_BYTES:
        raise InputError(f"{where}: {st.st_size:,} bytes; an architecture spec is at most "
                         f"{SPEC_MAX_BYTES:,}")
    spec = read_json(path, "architecture spec")
    if not isinstance(spec, dict):
        raise InputError(f"{where}: expected a JSON object")
    known = {"format", "kind", "input_shape", "classes", "n_classes", "width", "offset", "scale",
             "modality"}
    extra = sorted(set(spec) - known)
    if extra:
        raise InputError(f"{where}: unknown keys {', '.join(extra)} (known: {', '.join(sorted(known))})")
    for key in ("kind", "input_shape", "width"):
        if key not in spec:
            raise InputError(f"{where}: missing key {key!r}")
    if spec.get("format", ARCH_FORMAT) != ARCH_FORMAT:
        raise InputError(f"{where}: 'format' must be {ARCH_FORMAT!r} (got {spec['format']!r})")
    if spec["kind"] not in ("mlp", "cnn"):
        raise InputError(f"{where}: 'kind' must be \"mlp\" or \"cnn\" (got {spec['kind']!r})")
    shape = spec["input_shape"]
    if not isinstance(shape, list) or not 1 <= len(shape) <= 3 or not all(
            _int(s) and 0 < s <= 100_000 for s in shape):
        raise InputError(f"{where}: 'input_shape' must be a list of 1 to 3 positive integers "
                         f"(got {shape!r})")
    if spec["kind"] == "cnn" and (len(shape) not in (2, 3) or min(shape[:2]) < 2):
        raise InputError(f"{where}: a cnn takes images, 'input_shape' [h, w] or [h, w, c] with "
                         f"h, w >= 2 (got {shape!r})")
    if not _int(spec["width"]) or not 0 < spec["width"] <= 4096:
        raise InputError(f"{where}: 'width' must be an integer in 1..4096 (got {spec['width']!r})")
    if ("classes" in spec) == ("n_classes" in spec):
        raise InputError(f"{where}: give exactly one of 'classes' (a list) or 'n_classes'")
    if "classes" in spec:
        if not isinstance(spec["classes"], list):
            raise InputError(f"{where}: 'classes' must be a list of integers or strings")
        spec["classes"] = class_labels(spec["classes"], where)
    else:
        n = spec["n_classes"]
        if not _int(n) or not 1 <= n <= 100_000:
            raise InputError(f"{where}: 'n_classes' must be a positive integer (got {n!r})")
        spec["classes"] = np.arange(n, dtype=np.int64)
    for key, default in (("offset", 0.0), ("scale", 1.0)):
        value = spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(f"{where}: {key!r} must be a number (got {value!r})")
        spec[key] = float(value)
    if spec["scale"] <= 0:
        raise InputError(f"{where}: 'scale' must be positive (got {spec['scale']})")
    found: Modality = "image" if len(shape) >= 2 else "tabular"
    spec["modality"] = spec.get("modality", found)
    if spec["modality"] not in ("tabular", "image"):
        raise InputError(f"{where}: 'modality' must be \"tabular\" or \"image\"")
    return spec


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _safetensors_header(data: bytes, path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) from a safetensors header, every offset checked."""
    bad = f"{path}: not a safetensors file"
    if len(data) < 8:
        raise InputError(f"{bad} (too short)")
    (n,) = struct.unpack("<Q", data[:8])
    if not 2 <= n <= min(len(data) - 8, 100 * 2**20):
        raise InputError(f"{bad} (header of {n} bytes in a file of {len(data)})")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InputError(f"{bad} (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise InputError(f"{bad} (its header is not a JSON object)")
    body = len(data) - 8 - n
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
            dims = tuple(int(s) for s in shape)
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{bad} (tensor {name!r} is malformed in the header)") from None
        if dtype not in _FLOAT_DTYPES:
            raise InputError(f"{path}: tensor {name!r} has dtype {dtype}; expected floats "
                             f"({', '.join(_FLOAT_DTYPES)})")
        if any(d < 0 for d in dims) or not (_int(begin) and _int(end) and 0 <= begin <= end <= body) \
                or end - begin != int(np.prod(dims, dtype=np.int64)) * _FLOAT_DTYPES[dtype]:
            raise InputError(f"{bad} (tensor {name!r}: offsets do not fit its shape or the file)")
        out[str(name)] = (str(dtype), dims)
    return out


def from_safetensors(path: Path, arch_path: Path, modality: Modality | None,
                     classes: Sequence[Any] | None, shape: tuple[int, ...] | None) -> AuditedModel:
    """The network of ``.safetensors`` weights and the architecture spec ``arch_path``."""
    from poisonguard.models._loop import make_net
    from poisonguard.models.cnn import require_torch

    arch = _arch(arch_path)
    st_torch = require("safetensors.torch", "reading .safetensors weights")
    torch = require_torch()
    data = model_file(path, "safetensors file")
    header = _safetensors_header(data, path)
    dims = tuple(int(s) for s in arch["input_shape"])
    labels = same_classes(arch["classes"], classes, f"--arch {arch_path}")
    k = max(len(labels), 2) if arch["kind"] == "cnn" else len(labels)
    k = max(k, 1)
    with torch.device("meta"):  # shapes only: nothing is allocated before they are checked
        reference = make_net(arch["kind"], dims, k, int(arch["width"])).state_dict()
    want = {name: tuple(int(s) for s in t.shape) for name, t in reference.items()}
    total = sum(int(np.prod(s)) for s in want.values())
    if total > _MAX_PARAMS:
        raise InputError(f"--arch {arch_path}: describes {total:,} parameters; at most "
                         f"{_MAX_PARAMS:,} are built")
    missing, extra = sorted(set(want) - set(header)), sorted(set(header) - set(want))
    if missing or extra:
        raise InputError(f"{path}: tensors do not match --arch {arch_path} (missing: "
                         f"{', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'})")
    for name, dims_want in want.items():
        if header[name][1] != dims_want:
            raise InputError(f"{path}: tensor {name!r} has shape {list(header[name][1])}; "
                             f"--arch {arch_path} needs {list(dims_want)}")
    try:
        state = st_torch.load(data)
    except Exception as exc:  # safetensors' own errors have no common base
        raise InputError(f"{path}: not a safetensors file ({str(exc).splitlines()[0]})") from None
    state = {name: t.to(torch.float32) for name, t in state.items()}
    if not all(bool(torch.isfinite(t).all()) for t in state.values()):
        raise InputError(f"{path}: weights hold values that are not finite")
    net = make_net(arch["kind"], dims, k, int(arch["width"]))
    net.load_state_dict(state)
    net.eval()
    module = folded(net, kind=arch["kind"], offset=arch["offset"], scale=arch["scale"],
                    keep=len(labels))
    where = str(path)
    in_shape = shape_for(dims, shape, where)
    return AuditedModel(
        predict_proba=Query(torch_raw(module, in_shape), shape=in_shape, n_classes=len(labels),
                            where=where),
        classes=labels, modality=check_modality(arch["modality"], modality, where),
        input_shape=in_shape, module=module, source=where)


def torch_raw(module: Any, shape: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
    """Softmax of ``module``'s logits for a batch in the input space, without gradients, on
    the device and in the dtype of its parameters."""
    from poisonguard.models.cnn import require_torch

    torch = require_torch()
    first = next(iter(module.parameters()), None)
    device = first.device if first is not None else torch.device("cpu")
    dtype = first.dtype if first is not None else torch.float32

    def raw(arr: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(np.ascontiguousarray(arr.reshape((len(arr), *shape))), dtype=dtype,
                            device=device)
        with torch.no_grad():
            out: np.ndarray = torch.softmax(module(x).double(), dim=1).cpu().numpy()
        return out

    return raw


def folded(net: Any, *, kind: str, offset: Any, scale: Any, keep: int) -> Any:
    """``net`` behind its preprocessing: inputs ``(n, *input_shape)`` in the data's space,
    ``(x - offset) / scale``, flattened (``mlp``) or channels moved first (``cnn``); the first
    ``keep`` logits. In eval mode, gradients off for its own parameters."""
    from poisonguard.models.cnn import require_torch

    torch = require_torch()

    class Folded(torch.nn.Module):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            flat = np.asarray(offset, dtype=np.float32).reshape(-1)
            self.register_buffer("offset", torch.from_numpy(flat.copy()))
            self.register_buffer("scale", torch.from_numpy(
                np.asarray(scale, dtype=np.float32).reshape(-1).copy()))

        def forward(self, x: Any) -> Any:
            if kind == "cnn":
                z = (x - self.offset) / self.scale
                z = z.unsqueeze(1) if z.dim() == 3 else z.permute(0, 3, 1, 2)
            else:
                z = (x.reshape(x.shape[0], -1) - self.offset) / self.scale
            return self.net(z)[:, :keep]

    module = Folded().eval()
    for param in module.parameters():
        param.requires_grad_(False)
    return module
