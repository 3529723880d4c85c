"""Every writer pointed at one of its own inputs (the path itself, a symlink to it, a hard link
to it), at a directory, or at a file it may not replace: exit 2, one line, the input intact and
nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from _hostile import Case, case, ids, make_dir, make_hardlink, make_symlink, run_case

pytestmark = pytest.mark.slow

ID = ("--id-col", "id")


def aliases(name: str, *argv: str, target: str, out_token: str = "%OUT",
            also: tuple[str, ...] = ("same", "symlink", "hardlink", "dir")) -> list[Case]:
    """``argv`` with ``%OUT`` replaced by: the input ``target`` itself, a symlink to it, a hard
    link to it, and a directory. ``target`` is a fixture path relative to the case's folder
    (e.g. ``good.csv`` or ``man/man.json``); the case must also name it as an ``@`` input."""
    out = []
    suffix = Path(target).suffix
    for kind in also:
        if kind == "same":
            argv_k, setup = [f"%{target}" if a == out_token else a for a in argv], None
        elif kind == "symlink":
            argv_k = [f"%alias{suffix}" if a == out_token else a for a in argv]
            setup = make_symlink(f"alias{suffix}", target)
        elif kind == "hardlink":
            argv_k = [f"%alias{suffix}" if a == out_token else a for a in argv]
            setup = make_hardlink(f"alias{suffix}", target)
        else:
            argv_k = [f"%adir{suffix}" if a == out_token else a for a in argv]
            setup = make_dir(f"adir{suffix}")
        names = {"same": Path(target).name, "symlink": f"alias{suffix}",
                 "hardlink": f"alias{suffix}", "dir": f"adir{suffix}"}[kind]
        out.append(case(f"{name}-{kind}", *argv_k, setup=setup, names=names))
    return out


CASES: list[Case] = [
    # attack: --out, --truth, --save-trigger
    *aliases("attack-out", "attack", "@good.csv", "-a", "label-flip", "--rate", "0.1", "-o", "%OUT",
             *ID, target="good.csv"),
    *aliases("attack-truth", "attack", "@good.csv", "-a", "label-flip", "--rate", "0.1",
             "-o", "%p.csv", "--truth", "%OUT", *ID, target="good.csv", also=("same", "hardlink")),
    *aliases("attack-save-trigger", "attack", "@good.csv", "-a", "backdoor", "--trigger", "feature",
             "--rate", "0.1", "-o", "%p.csv", "--save-trigger", "%OUT", *ID, target="good.csv",
             also=("same", "symlink")),
    # trigger apply: over the data and over the trigger file
    *aliases("trigger-out", "trigger", "apply", "@trig.json", "@good.csv", "-o", "%OUT", *ID,
             "--source-col", "src", target="good.csv"),
    *aliases("trigger-out-trigger", "trigger", "apply", "@trig.json", "@good.csv", "-o", "%OUT",
             *ID, "--source-col", "src", target="trig.json", also=("same", "hardlink")),
    # scan: --write-clean, --out
    *aliases("scan-write-clean", "scan", "@good.csv", "-q", "-o", "%s", "--write-clean", "%OUT",
             *ID, target="good.csv"),
    case("scan-write-clean-reference", "scan", "@good.csv", "--reference", "@ref.csv", "-q",
         "-o", "%s", "--write-clean", "%ref.csv", *ID, names="ref.csv"),
    case("scan-out-is-input", "scan", "@good.csv", "-q", "-o", "%good.csv", *ID, names="good.csv"),
    case("scan-input-is-its-scores", "scan", "@scan/scores.csv", "-q", "-o", "%scan",
         "--label", "flagged", names="scores.csv"),
    case("scan-write-clean-txt", "scan", "@good.csv", "-q", "-o", "%s", "--write-clean",
         "%clean.txt", *ID, names="clean.txt"),
    # manifest
    *aliases("manifest-out", "manifest", "@good.csv", "--out", "%OUT", *ID, target="good.csv"),
    # diff
    *aliases("diff-out", "diff", "@man/man.json", "@man2/man2.json", "--out", "%OUT",
             target="man/man.json"),
    # attest: over the manifest, over the scan's report
    *aliases("attest-out", "attest", "@scan", "--manifest", "@man/man.json", "--out", "%OUT",
             target="man/man.json"),
    case("attest-out-report", "attest", "@scan", "--manifest", "@man/man.json", "--out",
         "%scan/report.json", names="report.json"),
    # sources
    case("sources-out-report", "sources", "@scan", "--out", "%scan/report.json",
         names="report.json"),
    case("sources-out-scores", "sources", "@scan", "--out", "%scan/scores.csv",
         names="scores.csv"),
    case("sources-out-dir", "sources", "@scan", "--out", "%scan", names="scan"),
    # ledger
    case("ledger-init-over-data", "ledger", "init", "@good.csv", names="good.csv"),
    case("ledger-init-dir", "ledger", "init", "%d.db", setup=make_dir("d.db"), names="d.db"),
    case("ledger-init-pubkey-not-a-key", "ledger", "init", "%new.db", "--pubkey", "@prof.json",
         names="prof.json"),
    *aliases("ledger-checkpoint-out", "ledger", "append", "@ledger/book.db", "@manu/manu.json",
             "--checkpoint-out", "%OUT", target="manu/manu.json"),
    case("ledger-checkpoint-out-ledger", "ledger", "append", "@ledger/book.db", "@manu/manu.json",
         "--checkpoint-out", "%ledger/book.db", names="book.db"),
    # monitor
    *aliases("monitor-init-out", "monitor", "init", "@good.csv", "-o", "%OUT", *ID,
             target="good.csv"),
    case("monitor-check-out-file", "monitor", "check", "@prof.json", "@good.csv", "-o",
         "%good.csv", "--no-history", *ID, names="good.csv"),
    case("monitor-check-db-is-data", "monitor", "check", "@prof.json", "@good.csv", "-o", "%d",
         "--db", "%good.csv", *ID, names="good.csv"),
    case("monitor-check-db-is-profile", "monitor", "check", "@prof.json", "@good.csv", "-o", "%d",
         "--db", "%prof.json", *ID, names="prof.json"),
    case("monitor-check-db-not-sqlite", "monitor", "check", "@prof.json", "@good.csv", "-o", "%d",
         "--db", "@notadb.db", *ID, names="notadb.db"),
    case("monitor-check-db-dir", "monitor", "check", "@prof.json", "@good.csv", "-o", "%d",
         "--db", "%hd", *ID, setup=make_dir("hd"), names="hd"),
    case("monitor-canary-db-is-data", "monitor", "canary", "@prof.json", "@good.csv",
         "--db", "%good.csv", *ID, names="good.csv"),
    case("monitor-history-db-not-sqlite", "monitor", "history", "--db", "@notadb.db",
         names="notadb.db"),
    case("monitor-history-out-file", "monitor", "history", "--db", "@hist.sqlite", "-o",
         "@good.csv", names="good.csv"),
    # gate: over the batch, the reference, a file as the quarantine folder
    *aliases("gate-accepted", "gate", "@good.csv", "--reference", "@ref.csv", "--accepted", "%OUT",
             "--quarantine", "%q", "-q", *ID, target="good.csv"),
    case("gate-accepted-reference", "gate", "@good.csv", "--reference", "@ref.csv", "--accepted",
         "%ref.csv", "--quarantine", "%q", "-q", *ID, names="ref.csv"),
    case("gate-quarantine-is-batch", "gate", "@good.csv", "--reference", "@ref.csv", "--accepted",
         "%acc.csv", "--quarantine", "%good.csv", "-q", *ID, names="good.csv"),
    # keygen
    case("keygen-out-existing", "keygen", "--out", "@good.csv", names="good.csv"),
    case("keygen-out-dir", "keygen", "--out", "%kd", setup=make_dir("kd"), names="kd"),
    case("keygen-pub-planted-link", "keygen", "--out", "%new.key", inputs=("good.csv",),
         setup=make_symlink("new.key.pub", "good.csv"), names="new.key.pub"),
    # --force replaces the planted link itself, never the file it points to
    case("keygen-pub-planted-link-force", "keygen", "--out", "%new.key", "--force",
         setup=make_symlink("new.key.pub", "good.csv"), inputs=("good.csv",), expect=0,
         mutable=("new.key.pub",)),
    case("keygen-passphrase-unset", "keygen", "--out", "%new.key", "--passphrase-env",
         "POISONGUARD_HOSTILE_UNSET", names="POISONGUARD_HOSTILE_UNSET"),
    # datasets export, redteam
    case("export-out-dir", "datasets", "export", "digits", "-o", "%d.npz", "--n-rows", "60",
         setup=make_dir("d.npz"), names="d.npz"),
    case("export-out-txt", "datasets", "export", "digits", "-o", "%d.txt", names="d.txt"),
    case("export-n-rows-0", "datasets", "export", "digits", "-o", "%d.npz", "--n-rows", "0",
         names="--n-rows|n_rows"),
    case("export-unknown", "datasets", "export", "no_such_set", "-o", "%d.csv",
         names="no_such_set"),
    case("redteam-out-is-input", "redteam", "@good.csv", "-o", "%good.csv", *ID, "--attacks",
         "label-flip", "--budgets", "0.1", names="good.csv"),
    # the writers on good input (the baseline: 0, nothing stray)
    case("ok-attack", "attack", "@good.csv", "-a", "backdoor", "--trigger", "feature", "--rate",
         "0.1", "-o", "%p.csv", "--save-trigger", "%t.json", *ID, expect=0),
    case("ok-trigger-apply", "trigger", "apply", "@trigp.json", "@digits.npz", "-o", "%t.npz",
         expect=0),
    case("ok-manifest", "manifest", "@good.csv", "--out", "%m.json", *ID, "--key", "@k.key",
         expect=0),
    case("ok-diff", "diff", "@man/man.json", "@man2/man2.json", "--out", "%d.json", expect=0),
    case("ok-attest", "attest", "@scan", "--manifest", "@man/man.json", "--key", "@k.key",
         "--out", "%a.json", expect=0),
    case("ok-sources", "sources", "@scan", "--out", "%s.csv", expect=0),
    case("ok-keygen", "keygen", "--out", "%new.key", expect=0),
    case("ok-ledger-init", "ledger", "init", "%new.db", "--pubkey", "@k.key.pub", expect=0),
    case("ok-ledger-append", "ledger", "append", "@ledger/book.db", "@manu/manu.json",
         "--checkpoint-out", "%cp2.json", expect=0, mutable=("ledger/book.db",)),
    case("ok-monitor-check", "monitor", "check", "@prof.json", "@ref.csv", "-o", "%d", "--db",
         "%h.sqlite", *ID, expect=0),
    case("ok-monitor-canary", "monitor", "canary", "@prof.json", "@ref.csv", "--db",
         "@hist.sqlite", *ID, expect=0, mutable=("hist.sqlite",)),
    case("ok-monitor-history", "monitor", "history", "--db", "@hist.sqlite", "-o", "%h",
         expect=0),
    case("ok-gate", "gate", "@good.csv", "--reference", "@ref.csv", "--accepted", "%acc.csv",
         "--quarantine", "%q", "-q", *ID, expect=(0, 1)),
    case("ok-export", "datasets", "export", "digits", "-o", "%d.npz", "--n-rows", "60", expect=0),
    case("ok-attacks", "attacks", expect=0),
]


@pytest.mark.parametrize("hcase", CASES, ids=ids(CASES))
def test_hostile_outputs(hcase: Case, hostile: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(hcase, hostile, tmp_path, capsys, monkeypatch)
