"""scikit-learn models saved with ``skops.io.dump`` (``.skops``), loaded only when skops finds
no type beyond the ones it trusts by default; anything else is refused, naming the types."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from poisonguard.audits._base import AuditedModel
from poisonguard.audits.load._files import model_file, require
from poisonguard.audits.load._memory import as_audited
from poisonguard.dataset import Modality
from poisonguard.errors import InputError

__all__ = ["from_skops"]


def from_skops(path: Path, modality: Modality | None, classes: Sequence[Any] | None,
               shape: tuple[int, ...] | None) -> AuditedModel:
    """The scikit-learn model of a ``.skops`` file whose types skops trusts by default."""
    import io as _io
    import zipfile

    sio = require("skops.io", "reading .skops models")
    data = model_file(path, "skops file")
    if data[:4] != b"PK\x03\x04":
        raise InputError(f"{path}: not a skops file (not a zip archive)")
    try:
        with zipfile.ZipFile(_io.BytesIO(data)) as zf:
            declared = sum(i.file_size for i in zf.infolist())
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InputError(f"{path}: not a skops file (a damaged zip archive)") from None
    if "schema.json" not in names:
        raise InputError(f"{path}: not a skops file (no schema.json)")
    if declared > 64 * len(data) + 2**26:
        raise InputError(f"{path}: declares {declared:,} bytes from {len(data):,}")
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises many kinds on a bad schema
        raise InputError(f"{path}: not a skops file ({str(exc).splitlines()[0][:200]})") from None
    if untrusted:
        raise InputError(f"{path}: refusing to load types skops does not trust: "
                         f"{', '.join(sorted(untrusted))} (if you trust them, load it with "
                         "skops.io.load(..., trusted=[...]) and audit it with "
                         "poisonguard.audits.as_audited)")
    try:
        est = sio.load(_io.BytesIO(data), trusted=None)
    except Exception as exc:  # as above
        raise InputError(f"{path}: skops cannot load it ({str(exc).splitlines()[0][:200]})") from None
    try:
        model = as_audited(est, modality=modality, input_shape=shape, classes=classes)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    return AuditedModel(predict_proba=model.predict_proba, classes=model.classes,
                        modality=model.modality, input_shape=model.input_shape,
                        source=str(path), feature_names=model.feature_names)
