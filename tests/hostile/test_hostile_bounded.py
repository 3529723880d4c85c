"""Inputs that can hang or exhaust memory: a FIFO, /dev/zero, npz bombs, 100k-deep JSON and
trigger sizes of 1e9. Each case runs ``python -m poisonguard`` in a subprocess under a 3 GiB
address-space limit and a 120 s timeout (``_hostile.MEMORY_LIMIT``, ``TIMEOUT_S``); ``baseline``
cases prove good runs (torch included) fit under that bound."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _hostile import Case, case, ids, make_fifo, make_symlink, run_case, run_in_process

pytestmark = pytest.mark.slow

ID = ("--id-col", "id")
Setup = Callable[[Path], None]
REFUSED_OR_BOUNDED = (0, 2)  # a bomb may be refused or processed, never beyond the bound


def bounded(id: str, *argv: str, expect: int | tuple[int, ...] = 2, names: str | tuple[str, ...] = (),
            setup: Setup | None = None) -> Case:
    return case(id, *argv, expect=expect, names=names, setup=setup, bounded=True)


def data_commands(name: str, data: str, ext: str, which: tuple[str, ...], *,
                  expect: int | tuple[int, ...] = 2, setup: Setup | None = None,
                  opts: tuple[str, ...] = ()) -> list[Case]:
    cmds = {
        "attack": ("attack", data, "-a", "label-flip", "--rate", "0.1", "-o", f"%out.{ext}", *opts),
        "scan": ("scan", data, "-q", "-o", "%s", *opts),
        "manifest": ("manifest", data, "--out", "%m.json", *opts),
        "monitor-init": ("monitor", "init", data, "-o", "%p.json", *opts),
        "gate": ("gate", data, "--reference", "@digits.npz" if ext == "npz" else "@ref.csv",
                 "--accepted", f"%acc.{ext}", "--quarantine", "%q", "-q", *opts),
        "trigger-apply": ("trigger", "apply", "@trig.json", data, "-o", f"%t.{ext}", *opts),
        "verify": ("verify", data, "@man/man.json"),
    }
    return [bounded(f"{name}-{cmd}", *cmds[cmd], setup=setup,
                    expect=expect,
                    names=Path(data.lstrip("@%")).name)
            for cmd in which]


DEEP = ("trigger-apply", "verify", "diff", "ledger-append", "ledger-verify", "monitor-check",
        "monitor-canary", "gate-profile", "attest-manifest", "attest-report", "sources-report")


def deep_cases() -> list[Case]:
    man, prof, cp = "@man_deep/man.json", "@prof_deep/prof.json", "@cp_deep/cp.json"
    argv = {
        "trigger-apply": ("trigger", "apply", "@trig_deep/trig.json", "@digits.npz", "-o",
                          "%t.npz"),
        "verify": ("verify", "@good.csv", man),
        "diff": ("diff", "@man2/man2.json", man),
        "ledger-append": ("ledger", "append", "@ledger/book.db", man),
        "ledger-verify": ("ledger", "verify", "@ledger/book.db", "--trusted", cp),
        "monitor-check": ("monitor", "check", prof, "@good.csv", "-o", "%d", "--no-history", *ID),
        "monitor-canary": ("monitor", "canary", prof, "@good.csv", "--no-history", *ID),
        "gate-profile": ("gate", "@good.csv", "--reference", "@ref.csv", "--accepted", "%acc.csv",
                         "--quarantine", "%q", "-q", "--profile", prof, *ID),
        "attest-manifest": ("attest", "@scan", "--manifest", man, "--out", "%a.json"),
        "attest-report": ("attest", "@scan_deep", "--manifest", "@man/man.json", "--out",
                          "%a.json"),
        "sources-report": ("sources", "@scan_deep"),
    }
    return [bounded(f"deep-json-{k}", *argv[k],
                    names="report.json" if k.endswith("report") else
                    Path(next(a for a in argv[k] if "_deep" in a)).name)
            for k in DEEP]


CASES: list[Case] = [
    # a FIFO and /dev/zero never end: refused by what they are, not read (attack stands for the
    # commands that load through io.load; manifest and verify read files their own way)
    *data_commands("fifo.csv", "%fifo.csv", "csv", ("attack", "manifest", "verify"),
                   setup=make_fifo("fifo.csv"), opts=ID),
    bounded("fifo-trigger-json", "trigger", "apply", "%fifo.json", "@good.csv", "-o", "%t.csv",
            setup=make_fifo("fifo.json"), names="fifo.json"),
    bounded("fifo-manifest-json", "verify", "@good.csv", "%fifo.json",
            setup=make_fifo("fifo.json"), names="fifo.json"),
    bounded("fifo-profile-json", "monitor", "check", "%fifo.json", "@good.csv", "-o", "%d",
            "--no-history", *ID, setup=make_fifo("fifo.json"), names="fifo.json"),
    bounded("fifo-ledger", "ledger", "verify", "%fifo.db", setup=make_fifo("fifo.db"),
            names="fifo.db"),
    bounded("fifo-ledger-append-file", "ledger", "append", "@ledger/book.db", "%fifo.json",
            setup=make_fifo("fifo.json"), names="fifo.json"),
    *data_commands("devzero.csv", "%zero.csv", "csv", ("attack", "manifest", "verify"),
                   setup=make_symlink("zero.csv", "/dev/zero"), opts=ID),
    bounded("devzero-trigger-json", "trigger", "apply", "%zero.json", "@good.csv", "-o", "%t.csv",
            setup=make_symlink("zero.json", "/dev/zero"), names="zero.json"),
    bounded("devzero-manifest-json", "verify", "@good.csv", "%zero.json",
            setup=make_symlink("zero.json", "/dev/zero"), names="zero.json"),
    # npz bombs: a 72 TiB header with no data; a member claiming 4 GiB; 300 MiB from 300 KB
    *data_commands("npz_72tib", "@npz_72tib.npz", "npz", ("attack", "scan", "manifest")),
    *data_commands("npz_sizelie", "@npz_sizelie.npz", "npz", ("attack", "manifest"),
                   expect=REFUSED_OR_BOUNDED),
    *data_commands("npz_bomb", "@npz_bomb.npz", "npz", ("attack", "manifest"),
                   expect=REFUSED_OR_BOUNDED),
    # 100k-deep JSON in every kind of document
    *deep_cases(),
    # trigger sizes of 1e9
    bounded("trigger-json-size-1e9", "trigger", "apply", "@trig_1e9.json", "@digits.npz", "-o",
            "%t.npz", names="trig_1e9.json"),
    bounded("trigger-json-row-huge", "trigger", "apply", "@trig_neg.json", "@digits.npz", "-o",
            "%t.npz", names="trig_neg.json"),
    bounded("attack-patch-size-1e9", "attack", "@digits.npz", "-a", "backdoor", "--trigger",
            "patch", "--trigger-size", "1000000000", "--rate", "0.1", "-o", "%p.npz",
            names="--trigger-size|trigger_size"),
    bounded("attack-feature-size-1e9", "attack", "@good.csv", "-a", "backdoor", "--trigger",
            "feature", "--trigger-size", "1000000000", "--rate", "0.1", "-o", "%p.csv", *ID,
            names="--trigger-size|trigger_size"),
    # good runs under the same bound (the bound has headroom; torch is imported by cnn)
    bounded("baseline-scan-table", "scan", "@good.csv", "-q", "-o", "%s", *ID, expect=0),
    bounded("baseline-scan-digits-cnn", "scan", "@digits.npz", "-q", "-o", "%s", "--embedder",
            "cnn", expect=0),
]


@pytest.mark.parametrize("hcase", CASES, ids=ids(CASES))
def test_hostile_bounded(hcase: Case, hostile: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(hcase, hostile, tmp_path, capsys, monkeypatch)


def test_python_dash_m_runs_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The bounded runner's entry point, ``python -m poisonguard``, is the CLI itself."""
    from _hostile import run_bounded

    res = run_bounded(["attacks"], tmp_path, tmp_path / "io")
    assert res.code == 0 and "label-flip" in res.out, res.err
    same = run_in_process(["attacks"], tmp_path, capsys, monkeypatch)
    assert same.code == 0 and "label-flip" in same.out
