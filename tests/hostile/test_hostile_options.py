"""Hostile option values: seeds outside 0..2**32-1 (usage errors, Typer's format, naming the
option), one column for two roles, and non-finite budgets and thresholds (exit 2, one line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _hostile import Case, case, ids, run_case

pytestmark = pytest.mark.slow

ID = ("--id-col", "id")
SEEDED = {
    "attack": ("attack", "@good.csv", "-a", "label-flip", "--rate", "0.1", "-o", "%p.csv", *ID),
    "scan": ("scan", "@good.csv", "-q", "-o", "%s", *ID),
    "redteam": ("redteam", "@good.csv", "-o", "%rt", "--attacks", "label-flip", "--budgets", "0.1",
                *ID),
    "gate": ("gate", "@good.csv", "--reference", "@ref.csv", "--accepted", "%acc.csv",
             "--quarantine", "%q", "-q", *ID),
    "monitor-init": ("monitor", "init", "@good.csv", "-o", "%p.json", *ID),
    "monitor-check": ("monitor", "check", "@prof.json", "@good.csv", "-o", "%d", "--no-history",
                      *ID),
    "monitor-canary": ("monitor", "canary", "@prof.json", "@good.csv", "--no-history", *ID),
    "datasets-export": ("datasets", "export", "digits", "-o", "%d.npz", "--n-rows", "60"),
}
ROLES = {  # commands that take a --source-col, with an --id-col
    "attack": SEEDED["attack"],
    "scan": SEEDED["scan"],
    "manifest": ("manifest", "@good.csv", "--out", "%m.json", *ID),
    "redteam": SEEDED["redteam"],
    "gate": SEEDED["gate"],
    "monitor-init": SEEDED["monitor-init"],
    "monitor-check": SEEDED["monitor-check"],
    "monitor-canary": SEEDED["monitor-canary"],
    "trigger-apply": ("trigger", "apply", "@trig.json", "@good.csv", "-o", "%t.csv", *ID),
}

CASES: list[Case] = [
    *(case(f"seed-{label}-{cmd}", *argv, "--seed", seed, usage=True, names="--seed")
      for cmd, argv in SEEDED.items() for label, seed in (("-1", "-1"), ("2^40", "1099511627776"))),
    *(case(f"source-col-label-{cmd}", *argv, "--source-col", "label", names="label")
      for cmd, argv in ROLES.items()),
    case("id-col-label-attack", "attack", "@good.csv", "-a", "label-flip", "--rate", "0.1", "-o",
         "%p.csv", "--id-col", "label", names="label"),
    case("rate-nan-attack", "attack", "@good.csv", "-a", "label-flip", "--rate", "nan", "-o",
         "%p.csv", *ID, names="--rate|'rate'"),
    case("rate-1e400-attack", "attack", "@good.csv", "-a", "label-flip", "--rate", "1e400", "-o",
         "%p.csv", *ID, names="--rate|'rate'"),
    case("count-2^40-attack", "attack", "@good.csv", "-a", "label-flip", "--count",
         "1099511627776", "-o", "%p.csv", *ID, names="--count|1099511627776"),
    case("budget-nan-scan", "scan", "@good.csv", "-q", "-o", "%s", "--budget", "nan", *ID,
         names="--budget"),
    case("budget-1e400-scan", "scan", "@good.csv", "-q", "-o", "%s", "--budget", "1e400", *ID,
         names="--budget"),
    case("fail-on-nan-scan", "scan", "@good.csv", "-q", "-o", "%s", "--fail-on", "nan", *ID,
         names="--fail-on"),
    case("max-drift-nan-gate", *SEEDED["gate"], "--max-drift", "nan", names="--max-drift|max_drift"),
    case("alpha-nan-monitor-check", *SEEDED["monitor-check"], "--alpha", "nan", names="--alpha|'alpha'"),
    case("sample-size-0-monitor-init", *SEEDED["monitor-init"], "--sample-size", "0",
         names="--sample-size|sample_size"),
    case("test-size-1-redteam", *SEEDED["redteam"], "--test-size", "1", names="--test-size|test_size"),
    case("budgets-nan-redteam", "redteam", "@good.csv", "-o", "%rt", "--attacks", "label-flip",
         "--budgets", "nan", *ID, names="--budgets|budget"),
]


@pytest.mark.parametrize("hcase", CASES, ids=ids(CASES))
def test_hostile_options(hcase: Case, hostile: Path, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(hcase, hostile, tmp_path, capsys, monkeypatch)
