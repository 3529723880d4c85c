"""in-toto attestations binding a scan result to the dataset it scanned.

The Statement (v1) names the data file as its subject, with the file's SHA-256 and the
manifest's Merkle root (``poisonguardMerkleRoot``) as digests; its predicate is a
``test-result`` (v0.1): ``PASSED`` when the scan flagged nothing, ``WARNED`` when it flagged
rows, ``FAILED`` when the flagged share exceeds ``fail_on``; each detector is a test, passed when
it flagged no row. The scan's ``report.json`` and ``scores.csv`` and the manifest are listed with
their digests as the configuration. Signed, it is wrapped in a DSSE envelope
(``application/vnd.in-toto+json``), the signature over DSSE's pre-authentication encoding.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from poisonguard.errors import InputError, IntegrityError
from poisonguard.provenance import keys
from poisonguard.provenance.hashing import file_sha256
from poisonguard.provenance.manifest import Manifest, canonical_json, read

__all__ = ["PAYLOAD_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE", "envelope", "open_envelope", "pae",
           "scan_summary", "statement"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def scan_summary(scan_dir: str | Path) -> dict[str, Any]:
    """The ``summary`` of the scan whose ``--out`` folder is ``scan_dir`` (its report.json)."""
    from poisonguard.io import read_json

    folder = Path(scan_dir)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory (give the --out folder of a scan)")
    obj = read_json(folder / "report.json", "scan report (run poisonguard scan --out DIR)")
    try:
        summary = dict(obj["summary"])
        _ = summary["rows"], summary["flagged"], summary["detectors"]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{folder / 'report.json'}: not a poisonguard scan report "
                         f"(no {exc})") from None
    return summary


def statement(scan_dir: str | Path, manifest_path: str | Path, *,
              fail_on: float | None = None) -> dict[str, Any]:
    """The in-toto Statement for the scan in ``scan_dir`` of the data in the manifest."""
    sdir, mpath = Path(scan_dir), Path(manifest_path)
    summary = scan_summary(sdir)
    manifest: Manifest = read(mpath)
    if int(summary["rows"]) != manifest.rows:
        raise InputError(f"{sdir}: the scan covered {summary['rows']} rows but {mpath} has "
                         f"{manifest.rows}: not the same data")
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
    out: dict[str, Any] = json.loads(body)
    return out
