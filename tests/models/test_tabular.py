"""Messy tables as numbers: missing values, booleans, dates, many categories; the notes that say
so; and the crafting codec on data with holes."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from poisonguard import Dataset
from poisonguard.models import NumericCodec, describe_encoding, featurizer, fit_quiet, make_model
from poisonguard.models._tabular import MAX_ONEHOT, MedianImputer, plan_columns

N = 400


def messy(n: int = N, seed: int = 0) -> Dataset:
    """Numbers with holes, a categorical column with holes, True/False objects with holes,
    datetimes, a name per row (high cardinality) and a 70-value code (pooled one-hot)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame({
        "age": np.where(y == 1, 60.0, 30.0) + rng.normal(0, 5, n),
        "income": rng.normal(50, 10, n),
        "city": rng.choice(["Oslo", "Rome", "Lima"], n).astype(object),
        "member": rng.choice([True, False], n).astype(object),
        "joined": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        "name": [f"person {i}" for i in range(n)],
        "code": [f"c{i % 70}" for i in range(n)],
    })
    frame.loc[::4, "age"] = np.nan
    frame.loc[::7, "city"] = None
    frame.loc[::9, "member"] = None
    return Dataset(frame, y, name="messy")


def test_plan_names_each_columns_encoding() -> None:
    plan = {c.name: c for c in plan_columns(messy().X)}
    assert {k: (c.kind, c.values) for k, c in plan.items()} == {
        "age": ("numeric", "number"), "income": ("numeric", "number"),
        "city": ("onehot", "category"), "member": ("numeric", "boolean"),
        "joined": ("numeric", "date"), "name": ("frequency", "category"),
        "code": ("onehot", "category")}
    assert plan["age"].missing == pytest.approx(0.25) and plan["name"].distinct == N


def test_featurizer_imputes_indicates_and_bounds_the_width() -> None:
    ds = messy()
    F = featurizer(ds).fit_transform(ds.X)
    F = F.toarray() if hasattr(F, "toarray") else F
    # numeric: age income member joined + indicators of age and member; city: 3 + <missing>;
    # name: 1 frequency column; code: 70 values pooled into 64 columns
    assert F.shape == (N, 4 + 2 + 4 + 1 + MAX_ONEHOT)
    assert np.isfinite(F).all()
    again = featurizer(ds).fit_transform(ds.X)
    assert np.array_equal(F, again.toarray() if hasattr(again, "toarray") else again)


def test_a_model_learns_through_the_holes_and_predicts_on_them() -> None:
    ds = messy()
    model = fit_quiet(make_model("logreg", ds), ds.X, ds.y)
    assert model.score(ds.X, ds.y) > 0.9  # age (a quarter missing) carries the label
    unseen = ds.X.iloc[:5].copy()
    unseen["income"] = np.nan  # missing where the training data had no hole
    assert model.predict(unseen).shape == (5,)
    assert pickle.loads(pickle.dumps(model)).predict(ds.X[:3]).shape == (3,)


def test_median_imputer_fills_and_indicates_only_columns_with_holes() -> None:
    X = np.array([[1.0, 5.0, np.nan], [np.nan, 6.0, np.nan], [3.0, 7.0, np.nan], [9.0, 8.0, np.nan]])
    out = MedianImputer().fit_transform(X)
    assert out.tolist() == [[1.0, 5.0, 0.0, 0.0, 1.0], [3.0, 6.0, 0.0, 1.0, 1.0],
                            [3.0, 7.0, 0.0, 0.0, 1.0], [9.0, 8.0, 0.0, 0.0, 1.0]]


def test_describe_encoding_says_what_was_done() -> None:
    notes = describe_encoding(messy())
    assert notes == [
        "column 'member' holds True/False: encoded as 1/0",
        "column 'joined' holds dates: days since 1970-01-01",
        "2 columns had missing values (age 25.0 %, member 11.2 %): median-imputed with "
        "missing-value indicators",
        "1 categorical column had missing values (city 14.5 %): missing is its own category "
        "'<missing>'",
        "column 'name' has 400 distinct values: frequency-encoded (share of rows with the value)",
        "column 'code' has 70 distinct values: the 63 most frequent one-hot encoded, the rest "
        "pooled in one column"]
    clean = Dataset(np.eye(3), [0, 1, 0])
    assert describe_encoding(clean) == [] and describe_encoding(clean.replace(modality="image",
                                                                              X=np.zeros((3, 2, 2)))) == []


def test_arrays_with_missing_values() -> None:
    X = np.random.default_rng(0).normal(size=(40, 3))
    X[::5, 1] = np.nan
    ds = Dataset(X, np.arange(40) % 2, feature_names=["a", "b", "c"])
    assert featurizer(ds).fit_transform(ds.X).shape == (40, 4)
    assert describe_encoding(ds) == ["1 column had missing values (b 20.0 %): median-imputed "
                                     "with missing-value indicators"]


def test_codec_fills_holes_and_decodes_to_valid_rows() -> None:
    ds = messy()
    codec = NumericCodec.fit(ds)
    Z = codec.encode(ds.X)
    assert np.isfinite(Z).all() and np.isfinite(codec.lo).all() and np.isfinite(codec.hi).all()
    rows = codec.decode(Z[:10])
    assert list(rows.columns) == list(ds.X.columns)
    assert not rows["age"].isna().any()  # crafted numbers are never missing
    assert rows["city"].isna().tolist() == ds.X["city"].iloc[:10].isna().tolist()
    assert set(rows["name"]) == {"person 0"}  # high cardinality: left out, the most frequent value
    assert rows["joined"].tolist() == ds.X["joined"].iloc[:10].tolist()
    Dataset(rows, ds.y[:10])  # a valid dataset again
