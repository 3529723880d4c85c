"""``poisonguard datasets export``: subsets, ids, sources and the rows left out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from poisonguard.cli import main


def test_export_with_ids_sources_and_the_rest(tmp_path: Path) -> None:
    out, rest = tmp_path / "train.csv", tmp_path / "batch.csv"
    assert main(["datasets", "export", "breast_cancer", "--ids", "--sources", "3", "--n-rows",
                 "400", "--out", str(out), "--rest", str(rest)]) == 0
    train, batch = pd.read_csv(out), pd.read_csv(rest)
    assert (len(train), len(batch)) == (400, 169)
    assert not set(train["id"]) & set(batch["id"])  # the two parts are disjoint and whole
    assert len(set(train["id"]) | set(batch["id"])) == 569
    assert train["id"].str.fullmatch(r"breast_cancer-\d+").all()
    assert set(train["source"]) | set(batch["source"]) == {"vendor-a", "vendor-b", "vendor-c"}
    # a row's source depends on the row alone: exporting again in another split agrees
    again = tmp_path / "again.csv"
    assert main(["datasets", "export", "breast_cancer", "--ids", "--sources", "3", "--out",
                 str(again)]) == 0
    whole = pd.read_csv(again).set_index("id")["source"]
    assert (whole[train["id"]].to_numpy() == train["source"].to_numpy()).all()
    assert train["source"].value_counts().min() >= 100  # all three contribute


@pytest.mark.parametrize(("args", "message"), [
    (["--rest", "b.csv"], "--rest needs --n-rows"),
    (["--n-rows", "50", "--rest", "a.csv"], "the same file"),
    (["--sources", "0"], "--sources"),
])
def test_export_refuses_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    args: list[str], message: str) -> None:
    code = main(["datasets", "export", "breast_cancer", "--out", str(tmp_path / "a.csv"),
                 *[str(tmp_path / a) if a.endswith(".csv") else a for a in args]])
    err = capsys.readouterr().err
    assert code == 2 and message in err


def test_rest_of_generated_data_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["datasets", "export", "synthetic_tabular", "--n-rows", "100", "--out",
                 str(tmp_path / "a.csv"), "--rest", str(tmp_path / "b.csv")])
    assert code == 2 and "generated" in capsys.readouterr().err
    assert not (tmp_path / "a.csv").exists()
