"""``poisonguard monitor init|check|canary|history``: files, exit codes, history, bad input."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.cli import main
from poisonguard.datasets import load_dataset


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = main(["monitor", *argv])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def _csv(path: Path, frame: pd.DataFrame, y: np.ndarray) -> Path:
    frame.assign(label=y, id=[f"r{i}" for i in range(len(frame))]).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """breast_cancer halves as CSV: the reference, a clean batch, 'mean radius' + 1 SD, and the
    clean batch with every label flipped; plus a profile of the reference."""
    root = tmp_path_factory.mktemp("monitor")
    ds = load_dataset("breast_cancer")
    ref, batch = ds.take(range(0, 569, 2)), ds.take(range(1, 569, 2))
    shifted = batch.frame()
    shifted["mean radius"] += ds.X[:, 0].std()
    out = {"ref": _csv(root / "ref.csv", ref.frame(), ref.y),
           "clean": _csv(root / "clean.csv", batch.frame(), batch.y),
           "shifted": _csv(root / "shifted.csv", shifted, batch.y),
           "flipped": _csv(root / "flipped.csv", batch.frame(), 1 - batch.y),
           "profile": root / "profile.json"}
    assert main(["monitor", "init", str(out["ref"]), "--id-col", "id", "--out", str(out["profile"])]) == 0
    return out


def test_init_writes_a_profile(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(files["profile"].read_text())
    assert doc["format"] == "poisonguard-profile/1" and len(doc["columns"]) == 30
    run = _run(capsys, "init", "wine", "--out", str(files["profile"].with_name("wine.json")))
    assert run.code == 0 and "profiled 178 rows of wine: 13 numeric" in run.out


def test_check_clean_batch(files: dict[str, Path], tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "h.sqlite"
    run = _run(capsys, "check", str(files["profile"]), str(files["clean"]), "--id-col", "id",
               "--out", str(tmp_path / "out"), "--db", str(db), "--fail-on-drift")
    assert run.code == 0, run.err
    doc = json.loads((tmp_path / "out" / "drift.json").read_text())
    assert list(doc)[:2] == ["drift", "tests"] and doc["drift"] is False
    assert (tmp_path / "out" / "drift.html").read_text().count("no drift") >= 1
    assert "recorded check #1" in run.err and "drift check" in run.out


def test_check_shifted_batch_exit_codes(files: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["check", str(files["profile"]), str(files["shifted"]), "--id-col", "id",
            "--out", str(tmp_path / "out"), "--db", str(tmp_path / "h.sqlite")]
    run = _run(capsys, *argv)
    assert run.code == 0 and "mean radius" in run.out
    assert "drift in" in run.err and "(exit 0; --fail-on-drift exits 1)" in run.err
    assert json.loads((tmp_path / "out" / "drift.json").read_text())["drift"] is True
    run = _run(capsys, *argv, "--fail-on-drift")
    assert run.code == 1 and "drift in" in run.err and "mean radius" in run.err
    run = _run(capsys, *argv, "--ks-gate", "1", "--psi-gate", "100", "--auc-gate", "1",
               "--fail-on-drift", "--no-history")
    assert run.code == 0 and "recorded" not in run.err


def test_the_profile_remembers_the_reference_columns(files: dict[str, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    doc = json.loads(files["profile"].read_text())
    assert doc["roles"] == {"label": "label", "id_col": "id"}
    # the batch has the same id column: neither check nor canary needs --id-col again
    run = _run(capsys, "check", str(files["profile"]), str(files["clean"]), "--no-history",
               "--out", str(tmp_path / "out"))
    assert run.code == 0, run.err
    assert _run(capsys, "canary", str(files["profile"]), str(files["clean"]), "--no-history").code == 0
    # given on the command line, the option wins ('mean radius' is no id: its values repeat)
    run = _run(capsys, "check", str(files["profile"]), str(files["clean"]), "--no-history",
               "--id-col", "mean radius", "--out", str(tmp_path / "out2"))
    assert run.code == 2 and "duplicate id" in run.err


def test_history_defaults_to_the_poisonguard_home(files: dict[str, Path], tmp_path: Path,
                                                  own_home: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = _run(capsys, "check", str(files["profile"]), str(files["clean"]), "--id-col", "id",
               "--out", str(tmp_path / "out"))
    assert run.code == 0 and f"recorded check #1 in {own_home / 'history.sqlite'}" in run.err
    assert (own_home / "history.sqlite").is_file() and not list(tmp_path.glob("*.sqlite"))
    listed = _run(capsys, "history").out
    assert f"history: {own_home / 'history.sqlite'}" in listed and "no drift" in listed


def test_canary_alerts_on_flipped_labels(files: dict[str, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "h.sqlite")
    base = ["canary", str(files["profile"]), "--id-col", "id", "--db", db, "--fail-on-alert"]
    assert _run(capsys, *base[:2], str(files["clean"]), *base[2:]).code == 0
    run = _run(capsys, *base[:2], str(files["flipped"]), *base[2:])
    assert run.code == 1 and "canary alert on" in run.err
    run = _run(capsys, *base[:2], str(files["flipped"]), *base[2:-1], "--no-history")
    assert run.code == 0 and "canary alert on" in run.err and "--fail-on-alert exits 1" in run.err
    run = _run(capsys, "history", "--db", db)
    assert run.code == 0 and "canary" in run.out and "alert" in run.out


def test_history_lists_and_plots(files: dict[str, Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POISONGUARD_DB", str(tmp_path / "team.sqlite"))
    for name in ("clean", "shifted"):
        assert _run(capsys, "check", str(files["profile"]), str(files[name]), "--id-col", "id",
                    "--out", str(tmp_path / name), "--no-multivariate").code == 0
    run = _run(capsys, "history", "--out", str(tmp_path / "hist"), "--profile", str(files["profile"]))
    assert run.code == 0 and "no drift" in run.out and "drift: mean radius" in run.out
    page = (tmp_path / "hist" / "history.html").read_text()
    assert page.count('class="trend"') == 31  # the label and the 30 features
    assert 'data-feature="mean radius"' in page and 'data-feature="(label)"' in page
    other = _run(capsys, "history", "--db", str(tmp_path / "empty.sqlite"))
    assert other.code == 0 and "no checks recorded" in other.out


# ----------------------------------------------------------------------- bad input
def _one_line_error(run: Run, code: int, *needles: str) -> None:
    assert run.code == code, run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_batch_with_other_columns(files: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    frame = pd.read_csv(files["clean"]).drop(columns=["mean radius"]).rename(columns={"mean area": "area"})
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    run = _run(capsys, "check", str(files["profile"]), str(bad), "--id-col", "id", "--out",
               str(tmp_path / "o"), "--no-history")
    _one_line_error(run, 2, str(bad), "columns differ", "missing 'mean radius', 'mean area'",
                    "unexpected 'area'")


def test_an_empty_batch(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text(files["clean"].read_text().splitlines()[0] + "\n")
    run = _run(capsys, "check", str(files["profile"]), str(empty), "--id-col", "id", "--no-history")
    _one_line_error(run, 2, str(empty), "no rows")


def test_a_profile_of_another_schema(files: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    wine = tmp_path / "wine.json"
    assert _run(capsys, "init", "wine", "--out", str(wine)).code == 0
    run = _run(capsys, "check", str(wine), str(files["clean"]), "--id-col", "id", "--no-history")
    _one_line_error(run, 2, str(files["clean"]), "columns differ from the profile of 'wine'")


def test_files_that_are_not_profiles(files: dict[str, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(capsys, "check", str(files["clean"]), str(files["clean"]), "--no-history")
    _one_line_error(run, 2, str(files["clean"]), "not a drift profile")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"drift": False}))
    run = _run(capsys, "canary", str(other), str(files["clean"]), "--no-history")
    _one_line_error(run, 2, str(other), "not a drift profile", "monitor init")
    edited = tmp_path / "edited.json"
    edited.write_text(files["profile"].read_text().replace('"n_rows": 285', '"n_rows": 286'))
    run = _run(capsys, "check", str(edited), str(files["clean"]), "--id-col", "id", "--no-history")
    _one_line_error(run, 3, str(edited), "digest")


def test_bad_options(files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database\n" * 50)
    run = _run(capsys, "check", str(files["profile"]), str(files["clean"]), "--id-col", "id",
               "--out", str(tmp_path / "o"), "--db", str(notes))
    _one_line_error(run, 2, str(notes), "not a usable history database")
    run = _run(capsys, "check", str(files["profile"]), str(files["clean"]), "--correction", "x")
    _one_line_error(run, 2, "--correction must be one of bh, holm")
    run = _run(capsys, "check", str(files["profile"]), str(files["clean"]), "--out", str(notes))
    _one_line_error(run, 2, "--out", "is a file")
    run = _run(capsys, "canary", str(files["profile"]), str(files["clean"]), "--model", "cnn",
               "--id-col", "id", "--no-history")
    _one_line_error(run, 2, "'model' must be one of logreg, mlp")
    run = _run(capsys, "init", "synthetic_text", "--out", str(tmp_path / "t.json"))
    _one_line_error(run, 2, "synthetic_text", "embed the text first")
