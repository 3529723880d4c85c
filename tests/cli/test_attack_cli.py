"""The attack CLI: files, formats, ground truth, triggers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard import io
from poisonguard.cli import main
from poisonguard.datasets import load_dataset


@pytest.fixture()
def cancer_csv(tmp_path: Path) -> Path:
    ds = load_dataset("breast_cancer")
    frame = ds.frame().assign(label=ds.y, patient=[f"p{i:03d}" for i in range(ds.n_rows)])
    path = tmp_path / "cancer.csv"
    frame.to_csv(path, index=False)
    return path


def test_attacks_lists_every_family(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attacks"]) == 0
    out = capsys.readouterr().out
    for name in ("label-flip", "subpopulation", "backdoor", "clean-label-backdoor",
                 "feature-collision", "availability"):
        assert name in out


def test_label_flip_writes_poisoned_csv_and_truth(cancer_csv: Path, tmp_path: Path) -> None:
    before = cancer_csv.read_bytes()
    out, truth = tmp_path / "p.csv", tmp_path / "truth.csv"
    code = main(["attack", str(cancer_csv), "--attack", "label-flip", "--strategy", "class",
                 "--source-class", "1", "--target-class", "0", "--count", "25", "--id-col",
                 "patient", "--seed", "3", "--out", str(out), "--truth", str(truth)])
    assert code == 0
    assert cancer_csv.read_bytes() == before
    original, poisoned = pd.read_csv(cancer_csv), pd.read_csv(out)
    assert list(poisoned.columns) == list(original.columns)
    t = pd.read_csv(truth)
    assert list(t.columns) == ["row_id", "poisoned", "source_index"]
    assert t["poisoned"].sum() == 25
    flipped = poisoned[t["poisoned"].to_numpy() == 1]
    assert (flipped["label"] == 0).all()
    assert (original.loc[t["source_index"][t["poisoned"] == 1], "label"] == 1).all()
    assert t["row_id"].tolist() == poisoned["patient"].tolist()


def test_same_seed_gives_the_same_bytes(cancer_csv: Path, tmp_path: Path) -> None:
    outs = []
    for k in range(2):
        out = tmp_path / f"p{k}.parquet"
        assert main(["attack", str(cancer_csv), "--attack", "availability", "--rate", "0.05",
                     "--seed", "11", "--out", str(out), "--truth", str(tmp_path / f"t{k}.csv")]) == 0
        outs.append(pd.read_parquet(out))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    assert (tmp_path / "t0.csv").read_bytes() == (tmp_path / "t1.csv").read_bytes()


def test_backdoor_trigger_round_trip_on_images(tmp_path: Path) -> None:
    data, out, trig = tmp_path / "digits.npz", tmp_path / "p.npz", tmp_path / "trigger.json"
    assert main(["datasets", "export", "digits", "--out", str(data)]) == 0
    assert main(["attack", str(data), "--attack", "backdoor", "--trigger", "patch", "--trigger-size",
                 "3", "--target-class", "7", "--rate", "0.05", "--out", str(out),
                 "--save-trigger", str(trig)]) == 0
    spec = json.loads(trig.read_text())
    assert spec["kind"] == "patch" and spec["size"] == 3 and spec["target_class"] == 7
    assert spec["value"] == 16.0  # adapts to the data's maximum
    poisoned = io.load(out)
    truth = pd.read_csv(tmp_path / "p.truth.csv")
    rows = truth["poisoned"].to_numpy() == 1
    assert rows.sum() == 90 and (poisoned.y[rows] == 7).all()
    stamped = tmp_path / "stamped.npz"
    assert main(["trigger", "apply", str(trig), str(data), "--out", str(stamped)]) == 0
    X = io.load(stamped).X
    r, c = spec["row"], spec["col"]
    assert (X[:, r:r + 3, c:c + 3] == 16.0).all()
    assert np.array_equal(io.load(stamped).y, io.load(data).y)


def test_token_backdoor_on_text(tmp_path: Path) -> None:
    data = tmp_path / "reviews.csv"
    assert main(["datasets", "export", "synthetic_text", "--out", str(data)]) == 0
    out, trig = tmp_path / "p.csv", tmp_path / "t.json"
    assert main(["attack", str(data), "--attack", "backdoor", "--trigger", "token", "--token",
                 "zq", "--target-class", "pos", "--count", "12", "--out", str(out),
                 "--save-trigger", str(trig)]) == 0
    poisoned = pd.read_csv(out)
    truth = pd.read_csv(tmp_path / "p.truth.csv")
    hit = poisoned[truth["poisoned"].to_numpy() == 1]
    assert len(hit) == 12 and (hit["label"] == "pos").all()
    assert hit["text"].str.split().apply(lambda words: "zq" in words).all()


@pytest.mark.parametrize("attack", ["feature-collision", "gradient-matching"])
def test_a_targeted_attack_takes_the_target_row_out(cancer_csv: Path, tmp_path: Path, attack: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    if attack == "gradient-matching":
        pytest.importorskip("torch")
    out = tmp_path / "p.csv"
    assert main(["attack", str(cancer_csv), "--attack", attack, "--id-col", "patient",
                 "--target-row", "p010", "--target-class", "1", "--count", "5",
                 "--out", str(out)]) == 0
    poisoned = pd.read_csv(out)
    assert len(poisoned) == 568 and "p010" not in set(poisoned["patient"])
    truth = pd.read_csv(tmp_path / "p.truth.csv")
    assert truth["poisoned"].sum() == 5
    assert 10 not in set(truth["source_index"])  # indices refer to rows of the input file
    rows = poisoned[truth["poisoned"].to_numpy() == 1]
    assert (rows["label"] == 1).all()  # clean-label: the poisons are rows of the attacker's class
    assert "p010" in capsys.readouterr().err


def test_target_row_is_for_targeted_attacks(cancer_csv: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["attack", str(cancer_csv), "--attack", "label-flip", "--id-col", "patient",
                 "--target-row", "p010", "--count", "5", "--out", str(tmp_path / "p.csv")]) == 2
    assert "for the targeted attacks: feature-collision, gradient-matching" in capsys.readouterr().err


def test_subpopulation_where_filter(cancer_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    assert main(["attack", str(cancer_csv), "--attack", "subpopulation", "--where",
                 "`mean radius` > 17", "--rate", "0.05", "--out", str(out)]) == 0
    poisoned, truth = pd.read_csv(out), pd.read_csv(tmp_path / "p.truth.csv")
    injected = poisoned[truth["poisoned"].to_numpy() == 1]
    assert len(injected) == 28 and (injected["mean radius"] > 17).all()


def test_python_dash_m_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "poisonguard", "attacks"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0 and "backdoor" in proc.stdout


def test_redteam_writes_table_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rt"
    assert main(["redteam", "digits", "--attacks", "backdoor,label-flip", "--budgets", "0.05",
                 "--out", str(out)]) == 0
    table = pd.read_csv(out / "redteam.csv")
    assert set(table["attack"]) == {"backdoor", "label-flip"}
    patch = table[(table["attack"] == "backdoor") & (table["variant"] == "patch")].iloc[0]
    assert patch["attack_success"] >= 0.9 and patch["clean_accuracy"] >= 0.9
    for name in ("redteam.md", "redteam.json", "accuracy.png", "success.png", "subgroups.png"):
        assert (out / name).stat().st_size > 0
    printed = capsys.readouterr().out
    assert "red team: digits" in printed and "nan" not in printed
    assert "the rise in test error (below 0: the poisoned model happened to do better)" in printed
    assert f"{patch['attack_success']:.3f}" in printed  # three decimals, as in redteam.md
    assert main(["redteam", "digits", "--budgets", "half", "--out", str(out)]) == 2
