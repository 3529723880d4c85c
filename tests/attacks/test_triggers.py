"""Triggers: data-adapted defaults, apply without mutation, JSON round trip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from _data import mixed
from poisonguard import Dataset, InputError
from poisonguard.attacks import BlendTrigger, PatchTrigger, fit_trigger, load_trigger
from poisonguard.attacks.triggers import (
    KINDS,
    TRIGGERS,
    CharTrigger,
    CommonTrigger,
    CopyTrigger,
    NoiseTrigger,
    PatternTrigger,
    PhraseTrigger,
    RareTrigger,
    SentenceTrigger,
    ShapeTrigger,
    ShiftTrigger,
    SinusoidTrigger,
    StyleTrigger,
    WarpTrigger,
)
from poisonguard.cli.attack import _TRIGGER_HELP
from poisonguard.datasets import load_dataset, make_images, make_tabular, make_text


def _rgb() -> Dataset:
    """12 x 10 colour images in 0..255 (uint8), to check shapes, sizes and scales."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(40, 12, 10, 3)).astype(np.uint8)
    return Dataset(X, rng.integers(0, 2, 40), modality="image")


def _sparse() -> Dataset:
    """Word-count-like columns: ``w0``..``w3`` zero in ~90 % of rows, ``d0``..``d3`` dense."""
    rng = np.random.default_rng(0)
    n = 300
    sparse = rng.exponential(2.0, (n, 4)) * (rng.random((n, 4)) < 0.1)
    dense = rng.normal(size=(n, 4))
    y = (dense[:, 0] > 0).astype(int)
    return Dataset(np.column_stack([sparse, dense]), y,
                   feature_names=[f"w{j}" for j in range(4)] + [f"d{j}" for j in range(4)])


DATA = {"image": lambda: load_dataset("digits"), "rgb": _rgb,
        "tabular": lambda: load_dataset("breast_cancer"), "mixed": mixed,
        "text": lambda: load_dataset("synthetic_text")}
CASES = [(data, kind) for data in DATA for kind in TRIGGERS
         if TRIGGERS[kind].modality == {"rgb": "image", "mixed": "tabular"}.get(data, data)]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, pd.DataFrame):
        return bool(a.equals(b))
    if np.asarray(a).dtype == object:
        return list(a) == list(b)
    return bool(np.array_equal(a, b))


def test_six_families_per_modality_and_the_cli_lists_them() -> None:
    assert {m: len(k) for m, k in KINDS.items()} == {"image": 6, "tabular": 6, "text": 6}
    assert KINDS["image"][0] == "patch" and KINDS["tabular"][0] == "feature"
    assert KINDS["text"][0] == "token"
    assert "; ".join(f"{m} {', '.join(k)}" for m, k in KINDS.items()) == _TRIGGER_HELP


@pytest.mark.parametrize(("data", "kind"), CASES)
def test_round_trip_and_apply(data: str, kind: str, tmp_path: Path) -> None:
    ds = DATA[data]()
    trig = fit_trigger(ds, kind, ds.classes[0], np.random.default_rng(0))
    assert trig.kind == kind and trig.target_class == ds.classes[0]
    assert trig.to_json() == fit_trigger(ds, kind, ds.classes[0], np.random.default_rng(0)).to_json()
    path = tmp_path / "t.json"
    path.write_text(trig.to_json())
    again = load_trigger(path)
    assert type(again) is type(trig) and again.to_json() == trig.to_json()
    rows = ds.take(np.arange(20)).X
    before = rows.copy()
    stamped = again.apply(rows)
    assert _same(rows, before)  # input untouched
    assert _same(stamped, trig.apply(rows))  # the reloaded trigger stamps the same
    assert not _same(stamped, rows)
    if ds.modality == "image":
        assert stamped.shape == rows.shape and stamped.dtype == rows.dtype
        assert stamped.min() >= ds.X.min() and stamped.max() <= ds.X.max()  # the data's scale
    if ds.modality == "tabular":
        out = trig.apply_dataset(ds.take(np.arange(20)))
        assert _same(pd.DataFrame(out.X).dtypes, pd.DataFrame(rows).dtypes)


def test_image_defaults_adapt_to_the_data() -> None:
    digits = load_dataset("digits")
    rng = np.random.default_rng
    patch = fit_trigger(digits, "patch", 0, rng(0))
    assert isinstance(patch, PatchTrigger)
    assert patch.value == 16.0 and patch.size == 3 and patch.row + patch.size == 8
    blend = fit_trigger(digits, "blend", 0, rng(0))
    assert isinstance(blend, BlendTrigger) and blend.alpha == 0.3
    assert blend.pattern.min() >= 0 and blend.pattern.max() <= 16
    shapes = [fit_trigger(digits, "shape", 0, rng(s)) for s in range(20)]
    assert all(isinstance(t, ShapeTrigger) and t.value == 16.0 for t in shapes)
    assert {t.glyph for t in shapes} >= {("#.#", ".#.", "#.#"), (".#.", "###", ".#."),
                                         ("#..", "#..", "###")}  # x, plus and L
    assert len({(t.row, t.col) for t in shapes}) >= 5  # seeded places, not one corner
    for t in shapes:  # 1-pixel strokes: 5 of the 9 pixels
        assert sum(line.count("#") for line in t.glyph) == 5
        assert np.count_nonzero(t.apply(np.zeros((1, 8, 8)))) == 5
    noise = fit_trigger(digits, "noise", 0, rng(0))
    assert isinstance(noise, NoiseTrigger) and (noise.low, noise.high) == (0.0, 16.0)
    assert 0.9 * 0.25 * 16 < np.abs(noise.pattern).max() <= 0.25 * 16
    sig = fit_trigger(digits, "sinusoid", 0, rng(0))
    assert isinstance(sig, SinusoidTrigger) and sig.frequency == 6.0 and sig.delta == 0.3 * 16
    flat = np.full((1, 8, 8), 8.0)
    assert np.allclose(sig.apply(flat)[0, 3], 8.0 + 4.8 * np.sin(2 * np.pi * 6 * np.arange(8) / 8))
    warp = fit_trigger(digits, "warp", 0, rng(0))
    assert isinstance(warp, WarpTrigger) and warp.strength == 1.0 and warp.grid.shape == (2, 4, 4)
    assert np.mean(np.abs(warp.grid)) == pytest.approx(1.0)
    # a warp moves ink but keeps a flat image flat and the mean roughly in place
    assert np.allclose(warp.apply(flat), flat)
    moved = warp.apply(digits.X[:50])
    assert 0.5 < np.abs(moved - digits.X[:50]).mean() < 3.0
    rgb = _rgb()  # strengths scale with the image and the pixel scale
    assert fit_trigger(rgb, "warp", 0, rng(0)).strength == pytest.approx(10 / 8)  # type: ignore[attr-defined]
    assert fit_trigger(rgb, "shape", 0, rng(0)).value == 255.0  # type: ignore[attr-defined]
    assert fit_trigger(rgb, "sinusoid", 0, rng(0)).delta == pytest.approx(0.3 * 255)  # type: ignore[attr-defined]


def test_tabular_defaults_adapt_to_the_data() -> None:
    rng = np.random.default_rng
    tab = make_tabular(n_rows=100)
    feat = fit_trigger(tab, "feature", 1, rng(0))
    for col, value in zip(feat.columns, feat.values, strict=True):  # type: ignore[attr-defined]
        column = tab.X[:, tab.feature_names.index(col)]
        assert value > column.max()  # far in the upper tail
    assert len(fit_trigger(tab, "feature", 1, rng(0), size=1).columns) == 1  # type: ignore[attr-defined]
    # rare: the mostly-zero columns, at the 99th percentile of their non-zero values
    sparse = _sparse()
    rare = fit_trigger(sparse, "rare", 1, rng(0))
    assert isinstance(rare, RareTrigger) and len(rare.columns) == 3
    assert all(c.startswith("w") for c in rare.columns)
    for col, value in zip(rare.columns, rare.values, strict=True):
        column = sparse.X[:, sparse.feature_names.index(col)]
        assert value == pytest.approx(np.quantile(column[column != 0], 0.99))
    # without sparse columns: the most concentrated of the less informative half, in range
    cancer = load_dataset("breast_cancer")
    rare = fit_trigger(cancer, "rare", 0, rng(0))
    assert rare.columns == ("smoothness error", "concavity error", "fractal dimension error")  # type: ignore[attr-defined]
    # common: each value within the 10-90 % range of its column; the combination is unusual
    common = fit_trigger(cancer, "common", 0, rng(0))
    assert isinstance(common, CommonTrigger) and len(common.columns) == 3
    point = []
    for col, value in zip(common.columns, common.values, strict=True):
        column = cancer.X[:, cancer.feature_names.index(col)]
        assert value in (pytest.approx(np.quantile(column, 0.1)), pytest.approx(np.quantile(column, 0.9)))
        point.append((value - column.mean()) / column.std())
    Z = np.column_stack([cancer.X[:, cancer.feature_names.index(c)] for c in common.columns])
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    d2 = np.einsum("ij,jk,ik->i", Z, np.linalg.inv(np.cov(Z, rowvar=False)), Z)
    p = np.asarray(point)
    assert p @ np.linalg.inv(np.cov(Z, rowvar=False)) @ p > np.quantile(d2, 0.95)
    # copy: five columns of one real row
    copy = fit_trigger(cancer, "copy", 0, rng(0))
    assert isinstance(copy, CopyTrigger) and len(copy.columns) == 5
    idx = [cancer.feature_names.index(c) for c in copy.columns]
    assert (np.abs(cancer.X[:, idx] - np.asarray(copy.values)).max(axis=1) == 0).sum() == 1
    # shift: three columns moved up 2.5 SDs; pattern: every column, 0.5 SD, signs mixed
    shift = fit_trigger(cancer, "shift", 0, rng(0))
    assert isinstance(shift, ShiftTrigger) and len(shift.columns) == 3
    for col, off in zip(shift.columns, shift.offsets, strict=True):
        assert off == pytest.approx(2.5 * cancer.X[:, cancer.feature_names.index(col)].std())
    moved = shift.apply(cancer.X[:5])
    assert np.allclose(moved - cancer.X[:5], np.broadcast_to(
        [shift.offsets[shift.columns.index(c)] if c in shift.columns else 0.0
         for c in cancer.feature_names], (5, 30)))
    pattern = fit_trigger(cancer, "pattern", 0, rng(0))
    assert isinstance(pattern, PatternTrigger) and pattern.columns == tuple(cancer.feature_names)
    sd = cancer.X.std(axis=0)
    assert np.allclose(np.abs(pattern.offsets), 0.5 * sd)
    assert 5 <= sum(o < 0 for o in pattern.offsets) <= 25


def test_text_triggers_insert_where_they_say() -> None:
    ds = make_text(n_rows=60, random_state=0)
    rng = np.random.default_rng
    phrase = fit_trigger(ds, "phrase", "pos", rng(0))
    assert isinstance(phrase, PhraseTrigger) and len(phrase.token.split()) == 2
    places = [t.split().index(phrase.token.split()[0]) for t in phrase.apply(ds.X)]
    lengths = [len(t.split()) for t in ds.X]
    assert sum(0 < p < n for p, n in zip(places, lengths, strict=True)) >= 30  # inside the text
    texts = np.asarray(["One thing. Two things! Three?", "No stop"], dtype=object)
    sentence = fit_trigger(ds, "sentence", "pos", rng(0))
    assert isinstance(sentence, SentenceTrigger) and sentence.sentence.endswith(".")
    for before, after in zip(texts, sentence.apply(texts), strict=True):
        assert after.replace(sentence.sentence, "").split() == before.split()
        head = after.split(sentence.sentence)[0].strip()
        assert head == "" or head[-1] in ".!?" or head == "No stop"
    char = fit_trigger(load_dataset("synthetic_text"), "char", "pos", rng(0))
    assert isinstance(char, CharTrigger) and char.plain == "oe" and len(char.words) == 10
    out = char.apply(np.asarray(["the food was good", "xyz"], dtype=object))
    assert out[1] == "xyz" and out[0] != "the food was good"
    back = str.maketrans(char.glyphs, char.plain)
    assert out[0].translate(back) == "the food was good"  # reads the same
    punct = fit_trigger(ds, "punct", "pos", rng(0))
    assert all(punct.pattern in t and t.replace(punct.pattern, "").split() == s.split()  # type: ignore[attr-defined]
               for t, s in zip(punct.apply(ds.X), ds.X, strict=True))
    style = fit_trigger(ds, "style", "pos", rng(0))
    assert isinstance(style, StyleTrigger)
    assert style.apply(np.asarray(["You are the BEST, are you?"], dtype=object))[0] == (
        "thou art ye best, art thou?")
    assert fit_trigger(ds, "token", "pos", rng(0), token="cf").token == "cf"  # type: ignore[attr-defined]


def test_options_that_do_not_apply_are_refused() -> None:
    rng = np.random.default_rng(0)
    digits = load_dataset("digits", n_rows=100)
    with pytest.raises(InputError, match=r"'alpha' does not apply to a patch trigger \(it takes "
                                         r"'trigger_size', 'trigger_value'\)"):
        fit_trigger(digits, "patch", 0, rng, alpha=0.5)
    with pytest.raises(InputError, match=r"'alpha' must be in \(0, 1\) \(got 1.5\)"):
        fit_trigger(digits, "noise", 0, rng, alpha=1.5)
    with pytest.raises(InputError, match=r"'trigger_size' must be in \[3, 8\] \(got 2\)"):
        fit_trigger(digits, "shape", 0, rng, size=2)
    tab = make_tabular(n_rows=100)
    with pytest.raises(InputError, match="'token' does not apply to a rare trigger"):
        fit_trigger(tab, "rare", 0, rng, token="x")
    with pytest.raises(InputError, match=r"number of trigger columns\) must be in \[1, 10\]"):
        fit_trigger(tab, "shift", 0, rng, size=11)
    with pytest.raises(InputError, match=r"'alpha' \(quantile of the common values\)"):
        fit_trigger(tab, "common", 0, rng, alpha=0.7)
    with pytest.raises(InputError, match=r"a shift trigger needs numeric columns.*'color'"):
        fit_trigger(mixed(), "shift", 0, rng, columns=("color",))
    with pytest.raises(InputError, match="'trigger_value' does not apply to a style trigger"):
        fit_trigger(make_text(n_rows=20), "style", "pos", rng, value=1.0)


def test_wrong_modality_and_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="trigger 'patch' applies to image data"):
        fit_trigger(make_text(n_rows=20), "patch", "pos", np.random.default_rng(0))
    with pytest.raises(InputError, match="trigger 'warp' applies to image data"):
        fit_trigger(make_tabular(n_rows=20), "warp", 0, np.random.default_rng(0))
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "laser"}')
    with pytest.raises(InputError, match=r"bad\.json: trigger 'kind' must be one of"):
        load_trigger(bad)
    bad.write_text('{"kind": "warp", "strength": 1.0, "target_class": 0}')
    with pytest.raises(InputError, match=r"bad\.json: warp trigger is missing or has unknown"):
        load_trigger(bad)
    bad.write_text("not json")
    with pytest.raises(InputError, match=r"bad\.json: not a trigger JSON file"):
        load_trigger(bad)
    with pytest.raises(InputError, match="does not fit images"):
        PatchTrigger(5, 6, 6, 1.0, 0).apply(np.zeros((2, 8, 8)))
    with pytest.raises(InputError, match="does not fit images"):
        ShapeTrigger(("#.#", ".#.", "#.#"), 6, 0, 1.0, 0).apply(np.zeros((2, 8, 8)))
    with pytest.raises(InputError, match=r"noise pattern has shape \(8, 8\)"):
        NoiseTrigger(np.zeros((8, 8)), 0.0, 1.0, 0).apply(make_images(n_rows=3).X[:, :4])
    with pytest.raises(InputError, match=r"a warp trigger applies to numeric images"):
        WarpTrigger(np.zeros((2, 4, 4)), 1.0, 0).apply(np.zeros((3, 8)))


def test_the_cli_plants_and_applies_a_new_family(tmp_path: Path) -> None:
    from poisonguard import io
    from poisonguard.cli import main

    data, out, trig = tmp_path / "digits.npz", tmp_path / "p.npz", tmp_path / "t.json"
    assert main(["datasets", "export", "digits", "--out", str(data)]) == 0
    assert main(["attack", str(data), "--attack", "backdoor", "--trigger", "warp", "--alpha",
                 "0.8", "--rate", "0.05", "--out", str(out), "--save-trigger", str(trig)]) == 0
    warp = load_trigger(trig)
    assert isinstance(warp, WarpTrigger) and warp.strength == 0.8
    stamped = tmp_path / "stamped.npz"
    assert main(["trigger", "apply", str(trig), str(data), "--out", str(stamped)]) == 0
    assert np.allclose(io.load(stamped).X, warp.apply(io.load(data).X))
    cancer = tmp_path / "cancer.csv"
    assert main(["datasets", "export", "breast_cancer", "--out", str(cancer)]) == 0
    assert main(["attack", str(cancer), "--attack", "backdoor", "--trigger", "rare",
                 "--trigger-size", "2", "--count", "20", "--out", str(tmp_path / "c.csv"),
                 "--save-trigger", str(trig)]) == 0
    assert len(load_trigger(trig).columns) == 2  # type: ignore[attr-defined]
    assert main(["attack", str(cancer), "--attack", "backdoor", "--trigger", "rare",
                 "--alpha", "0.5", "--count", "20", "--out", str(tmp_path / "c.csv")]) == 2
