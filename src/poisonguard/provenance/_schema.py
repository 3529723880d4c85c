"""The fields a manifest has and their types: anything else is refused naming the field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from poisonguard.errors import InputError
from poisonguard.provenance._sidecar import bare_name

__all__ = ["check_manifest"]

_FIELDS = {"format", "data", "columns", "rows", "keyed", "merkle_root", "sources", "rows_file",
           "created", "signature"}
_SUBFIELDS = {"data": {"path", "format", "sha256", "bytes"},
              "columns": {"label", "id", "source", "features"},
              "rows_file": {"name", "sha256"},
              "signature": {"algorithm", "key_id", "public_key", "value"}}
_HEX64 = re.compile(r"[0-9a-f]{64}")


def check_manifest(obj: Any, p: str | Path, fmt: str) -> None:
    """Refuse (:class:`InputError` naming ``p`` and the field) a parsed manifest that is not of
    format ``fmt``, lacks a field, has one no manifest has (which no signature would cover), or
    has one of the wrong type (a count written as text, a digest that is not hex)."""
    if not isinstance(obj, dict) or obj.get("format") != fmt:
        raise InputError(f"{p}: not a poisonguard manifest (no \"format\": \"{fmt}\")")

    def bad(key: str, expected: str, value: Any) -> InputError:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return InputError(f"{p}: malformed manifest: field '{key}' must be {expected} "
                          f"(got {shown})")

    unknown = sorted(set(obj) - _FIELDS)
    if unknown:
        raise InputError(f"{p}: malformed manifest: unknown field '{unknown[0]}' (no signature "
                         "covers it; remove it or make the manifest again)")
    missing = sorted(_FIELDS - {"signature"} - set(obj))
    if missing:
        raise InputError(f"{p}: malformed manifest: field '{missing[0]}' is missing")
    sig = obj.get("signature", {})
    for where, known in _SUBFIELDS.items():
        value = sig if where == "signature" else obj[where]
        if not isinstance(value, dict):
            raise bad(where, "an object", value)
        extra = sorted(set(value) - known)
        if extra:
            raise InputError(f"{p}: malformed manifest: unknown field '{where}.{extra[0]}'")
    data, columns, rows_file, sources = obj["data"], obj["columns"], obj["rows_file"], obj["sources"]
    if not isinstance(sources, dict):
        raise bad("sources", "an object of row counts per source", sources)
    strings = [("data.path", data.get("path", "")), ("data.format", data.get("format", "")),
               ("columns.label", columns.get("label")), ("created", obj["created"]),
               *((f"signature.{k}", v) for k, v in sig.items())]
    for where, value in strings:
        if not isinstance(value, str):
            raise bad(where, "a string", value)
    for where, value in (("columns.id", columns.get("id")),
                         ("columns.source", columns.get("source"))):
        if value is not None and not isinstance(value, str):
            raise bad(where, "a string or null", value)
    features = columns.get("features")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise bad("columns.features", "a list of column names", features)
    counts = [("rows", obj["rows"]), ("data.bytes", data.get("bytes", 0)),
              *((f"sources.{k}", v) for k, v in sources.items())]
    for where, value in counts:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(where, "a whole number >= 0", value)
    if obj["keyed"] not in ("id", "content"):
        raise bad("keyed", "'id' or 'content'", obj["keyed"])
    digests = [("merkle_root", obj["merkle_root"]), ("rows_file.sha256", rows_file.get("sha256")),
               *([("data.sha256", data["sha256"])] if "sha256" in data else [])]
    for where, value in digests:
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            raise bad(where, "a SHA-256 in 64 lower-case hex digits", value)
    name = rows_file.get("name")
    if not isinstance(name, str) or not bare_name(name):
        raise bad("rows_file.name", "a file name in the manifest's folder (no folder part)", name)
