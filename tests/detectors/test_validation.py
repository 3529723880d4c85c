"""``validation``: rules learned from a trusted reference, with messages naming the rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from poisonguard import Dataset
from poisonguard.attacks import get_attack
from poisonguard.datasets import load_dataset, make_text
from poisonguard.detectors import get_detector
from poisonguard.detectors.validation import Validation, check_rules, default_tolerance
from poisonguard.evaluation.metrics import detection_metrics, split
from poisonguard.evidence import Evidence

RNG = np.random.default_rng(0)
PEOPLE = pd.DataFrame({"age": RNG.integers(18, 91, 100), "income": RNG.normal(50.0, 10.0, 100),
                       "city": RNG.choice(["Oslo", "Rome", "Lima"], 100)})
PEOPLE.loc[0, "age"], PEOPLE.loc[1, "age"] = 18, 90
REFERENCE = Dataset(PEOPLE, RNG.choice(["ham", "spam"], 100))


def _one_row(tolerance: float | None = None, **changes: object) -> tuple[float, str]:
    """Score and reason of a copy of the reference's row 2 with ``changes``."""
    row = PEOPLE.iloc[[2]].reset_index(drop=True)
    label = changes.pop("label", "ham")
    for col, value in changes.items():
        row[col] = [value]
    data = Dataset(pd.concat([row, PEOPLE.iloc[[3]]], ignore_index=True), [label, "ham"])
    ev = Evidence(data, reference=REFERENCE)
    det = Validation(tolerance=tolerance)
    scores = det.suspicion(ev)
    assert scores[1] == 0.0
    return float(scores[0]), det.explain(ev, np.array([0]))[0]


def test_rows_like_the_reference_break_nothing() -> None:
    assert _one_row() == (0.0, "breaks no rule learned from the reference")
    for ds in (REFERENCE, load_dataset("digits", n_rows=200), make_text(n_rows=100)):
        assert not Validation().suspicion(Evidence(ds, reference=ds)).any()


def test_rule_messages() -> None:
    assert _one_row(age=212) == (1.0, "column 'age' = 212 outside the reference range [18, 90]")
    assert _one_row(label="spam2") == (1.0, "label 'spam2' not in the reference labels (ham, spam)")
    assert _one_row(age=40.5) == (1.0, "column 'age' = 40.5 is not a whole number (the reference "
                                       "has only whole numbers)")
    assert _one_row(city="Paris") == (1.0, "column 'city' = 'Paris' not among the reference "
                                           "categories (Lima, Oslo, Rome)")
    assert _one_row(age=300, city="Paris")[1] == (
        "column 'age' = 300 outside the reference range [18, 90] (and 1 more rule)")
    assert _one_row(age="old")[1] == "column 'age' = 'old' is not a number (the reference column " \
                                     "is int64)"


def test_ranges_are_widened_by_the_tolerance() -> None:
    assert default_tolerance(100) == pytest.approx(0.3)
    assert _one_row(age=100)[0] == 0.0  # 90 + 0.3 * 72 = 111.6
    assert _one_row(tolerance=0.1, age=100)[0] == 1.0
    data = Dataset(np.array([[5.0, 1.0], [5.0, 2.0]]), [0, 1])
    ref = Dataset(np.array([[5.0, 1.0], [5.0, 3.0]]), [0, 1])
    rules = check_rules(ref, data.replace(X=np.array([[5.0, 2.0], [5.001, 2.0]])))
    assert np.flatnonzero(np.any([r.broken for r in rules], axis=0)).tolist() == [1]  # constant


def test_schema_changes_break_every_row() -> None:
    data = Dataset(PEOPLE.rename(columns={"city": "town"}), REFERENCE.y)
    ev = Evidence(data, reference=REFERENCE)
    assert Validation().suspicion(ev).all()
    assert Validation().explain(ev, np.array([0])) == [
        "column 'city' of the reference is missing (and 1 more rule)"]


def test_images_shape_range_and_pixelwise() -> None:
    digits = load_dataset("digits", n_rows=400, random_state=0)
    ref, data = digits.take(np.arange(200)), digits.take(np.arange(200, 400))
    X = data.X.copy()
    X[0, 0, 0] = 16.0  # a corner pixel that is blank in every reference image
    X[1, 3, 3] = 7.5
    X[2, 4, 4] = 40.0
    ev = Evidence(data.replace(X=X), reference=ref)
    det = Validation()
    scores = det.suspicion(ev)
    assert scores[:3].tolist() == [1.0, 1.0, 1.0]
    assert scores[3:].sum() <= 6  # measured: 4 of 197 clean images break a pixel range
    assert det.explain(ev, np.arange(3)) == [
        "pixel (0, 0) = 16 outside its reference range [0, 0]",
        "pixel (3, 3) = 7.5 is not a whole number (the reference has only whole numbers)",
        "pixel (4, 4) = 40 outside the reference range [0, 16] (and 1 more rule)"]
    assert not Validation(pixelwise=False).suspicion(ev)[0]
    small = Evidence(Dataset(np.zeros((3, 4, 4)), [0, 1, 0]), reference=ref)
    assert det.explain(small, np.array([0])) == [
        "image shape (4, 4) differs from the reference shape (8, 8)"]


def test_text_length_and_unusual_characters() -> None:
    ref = make_text(n_rows=100, random_state=0)
    longest = max(len(t) for t in ref.X)
    texts = [str(ref.X[0]).replace(" ", " \u200b", 1), "x" * (3 * longest), str(ref.X[1]) + "~"]
    ev = Evidence(Dataset(np.array(texts), ref.y[:3]), reference=ref)
    det = Validation()
    assert det.suspicion(ev).tolist() == [1.0, 1.0, 0.0]  # unseen ASCII is ordinary
    reasons = det.explain(ev, np.arange(2))
    assert reasons[0] == "characters not in the reference: '\\u200b'"
    assert reasons[1].startswith(f"text of {3 * longest} characters outside the reference length")


def test_catches_a_feature_backdoor_against_a_clean_reference() -> None:
    ref, data = split(load_dataset("wine"), test_size=0.5, random_state=0)
    res = get_attack("backdoor")(rate=0.05).poison(data, rng=np.random.default_rng(0))
    scores = Validation().suspicion(Evidence(res.dataset, reference=ref))
    m = detection_metrics(res.mask, scores, scores >= 0.5)
    assert m["recall"] == 1.0 and m["fpr"] <= 0.05  # measured: recall 1.0, fpr 0.0


def test_needs_a_reference_of_the_same_modality() -> None:
    det = get_detector("validation")
    assert det.needs_reference and det.calibration == "probability"
    assert det.applies(Evidence(REFERENCE)) == "needs a trusted reference (--reference)"
    text = make_text(n_rows=50)
    assert det.applies(Evidence(text, reference=REFERENCE)) == (
        "the reference is tabular data, the scanned data text")


def test_a_missing_value_breaks_a_rule_only_where_the_reference_has_none() -> None:
    holes = PEOPLE.astype({"income": "float64"}).copy()
    holes.loc[5, "income"] = np.nan
    reference = Dataset(holes, REFERENCE.y)
    data = PEOPLE.iloc[:4].astype({"income": "float64", "age": "float64"}).copy()
    data.loc[1, "income"] = np.nan  # the reference has missing incomes: fine
    data.loc[2, "age"] = np.nan  # the reference has every age: a broken rule
    data["city"] = data["city"].astype(object)
    data.loc[3, "city"] = None  # no missing city in the reference either
    ev = Evidence(Dataset(data, ["ham"] * 4), reference=reference)
    assert Validation().suspicion(ev).tolist() == [0.0, 0.0, 1.0, 1.0]
    assert Validation().explain(ev, np.array([2, 3])) == [
        "column 'age' is missing a value (the reference has none missing)",
        "column 'city' = '<missing>' not among the reference categories (Lima, Oslo, Rome)"]


def test_the_rules_score_rows_the_evidence_never_saw() -> None:
    """The state is the reference's rules alone: a chunk outside the fitted rows is checked row by
    row, with the same answer for a row wherever it is scored, after a pickle round trip."""
    import pickle

    fitted = Dataset(PEOPLE.iloc[10:20].reset_index(drop=True), ["ham"] * 10)
    ev = Evidence(fitted, reference=REFERENCE)
    det = Validation()
    state = pickle.loads(pickle.dumps(det.fit(ev)))
    chunk = PEOPLE.iloc[[2, 3, 4, 5]].reset_index(drop=True)
    chunk.loc[0, "age"] = 212
    chunk.loc[2, "city"] = "Paris"
    chunk.loc[2, "income"] = 500.0  # two rules at once
    data = Dataset(chunk, ["ham", "spam", "ham", "eggs"])
    view = ev.view(data)
    scores = det.score(view, state)
    assert scores.suspicion.tolist() == [1.0, 0.0, 1.0, 1.0]
    assert det.reasons(view, scores, np.arange(4)) == [
        "column 'age' = 212 outside the reference range [18, 90]",
        "breaks no rule learned from the reference",
        "column 'income' = 500 outside the reference range "
        f"[{PEOPLE['income'].min():.6g}, {PEOPLE['income'].max():.6g}] (and 1 more rule)",
        "label 'eggs' not in the reference labels (ham, spam)"]
    # the same rows as the fitted rows of another evidence: the same scores
    alone = Evidence(data, reference=REFERENCE)
    np.testing.assert_array_equal(det.suspicion(alone), scores.suspicion)
