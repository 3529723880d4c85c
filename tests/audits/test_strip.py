"""STRIP: triggered inputs keep their low entropy under superimposition; the filter rejects
them at a 1 % false rejection of clean inputs, and the audit says a model is backdoored when
its inputs carry the trigger."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from conftest import TARGET
from poisonguard.audits import AUDITS, Strip, StripFilter, get_audit
from poisonguard.audits import strip as strip_module
from poisonguard.audits._zoo import ZooCase
from poisonguard.errors import InputError


def others(case: ZooCase) -> np.ndarray:
    X: np.ndarray = np.asarray(case.test.X)[case.test.y != case.target]
    return X


def test_registered() -> None:
    assert AUDITS.get("strip") is Strip
    assert isinstance(get_audit("strip", n_overlays=5), Strip)


def test_filter_flags_triggered_inputs_at_one_percent_frr(digits_backdoored: ZooCase) -> None:
    fitted = Strip().fit(digits_backdoored.model, digits_backdoored.clean, frr=0.01,
                         rng=np.random.default_rng(0))
    assert isinstance(fitted, StripFilter) and fitted.frr == 0.01
    X = others(digits_backdoored)
    clean = fitted.filter(X, rng=np.random.default_rng(1))
    triggered = fitted.filter(digits_backdoored.trigger.apply(X), rng=np.random.default_rng(2))
    assert clean.entropy.shape == clean.flagged.shape == (len(X),)
    assert ((clean.entropy >= 0) & (clean.entropy <= 1)).all()
    # measured: 1.0 % of clean test inputs and 100 % of triggered ones flagged
    assert clean.flagged.mean() <= 0.03
    assert triggered.flagged.mean() >= 0.95
    assert np.median(triggered.entropy) < np.median(clean.entropy)


@pytest.mark.parametrize(("superposition", "floor"), [("strongest", 0.95), ("add", 0.95),
                                                      ("blend", 0.5)])
def test_a_trigger_at_full_strength_is_caught_more_often(digits_backdoored: ZooCase,
                                                         superposition: str, floor: float) -> None:
    """The 50 / 50 blend halves the patch; keeping the stronger pixel (or adding) keeps it
    (measured: 100 %, 98 %, 70 % of triggered inputs flagged at 1 % false rejection)."""
    fitted = Strip(superposition=superposition).fit(
        digits_backdoored.model, digits_backdoored.clean, frr=0.01, rng=np.random.default_rng(0))
    X = digits_backdoored.trigger.apply(others(digits_backdoored))
    assert fitted.filter(X, rng=np.random.default_rng(2)).flagged.mean() >= floor


def test_strongest_superposition_keeps_the_pixel_furthest_from_the_background() -> None:
    dark = np.zeros((2, 4, 4))
    dark[0, 0, 0] = 16.0  # a bright trigger pixel on a dark image
    overlay = np.full((1, 4, 4), 3.0)
    out = strip_module.superimpose(dark[0], overlay, "image", weight=0.5, share=0.5,
                                   rng=np.random.default_rng(0),
                                   pixels=strip_module.Pixels.of(dark))
    assert out[0, 0, 0] == 16.0 and out[0, 1, 1] == 3.0
    bright = np.full((4, 4), 255.0)
    bright[0, 0] = 0.0  # a dark trigger pixel on a bright image
    out = strip_module.superimpose(bright, np.full((1, 4, 4), 200.0), "image", weight=0.5,
                                   share=0.5, rng=np.random.default_rng(0),
                                   pixels=strip_module.Pixels(255.0, 0.0, 255.0))
    assert out[0, 0, 0] == 0.0 and out[0, 1, 1] == 200.0


def test_threshold_and_entropies_compose_the_filter(digits_backdoored: ZooCase) -> None:
    strip, case = Strip(n_overlays=8), digits_backdoored
    threshold = strip.threshold(case.model, case.clean, frr=0.05, rng=np.random.default_rng(0))
    fitted = strip.fit(case.model, case.clean, frr=0.05, rng=np.random.default_rng(0))
    assert threshold == fitted.threshold
    h = strip.entropies(case.model, case.test, case.clean, rng=np.random.default_rng(4))
    again = fitted.filter(case.test, rng=np.random.default_rng(4))
    np.testing.assert_array_equal(h, again.entropy)


def test_audit_calls_a_backdoor_from_triggered_traffic(digits_backdoored: ZooCase,
                                                       rng: np.random.Generator) -> None:
    X = others(digits_backdoored)
    traffic = np.concatenate([X[:200], digits_backdoored.trigger.apply(X[200:240])])
    report = Strip().audit(digits_backdoored.model, digits_backdoored.clean, rng=rng,
                           inputs=traffic)
    assert report.suspicious and report.target == TARGET
    assert report.score >= 4.0  # measured 6.7 (-log10 p); the cut is 2 (alpha 0.01)
    assert report.threshold == pytest.approx(2.0)


def test_audit_is_quiet_on_a_clean_model_with_the_same_traffic(digits_clean: ZooCase,
                                                               rng: np.random.Generator) -> None:
    X = others(digits_clean)
    traffic = np.concatenate([X[:200], digits_clean.trigger.apply(X[200:240])])
    report = Strip().audit(digits_clean.model, digits_clean.clean, rng=rng, inputs=traffic)
    assert not report.suspicious and report.target is None
    assert report.score < 1.0  # measured 0.2


def test_audit_without_inputs_tests_the_sample_itself(digits_backdoored: ZooCase,
                                                      rng: np.random.Generator) -> None:
    report = Strip().audit(digits_backdoored.model, digits_backdoored.clean, rng=rng)
    assert not report.suspicious
    assert any("no suspect inputs" in note for note in report.notes)


def test_text_and_tabular_superimposition(text_case: ZooCase,
                                          tabular_backdoored: ZooCase) -> None:
    for case in (text_case, tabular_backdoored):
        fitted = Strip(n_overlays=10).fit(case.model, case.clean, rng=np.random.default_rng(0))
        X = others(case)[:100]
        clean = fitted.filter(X, rng=np.random.default_rng(1))
        triggered = fitted.filter(case.trigger.apply(X), rng=np.random.default_rng(1))
        assert triggered.entropy.mean() < clean.entropy.mean()


def test_superimpose_text_keeps_the_length() -> None:
    out = strip_module.superimpose("a b c d", np.array(["x y", "z"], dtype=object), "text",
                                   weight=0.5, share=0.5, rng=np.random.default_rng(0))
    assert [len(t.split()) for t in out] == [4, 4]
    assert set(" ".join(out).split()) <= {"a", "b", "c", "d", "x", "y", "z"}


def test_same_rng_same_entropies(digits_backdoored: ZooCase) -> None:
    strip, case = Strip(n_overlays=5), digits_backdoored
    a, b = (strip.entropies(case.model, case.test, case.clean, rng=np.random.default_rng(9))
            for _ in range(2))
    assert a.tobytes() == b.tobytes()


def test_doctests() -> None:
    assert doctest.testmod(strip_module).failed == 0


def test_refuses_a_sample_of_another_modality(text_case: ZooCase,
                                              digits_clean: ZooCase) -> None:
    with pytest.raises(InputError) as exc:
        Strip().audit(digits_clean.model, text_case.clean, rng=np.random.default_rng(0))
    assert "\n" not in str(exc.value) and "text data" in str(exc.value)


@pytest.mark.parametrize(("params", "word"), [({"n_overlays": 0}, "'n_overlays'"),
                                              ({"frr": 0.0}, "'frr'"),
                                              ({"weight": 1.0}, "'weight'"),
                                              ({"superposition": "mean"}, "'superposition'")])
def test_refuses_bad_parameters(params: dict[str, object], word: str) -> None:
    with pytest.raises(InputError, match=word):
        Strip(**params)  # type: ignore[arg-type]


def test_refuses_a_bad_frr_at_fit(digits_clean: ZooCase) -> None:
    with pytest.raises(InputError, match="'frr'"):
        Strip().fit(digits_clean.model, digits_clean.clean, frr=1.5, rng=np.random.default_rng(0))
