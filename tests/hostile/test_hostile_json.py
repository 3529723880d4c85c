"""Hand-edited manifests, profiles, checkpoints, triggers, scan reports and ledgers.

A document that does not parse or is not a valid document of its kind (a number out of range,
a field of the wrong type, an unknown field, a rows file named with a folder part) is bad input:
exit 2, one line naming the file. One that is valid but no longer matches what it was made from
or over (a signature, a digest, a rows file, a Merkle root, a ledger row, a checkpoint) is an
integrity failure: exit 3. ``orig`` cases feed the untouched
document, re-serialised the same way, and must work: they prove the edits are what is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _hostile import Case, case, ids, make_dir, run_case

pytestmark = pytest.mark.slow

ID = ("--id-col", "id")
EDITS = ("1e400", "digits", "type", "list", "orig")  # "deep": test_hostile_bounded.py
GATE = ("gate", "@good.csv", "--reference", "@ref.csv", "--accepted", "%acc.csv", "--quarantine",
        "%q", "-q", *ID)


def edited(kind: str) -> list[Case]:
    ok = kind == "orig"
    code = 0 if ok else 2
    man, prof, cp, trig = (f"@man_{kind}/man.json", f"@prof_{kind}/prof.json",
                           f"@cp_{kind}/cp.json", f"@trig_{kind}/trig.json")
    out = [
        case(f"manifest-{kind}-verify", "verify", "@good.csv", man, expect=code, names=man),
        case(f"manifest-{kind}-diff", "diff", "@man2/man2.json", man, expect=code, names=man),
        case(f"manifest-{kind}-ledger-append", "ledger", "append", "@ledger/book.db", man,
             expect=code, names=man, mutable=("ledger/book.db",)),
        case(f"manifest-{kind}-attest", "attest", "@scan", "--manifest", man, "--out", "%a.json",
             expect=code, names=man),
        case(f"manifest-{kind}-gate", *GATE, "--manifest", man, expect=(0, 1) if ok else 2,
             names=man),
        case(f"profile-{kind}-monitor-check", "monitor", "check", prof, "@good.csv", "-o", "%d",
             "--no-history", *ID, expect=code, names=prof),
        case(f"profile-{kind}-monitor-canary", "monitor", "canary", prof, "@good.csv",
             "--no-history", *ID, expect=code, names=prof),
        case(f"profile-{kind}-gate", *GATE, "--profile", prof, expect=(0, 1) if ok else 2,
             names=prof),
        case(f"checkpoint-{kind}-ledger-verify", "ledger", "verify", "@ledger/book.db",
             "--trusted", cp, expect=code, names=cp),
        case(f"trigger-{kind}-apply", "trigger", "apply", trig, "@digits.npz", "-o", "%t.npz",
             expect=code, names=trig),
    ]
    if kind in ("1e400", "type", "list"):
        out += [
            case(f"scan-report-{kind}-attest", "attest", f"@scan_{kind}", "--manifest",
                 "@man/man.json", "--out", "%a.json", names="report.json"),
            case(f"scan-report-{kind}-sources", "sources", f"@scan_{kind}", names="report.json"),
        ]
    return out


CASES: list[Case] = [
    *(c for kind in EDITS for c in edited(kind)),
    # ------------------------------------------------------- integrity failures: exit 3
    case("manifest-extra-field-signed-verify", "verify", "@good.csv", "@man_extra/man.json",
         names="man.json"),
    case("manifest-extra-field-signed-ledger-append", "ledger", "append", "@ledger/book.db",
         "@man_extra/man.json", names="man.json"),
    case("manifest-root-edited-verify", "verify", "@good.csv", "@man_root/man.json", expect=3),
    case("manifest-root-edited-diff", "diff", "@man/man.json", "@man_root/man.json", expect=3),
    case("manifest-root-edited-ledger-append", "ledger", "append", "@ledger/book.db",
         "@man_root/man.json", expect=3),
    case("manifest-root-edited-attest", "attest", "@scan", "--manifest", "@man_root/man.json",
         "--out", "%a.json", expect=3),
    case("manifest-rows-file-traversal-verify", "verify", "@good.csv", "@manu_trav/manu.json",
         names="manu.json"),
    case("manifest-rows-file-traversal-diff", "diff", "@manu/manu.json", "@manu_trav/manu.json",
         names="manu.json"),
    case("manifest-rows-file-edited-verify", "verify", "@good.csv", "@manu_rowsedit/manu.json",
         expect=3),
    case("manifest-rows-file-edited-diff", "diff", "@manu/manu.json", "@manu_rowsedit/manu.json",
         expect=3),
    case("manifest-other-key-verify", "verify", "@good.csv", "@man/man.json", "--pubkey",
         "@other.key.pub", expect=3),
    case("manifest-other-data-attest", "attest", "@scan", "--manifest", "@man2/man2.json",
         "--out", "%a.json", expect=3),
    case("manifest-other-key-gate", *GATE, "--manifest", "@man/man.json", "--pubkey",
         "@other.key.pub", expect=3, writes_on_3=True),
    case("profile-edited-monitor-check", "monitor", "check", "@prof_edited.json", "@good.csv",
         "-o", "%d", "--no-history", *ID, expect=3),
    case("profile-edited-gate", *GATE, "--profile", "@prof_edited.json", expect=3),
    case("ledger-payload-edited-verify", "ledger", "verify", "@ledger_payload/book.db", expect=3),
    case("ledger-row-deleted-verify", "ledger", "verify", "@ledger_deleted/book.db", expect=3),
    case("ledger-forked-checkpoint-verify", "ledger", "verify", "@ledger/book.db", "--trusted",
         "@cp_fork.json", expect=3),
    case("ledger-trusted-longer-verify", "ledger", "verify", "@ledger/book.db", "--trusted",
         "99:" + "00" * 32, expect=3),
    # --------------------------------------------------------- not what it says: exit 2
    case("ledger-not-sqlite-verify", "ledger", "verify", "@notadb.db", names="notadb.db"),
    case("ledger-not-sqlite-append", "ledger", "append", "@notadb.db", "@manu/manu.json",
         names="notadb.db"),
    case("ledger-not-sqlite-log", "ledger", "log", "@notadb.db", names="notadb.db"),
    case("ledger-empty-file-verify", "ledger", "verify", "@emptydb.db", names="emptydb.db"),
    case("ledger-empty-file-append", "ledger", "append", "@emptydb.db", "@manu/manu.json",
         names="emptydb.db"),
    case("ledger-dir-verify", "ledger", "verify", "%d.db", setup=make_dir("d.db"), names="d.db"),
    case("ledger-missing-verify", "ledger", "verify", "%missing.db", names="missing.db"),
    case("ledger-append-csv", "ledger", "append", "@ledger/book.db", "@good.csv",
         names="good.csv"),
    case("ledger-trusted-bad-hex", "ledger", "verify", "@ledger/book.db", "--trusted", "5:zz",
         names="5:zz"),
    case("manifest-is-csv-verify", "verify", "@good.csv", "@ref.csv", names="ref.csv"),
    case("pubkey-is-csv-verify", "verify", "@good.csv", "@man/man.json", "--pubkey", "@ref.csv",
         names="ref.csv"),
    case("pubkey-is-private-key-verify", "verify", "@good.csv", "@man/man.json", "--pubkey",
         "@k.key", names="k.key"),
    case("key-is-public-key-manifest", "manifest", "@good.csv", "--out", "%m.json", "--key",
         "@k.key.pub", *ID, names="k.key.pub"),
    case("scan-dir-is-file-attest", "attest", "@good.csv", "--manifest", "@man/man.json",
         names="good.csv"),
    case("scan-dir-empty-attest", "attest", "%empty", "--manifest", "@man/man.json",
         setup=make_dir("empty"), names="empty"),
    case("scan-dir-empty-sources", "sources", "%empty", setup=make_dir("empty"), names="empty"),
    case("scan-no-sources-sources", "sources", "@scan_nosrc", names="scan_nosrc"),
]


@pytest.mark.parametrize("hcase", CASES, ids=ids(CASES))
def test_hostile_json(hcase: Case, hostile: Path, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(hcase, hostile, tmp_path, capsys, monkeypatch)
