"""The hostile-input contract and the runner every case goes through.

A :class:`Case` is one command line over the shared fixtures. Tokens in its ``argv``:

* ``@NAME``: the fixture ``NAME`` (and its companions: ``NAME.*`` and ``STEM.*`` entries, e.g.
  a manifest's rows file or a key's ``.pub``), copied into the case's own folder first;
* ``%NAME``: a path in the case's folder that the command may write (not created);
* anything else is passed as it is.

The contract checked for every case (see README.md):

1. the exit code is one of ``case.expect``;
2. failures (2, 3) print exactly one stderr line starting ``error: `` and never ``Traceback``;
   exit 2 prints nothing else on stderr (the README's "one line on stderr"); usage errors are
   Typer's own (``Usage:`` ... ``Error: ...`` naming the option);
3. every file in the case's folder before the run has the same SHA-256 afterwards, nothing
   appears or disappears on a failure, and no stray temporary file (``.NAME.*``) is left on
   success;
4. ``bounded`` cases run as ``python -m poisonguard`` in a subprocess with an address-space
   limit (:data:`MEMORY_LIMIT`) and a wall-clock timeout (:data:`TIMEOUT_S`): a hang or an
   unbounded allocation fails the case instead of the suite.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from poisonguard.cli import main

# Address-space limit of a bounded case. Measured on the project's machine: a scan of a 60-row
# table or of 60 digits peaks below 300 MB resident and runs under a 1 GiB address-space limit;
# importing torch (the cnn embedder, redteam --model cnn) needs 1.5 GiB of address space. 3 GiB
# leaves twice that; a 72 TiB array, a zip bomb or an endless read runs into it.
MEMORY_LIMIT = 3 * 2**30
TIMEOUT_S = 120  # wall clock of a bounded case: a hang is a failure, not a stuck suite
N = 60  # rows of every table: enough for every command, small enough for 2 cores
BIG_CELL = 200 * 1024  # characters of the big text cell
SUCCESS = (0, 1)  # 1: findings (gate quarantined rows, --fail-on): outputs are expected

# the child sets its own limits before anything is imported, then runs ``python -m poisonguard``
_BOUNDED = ("import resource, runpy, sys; "
            "resource.setrlimit(resource.RLIMIT_AS, ({lim}, {lim})); "
            "resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); "
            "sys.argv[0] = 'poisonguard'; "
            "runpy.run_module('poisonguard', run_name='__main__', alter_sys=True)")


@dataclass(frozen=True)
class Case:
    """One command line over hostile input and what it must do."""

    id: str
    argv: tuple[str, ...]
    expect: tuple[int, ...]
    names: tuple[str, ...] = ()  # the error line of an exit 2 names each (``@NAME``: the file's
    # name; ``A|B``: A or B, e.g. an option's flag or its parameter name)
    setup: Callable[[Path], None] | None = None  # makes special files in the case's folder
    bounded: bool = False
    usage: bool = False  # a Typer usage error (exit 2, ``Error: ...`` naming the option)
    mutable: tuple[str, ...] = ()  # inputs a success may change (a ledger appended to)
    writes_on_3: bool = False  # gate: a rejected batch still writes the quarantine
    inputs: tuple[str, ...] = ()  # fixtures copied in without being named on the command line
    check: Callable[[Path, str], None] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.id


def case(id: str, *argv: str, expect: int | tuple[int, ...] = 2, names: tuple[str, ...] | str = (),
         setup: Callable[[Path], None] | None = None, bounded: bool = False, usage: bool = False,
         mutable: tuple[str, ...] = (), writes_on_3: bool = False, inputs: tuple[str, ...] = (),
         check: Callable[[Path, str], None] | None = None) -> Case:
    """A :class:`Case`; ``names`` defaults to the first ``@`` fixture for a failure."""
    codes = (expect,) if isinstance(expect, int) else tuple(expect)
    wanted = (names,) if isinstance(names, str) else tuple(names)
    return Case(id, tuple(argv), codes, wanted, setup, bounded, usage, mutable, writes_on_3,
                inputs, check)


def ids(cases: list[Case]) -> list[str]:
    seen = [c.id for c in cases]
    dupes = {i for i in seen if seen.count(i) > 1}
    assert not dupes, f"duplicate case ids: {sorted(dupes)}"
    return seen


# ------------------------------------------------------------------------- special files
def make_dir(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).mkdir()


def make_fifo(name: str) -> Callable[[Path], None]:
    return lambda folder: os.mkfifo(folder / name)


def make_symlink(name: str, target: str | Path) -> Callable[[Path], None]:
    """``name`` -> ``target`` (relative to the case's folder unless absolute)."""
    return lambda folder: os.symlink(target if Path(target).is_absolute() else folder / target,
                                     folder / name)


def make_hardlink(name: str, target: str) -> Callable[[Path], None]:
    return lambda folder: os.link(folder / target, folder / name)


def both(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def run(folder: Path) -> None:
        for step in steps:
            step(folder)
    return run


# ---------------------------------------------------------------------------- snapshots
def _entry(path: Path) -> str:
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        return f"link -> {os.readlink(path)}"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return f"sha256 {digest.hexdigest()}"
    return f"special {stat.S_IFMT(st.st_mode):o}"


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (links not followed): its kind and the SHA-256 of files."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            p = Path(root) / name
            out[str(p.relative_to(folder))] = _entry(p)
    return out


# --------------------------------------------------------------------------------- runs
@dataclass
class Outcome:
    code: int | None  # None: no exit code (an exception escaped main, a signal, a timeout)
    out: str
    err: str
    why: str = ""  # what went wrong outside the exit code: traceback / unbounded
    seconds: float = 0.0
    max_rss_mb: float | None = None


def _expand(argv: tuple[str, ...], folder: Path, fixtures: Path) -> list[str]:
    args = []
    for tok in argv:
        if tok.startswith("@"):
            args.append(str(_copy_fixture(tok[1:], folder, fixtures)))
        elif tok.startswith("%"):
            args.append(str(folder / tok[1:]))
        else:
            args.append(tok)
    return args


def _copy_fixture(name: str, folder: Path, fixtures: Path) -> Path:
    """Copy fixture ``name`` into ``folder``: a file with its companions (``NAME.*``,
    ``STEM.*``), or for ``DIR/FILE`` the whole folder ``DIR``."""
    top = name.split("/")[0]
    src = fixtures / top
    assert src.exists() or src.is_symlink(), f"no fixture {name}"
    stem = top.split(".")[0]
    for entry in fixtures.iterdir():
        if entry.name == top or ("/" not in name and entry.name.startswith((f"{top}.", f"{stem}."))):
            dest = folder / entry.name
            if dest.exists():
                continue
            if entry.is_dir():
                shutil.copytree(entry, dest, symlinks=True)
            else:
                shutil.copy2(entry, dest, follow_symlinks=False)
    return folder / name


def run_in_process(args: list[str], folder: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> Outcome:
    monkeypatch.chdir(folder)
    capsys.readouterr()
    start = time.perf_counter()
    why = ""
    try:
        code: int | None = main(args)
    except (Exception, SystemExit) as exc:  # escaped main: a user would see a traceback
        code = None
        why = "traceback: " + traceback.format_exception_only(exc)[-1].strip()
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err, why, time.perf_counter() - start)


def run_bounded(args: list[str], folder: Path, scratch: Path) -> Outcome:
    """``python -m poisonguard ARGS`` in ``folder`` under :data:`MEMORY_LIMIT` and
    :data:`TIMEOUT_S`; peak resident memory from the child's own rusage."""
    env = {k: v for k, v in os.environ.items() if k != "POISONGUARD_DB"}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               MPLBACKEND="Agg")
    scratch.mkdir(parents=True, exist_ok=True)
    out_path, err_path = scratch / "stdout", scratch / "stderr"
    cmd = [sys.executable, "-c", _BOUNDED.format(lim=MEMORY_LIMIT), *args]
    start = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=err, start_new_session=True)
    why, status, usage = "", None, None
    while status is None:
        pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            status, usage = st, ru
        elif time.perf_counter() - start > TIMEOUT_S:
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            why = f"unbounded: still running after {TIMEOUT_S} s (killed)"
        else:
            time.sleep(0.05)
    code: int | None = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped here, not by Popen
    err_text = err_path.read_bytes().decode("utf-8", "replace")
    if not why and code is not None and code < 0:
        why = f"unbounded: killed by signal {signal.Signals(-code).name}"
    if why:
        code = None
    elif "MemoryError" in err_text:
        why = f"unbounded: MemoryError under the {MEMORY_LIMIT >> 30} GiB address-space limit"
    return Outcome(code, out_path.read_bytes().decode("utf-8", "replace"), err_text, why,
                   time.perf_counter() - start, usage.ru_maxrss / 1024 if usage else None)


# ------------------------------------------------------------------------------ contract
def _classify(case: Case, res: Outcome, problems: list[str]) -> str:
    if res.why:
        return res.why.split(":")[0]
    if "Traceback" in res.err:
        return "traceback"
    if any(p.startswith("data loss") for p in problems):
        return "data loss"
    if res.code == 0 and 0 not in case.expect:
        return "silent wrong"
    if any(p.startswith("leftover") for p in problems):
        return "leftover output"
    if res.code not in case.expect:
        return "wrong exit code"
    return "message"


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "(no stderr)"


def check_contract(case: Case, res: Outcome, args: list[str], folder: Path,
                   before: dict[str, str]) -> None:
    """Assert the hostile-input contract; the failure's first line classifies it."""
    problems: list[str] = []
    if res.why:
        problems.append(res.why)
    if res.code not in case.expect:
        problems.append(f"exit {res.code}, expected {' or '.join(map(str, case.expect))}")
    if "Traceback" in res.err:
        problems.append("traceback on stderr")
    err_lines = [ln for ln in res.err.splitlines() if ln.strip()]
    failed = res.code is None or res.code not in SUCCESS
    if res.code in (2, 3) and not res.why and not (case.writes_on_3 and res.code == 3):
        if case.usage:
            errors = [ln for ln in err_lines if ln.startswith("Error: ")]
            if len(errors) != 1:
                problems.append(f"message: expected one 'Error: ' usage line, got {err_lines}")
            line = errors[0] if errors else ""
        else:
            errors = [ln for ln in err_lines if ln.startswith("error: ")]
            if len(errors) != 1:
                problems.append(f"message: expected exactly one 'error: ' line, got {err_lines}")
            elif res.code == 2 and len(err_lines) != 1:
                problems.append(f"message: exit 2 must print one line on stderr, got {err_lines}")
            line = errors[0] if errors else ""
        for want in case.names if res.code == 2 else ():  # 2 names the file; 3 what changed
            texts = [Path(w[1:]).name if w.startswith(("@", "%")) else w for w in want.split("|")]
            if line and not any(t in line for t in texts):
                problems.append(f"message: the error line does not name {' or '.join(map(repr, texts))}: "
                                f"{line!r}")
    after = snapshot(folder)
    mutable = set(case.mutable)
    for rel, kind in before.items():
        if rel not in after:
            problems.append(f"data loss: {rel} was removed")
        elif after[rel] != kind and not (rel in mutable and not failed):
            problems.append(f"data loss: {rel} changed ({kind} -> {after[rel]})")
    new = sorted(set(after) - set(before))
    if failed and not (case.writes_on_3 and res.code == 3):
        if new:
            problems.append(f"leftover output after a failure: {new}")
    else:
        stray = [n for n in new if Path(n).name.startswith(".")]
        if stray:
            problems.append(f"leftover temporary files: {stray}")
    if not problems and case.check is not None and not failed:
        try:
            case.check(folder, res.out)
        except AssertionError as exc:
            problems.append(f"silent wrong: {exc}")
    if problems:
        kind = _classify(case, res, problems)
        mem = f", max RSS {res.max_rss_mb:.0f} MB" if res.max_rss_mb is not None else ""
        pytest.fail(f"[{kind}] {_last_line(res.err)}\n"
                    f"  poisonguard {' '.join(args)}\n  ({res.seconds:.1f} s{mem})\n  - "
                    + "\n  - ".join(problems), pytrace=False)


def run_case(case: Case, fixtures: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
             monkeypatch: pytest.MonkeyPatch) -> Outcome:
    """Copy the case's inputs into its own folder, run it, and check the contract."""
    monkeypatch.delenv("POISONGUARD_DB", raising=False)
    folder = tmp_path / "w"
    folder.mkdir()
    args = _expand(case.argv, folder, fixtures)
    for name in case.inputs:
        _copy_fixture(name, folder, fixtures)
    if case.setup is not None:
        case.setup(folder)
    before = snapshot(folder)
    if case.bounded:
        res = run_bounded(args, folder, tmp_path / "io")
    else:
        res = run_in_process(args, folder, capsys, monkeypatch)
    check_contract(case, res, args, folder, before)
    return res
