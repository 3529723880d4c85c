"""poisonguard.evaluation.redteam: the red-team runner, its table, files and plots."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

import poisonguard.evaluation as pge
from poisonguard.attacks import LabelFlip, Subpopulation
from poisonguard.datasets import load_dataset
from poisonguard.errors import InputError
from poisonguard.evaluation import evaluate_attack, run_redteam, split

COLUMNS = ["attack", "variant", "budget", "n_poisoned", "clean_accuracy", "poisoned_accuracy",
           "attack_success", "clean_group_accuracy", "group_accuracy", "clean_rest_accuracy",
           "rest_accuracy", "group_rows", "seconds", "note"]
FILES = ["redteam.csv", "redteam.md", "redteam.json", "accuracy.png", "success.png",
         "subgroups.png"]


@pytest.fixture(scope="module")
def digits_report():
    ds = load_dataset("digits", n_rows=900, random_state=0)
    return run_redteam(ds, budgets=(0.05, 0.1), attacks=("backdoor", "label-flip", "subpopulation"),
                       seed=0)


def test_all_is_sorted_and_public():
    assert pge.__all__ == sorted(pge.__all__)
    assert all(hasattr(pge, name) for name in pge.__all__)


def test_redteam_table_rows_and_numbers(digits_report):
    t = digits_report.table
    assert list(t.columns) == COLUMNS
    variants = t[["attack", "variant"]].drop_duplicates().values.tolist()
    assert variants == [["backdoor", "patch"], ["backdoor", "blend"], ["label-flip", "random"],
                        ["label-flip", "class"], ["label-flip", "greedy"],
                        ["subpopulation", "cluster"]]
    assert len(t) == 12 and sorted(set(t["budget"])) == [0.05, 0.1]
    assert (t["note"] == "").all()
    assert t["n_poisoned"].tolist()[:2] == [32, 63]  # round(budget * 630 training rows)
    assert (t["clean_accuracy"] > 0.9).all()
    patch = t[(t["variant"] == "patch")].set_index("budget")
    assert patch.loc[0.1, "attack_success"] > 0.9
    assert (patch["clean_accuracy"] - patch["poisoned_accuracy"] < 0.03).all()
    flips = t[t["attack"] == "label-flip"].set_index(["variant", "budget"])
    assert flips.loc[("greedy", 0.1), "attack_success"] > flips.loc[("random", 0.1), "attack_success"]
    sub = t[t["attack"] == "subpopulation"]
    assert sub["group_accuracy"].notna().all() and (sub["group_rows"] > 0).all()
    assert t.loc[t["attack"] != "subpopulation", "group_accuracy"].isna().all()
    assert (sub["clean_group_accuracy"] - sub["group_accuracy"]).max() >= 0.3
    assert (sub["clean_rest_accuracy"] - sub["rest_accuracy"]).max() <= 0.03


def test_redteam_is_seeded(digits_report):
    ds = load_dataset("digits", n_rows=900, random_state=0)
    again = run_redteam(ds, budgets=(0.1,), attacks=("backdoor",), seed=0).table
    mine = digits_report.table[(digits_report.table["attack"] == "backdoor")
                               & (digits_report.table["budget"] == 0.1)]
    pd.testing.assert_frame_equal(again.drop(columns="seconds"),
                                  mine.drop(columns="seconds").reset_index(drop=True))


def test_write_files(digits_report, tmp_path):
    paths = digits_report.write(tmp_path / "out")
    assert [p.name for p in paths] == FILES
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files
    csv = pd.read_csv(tmp_path / "out" / "redteam.csv", keep_default_na=False, na_values=[""])
    assert list(csv.columns) == COLUMNS and len(csv) == 12
    doc = json.loads((tmp_path / "out" / "redteam.json").read_text())
    assert (doc["dataset"], doc["model"], doc["seed"], len(doc["rows"])) == ("digits", "logreg", 0, 12)
    assert doc["rows"][0]["group_accuracy"] is None
    md = (tmp_path / "out" / "redteam.md").read_text().splitlines()
    assert md[0] == "# Red team: digits (logreg, seed 0)" and len(md) == 2 + 2 + 12
    for p in paths[3:]:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = digits_report.write(tmp_path / "again")
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (*paths[3:], *again[3:])]
    assert digest[:3] == digest[3:]  # plots are byte-for-byte reproducible


def test_text_data_skips_crafting_attacks(tmp_path):
    report = run_redteam(load_dataset("synthetic_text", n_rows=200), budgets=(0.1,), seed=0)
    t = report.table
    assert set(t["attack"]) == {"backdoor", "clean-label-backdoor", "label-flip", "subpopulation"}
    assert t.loc[t["attack"] == "backdoor", "variant"].tolist() == ["token"]
    assert (t["clean_accuracy"] > 0.8).all()
    report.write(tmp_path)
    assert (tmp_path / "subgroups.png").is_file()


def test_feature_collision_and_impossible_budgets():
    ds = load_dataset("iris")
    t = run_redteam(ds, budgets=(0.1, 0.5), attacks=["feature-collision", "clean-label-backdoor"],
                    n_targets=2).table
    assert t["variant"].tolist()[:2] == ["2 targets", "2 targets"]
    fc = t[t["attack"] == "feature-collision"].set_index("budget")
    assert 0.0 <= fc.loc[0.1, "attack_success"] <= 1.0 and fc.loc[0.1, "n_poisoned"] == 10
    # half of the training rows cannot come from one class of three: a row says so
    for attack in ("feature-collision", "clean-label-backdoor"):
        row = t[(t["attack"] == attack) & (t["budget"] == 0.5)].iloc[0]
        assert "impossible" in row["note"] and np.isnan(row["attack_success"])


def test_evaluate_attack_with_a_where_group():
    train, test = split(load_dataset("iris"), random_state=0)
    attack = Subpopulation(count=30, where="label == 2 and `petal length (cm)` > 5.5")
    out = evaluate_attack(attack, train, test)
    assert out.group_rows == int(((test.y == 2) & (test.X[:, 2] > 5.5)).sum()) > 0
    assert out.group_accuracy < out.clean_group_accuracy
    assert out.attack_success == pytest.approx(1 - out.group_accuracy)
    flip = evaluate_attack(LabelFlip(count=20, strategy="greedy"), train, test, seed=3)
    assert flip.budget == pytest.approx(20 / train.n_rows) and flip.n_poisoned == 20
    assert flip.attack_success == pytest.approx(flip.clean_accuracy - flip.poisoned_accuracy)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"budgets": ()}, "at least one"),
    ({"budgets": (0.0,)}, "fraction in"),
    ({"budgets": (1.5,)}, "fraction in"),
    ({"attacks": ["nope"]}, "unknown attack 'nope'"),
    ({"n_targets": 0}, "'n_targets'"),
    ({"model": "cnn"}, "model 'cnn' needs image data"),
])
def test_bad_arguments_name_the_parameter(kwargs, match):
    with pytest.raises(InputError, match=match):
        run_redteam(load_dataset("iris"), **kwargs)


def test_inapplicable_attack_is_refused():
    with pytest.raises(InputError, match="feature-collision"):
        run_redteam(load_dataset("synthetic_text", n_rows=60), attacks=["feature-collision"])
