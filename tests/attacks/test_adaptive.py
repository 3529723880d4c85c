"""Adaptive attacks: Qi et al.'s adaptive blend / patch, spread poison, and the loop against the
default scan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from poisonguard import Dataset, InputError
from poisonguard.attacks import (
    ATTACKS,
    AdaptiveBackdoor,
    AdaptiveBlend,
    AdaptivePatch,
    Backdoor,
    LabelFlip,
    SpreadBackdoor,
    adapt,
)
from poisonguard.attacks.triggers import BlendTrigger, ShapeTrigger
from poisonguard.datasets import load_dataset, make_images, make_tabular, make_text
from poisonguard.evaluation import evaluate_attack, split
from poisonguard.scan import scan

NAMES = ("adaptive-backdoor", "adaptive-blend", "adaptive-patch", "spread-backdoor")
DATA = {"image": lambda: make_images(n_rows=150, random_state=0),
        "tabular": lambda: make_tabular(n_rows=200, random_state=0)}
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("adaptive-blend", "image", {}), ("adaptive-blend", "image", {"cover": 0.0}),
    ("adaptive-patch", "image", {}), ("adaptive-patch", "image", {"patch_size": 3}),
    ("spread-backdoor", "image", {"trigger": "blend"}), ("spread-backdoor", "tabular", {}),
    ("spread-backdoor", "tabular", {"trigger": "shift", "strength": 0.5}),
    ("adaptive-backdoor", "tabular", {"rounds": 0}), ("adaptive-backdoor", "image", {"rounds": 0}),
    ("adaptive-backdoor", "tabular", {"rounds": 1, "floor": 0.0}),
]
FAST = [case for case in CASES if not case[2].get("rounds")]  # the loop's: test_adapt_gives_...


def _run(name: str, kind: str, params: dict[str, Any], seed: int = 3) -> tuple[Dataset, Any]:
    ds = DATA[kind]()
    return ds, ATTACKS[name](count=20, **params).poison(ds, rng=np.random.default_rng(seed))


def test_registered_as_backdoors() -> None:
    for name in NAMES:
        assert ATTACKS[name].family == "backdoor" and ATTACKS[name].summary
    assert AdaptiveBlend.modalities == AdaptivePatch.modalities == ("image",)
    assert SpreadBackdoor.modalities == AdaptiveBackdoor.modalities == ("image", "tabular")


@pytest.mark.parametrize(("name", "kind", "params"), CASES, ids=str)
def test_contract(name: str, kind: str, params: dict[str, Any]) -> None:
    ds = DATA[kind]()
    X0, y0 = np.array(ds.X, copy=True), ds.y.copy()
    res = ATTACKS[name](count=20, **params).poison(ds, rng=np.random.default_rng(3))
    assert np.array_equal(ds.X, X0) and np.array_equal(ds.y, y0)  # input untouched
    out, mask = res.dataset, res.mask
    assert res.n_poisoned == 20 and mask.shape == (ds.n_rows,) and not mask.flags.writeable
    assert np.array_equal(res.source_index, np.arange(ds.n_rows))
    assert out.X.dtype == ds.X.dtype and out.X.shape == ds.X.shape
    assert np.array_equal(out.X[~mask], ds.X[~mask]) and np.array_equal(out.y[~mask], ds.y[~mask])
    target = res.trigger.target_class
    relabelled = mask & (out.y != ds.y)
    assert (out.y[relabelled] == target).all()
    cover = params.get("cover", 0.5) if name in ("adaptive-blend", "adaptive-patch") else 0.0
    assert relabelled.sum() == 20 - round(cover * 20)  # the rest are cover rows
    changed = np.array([not np.array_equal(out.X[i], ds.X[i]) for i in np.flatnonzero(mask)])
    assert changed.all()  # every poisoned row carries (part of) the trigger
    # the test-time trigger stamps any input
    assert res.trigger.apply(ds.X[:3]).shape == ds.X[:3].shape


@pytest.mark.parametrize(("name", "kind", "params"), FAST, ids=str)
def test_same_seed_same_bytes(name: str, kind: str, params: dict[str, Any]) -> None:
    _, a = _run(name, kind, params, seed=7)
    _, b = _run(name, kind, params, seed=7)
    assert np.asarray(a.dataset.X).tobytes() == np.asarray(b.dataset.X).tobytes()
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.dataset.y, b.dataset.y)
    assert a.trigger.to_json() == b.trigger.to_json()


def test_adaptive_blend_applies_some_pieces_faintly() -> None:
    ds = load_dataset("digits", n_rows=300)
    res = AdaptiveBlend(count=40, alpha=0.15, test_alpha=0.2, pieces=16, shown=8).poison(
        ds, rng=np.random.default_rng(0))
    trig = res.trigger
    assert isinstance(trig, BlendTrigger) and trig.alpha == 0.2
    rows = np.flatnonzero(res.mask)
    assert (res.dataset.y[rows] != ds.y[rows]).sum() == 20  # half the budget covers
    for i in rows:
        diff = np.abs(res.dataset.X[i] - ds.X[i])
        expected = 0.15 * np.abs(trig.pattern - ds.X[i])
        touched = diff > 1e-9
        assert np.allclose(diff[touched], expected[touched])
        cells = {(r // 2, c // 2) for r, c in zip(*np.nonzero(touched), strict=True)}
        assert len(cells) <= 8  # 8 of the 16 2x2 cells, never the whole pattern


def test_adaptive_patch_test_trigger_is_every_patch_at_full_value() -> None:
    ds = load_dataset("digits", n_rows=300)
    res = AdaptivePatch(count=30, cover=0.0, alpha=0.5).poison(ds, rng=np.random.default_rng(0))
    trig = res.trigger
    assert isinstance(trig, ShapeTrigger) and trig.value == 16.0
    assert sum(line.count("#") for line in trig.glyph) == 4 * 4  # four 2x2 patches
    stamped = trig.apply(np.zeros((1, 8, 8)))[0]
    for i in np.flatnonzero(res.mask):
        diff = res.dataset.X[i] - ds.X[i]
        assert (diff[stamped == 0] == 0).all()  # nothing outside the patches
        assert np.allclose(diff[diff != 0], 0.5 * (16.0 - ds.X[i][diff != 0]))
        assert 0 < np.count_nonzero(diff) <= 8  # at most 2 of the 4 patches


def test_spread_moves_rows_a_share_of_the_way() -> None:
    ds = make_tabular(n_rows=200, random_state=0)
    full = Backdoor(count=10, trigger="feature").poison(ds, rng=np.random.default_rng(0))
    res = SpreadBackdoor(count=10, trigger="feature", strength=0.25).poison(
        ds, rng=np.random.default_rng(0))
    assert np.array_equal(res.mask, full.mask)  # same rows, same trigger
    rows = np.flatnonzero(res.mask)
    np.testing.assert_allclose(res.dataset.X[rows] - ds.X[rows],
                               0.25 * (full.dataset.X[rows] - ds.X[rows]))
    assert res.trigger == full.trigger


@pytest.mark.slow
def test_adapt_gives_the_result_poison_gives() -> None:
    ds = load_dataset("breast_cancer", n_rows=150)
    attack = AdaptiveBackdoor(count=12, rounds=1, floor=0.0)
    run = adapt(attack, ds, rng=np.random.default_rng(1))
    again = attack.poison(ds, rng=np.random.default_rng(1))
    assert np.array_equal(run.result.mask, again.mask)
    assert np.asarray(run.result.dataset.X).tobytes() == np.asarray(again.dataset.X).tobytes()
    assert [r.round for r in run.rounds] == [0, 1] and run.rounds[0].swapped == 0
    assert run.rounds[1].swapped == 5  # 0.34 of 12 rows, rounded up
    assert run.kept == int(np.argmin([r.scan_auroc for r in run.rounds]))
    # the attacker's held-out rows are never poisoned and the kept round is what the scan saw
    assert scan(run.result.dataset).evaluate(run.result.mask)["auroc"] == pytest.approx(
        run.rounds[run.kept].scan_auroc)


def test_loop_stops_below_the_floor() -> None:
    ds = load_dataset("breast_cancer", n_rows=150)
    run = adapt(AdaptiveBackdoor(count=12, rounds=3, floor=1.0, trigger="shift", alpha=0.1), ds,
                rng=np.random.default_rng(0))
    assert len(run.rounds) == 1 and run.kept == 0 and run.rounds[0].proxy_success < 1.0
    plain = adapt(AdaptiveBlend(count=10), make_images(n_rows=150, random_state=0),
                  rng=np.random.default_rng(0))
    assert plain.rounds == () and plain.kept == 0


@pytest.mark.slow
def test_loop_hides_a_backdoor_from_the_default_scan_on_digits() -> None:
    train, test = split(load_dataset("digits", n_rows=700), random_state=0)
    twin = Backdoor(rate=0.1, trigger="patch")
    adaptive = AdaptiveBackdoor(rate=0.1, trigger="patch", rounds=3)
    outcomes = {}
    for attack in (twin, adaptive):
        res = attack.poison(train, rng=np.random.default_rng(0))
        auroc = scan(res.dataset).evaluate(res.mask)["auroc"]
        outcomes[attack.name] = (auroc, evaluate_attack(attack, train, test, result=res))
    twin_auroc, twin_out = outcomes["backdoor"]
    auroc, out = outcomes["adaptive-backdoor"]
    # measured (seed 0, 490 training rows, 49 poisoned, 3 rounds): scan AUROC 0.815 for the
    # twin, 0.420 adaptive; attack success of the victim (logreg) 1.000 and 0.857
    assert twin_auroc >= 0.78 and auroc <= twin_auroc - 0.3
    assert twin_out.attack_success >= 0.95 and out.attack_success >= 0.8 > adaptive.floor


@pytest.mark.parametrize(("attack", "kind", "message"), [
    (AdaptiveBlend(count=5), "tabular", r"attack 'adaptive-blend' supports image data \(got tabular\)"),
    (AdaptivePatch(count=5), "text", r"attack 'adaptive-patch' supports image data \(got text\)"),
    (SpreadBackdoor(count=5), "text", r"supports image, tabular data \(got text\)"),
    (AdaptiveBackdoor(count=5), "text", r"supports image, tabular data \(got text\)"),
    (AdaptiveBackdoor(count=5, rounds=-1), "tabular", r"'rounds' must be a whole number in \[0, 20\]"),
    (AdaptiveBackdoor(count=5, floor=1.5), "tabular", r"'floor' must be in \[0, 1\] \(got 1.5\)"),
    (AdaptiveBackdoor(count=5, holdout=0.9), "tabular", r"'holdout' must be in \(0, 0.5\]"),
    (SpreadBackdoor(count=5, strength=0.0), "tabular", r"'strength' must be in \(0, 1\]"),
    (SpreadBackdoor(count=5, trigger="patch"), "tabular",
     "'trigger' for tabular data must be one of feature, rare"),
    (AdaptiveBlend(count=5, pieces=10), "image", "'pieces' must be a square number"),
    (AdaptiveBlend(count=5, shown=17), "image", r"'shown' must be a whole number in \[1, 16\]"),
    (AdaptiveBlend(count=5, cover=1.0), "image", r"'cover' must be in \[0, 1\)"),
    (AdaptivePatch(count=5, pieces=40), "image", "'pieces' 40 patches of 2 pixels do not fit"),
    (AdaptiveBlend(count=5, target_class=9), "image", "'target_class' 9 is not a label"),
])
def test_refusals_are_one_line(attack: Any, kind: str, message: str) -> None:
    data = {"text": lambda: make_text(n_rows=60, random_state=0), **DATA}[kind]()
    with pytest.raises(InputError, match=message) as err:
        attack.poison(data, rng=np.random.default_rng(0))
    assert "\n" not in str(err.value)


def test_impossible_budgets_and_foreign_attacks() -> None:
    ds = make_images(n_rows=150, random_state=0)
    with pytest.raises(InputError, match=r"budget of 151 rows is impossible"):
        AdaptiveBlend(count=151).poison(ds, rng=np.random.default_rng(0))
    with pytest.raises(InputError, match="rows outside the target class can carry"):
        AdaptiveBlend(count=140, cover=0.0).poison(ds, rng=np.random.default_rng(0))
    with pytest.raises(InputError, match="outside the attacker's held-out rows"):
        AdaptiveBackdoor(count=95).poison(ds, rng=np.random.default_rng(0))
    with pytest.raises(InputError, match=r"the adaptive loop runs adaptive-backdoor.*got 'label-flip'"):
        adapt(LabelFlip(count=5), ds, rng=np.random.default_rng(0))


# ------------------------------------------------------------------------------------ CLI
@pytest.mark.slow
def test_cli_adaptive_runs_the_loop_around_a_backdoor(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from poisonguard.cli import main

    ds = load_dataset("breast_cancer", n_rows=150)
    data = tmp_path / "cancer.csv"
    ds.frame().assign(label=ds.y).to_csv(data, index=False)
    out = tmp_path / "p.csv"
    assert main(["attack", str(data), "-a", "backdoor", "--adaptive", "--rounds", "1",
                 "--floor", "0", "--count", "12", "--out", str(out)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("round 0: swapped 0, scan AUROC ")
    assert err[1].startswith("round 1: swapped 5, scan AUROC ") and err[2].startswith("kept round ")
    assert err[3].startswith("adaptive-backdoor: poisoned 12 of 150 rows")
    truth = pd.read_csv(tmp_path / "p.truth.csv")
    assert truth["poisoned"].sum() == 12
    assert main(["attack", str(data), "-a", "label-flip", "--adaptive", "--count", "5",
                 "--out", str(tmp_path / "q.csv")]) == 2
    assert capsys.readouterr().err == (
        "error: --adaptive runs the adaptive loop around a backdoor: attack backdoor, "
        "adaptive-backdoor, adaptive-blend, adaptive-patch, spread-backdoor (got 'label-flip')\n")
    assert main(["attack", str(data), "-a", "backdoor", "--rounds", "2", "--count", "5",
                 "--out", str(tmp_path / "q.csv")]) == 2
    assert "option --rounds does not apply to attack 'backdoor'" in capsys.readouterr().err
