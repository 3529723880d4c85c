"""Triggers: data-adapted defaults, apply without mutation, JSON round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from poisonguard import InputError
from poisonguard.attacks import BlendTrigger, PatchTrigger, fit_trigger, load_trigger
from poisonguard.datasets import load_dataset, make_tabular, make_text


@pytest.mark.parametrize(("name", "kind"), [("digits", "patch"), ("digits", "blend"),
                                            ("breast_cancer", "feature"),
                                            ("synthetic_text", "token")])
def test_round_trip_and_apply(name: str, kind: str, tmp_path: Path) -> None:
    ds = load_dataset(name)
    trig = fit_trigger(ds, kind, ds.classes[0], np.random.default_rng(0))
    path = tmp_path / "t.json"
    path.write_text(trig.to_json())
    again = load_trigger(path)
    assert again.to_json() == trig.to_json()
    before = np.array(ds.X, copy=True)
    stamped = again.apply(ds.X[:20])
    assert np.array_equal(ds.X, before) if ds.modality != "text" else ds.X.tolist() == before.tolist()
    again_stamped = trig.apply(ds.X[:20])
    if ds.modality == "text":
        assert list(stamped) == list(again_stamped)
        assert all("cf" in t.split() for t in stamped)
    else:
        assert np.array_equal(stamped, again_stamped)
        assert not np.array_equal(stamped, ds.X[:20])


def test_defaults_adapt_to_the_data() -> None:
    digits = load_dataset("digits")
    patch = fit_trigger(digits, "patch", 0, np.random.default_rng(0))
    assert isinstance(patch, PatchTrigger)
    assert patch.value == 16.0 and patch.size == 3 and patch.row + patch.size == 8
    blend = fit_trigger(digits, "blend", 0, np.random.default_rng(0))
    assert isinstance(blend, BlendTrigger) and blend.alpha == 0.3
    assert blend.pattern.min() >= 0 and blend.pattern.max() <= 16
    tab = make_tabular(n_rows=100)
    feat = fit_trigger(tab, "feature", 1, np.random.default_rng(0))
    for col, value in zip(feat.columns, feat.values, strict=True):  # type: ignore[attr-defined]
        column = tab.X[:, tab.feature_names.index(col)]
        assert value > column.max()  # far in the upper tail


def test_wrong_modality_and_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="trigger 'patch' applies to image data"):
        fit_trigger(make_text(n_rows=20), "patch", "pos", np.random.default_rng(0))
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "laser"}')
    with pytest.raises(InputError, match=r"bad\.json: trigger 'kind' must be one of"):
        load_trigger(bad)
    bad.write_text("not json")
    with pytest.raises(InputError, match=r"bad\.json: not a trigger JSON file"):
        load_trigger(bad)
    with pytest.raises(InputError, match="does not fit images"):
        PatchTrigger(5, 6, 6, 1.0, 0).apply(np.zeros((2, 8, 8)))
