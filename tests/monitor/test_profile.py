"""Profile: what it keeps, same seed same bytes, JSON round trip, and every bad file refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard import Dataset, InputError, IntegrityError
from poisonguard.datasets import load_dataset
from poisonguard.monitor import Profile
from poisonguard.monitor.profile import FORMAT, OTHER


def _mixed(n: int, seed: int, colors: tuple[str, ...] = ("red", "green", "blue")) -> Dataset:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=n), "age": rng.integers(18, 90, n),
                          "color": rng.choice(list(colors), n)})
    return Dataset(frame, rng.integers(0, 2, n), name=f"mixed{seed}")


def test_fit_keeps_bins_labels_and_a_sample() -> None:
    wine = load_dataset("wine")
    profile = Profile.fit(wine, random_state=0)
    assert profile.n_rows == 178 and profile.modality == "tabular"
    assert [c.name for c in profile.columns] == list(wine.feature_names)
    assert all(c.kind == "numeric" and len(c.counts) == len(c.edges) + 1 for c in profile.columns)
    assert all(sum(c.counts) == 178 for c in profile.columns)
    assert len(profile.columns[0].edges) == 9  # deciles of a continuous column
    assert dict(profile.labels) == {"0": 59, "1": 71, "2": 48}
    assert profile.sample.shape == (178, 13) and len(profile.sample_labels) == 178


def test_sample_is_capped_and_seeded() -> None:
    cancer = load_dataset("breast_cancer")
    a = Profile.fit(cancer, random_state=0, sample_size=100)
    b = Profile.fit(cancer, random_state=0, sample_size=100)
    c = Profile.fit(cancer, random_state=1, sample_size=100)
    assert len(a.sample) == 100
    assert a.to_dict() == b.to_dict() and a.digest == b.digest
    assert a.digest != c.digest
    assert a.columns == c.columns  # the bins come from the whole reference, not the sample


def test_categorical_columns_keep_frequencies_and_pool_the_rest() -> None:
    ds = _mixed(300, 0, colors=("red", "green", "blue", "cyan"))
    profile = Profile.fit(ds, max_categories=2)
    color = profile.columns[2]
    assert color.kind == "categorical" and len(color.categories) == 2
    counts = pd.Series(ds.X["color"]).value_counts()
    assert color.counts[:2] == tuple(int(counts[c]) for c in color.categories)
    assert color.counts[2] == 300 - sum(color.counts[:2])
    assert color.bin_names()[-1] == OTHER
    assert profile.columns[1].kind == "numeric"  # integers are numeric


def test_json_round_trip_is_exact(tmp_path: Path) -> None:
    profile = Profile.fit(_mixed(200, 0), random_state=3)
    path = profile.to_json(tmp_path / "p.json")
    doc = json.loads(path.read_text())
    assert list(doc)[:2] == ["format", "digest"] and doc["format"] == FORMAT
    back = Profile.read(path)
    assert back.to_dict() == profile.to_dict()
    assert back.sample["color"].tolist() == profile.sample["color"].tolist()
    assert back.to_json(tmp_path / "q.json").read_bytes() == path.read_bytes()


def test_images_are_profiled_through_a_stored_embedding(tmp_path: Path) -> None:
    digits = load_dataset("digits")
    profile = Profile.fit(digits, components=5)
    assert profile.modality == "image" and [c.name for c in profile.columns] == [
        "pc1", "pc2", "pc3", "pc4", "pc5"]
    back = Profile.read(profile.to_json(tmp_path / "p.json"))
    np.testing.assert_allclose(back.features(digits).to_numpy(), profile.features(digits).to_numpy())
    first = profile.features(digits)["pc1"].to_numpy()
    assert first.std() > profile.features(digits)["pc5"].to_numpy().std()  # ordered by variance


def test_text_is_refused() -> None:
    with pytest.raises(InputError, match="needs tabular or image data"):
        Profile.fit(load_dataset("synthetic_text"))


@pytest.mark.parametrize("key,value", [("sample_size", 0), ("bins", 1), ("max_categories", True),
                                       ("components", 2.5)])
def test_bad_parameters_are_named(key: str, value: object) -> None:
    with pytest.raises(InputError, match=f"'{key}' must be an integer"):
        Profile.fit(load_dataset("iris"), **{key: value})  # type: ignore[arg-type]


# ------------------------------------------------------------------ batch schema
def test_batch_columns_must_match() -> None:
    profile = Profile.fit(load_dataset("wine"))
    wine = load_dataset("wine")
    frame = wine.frame().drop(columns=["alcohol"]).assign(extra=1.0)
    with pytest.raises(InputError) as err:
        profile.features(Dataset(frame, wine.y, name="day2"))
    text = str(err.value)
    assert "batch 'day2'" in text and "missing 'alcohol'" in text and "unexpected 'extra'" in text
    assert "\n" not in text


def test_batch_column_order_does_not_matter() -> None:
    wine = load_dataset("wine")
    profile = Profile.fit(wine)
    frame = wine.frame()
    swapped = Dataset(frame[list(reversed(frame.columns))], wine.y)
    assert profile.features(swapped).equals(profile.features(wine))


def test_text_in_a_numeric_column_is_named() -> None:
    ds = _mixed(100, 0)
    profile = Profile.fit(ds)
    bad = ds.X.assign(x=["a"] * 100)
    with pytest.raises(InputError, match="column 'x': text values, but the column is numeric"):
        profile.features(Dataset(bad, ds.y))


def test_a_profile_of_another_modality_or_shape_is_refused() -> None:
    digits = load_dataset("digits")
    with pytest.raises(InputError, match="image data, but the profile of 'wine' is of tabular"):
        Profile.fit(load_dataset("wine")).features(digits)
    small = Dataset(np.zeros((5, 4, 4)), np.arange(5), modality="image", name="tiny")
    with pytest.raises(InputError, match=r"batch 'tiny': images of shape \(4, 4\)"):
        Profile.fit(digits).features(small)


# ------------------------------------------------------------------ bad files
def test_files_that_are_not_profiles(tmp_path: Path) -> None:
    cases = {"missing.json": None, "bad.json": "{not json", "list.json": "[1, 2]",
             "other.json": json.dumps({"format": "poisonguard-manifest/1"}),
             "noformat.json": json.dumps({"columns": []})}
    expected = {"missing.json": "no such drift profile", "bad.json": "not a drift profile",
                "list.json": "not a drift profile", "other.json": "is not supported",
                "noformat.json": "not a drift profile"}
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(InputError) as err:
            Profile.read(path)
        assert str(err.value).startswith(str(path)) and expected[name] in str(err.value)


def test_an_edited_profile_fails_its_digest(tmp_path: Path) -> None:
    path = Profile.fit(load_dataset("iris")).to_json(tmp_path / "p.json")
    doc = json.loads(path.read_text())
    doc["labels"][0][1] += 1
    path.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="does not match the profile's digest"):
        Profile.read(path)


def test_a_malformed_profile_is_named(tmp_path: Path) -> None:
    path = Profile.fit(load_dataset("iris")).to_json(tmp_path / "p.json")
    doc = json.loads(path.read_text())
    doc["columns"][0]["counts"] = [1, 2]
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="not a valid drift profile"):
        Profile.read(path)


# ------------------------------------------------------------------------- missing values
def _holes(n: int, seed: int, missing: float = 0.2) -> Dataset:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x": rng.normal(size=n), "color": rng.choice(["red", "blue"], n).astype(object)})
    frame.loc[rng.random(n) < missing, "x"] = np.nan
    frame.loc[rng.random(n) < missing, "color"] = None
    return Dataset(frame, rng.integers(0, 2, n), name=f"holes{seed}")


def test_missing_values_are_counted_and_survive_the_json(tmp_path: Path) -> None:
    ds = _holes(300, 0)
    profile = Profile.fit(ds, random_state=0)
    x, color = profile.columns
    assert x.missing == int(ds.X["x"].isna().sum()) > 0
    assert sum(x.counts) + x.missing == 300 and len(x.edges) == 9  # bins of the present values
    assert "<missing>" in color.categories
    back = Profile.read(profile.to_json(tmp_path / "p.json"))
    assert back.digest == profile.digest and back.columns == profile.columns
    assert back.sample["x"].isna().sum() == profile.sample["x"].isna().sum() > 0
    text = (tmp_path / "p.json").read_text()
    assert "NaN" not in text and '"missing":' in text  # JSON null, not NaN


def test_a_profile_without_missing_values_has_no_missing_key(tmp_path: Path) -> None:
    text = Profile.fit(load_dataset("wine"), random_state=0).to_json(tmp_path / "p.json").read_text()
    assert '"missing"' not in text  # profiles made before missing values were tracked still verify
