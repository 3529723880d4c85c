"""``poisonguard scan``, ``demo`` and ``catalog``: output files, exit codes, bad input."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard import io
from poisonguard.cli import main
from poisonguard.cli.scan import Steps
from poisonguard.datasets import load_dataset
from poisonguard.errors import InputError

FAST = ["--detectors", "label,neighbors"]
PROGRESS_LINE = re.compile(r": \d+\.\d s$")


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def _scan(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = main(["scan", *argv])
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


@pytest.fixture(scope="module")
def cancer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 breast_cancer rows as CSV with a ``patient`` id column."""
    ds = load_dataset("breast_cancer", n_rows=300, random_state=0)
    frame = ds.frame().assign(label=ds.y, patient=[f"p{i:03d}" for i in range(ds.n_rows)])
    path = tmp_path_factory.mktemp("data") / "cancer.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def scanned(cancer: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fast scan of ``cancer`` (ids from ``patient``), shared by the output checks."""
    out = tmp_path_factory.mktemp("scan") / "out"
    assert main(["scan", str(cancer), "--id-col", "patient", *FAST, "--out", str(out), "-q"]) == 0
    return out


# ----------------------------------------------------------------------------- outputs
def test_scores_csv_columns_and_values(scanned: Path, cancer: Path) -> None:
    scores = pd.read_csv(scanned / "scores.csv", keep_default_na=False)
    assert list(scores.columns) == ["row_id", "score", "flagged", "reason", "top_detector", "label",
                                     "neighbors"]
    assert len(scores) == 300
    assert scores["row_id"].tolist() == pd.read_csv(cancer)["patient"].tolist()
    assert scores["score"].between(0, 1).all()
    assert set(scores["flagged"]) <= {0, 1}
    flagged = scores["flagged"] == 1
    assert (scores.loc[flagged, "reason"] != "").all()
    assert (scores.loc[~flagged, "reason"] == "").all()


def test_report_json_and_html(scanned: Path) -> None:
    report = json.loads((scanned / "report.json").read_text())
    assert set(report) >= {"summary", "top_flagged", "timings", "notes", "versions"}
    summary = report["summary"]
    assert summary["rows"] == 300 and summary["detectors"] == ["label", "neighbors"]
    assert 0 <= summary["flagged_share"] <= 1
    assert (scanned / "report.html").read_text().lstrip().lower().startswith("<!doctype html")


def test_row_ids_are_row_numbers_without_an_id_column(cancer: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    res = _scan(capsys, str(cancer), *FAST, "--out", str(tmp_path), "--budget", "0.05")
    assert res.code == 0, res.err
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert scores["row_id"].tolist() == list(range(300))
    assert scores["flagged"].sum() == 15  # 5 % of 300
    assert "scan: " in res.out and "flagged by" in res.out and "scores.csv" in res.out


def test_budget_flags_exactly_that_many(cancer: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    res = _scan(capsys, str(cancer), *FAST, "--budget", "10", "--out", str(tmp_path), "-q")
    assert res.code == 0, res.err
    assert pd.read_csv(tmp_path / "scores.csv")["flagged"].sum() == 10


@pytest.mark.parametrize("names", ["label", "neighbors,label"])
def test_detectors_give_exactly_those_columns(cancer: Path, tmp_path: Path, names: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    res = _scan(capsys, str(cancer), "--detectors", names, "--out", str(tmp_path), "-q")
    assert res.code == 0, res.err
    header = (tmp_path / "scores.csv").read_text().splitlines()[0]
    assert header == "row_id,score,flagged,reason,top_detector," + names


def test_same_seed_same_bytes(cancer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for k in range(2):
        res = _scan(capsys, str(cancer), *FAST, "--seed", "5", "--out", str(tmp_path / str(k)), "-q")
        assert res.code == 0, res.err
    assert (tmp_path / "0" / "scores.csv").read_bytes() == (tmp_path / "1" / "scores.csv").read_bytes()


def test_a_second_scan_into_the_same_folder_says_it_replaced_the_first(
        cancer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _scan(capsys, str(cancer), *FAST, "--out", str(tmp_path), "-q")
    assert first.code == 0 and "replaced" not in first.err
    again = _scan(capsys, str(cancer), *FAST, "--out", str(tmp_path), "-q")
    assert again.code == 0
    assert f"note: replaced the earlier scores.csv, report.json, report.html in {tmp_path}" in again.err


def test_fail_on(cancer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = _scan(capsys, str(cancer), *FAST, "--budget", "3", "--fail-on", "0.0", "--out",
                str(tmp_path), "-q")
    assert res.code == 1
    assert res.err == "flagged share 1.0% exceeds --fail-on 0\n"
    assert (tmp_path / "scores.csv").exists()  # findings are still written
    res = _scan(capsys, str(cancer), *FAST, "--budget", "3", "--fail-on", "0.01", "--out",
                str(tmp_path), "-q")
    assert res.code == 0, res.err  # 1 % does not exceed 0.01


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
def test_write_clean_keeps_format_and_input(cancer: Path, tmp_path: Path, ext: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = cancer.read_bytes()
    clean = tmp_path / f"clean{ext}"
    res = _scan(capsys, str(cancer), *FAST, "--id-col", "patient", "--budget", "10",
                "--write-clean", str(clean), "--out", str(tmp_path / "out"), "-q")
    assert res.code == 0, res.err
    assert cancer.read_bytes() == before
    original = pd.read_csv(cancer)
    kept = pd.read_csv(clean) if ext == ".csv" else pd.read_parquet(clean)
    assert list(kept.columns) == list(original.columns)
    assert len(kept) == 290
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert kept["patient"].tolist() == scores.loc[scores["flagged"] == 0, "row_id"].tolist()
    pd.testing.assert_frame_equal(kept.reset_index(drop=True), original[
        original["patient"].isin(kept["patient"])].reset_index(drop=True), check_dtype=False)


def test_write_clean_npz_images(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "digits.npz"
    io.save(load_dataset("digits", n_rows=200, random_state=0), data)
    before = data.read_bytes()
    res = _scan(capsys, str(data), *FAST, "--embedder", "mlp", "--budget", "7", "--write-clean",
                str(tmp_path / "clean.npz"), "--out", str(tmp_path / "out"), "-q")
    assert res.code == 0, res.err
    assert data.read_bytes() == before
    with np.load(data) as src, np.load(tmp_path / "clean.npz") as out:
        assert sorted(out.files) == sorted(src.files)
        assert out["X"].shape == (193, 8, 8) and out["y"].shape == (193,)


def test_a_class_with_one_row_still_scans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = "".join(f"{i},{(i * 7) % 5}.5,{i % 2}\n" for i in range(100)) + "3,4,lonely\n"
    data = tmp_path / "data.csv"
    data.write_text("a,b,label\n" + rows)
    res = _scan(capsys, str(data), *FAST, "--out", str(tmp_path / "out"), "-q")
    assert res.code == 0, res.err
    assert len(pd.read_csv(tmp_path / "out" / "scores.csv")) == 101


def test_more_classes_than_half_the_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b,label\n" + "".join(f"{i},{i % 3},c{i}\n" for i in range(8)))
    line = _bad(tmp_path, capsys, data, *FAST)
    assert line == (f"error: {data}: 8 classes in 8 rows; a scan needs at least 2 rows per class "
                    "on average (is --label 'label' the label column?)")


def test_reference_of_the_same_shape(cancer: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    ref = tmp_path / "ref.csv"
    pd.read_csv(cancer).head(150).to_csv(ref, index=False)
    res = _scan(capsys, str(cancer), "--reference", str(ref), "--id-col", "patient", *FAST,
                "--out", str(tmp_path / "out"), "-q")
    assert res.code == 0, res.err


# ------------------------------------------------------------------------- default set
def test_default_detectors(cancer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from poisonguard.detectors import DEFAULT_DETECTORS, DETECTORS

    res = _scan(capsys, str(cancer), "--out", str(tmp_path), "-q")
    assert res.code == 0, res.err
    report = json.loads((tmp_path / "report.json").read_text())["summary"]
    ran = set(report["detectors"]) | set(report["skipped"])
    assert ran == {n for n in DEFAULT_DETECTORS if n in DETECTORS and n != "validation"}
    header = (tmp_path / "scores.csv").read_text().splitlines()[0].split(",")
    assert header == ["row_id", "score", "flagged", "reason", "top_detector", *report["detectors"]]


# ---------------------------------------------------------------------------- progress
def test_progress_goes_to_stderr_only(cancer: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    res = _scan(capsys, str(cancer), *FAST, "--out", str(tmp_path))
    assert res.code == 0, res.err
    assert not any(PROGRESS_LINE.search(line) for line in res.out.splitlines())
    assert all(PROGRESS_LINE.search(line) for line in res.err.splitlines())
    res = _scan(capsys, str(cancer), *FAST, "--out", str(tmp_path / "again"), "--quiet")
    assert res.code == 0 and res.err == ""


def test_steps_report_plain_lines_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with Steps(min_seconds=0.0) as steps:
        steps("first")
        steps("second")
    assert re.fullmatch(r"first: \d+\.\d s\nsecond: \d+\.\d s\n", capsys.readouterr().err)
    with Steps(min_seconds=60.0) as steps:
        steps("short")
    with Steps(quiet=True, min_seconds=0.0) as steps:
        steps("quiet")
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- bad input
def _bad(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Path, *argv: str) -> str:
    """Run a scan that must fail: exit 2, one ``error:`` line, inputs untouched, nothing written."""
    before = data.read_bytes() if data.is_file() else None
    out = tmp_path / "out"
    res = _scan(capsys, str(data), "--out", str(out), *argv)
    assert res.code == 2, res.err
    assert res.out == ""
    assert len(res.err.splitlines()) == 1 and res.err.startswith("error: "), res.err
    assert not out.exists()
    if before is not None:
        assert data.read_bytes() == before
    return res.err.rstrip("\n")


@pytest.mark.parametrize(("argv", "message"), [
    (["--budget", "0"], "error: --budget must be > 0 (got 0)"),
    (["--budget", "-1"], "error: --budget must be > 0 (got -1)"),
    (["--budget", "abc"], "error: --budget must be a row count (e.g. 10) or a fraction in (0, 1) "
                          "(got 'abc')"),
    (["--budget", "2.5"], "error: --budget of 1 or more must be a whole number of rows (got 2.5)"),
    (["--fail-on", "2"], "error: --fail-on must be a fraction in [0, 1] (got 2)"),
    (["--fail-on", "-0.1"], "error: --fail-on must be a fraction in [0, 1] (got -0.1)"),
    (["--detectors", "label,nope"], "error: --detectors: unknown detector 'nope'; known: "),
    (["--detectors", ","], "error: --detectors names no detector (got ',')"),
    (["--write-clean", "clean.txt"], "error: clean.txt: unknown file extension '.txt'"),
])
def test_bad_options(cancer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                     argv: list[str], message: str) -> None:
    assert _bad(tmp_path, capsys, cancer, *argv).startswith(message)


def test_budget_over_the_row_count(cancer: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    line = _bad(tmp_path, capsys, cancer, "--budget", "301")
    assert line == f"error: --budget of 301 rows exceeds the 300 rows of {cancer}"


def test_unknown_model_and_embedder(cancer: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert "'model'" in _bad(tmp_path, capsys, cancer, "--model", "forest")
    assert "'embedder'" in _bad(tmp_path, capsys, cancer, "--embedder", "bert")


def test_missing_label_column(cancer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _bad(tmp_path, capsys, cancer, "--label", "diagnosis")
    assert line.startswith(f"error: {cancer}: no label column 'diagnosis' (set --label); columns are: ")


@pytest.mark.parametrize("name", ["data.csv", "data.npz"])
def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    data = tmp_path / name
    data.write_bytes(b"")
    assert _bad(tmp_path, capsys, data) == f"error: {data}: file is empty"


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "nope.csv"
    assert _bad(tmp_path, capsys, data) == f"error: {data}: no such file"


def test_reference_with_other_columns(cancer: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    ref = tmp_path / "ref.csv"
    pd.read_csv(cancer).rename(columns={"mean radius": "radius"}).to_csv(ref, index=False)
    line = _bad(tmp_path, capsys, cancer, "--reference", str(ref))
    assert line == (f"error: --reference {ref}: its columns differ from {cancer}'s (missing "
                    "'mean radius'; unexpected 'radius')")


def test_reference_of_another_modality(cancer: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    ref = tmp_path / "ref.npz"
    io.save(load_dataset("digits", n_rows=50, random_state=0), ref)
    line = _bad(tmp_path, capsys, cancer, "--reference", str(ref))
    assert line == f"error: --reference {ref}: image data, but {cancer} is tabular data"


def test_write_clean_refuses_the_input(cancer: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    same = Path(os.path.relpath(cancer))
    line = _bad(tmp_path, capsys, cancer, "--write-clean", str(same))
    assert line == (f"error: --write-clean {same}: output would overwrite the input {cancer}; "
                    "choose another output path")


def test_write_clean_images_to_csv(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "digits.npz"
    io.save(load_dataset("digits", n_rows=50, random_state=0), data)
    line = _bad(tmp_path, capsys, data, "--write-clean", str(tmp_path / "clean.csv"))
    assert line == f"error: --write-clean {tmp_path / 'clean.csv'}: image data can only be saved as .npz"


def test_out_is_a_file(cancer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.write_text("x")
    res = _scan(capsys, str(cancer), "--out", str(out))
    assert res.code == 2 and res.err == f"error: --out {out}: is a file, expected a directory\n"


# --------------------------------------------------------------------------- catalog
def test_catalog_json_covers_every_family(capsys: pytest.CaptureFixture[str]) -> None:
    from poisonguard.attacks import ATTACKS
    from poisonguard.detectors import DETECTORS

    assert main(["catalog", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    families = {f["family"]: f for f in doc["families"]}
    assert set(families) == {cls.family for cls in ATTACKS.values()}
    for name, cls in ATTACKS.items():
        assert {"name": name, "summary": cls.summary, "data": list(cls.modalities)} in families[
            cls.family]["attacks"]
    for name, det in DETECTORS.items():
        for family in det.answers:
            if family in families:
                assert name in [d["name"] for d in families[family]["detectors"]]
    for entry in families.values():
        assert entry["goal"] and entry["scope"] and entry["stealth"] and entry["needs"]
        assert entry["papers"]


def test_catalog_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    for word in ("backdoor", "availability", "targeted", "subpopulation", "goal", "stealth",
                 "attacker needs", "BadNets", "clean-label-backdoor"):
        assert word in out


# ------------------------------------------------------------------------------ demo
def test_demo_prints_both_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "-q"]) == 0  # about 15 s on two busy cores
    out = capsys.readouterr().out
    for word in ("detection:", "AUROC", "avg precision", "F1", "all poison", "backdoor (patch)",
                 "label flips", "clean data", "poisoned data", "cleaned by scan",
                 "clean accuracy", "backdoor success"):
        assert word in out
    assert (tmp_path / "scores.csv").exists()
    doc = json.loads((tmp_path / "demo.json").read_text())
    detection, victims = (t["rows"] for t in doc["tables"])
    assert doc["seed"] == 0 and [r["poison"] for r in detection] == [
        "all poison", "backdoor (patch)", "label flips"]
    flips, backdoor = detection[2], detection[1]
    assert flips["recall"] >= 0.9 and flips["precision"] >= 0.9  # measured 0.952 / 0.952
    # the backdoor's rows are ranked first (measured AUROC 0.996) but none crosses the flagging
    # rule (docs/decisions.md, "The demo's backdoor"): cleaning keeps the backdoor
    assert backdoor["AUROC"] >= 0.95
    by_data = {r["trained on"]: r for r in victims}
    assert by_data["poisoned data"]["backdoor success"] >= 0.8
    assert by_data["cleaned by scan"]["clean accuracy"] >= by_data["poisoned data"]["clean accuracy"]
    assert all(str(v)[::-1].find(".") <= 3 for r in victims for v in r.values()
               if isinstance(v, float))  # one format: at most 3 decimals
    html = (tmp_path / "report.html").read_text()
    assert doc["tables"][0]["title"] in html and "cleaned by scan" in html
    assert "next: poisonguard" in out


def test_demo_says_what_it_does_first(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def stop(*args: object, **kwargs: object) -> None:
        raise InputError("stopped after the introduction")

    monkeypatch.setattr("poisonguard.datasets.load_dataset", stop)
    assert main(["demo", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("demo: plants a 5 % patch backdoor") and "about a minute" in err


def test_demo_detection_rows_score_each_attack_against_clean_rows() -> None:
    from types import SimpleNamespace

    from poisonguard.cli.scan import _detection_rows

    a = np.array([True, True, False, False, False, False])
    b = np.array([False, False, True, True, False, False])
    report = SimpleNamespace(scores=np.array([0.9, 0.8, 0.3, 0.7, 0.1, 0.2]),
                             flagged=np.array([True, True, False, True, False, False]))
    rows = {r["poison"]: r for r in _detection_rows(report, {"a": a, "b": b})}  # type: ignore[arg-type]
    assert rows["all poison"]["rows"] == 4 and rows["all poison"]["precision"] == 1.0
    assert rows["all poison"]["recall"] == 0.75
    assert rows["a"]["AUROC"] == 1.0 and rows["a"]["recall"] == 1.0 and rows["a"]["precision"] == 1.0
    assert rows["b"]["recall"] == 0.5 and rows["b"]["precision"] == 1.0  # a's rows left out
    assert rows["b"]["AUROC"] == 1.0


# ----------------------------------------------------------------------------- self-test
def test_self_test_reports_each_family_and_never_leaks_canaries(
        cancer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, clean = tmp_path / "out", tmp_path / "clean.csv"
    run = _scan(capsys, str(cancer), "--id-col", "patient", "--self-test", "--out", str(out),
                "--write-clean", str(clean), "-q")
    assert run.code == 0, run.err
    assert "self-test" in run.out and "class-pair flips" in run.out
    report = json.loads((out / "report.json").read_text())
    families = {f["family"]: f for f in report["self_test"]["families"]}
    assert list(families) == ["random flips", "class-pair flips", "backdoor", "subpopulation"]
    for row in families.values():
        assert row["planted"] >= 4 and row["skipped"] == ""
        assert 0.0 <= row["recall"] <= 1.0 and 0.0 <= row["auroc"] <= 1.0
    # measured on these 300 rows at 2 %: AUROC 0.978-0.995 per family, 2.5 % of clean rows flagged
    assert min(f["auroc"] for f in families.values()) >= 0.85
    assert report["self_test"]["false_positive_rate"] <= 0.05
    # the user's own outputs hold the user's rows only: same ids, nothing planted
    scores = pd.read_csv(out / "scores.csv", keep_default_na=False)
    original = pd.read_csv(cancer)
    assert list(scores["row_id"]) == list(original["patient"])
    kept = pd.read_csv(clean)
    assert set(kept["patient"]) <= set(original["patient"])
    assert len(kept) == len(original) - int(scores["flagged"].sum())
    assert "Self-test" in (out / "report.html").read_text()


def test_self_test_rate_out_of_range_is_one_line(
        cancer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _scan(capsys, str(cancer), "--self-test", "--self-test-rate", "0.5", "--out",
                str(tmp_path / "o"))
    assert run.code == 2
    assert "--self-test-rate must be in (0, 0.2]" in run.err and "Traceback" not in run.err


def test_sampled_scan_from_the_command_line_records_its_regime(
        cancer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _scan(capsys, str(cancer), *FAST, "--sample-rows", "120", "--out", str(tmp_path / "o"))
    assert run.code == 0, run.err
    regime = json.loads((tmp_path / "o" / "report.json").read_text())["summary"]["regime"]
    assert regime["sampled"] and regime["rows"] == 300 and regime["engine"] == "local"
    assert 120 <= regime["fitted_rows"] < 300  # at least 50 rows of each class
    scores = pd.read_csv(tmp_path / "o" / "scores.csv", keep_default_na=False)
    assert len(scores) == 300 and scores["score"].between(0, 1).all()


@pytest.mark.parametrize(("argv", "message"), [
    (["--engine", "spark"], "--engine must be one of local, dask (got 'spark')"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler tcp://127.0.0.1:1: a scheduler is only "
                                           "used with --engine dask"),
])
def test_bad_engine_is_one_line_before_any_work(cancer: Path, tmp_path: Path, argv: list[str],
                                                message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run = _scan(capsys, str(cancer), *argv, "--out", str(tmp_path / "o"))
    assert run.code == 2
    assert run.err == f"error: {message}\n"
    assert not (tmp_path / "o").exists()
