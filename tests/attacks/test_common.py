"""One contract suite over every registered attack, on tabular, categorical, image and text data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from _data import mixed
from poisonguard import Dataset, InputError
from poisonguard.attacks import ATTACKS, Attack, PoisonResult
from poisonguard.attacks.triggers import TRIGGERS
from poisonguard.datasets import make_images, make_tabular, make_text

DATA = {
    "tabular": lambda: make_tabular(n_rows=200, random_state=0),
    "mixed": mixed,
    "image": lambda: make_images(n_rows=150, random_state=0),
    "text": lambda: make_text(n_rows=150, random_state=0),
}

PARAMS: dict[str, list[dict[str, Any]]] = {
    "label-flip": [{"strategy": "random"}, {"strategy": "class"}, {"strategy": "greedy"}],
    "subpopulation": [{"method": "inject"}, {"method": "flip", "n_clusters": 4}],
    "backdoor": [{}, {"inject": True}, *({"trigger": kind} for kind in TRIGGERS)],
    "clean-label-backdoor": [{}, {"method": "interpolate"}, {"trigger": "warp"},
                             {"trigger": "common"}, {"trigger": "style"}],
    "feature-collision": [{"steps": 20}],
    "gradient-matching": [{"steps": 3, "restarts": 1, "epochs": 2, "width": 4}],
    "availability": [{"steps": 5}],
    "adaptive-backdoor": [{"rounds": 0}, {"rounds": 1, "floor": 0.0}],
    "adaptive-blend": [{}],
    "adaptive-patch": [{}],
    "spread-backdoor": [{}, {"trigger": "shift"}],
    "truth-serum": [{}, {"label": "random", "copies": 2}],
}

NEEDS_TORCH = {"gradient-matching"}


def _fits(modality: str, params: dict[str, Any]) -> bool:
    trigger = params.get("trigger")
    return trigger is None or TRIGGERS[trigger].modality == modality


CASES = [(name, kind, params) for name, cls in sorted(ATTACKS.items()) for kind in DATA
         for params in PARAMS[name] if (kind if kind != "mixed" else "tabular") in cls.modalities
         and _fits(kind if kind != "mixed" else "tabular", params)
         and not (kind == "text" and params.get("method") == "interpolate")]


def _snapshot(ds: Dataset) -> tuple[Any, ...]:
    X = ds.X.copy() if isinstance(ds.X, pd.DataFrame) else np.array(ds.X, copy=True)
    return X, ds.y.copy(), ds.ids.copy()


def _same_x(a: Any, b: Any) -> bool:
    if isinstance(a, pd.DataFrame):
        return bool(a.equals(b))
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


def _run(name: str, kind: str, params: dict[str, Any], seed: int = 0,
         count: int = 10) -> tuple[Dataset, PoisonResult]:
    if name in NEEDS_TORCH:
        pytest.importorskip("torch")
    ds = DATA[kind]()
    return ds, ATTACKS[name](count=count, **params).poison(ds, rng=np.random.default_rng(seed))


def test_every_family_is_registered() -> None:
    assert set(ATTACKS) == {"label-flip", "subpopulation", "backdoor", "clean-label-backdoor",
                            "feature-collision", "gradient-matching", "availability",
                            "adaptive-backdoor", "adaptive-blend", "adaptive-patch", "spread-backdoor",
                            "truth-serum"}
    for cls in ATTACKS.values():
        assert issubclass(cls, Attack) and cls.summary and cls.family


@pytest.mark.parametrize(("name", "kind", "params"), CASES, ids=lambda v: str(v))
def test_contract(name: str, kind: str, params: dict[str, Any]) -> None:
    if name in NEEDS_TORCH:
        pytest.importorskip("torch")
    ds = DATA[kind]()
    before = _snapshot(ds)
    res = ATTACKS[name](count=10, **params).poison(ds, rng=np.random.default_rng(3))
    # input untouched
    after = _snapshot(ds)
    assert _same_x(before[0], after[0]) and np.array_equal(before[1], after[1])
    out = res.dataset
    # ground truth: mask count equals the budget; source_index points into the input
    assert res.mask.dtype == bool and res.mask.shape == (out.n_rows,)
    assert res.n_poisoned == 10
    assert res.source_index.shape == (out.n_rows,)
    assert res.source_index.max() < ds.n_rows and res.source_index.min() >= -1
    assert len(set(out.ids.tolist())) == out.n_rows
    # shapes and dtypes kept
    if isinstance(ds.X, pd.DataFrame):
        assert list(out.X.columns) == list(ds.X.columns)
        assert out.X.dtypes.to_dict() == ds.X.dtypes.to_dict()
    else:
        assert out.X.shape[1:] == ds.X.shape[1:] and out.X.dtype == ds.X.dtype
    assert out.y.dtype == ds.y.dtype and out.modality == ds.modality
    assert (ds.sources is None) == (out.sources is None)
    # clean rows are exact copies of their source rows
    clean = np.flatnonzero(~res.mask & (res.source_index >= 0))
    src = res.source_index[clean]
    assert np.array_equal(out.y[clean], ds.y[src])
    if not isinstance(ds.X, pd.DataFrame):
        assert np.array_equal(out.X[clean], ds.X[src])
    if name == "subpopulation":  # the attacked group is reported, and every poisoned row is from it
        assert res.group is not None and res.group.shape == (ds.n_rows,)
        assert res.group[res.source_index[res.mask]].all()
    # every poisoned row was crafted from scratch, or differs from its source row
    for row in np.flatnonzero(res.mask):
        src_row = int(res.source_index[row])
        if src_row < 0:
            continue
        if isinstance(ds.X, pd.DataFrame):
            same_x = out.X.iloc[row].tolist() == ds.X.iloc[src_row].tolist()
        else:
            same_x = np.array_equal(np.asarray(out.X[row]), np.asarray(ds.X[src_row]))
        assert not same_x or out.y[row] != ds.y[src_row], f"poisoned row {row} is a clean copy"


@pytest.mark.parametrize(("name", "kind", "params"), CASES, ids=lambda v: str(v))
def test_same_seed_same_bytes(name: str, kind: str, params: dict[str, Any]) -> None:
    _, a = _run(name, kind, params, seed=7)
    _, b = _run(name, kind, params, seed=7)
    assert np.array_equal(a.mask, b.mask) and np.array_equal(a.source_index, b.source_index)
    assert np.array_equal(a.dataset.y, b.dataset.y)
    if isinstance(a.dataset.X, pd.DataFrame):
        assert a.dataset.X.equals(b.dataset.X)
    elif a.dataset.modality == "text":
        assert a.dataset.X.tolist() == b.dataset.X.tolist()
    else:
        assert np.asarray(a.dataset.X).tobytes() == np.asarray(b.dataset.X).tobytes()
    assert (a.trigger is None) == (b.trigger is None)
    if a.trigger is not None and b.trigger is not None:
        assert a.trigger.to_json() == b.trigger.to_json()


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_impossible_budget_is_a_clear_error(name: str) -> None:
    kind = "tabular" if "tabular" in ATTACKS[name].modalities else "image"
    ds = DATA[kind]()
    params = {"method": "flip"} if name == "subpopulation" else {}
    with pytest.raises(InputError, match=r"budget of \d+ rows is impossible|'rate' must be"):
        ATTACKS[name](count=ds.n_rows + 1, **params).poison(ds, rng=np.random.default_rng(0))
    with pytest.raises(InputError, match="'rate' must be in"):
        ATTACKS[name](rate=1.5).poison(ds, rng=np.random.default_rng(0))
    with pytest.raises(InputError, match="'count' must be a positive integer"):
        ATTACKS[name](count=0).poison(ds, rng=np.random.default_rng(0))


@pytest.mark.parametrize(("name", "param"), [
    ("label-flip", "target_class"), ("backdoor", "target_class"),
    ("clean-label-backdoor", "target_class"), ("feature-collision", "base_class"),
    ("gradient-matching", "base_class"),
    ("subpopulation", "target_class")])
def test_missing_class_is_named(name: str, param: str) -> None:
    ds = make_tabular(n_rows=100, random_state=0)
    with pytest.raises(InputError, match=rf"'{param}' 7 is not a label in the data; labels are: 0, 1"):
        ATTACKS[name](count=5, **{param: 7}).poison(ds, rng=np.random.default_rng(0))


def test_single_class_and_bad_rng_are_refused() -> None:
    ds = Dataset(np.eye(4), [1, 1, 1, 1])
    with pytest.raises(InputError, match="single class"):
        ATTACKS["label-flip"](count=1).poison(ds, rng=np.random.default_rng(0))
    with pytest.raises(InputError, match=r"numpy\.random\.Generator"):
        ATTACKS["label-flip"](count=1).poison(make_tabular(n_rows=50), rng=0)  # type: ignore[arg-type]


def test_params_keep_numpy_scalars_as_ground_truth() -> None:
    ds = make_tabular(n_rows=100)
    res = ATTACKS["backdoor"](count=5, target_class=ds.classes[1]).poison(
        ds, rng=np.random.default_rng(0))
    assert res.params["target_class"] == 1 and res.params["count"] == 5


def test_text_is_refused_by_crafting_attacks() -> None:
    for name in ("availability", "feature-collision", "gradient-matching"):
        with pytest.raises(InputError, match="supports tabular, image data"):
            ATTACKS[name](count=3).poison(make_text(n_rows=60), rng=np.random.default_rng(0))
