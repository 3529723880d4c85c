"""Read a trained model for an audit, never by unpickling.

:func:`load_audited` reads four kinds of file into an :class:`~poisonguard.audits.AuditedModel`:

- a model folder written by ``poisonguard harden`` (``spec.json`` + ``arrays.npz``);
- PyTorch weights as ``.safetensors`` with one of our architecture specs (``--arch``, below);
- an ``.onnx`` graph, run with onnxruntime (a single self-contained file: external data is
  refused, since it names other files to read);
- a scikit-learn model saved with ``skops.io.dump`` (``.skops``), loaded only when skops finds
  no type beyond the ones it trusts by default; anything else is refused, naming the types.

:func:`as_audited` wraps a model already in memory: a ``torch.nn.Module`` returning logits, or
any object with ``predict_proba``.

**Input space.** An audited model takes inputs in the space of the *data* it was trained on:
``(n, *input_shape)`` floats, images as ``(n, h, w[, c])`` (channels last, as a
:class:`~poisonguard.dataset.Dataset` holds them), or a 1-D array of strings for text models.
Preprocessing that is part of the model (the scaling and flattening of a hardened network, the
``offset`` / ``scale`` of an architecture spec, the channel move of a CNN) is folded into
``predict_proba`` and into ``module``, so gradients are taken with respect to the raw features.
A hardened model trained on a table with categorical columns takes its own numeric encoding
(numbers, then one-hot columns named ``column=value``); :func:`inputs_for` turns a clean sample
into that space.

**Architecture spec** (``--arch``, JSON)::

    {"format": "poisonguard-arch/1", "kind": "mlp" | "cnn", "input_shape": [64] | [8, 8],
     "classes": [0, 1, ...] | "n_classes": 10, "width": 64,
     "offset": 0.0, "scale": 1.0, "modality": "tabular" | "image"}

``kind``, ``input_shape``, ``width`` and ``classes`` or ``n_classes`` are required. The weights
are those of :func:`poisonguard.models._loop.make_net` (a CNN takes ``(n, c, h, w)`` there;
``input_shape`` is given channels last, ``[h, w]`` or ``[h, w, c]``). Inputs are mapped to
``(x - offset) / scale`` before the network. Every tensor's name and shape must match the
network the spec describes, checked from the file's header before anything is allocated.

**ONNX outputs.** The first float output of rank 2 is used (sklearn-onnx's
``probabilities`` output when there are several). It is taken as probabilities when the graph
computes it with ``Softmax`` or names it ``prob...``, as log-probabilities after
``LogSoftmax``, and as logits otherwise (a softmax is applied). Classes come from ``classes``
(``--classes``) or are ``0 .. k-1``.

Every file is checked before it is parsed: not a link, a regular file, at most
:data:`MODEL_MAX_BYTES`; pickles (and PyTorch's pickle archives) are recognised and refused.
The optional readers need ``pip install 'poisonguard[audit]'``.

One module per source: ``_harden`` (model folders), ``_torch`` (safetensors and the torch
modules), ``_onnx``, ``_skops``, ``_memory`` (:func:`as_audited`); ``_files`` checks and reads
the files, ``_query`` checks what a model is asked and answers, ``_inputs`` has
:func:`inputs_for`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from poisonguard.audits._base import AuditedModel
from poisonguard.audits.load._files import MODEL_MAX_BYTES, PICKLE_HINT
from poisonguard.audits.load._harden import from_folder
from poisonguard.audits.load._inputs import inputs_for
from poisonguard.audits.load._memory import as_audited
from poisonguard.audits.load._onnx import from_onnx
from poisonguard.audits.load._skops import from_skops
from poisonguard.audits.load._torch import ARCH_FORMAT, from_safetensors
from poisonguard.dataset import Modality
from poisonguard.errors import InputError

__all__ = ["ARCH_FORMAT", "MODEL_MAX_BYTES", "as_audited", "inputs_for", "load_audited"]


def load_audited(path: str | Path, *, arch: str | Path | None = None,
                 modality: Modality | None = None, classes: Sequence[Any] | None = None,
                 input_shape: Sequence[int] | None = None) -> AuditedModel:
    """A trained model read from ``path`` (module docstring), never by unpickling.

    ``arch``: the architecture spec of a ``.safetensors`` file. ``modality``, ``classes`` and
    ``input_shape`` fill in what a file does not say (an ONNX graph's class labels, the image
    shape of a model over flattened pixels); where the file does say, they must agree with it.
    Anything unreadable or inconsistent is an :class:`InputError` naming the file.
    """
    p = Path(path)
    shape = None if input_shape is None else tuple(int(s) for s in input_shape)
    if p.is_symlink():
        raise InputError(f"{p}: is a symbolic link; give the model itself")
    if p.is_dir():
        if arch is not None:
            raise InputError(f"--arch {arch}: only for .safetensors weights, not a model folder")
        return from_folder(p, modality, classes, shape)
    ext = p.suffix.lower()
    if arch is not None and ext != ".safetensors":
        raise InputError(f"--arch {arch}: only for .safetensors weights (got {p})")
    if ext == ".safetensors":
        if arch is None:
            raise InputError(f"{p}: safetensors weights need --arch SPEC (their architecture)")
        return from_safetensors(p, Path(arch), modality, classes, shape)
    if ext == ".onnx":
        return from_onnx(p, modality, classes, shape)
    if ext == ".skops":
        return from_skops(p, modality, classes, shape)
    if ext in (".pkl", ".pickle", ".pt", ".pth", ".joblib", ".bin", ".ckpt"):
        raise InputError(f"{p}: {ext} files are pickles; {PICKLE_HINT}")
    if not p.exists():
        raise InputError(f"{p}: no such model file or folder")
    raise InputError(f"{p}: unknown model format {ext or '(no extension)'!r}; expected a folder "
                     "from `poisonguard harden`, .safetensors (with --arch), .onnx or .skops")
