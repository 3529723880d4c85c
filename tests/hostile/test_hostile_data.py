"""Hostile data files through every command that loads data: refused with exit 2 and one line
naming the file, or, when legitimate but odd, processed (exit 0) with the oddity intact."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from _hostile import BIG_CELL, Case, case, ids, make_dir, run_case

pytestmark = pytest.mark.slow

Check = Callable[[Path, str], None]
GATE_OK = (0, 1)  # all accepted, or some rows quarantined: both are a working gate


def commands(data: str, ext: str, *, opts: tuple[str, ...] = (), ref: str = "@ref.csv",
             trigger: str = "@trig.json") -> dict[str, tuple[str, ...]]:
    """Every data-loading command on ``data`` (a ``@fixture`` or ``%special``)."""
    return {
        "attack": ("attack", data, "-a", "label-flip", "--rate", "0.1", "-o", f"%out.{ext}", *opts),
        "scan": ("scan", data, "-q", "-o", "%scan-out", *opts),
        "manifest": ("manifest", data, "--out", "%m.json", *opts),
        "monitor-init": ("monitor", "init", data, "-o", "%p.json", *opts),
        "gate": ("gate", data, "--reference", ref, "--accepted", f"%acc.{ext}", "--quarantine",
                 "%q", "-q", *opts),
        "trigger-apply": ("trigger", "apply", trigger, data, "-o", f"%t.{ext}", *opts,
                          *(("--source-col", "src") if ext != "npz" else ())),
        "monitor-check": ("monitor", "check", "@prof.json", data, "-o", "%drift", "--no-history",
                          *opts),
        "monitor-canary": ("monitor", "canary", "@prof.json", data, "--no-history", *opts),
    }


def cases_for(name: str, expect: dict[str, int | tuple[int, ...]], *, ext: str = "csv",
              opts: tuple[str, ...] = ("--id-col", "id"), data: str | None = None,
              setup: Callable[[Path], None] | None = None, ref: str = "@ref.csv",
              checks: dict[str, Check] | None = None) -> list[Case]:
    token = data or f"@{name}"
    cmds = commands(token, ext, opts=opts, ref=ref)
    return [case(f"{name}-{cmd}", *cmds[cmd], expect=code, names=(token,), setup=setup,
                 check=(checks or {}).get(cmd))
            for cmd, code in expect.items()]


ALL_2 = dict.fromkeys(("attack", "scan", "manifest", "monitor-init", "gate", "trigger-apply",
                       "monitor-check", "monitor-canary"), 2)


# ---------------------------------------------------------------- checks of a success
def _ids_exact(out: str, col: str = "id") -> Check:
    def check(folder: Path, stdout: str) -> None:
        src = pd.read_csv(folder / "formula.csv", dtype=str, keep_default_na=False)
        got = pd.read_csv(folder / out, dtype=str, keep_default_na=False)
        assert sorted(got[col]) == sorted(src[col]), f"{out}: the {col} cells were not copied exactly"
    return check


def _ids_subset(out: str) -> Check:
    def check(folder: Path, stdout: str) -> None:
        src = pd.read_csv(folder / "formula.csv", dtype=str, keep_default_na=False)
        got = pd.read_csv(folder / out, dtype=str, keep_default_na=False)
        assert set(got["id"]) <= set(src["id"]), f"{out}: ids that are not in the input"
    return check


def _no_formula_cells(*files: str) -> Check:
    def check(folder: Path, stdout: str) -> None:
        for name in files:
            frame = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
            for col in frame.columns:
                bad = frame[col][frame[col].str.match(r"^[=+\-@]")]
                assert bad.empty, f"{name}: column {col} holds spreadsheet formulas: {list(bad[:3])}"
    return check


def _both(*checks: Check) -> Check:
    def check(folder: Path, stdout: str) -> None:
        for c in checks:
            c(folder, stdout)
    return check


def _big_cell_kept(folder: Path, stdout: str) -> None:
    out = pd.read_csv(folder / "out.csv", dtype=str, keep_default_na=False)
    longest = out["text"].str.len().max()
    assert longest == BIG_CELL, f"out.csv: the 200 KB cell came back with {longest} characters"


def _bom_header(folder: Path, stdout: str) -> None:
    header = (folder / "out.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.lstrip("\ufeff").split(",")[0] == "id", f"out.csv header: {header!r}"


CASES: list[Case] = [
    # ------------------------------------------------------------------ refused: exit 2
    *cases_for("empty.csv", ALL_2),
    *cases_for("header_only.csv", {**ALL_2, "manifest": 0}),
    *cases_for("ragged.csv", ALL_2),
    *cases_for("nul.csv", ALL_2),
    *cases_for("latin1.csv", ALL_2),
    *cases_for("dup_label.csv", ALL_2),
    *cases_for("dup_feature.csv", ALL_2),
    # a manifest records data as it is (no model is fitted): an empty table, missing labels,
    # infinities and nested Parquet columns are hashed like any value
    *cases_for("nan_label.csv", {**ALL_2, "manifest": 0}),
    *cases_for("inf.csv", {**ALL_2, "manifest": 0}),
    # |value| > 1e100 is refused by the commands that compute (dataset.FEATURE_MAX)
    *cases_for("huge.csv", {**ALL_2, "manifest": 0}),
    *cases_for("no_label.csv", {k: 2 for k in ALL_2 if k != "monitor-check"}),
    *cases_for("dir.csv", ALL_2, data="%dir.csv", setup=make_dir("dir.csv")),
    *cases_for("list.parquet", {**ALL_2, "manifest": 0}, ext="parquet"),
    *cases_for("struct.parquet", {**ALL_2, "manifest": 0}, ext="parquet"),
    *cases_for("npz_object.npz", {k: 2 for k in ALL_2 if k != "trigger-apply"}, ext="npz",
               opts=(), ref="@digits.npz"),
    case("npz_object-trigger-apply", "trigger", "apply", "@trigp.json", "@npz_object.npz",
         "-o", "%t.npz", names="@npz_object.npz"),
    # a label flip needs two classes; the other commands work on one (a batch may hold one)
    *cases_for("one_class.csv", {"attack": 2, "scan": 0, "manifest": 0, "monitor-init": 0,
                                 "gate": GATE_OK, "trigger-apply": 0, "monitor-check": 0,
                                 "monitor-canary": 0}),
    case("one_class-scan-self-test", "scan", "@one_class.csv", "--id-col", "id", "--self-test",
         "-q", "-o", "%s", expect=0),
    case("empty-reference", "scan", "@good.csv", "--id-col", "id", "--reference", "@empty.csv",
         "-q", "-o", "%s", names="@empty.csv"),
    case("dup_label-reference", "scan", "@good.csv", "--id-col", "id", "--reference",
         "@dup_label.csv", "-q", "-o", "%s", names="@dup_label.csv"),
    case("ragged-gate-reference", "gate", "@good.csv", "--reference", "@ragged.csv", "--accepted",
         "%acc.csv", "--quarantine", "%q", "--id-col", "id", "-q", names="@ragged.csv"),
    case("empty-redteam", "redteam", "@empty.csv", "-o", "%rt", "--attacks", "label-flip",
         "--budgets", "0.1", names="@empty.csv"),
    case("one_class-redteam", "redteam", "@one_class.csv", "--id-col", "id", "-o", "%rt",
         "--attacks", "label-flip", "--budgets", "0.1", names="@one_class.csv"),
    case("empty-verify", "verify", "@empty.csv", "@man/man.json", expect=3, names="@empty.csv"),
    case("ragged-verify", "verify", "@ragged.csv", "@man/man.json", expect=3,
         names="@ragged.csv"),
    # ------------------------------------------------ legitimate but odd: must work (0)
    *cases_for("nan.csv", {"attack": 0, "scan": 0, "manifest": 0, "monitor-init": 0,
                           "gate": GATE_OK, "trigger-apply": 0, "monitor-check": 0,
                           "monitor-canary": 0}),
    *cases_for("bom.csv", {"attack": 0, "scan": 0, "manifest": 0, "monitor-init": 0,
                           "gate": GATE_OK, "monitor-check": 0},
               checks={"attack": _bom_header}),
    # (drift monitoring takes no text: monitor init refuses it, naming the file)
    *cases_for("bigcell.csv", {"attack": 0, "scan": 0, "manifest": 0, "monitor-init": 2,
                               "gate": GATE_OK}, ref="@text.csv",
               checks={"attack": _big_cell_kept}),
    *cases_for("formula.csv", {"attack": 0, "scan": 0, "manifest": 0, "monitor-init": 0,
                               "gate": GATE_OK},
               opts=("--id-col", "id", "--source-col", "src"),
               checks={"attack": _both(_ids_exact("out.csv"), _ids_exact("out.csv", "src"),
                                       _no_formula_cells("out.truth.csv")),
                       "scan": _no_formula_cells("scan-out/scores.csv"),
                       "gate": _both(_ids_subset("acc.csv"), _no_formula_cells("q/reasons.csv"))}),
    case("formula-scan-write-clean", "scan", "@formula.csv", "--id-col", "id", "--source-col",
         "src", "-q", "-o", "%s", "--write-clean", "%clean.csv", expect=0),
    case("formula-sources", "sources", "@scan_formula", "--out", "%rank.csv", expect=0,
         check=_no_formula_cells("rank.csv")),
    case("good-scan-self-test", "scan", "@good.csv", "--id-col", "id", "--self-test", "-q",
         "-o", "%s", expect=0),
    case("good-scan-reference", "scan", "@good.csv", "--id-col", "id", "--reference",
         "@ref.csv", "-q", "-o", "%s", "--write-clean", "%clean.csv", expect=0),
    case("huge-manifest-verify", "verify", "@huge.csv", "@man/man.json", expect=3),
    case("good-redteam", "redteam", "@good.csv", "--id-col", "id", "-o", "%rt", "--attacks",
         "label-flip", "--budgets", "0.1", expect=0),
    case("good-verify", "verify", "@good.csv", "@man/man.json", "--pubkey", "@k.key.pub",
         expect=0),
    case("tampered-verify", "verify", "@tampered.csv", "@man/man.json", expect=3,
         names="tampered.csv"),
]


@pytest.mark.parametrize("hcase", CASES, ids=ids(CASES))
def test_hostile_data(hcase: Case, hostile: Path, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(hcase, hostile, tmp_path, capsys, monkeypatch)
