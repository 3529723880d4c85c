"""in-toto attestations binding a scan result to the dataset it scanned.

The Statement (v1) names the data file as its subject, with the file's SHA-256 and the
manifest's Merkle root (``poisonguardMerkleRoot``) as digests; its predicate is a
``test-result`` (v0.1): ``PASSED`` when the scan flagged nothing, ``WARNED`` when it flagged
rows, ``FAILED`` when the flagged share exceeds ``fail_on``; each detector is a test, passed when
it flagged no row. The scan's ``report.json`` and ``scores.csv`` and the manifest are listed with
their digests as the configuration. Signed, it is wrapped in a DSSE envelope
(``application/vnd.in-toto+json``), the signature over DSSE's pre-authentication encoding.

A scan of a file records in its report the file's SHA-256 and the Merkle root of its rows
(``provenance``); a statement is made only when that root is the manifest's, so a scan cannot be
bound to other data that happens to have as many rows. :func:`check_statement` is what the
ledger accepts as an attestation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from poisonguard.errors import InputError, IntegrityError
from poisonguard.provenance import keys
from poisonguard.provenance.hashing import file_sha256, require_regular_file
from poisonguard.provenance.manifest import Manifest, canonical_json, read

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"(?:[0-9a-f]{2})+")

__all__ = ["PAYLOAD_TYPE", "PREDICATE_TYPE", "SCAN_FILES", "STATEMENT_TYPE", "STATEMENT_TYPES",
           "check_envelope", "check_statement", "envelope", "open_envelope", "pae",
           "scan_provenance", "scan_sources", "scan_summary", "statement"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
STATEMENT_TYPES = (STATEMENT_TYPE, "https://in-toto.io/Statement/v0.1")
PREDICATE_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
SCAN_FILES = ("scores.csv", "report.json", "report.html")  # what a scan writes to its --out


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def _report(scan_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """The path and parsed object of the ``report.json`` of the scan in ``scan_dir``; the
    scan's files are inputs of the running command, which may write none of them."""
    from poisonguard.io import read_json, register_input

    folder = Path(scan_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory (give the --out folder of a scan)")
    for name in SCAN_FILES:
        register_input(folder / name)
    path = folder / "report.json"
    if path.exists():
        require_regular_file(path, "scan report")
    obj = read_json(path, "scan report (run poisonguard scan --out DIR)")
    if not isinstance(obj, dict):
        raise InputError(f"{path}: not a poisonguard scan report (not a JSON object)")
    return path, obj


def _count(path: Path, where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise InputError(f"{path}: field '{where}' must be a whole number >= 0 (got {shown})")
    return value


def scan_summary(scan_dir: str | Path) -> dict[str, Any]:
    """The ``summary`` of the scan whose ``--out`` folder is ``scan_dir`` (its report.json),
    its counts checked: a field of the wrong type is an :class:`InputError` naming it."""
    path, obj = _report(scan_dir)
    summary = obj.get("summary")
    if not isinstance(summary, dict):
        raise InputError(f"{path}: not a poisonguard scan report (no 'summary' object)")
    for key in ("rows", "flagged", "detectors"):
        if key not in summary:
            raise InputError(f"{path}: not a poisonguard scan report (no 'summary.{key}')")
    rows, flagged = (_count(path, f"summary.{k}", summary[k]) for k in ("rows", "flagged"))
    if flagged > rows:
        raise InputError(f"{path}: field 'summary.flagged' ({flagged}) exceeds 'summary.rows' "
                         f"({rows})")
    detectors = summary["detectors"]
    if not isinstance(detectors, list) or not all(isinstance(d, str) for d in detectors):
        raise InputError(f"{path}: field 'summary.detectors' must be a list of names")
    flagged_by = summary.get("flagged_by") or {}
    if not isinstance(flagged_by, dict):
        raise InputError(f"{path}: field 'summary.flagged_by' must be an object of counts")
    for name, count in flagged_by.items():
        _count(path, f"summary.flagged_by.{name}", count)
    share = summary.get("flagged_share", 0.0)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        raise InputError(f"{path}: field 'summary.flagged_share' must be a fraction in [0, 1] "
                         f"(got {share!r})")
    return dict(summary)


def scan_sources(scan_dir: str | Path) -> list[dict[str, Any]]:
    """``{"source", "rows", "flagged"}`` per source of the scan in ``scan_dir``, checked."""
    path = Path(scan_dir) / "report.json"
    summary = scan_summary(scan_dir)
    if "sources" not in summary:
        raise InputError(f"{scan_dir}: the scan had no sources (scan with --source-col)")
    records = summary["sources"]
    if not isinstance(records, list):
        raise InputError(f"{path}: field 'summary.sources' must be a list of per-source counts")
    out = []
    for i, record in enumerate(records):
        where = f"summary.sources[{i}]"
        if not isinstance(record, dict) or not {"source", "rows", "flagged"} <= set(record):
            raise InputError(f"{path}: field '{where}' must be an object with source, rows "
                             "and flagged")
        source = record["source"]
        if source is not None and not isinstance(source, str | int | float):
            raise InputError(f"{path}: field '{where}.source' must be a name")
        rows = _count(path, f"{where}.rows", record["rows"])
        flagged = _count(path, f"{where}.flagged", record["flagged"])
        if flagged > rows:
            raise InputError(f"{path}: field '{where}.flagged' ({flagged}) exceeds its rows "
                             f"({rows})")
        out.append({"source": source, "rows": rows, "flagged": flagged})
    return out


def scan_provenance(scan_dir: str | Path) -> dict[str, Any]:
    """What the scan in ``scan_dir`` recorded of the file it scanned: ``sha256`` and
    ``merkle_root`` (an :class:`InputError` when it recorded none)."""
    path, obj = _report(scan_dir)
    prov = obj.get("provenance")
    root = prov.get("merkle_root") if isinstance(prov, dict) else None
    if not isinstance(root, str) or not _HEX64.fullmatch(root):
        raise InputError(f"{path}: records no Merkle root of the scanned data (made by an older "
                         "version, or a scan of a built-in data set); re-run the scan on the "
                         "data file with this version")
    assert isinstance(prov, dict)  # checked with the root above
    sha = prov.get("sha256")
    if sha is not None and (not isinstance(sha, str) or not _HEX64.fullmatch(sha)):
        raise InputError(f"{path}: field 'provenance.sha256' must be a SHA-256 in hex")
    return dict(prov)


def statement(scan_dir: str | Path, manifest_path: str | Path, *,
              fail_on: float | None = None) -> dict[str, Any]:
    """The in-toto Statement for the scan in ``scan_dir`` of the data in the manifest; an
    :class:`IntegrityError` naming both files when the scan's rows are not the manifest's."""
    sdir, mpath = Path(scan_dir), Path(manifest_path)
    summary = scan_summary(sdir)
    manifest: Manifest = read(mpath)
    prov = scan_provenance(sdir)
    if prov["merkle_root"] != manifest.merkle_root:
        raise IntegrityError(f"{sdir / 'report.json'} scanned rows with Merkle root "
                             f"{prov['merkle_root'][:16]}..., but {mpath} records "
                             f"{manifest.merkle_root[:16]}...: not the same data")
    if summary["rows"] != manifest.rows:
        raise IntegrityError(f"{sdir / 'report.json'}: the scan covered {summary['rows']} rows "
                             f"but {mpath} has {manifest.rows}: not the same data")
    flagged_by = dict(summary.get("flagged_by") or {})
    share = float(summary.get("flagged_share", 0.0))
    warned = sorted(d for d in summary["detectors"] if int(flagged_by.get(d, 0)) > 0)
    passed = sorted(d for d in summary["detectors"] if d not in warned)
    failed = [f"flagged share {share:.4f} > {fail_on:g}"] if fail_on is not None and \
        share > fail_on else []
    result = "FAILED" if failed else ("WARNED" if int(summary["flagged"]) else "PASSED")
    digest = {"poisonguardMerkleRoot": manifest.merkle_root}
    if manifest.data.get("sha256"):
        digest["sha256"] = str(manifest.data["sha256"])
    config = [{"name": name, "digest": {"sha256": file_sha256(sdir / name)}}
              for name in ("report.json", "scores.csv") if (sdir / name).exists()]
    config.append({"name": mpath.name,
                   "digest": {"sha256": hashlib.sha256(canonical_json(manifest.to_dict())).hexdigest()}})
    return {"_type": STATEMENT_TYPE,
            "subject": [{"name": str(manifest.data.get("path", "")), "digest": digest}],
            "predicateType": PREDICATE_TYPE,
            "predicate": {"result": result, "configuration": config, "passedTests": passed,
                          "warnedTests": warned, "failedTests": failed}}


def envelope(stmt: dict[str, Any], key: Any) -> dict[str, Any]:
    """``stmt`` signed with ``key`` in a DSSE envelope."""
    body = canonical_json(stmt)
    sig = keys.sign(key, pae(PAYLOAD_TYPE, body))
    return {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(body).decode(),
            "signatures": [{"keyid": keys.key_id(key), "sig": base64.b64encode(sig).decode()}]}


def open_envelope(env: dict[str, Any], public_key: Any) -> dict[str, Any]:
    """The Statement inside a DSSE envelope when ``public_key`` signed it (IntegrityError when
    not; InputError when it is not an envelope)."""
    try:
        body = base64.b64decode(env["payload"], validate=True)
        sigs = [(s.get("keyid"), base64.b64decode(s["sig"], validate=True))
                for s in env["signatures"]]
        if env["payloadType"] != PAYLOAD_TYPE:
            raise ValueError(f"payload type {env['payloadType']!r}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"not a DSSE envelope of an in-toto statement ({exc})") from None
    message = pae(PAYLOAD_TYPE, body)
    if not any(keys.verify_signature(public_key, sig, message) for _, sig in sigs):
        raise IntegrityError("the attestation is not signed by the given key")
    try:
        out = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise InputError("the attestation's payload is not JSON") from None
    return check_statement(out, "the attestation's payload")


def check_statement(obj: Any, where: str) -> dict[str, Any]:
    """``obj`` when it is an in-toto Statement (v1 or v0.1) this ledger accepts: ``_type`` one
    of :data:`STATEMENT_TYPES`; ``subject`` a non-empty list of ``{name, digest}`` with
    ``digest`` mapping algorithms to hex digests, ``sha256`` or ``poisonguardMerkleRoot`` among
    them; ``predicateType`` a string; ``predicate`` an object. An :class:`InputError` naming
    ``where`` and the field otherwise."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: not an in-toto statement (not a JSON object)")
    if obj.get("_type") not in STATEMENT_TYPES:
        raise InputError(f"{where}: field '_type' must be one of {', '.join(STATEMENT_TYPES)} "
                         f"(got {str(obj.get('_type'))[:60]!r})")
    unknown = sorted(set(obj) - {"_type", "subject", "predicateType", "predicate"})
    if unknown:
        raise InputError(f"{where}: unknown field '{unknown[0]}' in an in-toto statement")
    subjects = obj.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise InputError(f"{where}: field 'subject' must be a non-empty list")
    for i, subject in enumerate(subjects):
        name = subject.get("name") if isinstance(subject, dict) else None
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if not isinstance(name, str) or not isinstance(digest, dict):
            raise InputError(f"{where}: field 'subject[{i}]' must be an object with a 'name' "
                             "string and a 'digest' object")
        if not {"sha256", "poisonguardMerkleRoot"} & set(digest):
            raise InputError(f"{where}: field 'subject[{i}].digest' has no sha256")
        for algorithm, value in digest.items():
            if not isinstance(value, str) or not _HEX.fullmatch(value) or (
                    algorithm in ("sha256", "poisonguardMerkleRoot") and len(value) != 64):
                raise InputError(f"{where}: field 'subject[{i}].digest.{algorithm}' must be a "
                                 "hex digest")
    if not isinstance(obj.get("predicateType"), str) or not obj["predicateType"]:
        raise InputError(f"{where}: field 'predicateType' must be a string")
    if not isinstance(obj.get("predicate"), dict):
        raise InputError(f"{where}: field 'predicate' must be an object")
    return obj


def check_envelope(env: Any, where: str) -> dict[str, Any]:
    """``env`` when it is a DSSE envelope of an in-toto Statement this ledger accepts (the
    payload checked by :func:`check_statement`, each signature base64); the signature itself
    is checked by whoever holds the signer's public key (:func:`open_envelope`)."""
    if not isinstance(env, dict) or env.get("payloadType") != PAYLOAD_TYPE:
        raise InputError(f"{where}: field 'payloadType' must be {PAYLOAD_TYPE!r}")
    unknown = sorted(set(env) - {"payloadType", "payload", "signatures"})
    if unknown:
        raise InputError(f"{where}: unknown field '{unknown[0]}' in a DSSE envelope")
    try:
        body = base64.b64decode(env.get("payload"), validate=True)  # type: ignore[arg-type]
        stmt = json.loads(body)
    except (TypeError, ValueError, RecursionError):
        raise InputError(f"{where}: field 'payload' must be a base64 JSON statement") from None
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise InputError(f"{where}: field 'signatures' must be a non-empty list")
    for i, sig in enumerate(sigs):
        try:
            if not isinstance(sig, dict) or not isinstance(sig.get("keyid", ""), str):
                raise ValueError
            base64.b64decode(sig["sig"], validate=True)
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{where}: field 'signatures[{i}]' must hold a base64 'sig'") from None
    check_statement(stmt, f"{where} (payload)")
    return env
