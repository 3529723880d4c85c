"""poisonguard.dataset.Dataset: the shared data model, its copies and its input checks."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError


def _tabular() -> Dataset:
    X = np.arange(12, dtype=np.float64).reshape(6, 2)
    return Dataset(X, [0, 1, 0, 1, 0, 1], sources=list("aabbcc"), feature_names=["f", "g"])


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"age": [30, 41, 52, 63], "color": ["red", "blue", "red", "green"]})


def _raises(match: str) -> pytest.RaisesExc[InputError]:
    return pytest.raises(InputError, match=re.escape(match))


# ------------------------------------------------------------------------------ kinds of data
def test_tabular_array() -> None:
    ds = Dataset(np.ones((4, 3)), ["no", "yes", "no", "yes"])
    assert ds.modality == "tabular"
    assert (ds.n_rows, len(ds)) == (4, 4)
    assert ds.X.shape == (4, 3)
    assert ds.feature_names == ("x0", "x1", "x2")
    assert list(ds.classes) == ["no", "yes"]
    assert not ds.is_frame
    assert ds.sources is None


def test_dataframe_with_categorical_columns() -> None:
    df = _frame()
    ds = Dataset(df, [0, 1, 0, 1])
    assert ds.is_frame and ds.modality == "tabular"
    assert ds.feature_names == ("age", "color")
    pd.testing.assert_frame_equal(ds.frame(), df)
    df.loc[0, "color"] = "purple"  # the caller's frame is copied, not shared
    assert ds.X.loc[0, "color"] == "red"


def test_dataframe_index_is_reset() -> None:
    ds = Dataset(_frame().set_axis([10, 11, 12, 13]), [0, 1, 0, 1])
    assert list(ds.X.index) == [0, 1, 2, 3]
    assert list(ds.ids) == ["0", "1", "2", "3"]


@pytest.mark.parametrize("shape", [(5, 4, 4), (5, 4, 4, 3)])
def test_images(shape: tuple[int, ...]) -> None:
    X = np.zeros(shape, dtype=np.uint8)
    ds = Dataset(X, [0, 1, 2, 0, 1])
    assert ds.modality == "image"
    assert ds.X.shape == shape and ds.X.dtype == np.uint8
    assert ds.frame().shape == (5, int(np.prod(shape[1:])))


def test_text() -> None:
    texts = ["free prize now", "see you at lunch", "win cash"]
    ds = Dataset(texts, ["spam", "ham", "spam"])
    assert ds.modality == "text"
    assert list(ds.X) == texts
    assert list(ds.frame()["text"]) == texts


def test_modality_is_checked_against_the_shape() -> None:
    with _raises("tabular 'X' must be 2-D (got shape (3, 2, 2))"):
        Dataset(np.zeros((3, 2, 2)), [0, 1, 0], modality="tabular")
    with _raises("'modality' must be one of tabular, image, text (got 'audio')"):
        Dataset(np.zeros((3, 2)), [0, 1, 0], modality="audio")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- ids
def test_ids_default_to_row_numbers_as_strings() -> None:
    ds = _tabular()
    assert list(ds.ids) == ["0", "1", "2", "3", "4", "5"]
    assert ds.ids.dtype.kind == "U"
    assert ds.has_default_ids


def test_given_ids_become_strings() -> None:
    ds = Dataset(np.zeros((3, 1)), [0, 1, 0], ids=[7, 8, 9])
    assert list(ds.ids) == ["7", "8", "9"]
    assert not ds.has_default_ids


def test_duplicate_ids_name_the_id_and_both_rows() -> None:
    with _raises("duplicate id 'b' at rows 1 and 3"):
        Dataset(np.zeros((4, 1)), [0, 1, 0, 1], ids=["a", "b", "c", "b"])


# ------------------------------------------------------------------------ read-only, copies
@pytest.mark.parametrize("attr", ["X", "y", "ids", "sources"])
def test_arrays_are_read_only(attr: str) -> None:
    arr = getattr(_tabular(), attr)
    with pytest.raises(ValueError, match="read-only"):
        arr[0] = arr[1]


@pytest.mark.parametrize("X", [np.zeros((3, 2, 2)), np.asarray(["a", "b", "c"])], ids=["image", "text"])
def test_image_and_text_arrays_are_read_only(X: np.ndarray) -> None:
    ds = Dataset(X, [0, 1, 0])
    with pytest.raises(ValueError, match="read-only"):
        ds.X[0] = ds.X[1]


def test_input_arrays_are_copied() -> None:
    X, y = np.zeros((3, 2)), np.array([0, 1, 0])
    ds = Dataset(X, y)
    X[0, 0], y[0] = 5.0, 1
    assert ds.X[0, 0] == 0.0 and ds.y[0] == 0
    assert X.flags.writeable and y.flags.writeable  # the caller's arrays stay writeable


def test_fields_cannot_be_reassigned() -> None:
    ds = _tabular()
    with pytest.raises(AttributeError):
        ds.y = np.zeros(6)  # type: ignore[misc]


def _snapshot(ds: Dataset) -> tuple[np.ndarray, ...]:
    assert ds.sources is not None
    return (np.array(ds.X), np.array(ds.y), np.array(ds.ids), np.array(ds.sources))


def _assert_unchanged(ds: Dataset, before: tuple[np.ndarray, ...]) -> None:
    for now, then in zip(_snapshot(ds), before, strict=True):
        np.testing.assert_array_equal(now, then)


def test_take_positions() -> None:
    ds = _tabular()
    before = _snapshot(ds)
    sub = ds.take([4, 1])
    assert sub is not ds
    assert list(sub.ids) == ["4", "1"]
    np.testing.assert_array_equal(sub.X, [[8.0, 9.0], [2.0, 3.0]])
    assert list(sub.y) == [0, 1]
    assert sub.sources is not None and list(sub.sources) == ["c", "a"]
    assert sub.feature_names == ds.feature_names
    assert not sub.X.flags.writeable
    _assert_unchanged(ds, before)


def test_take_boolean_mask() -> None:
    ds = _tabular()
    sub = ds.take(ds.y == 1)
    assert list(sub.ids) == ["1", "3", "5"]
    assert set(sub.y.tolist()) == {1}


def test_take_frame_keeps_the_original() -> None:
    ds = Dataset(_frame(), [0, 1, 0, 1])
    sub = ds.take([3, 0])
    assert list(sub.X["color"]) == ["green", "red"]
    assert list(sub.X.index) == [0, 1]
    pd.testing.assert_frame_equal(ds.X, _frame())


def test_replace_gives_a_new_dataset() -> None:
    ds = _tabular()
    before = _snapshot(ds)
    flipped = ds.replace(y=1 - ds.y, name="flipped")
    assert flipped is not ds
    assert list(flipped.y) == [1, 0, 1, 0, 1, 0]
    assert flipped.name == "flipped" and ds.name == "dataset"
    assert list(flipped.ids) == list(ds.ids)
    assert not flipped.y.flags.writeable
    _assert_unchanged(ds, before)


def test_replace_ids_none_restores_row_numbers() -> None:
    ds = Dataset(np.zeros((3, 1)), [0, 1, 0], ids=["a", "b", "c"])
    assert list(ds.replace(ids=None).ids) == ["0", "1", "2"]
    assert list(ds.ids) == ["a", "b", "c"]


def test_replace_is_validated() -> None:
    with _raises("length mismatch: X has 6 rows but y has 2"):
        _tabular().replace(y=[0, 1])


# -------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"y": [0, 1]}, "length mismatch: X has 3 rows but y has 2"),
    ({"y": [0, 1, 0], "ids": ["a", "b"]}, "length mismatch: X has 3 rows but ids has 2"),
    ({"y": [0, 1, 0], "sources": ["s"]}, "length mismatch: X has 3 rows but sources has 1"),
    ({"y": [[0], [1], [0]]}, "'y' must be one-dimensional (got shape (3, 1))"),
])
def test_length_mismatch(kwargs: dict[str, object], message: str) -> None:
    with _raises(message):
        Dataset(np.zeros((3, 2)), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "shown"), [(np.inf, "inf"), (-np.inf, "-inf")])
def test_infinite_features_name_row_and_column(value: float, shown: str) -> None:
    X = np.zeros((4, 3))
    X[2, 1] = value
    with _raises(f"row 2, column 'b': value is {shown}; features must be finite (missing values "
                 "are allowed)"):
        Dataset(X, [0, 1, 0, 1], feature_names=["a", "b", "c"])


@pytest.mark.parametrize(("value", "shown"), [(np.inf, "inf"), (-np.inf, "-inf")])
def test_infinite_frame_values_name_row_and_column(value: float, shown: str) -> None:
    df = pd.DataFrame({"age": [1.0, 2.0, 3.0], "color": ["red", "blue", "red"]})
    df.loc[1, "age"] = value
    with _raises(f"row 1, column 'age': value is {shown}; features must be finite"):
        Dataset(df, [0, 1, 0])


def test_missing_tabular_values_are_kept() -> None:
    X = np.zeros((4, 3))
    X[2, 1] = np.nan
    ds = Dataset(X, [0, 1, 0, 1])
    assert np.isnan(ds.X[2, 1]) and np.isfinite(np.delete(ds.X.ravel(), 7)).all()
    df = pd.DataFrame({"age": [1.0, np.nan, 3.0], "color": ["red", None, "red"],
                       "n": pd.array([1, pd.NA, 3], dtype="Int64"),
                       "ok": pd.array([True, pd.NA, False], dtype="boolean")})
    frame = Dataset(df, [0, 1, 0]).X
    assert frame["color"].isna().tolist() == [False, True, False]
    # nullable numbers and booleans become float64 with NaN, so every reader sees one kind of missing
    assert frame["n"].dtype == np.float64 and frame["ok"].dtype == np.float64
    assert np.isnan(frame.loc[1, "n"]) and frame["ok"].tolist()[::2] == [1.0, 0.0]


def test_missing_labels_are_still_refused() -> None:
    with _raises("label of row 1 is missing"):
        Dataset(pd.DataFrame({"a": [1.0, np.nan]}), ["x", None])


def test_non_finite_pixel_names_row_and_pixel() -> None:
    X = np.zeros((3, 4, 4, 3))
    X[1, 2, 0, 1] = np.nan
    with _raises("row 1, pixel (2, 0, 1): value is nan"):
        Dataset(X, [0, 1, 0])


@pytest.mark.parametrize("shape", [(3, 2, 2), (3, 2, 2, 1)])
def test_images_must_be_numeric(shape: tuple[int, ...]) -> None:
    X = np.full(shape, "a")
    with _raises("'X' must be numeric for image data (got dtype <U1)"):
        Dataset(X, [0, 1, 0])


def test_tabular_arrays_must_be_numeric() -> None:
    with _raises("'X' must be numeric for tabular data"):
        Dataset(np.full((3, 2), "a"), [0, 1, 0])


def test_integral_float_labels_become_ints() -> None:
    ds = Dataset(np.zeros((3, 1)), np.array([0.0, 1.0, 2.0]))
    assert ds.y.dtype == np.int64
    assert list(ds.y) == [0, 1, 2]


def test_boolean_labels_become_ints() -> None:
    ds = Dataset(np.zeros((2, 1)), np.array([True, False]))
    assert ds.y.dtype == np.int64 and list(ds.y) == [1, 0]


@pytest.mark.parametrize(("y", "message"), [
    ([0.0, 0.5, 1.0], "labels must be integers or strings (got non-integer floats)"),
    ([0.0, np.nan, 1.0], "label of row 1 is missing or not finite"),
    (["a", None, "b"], "label of row 1 is missing"),
])
def test_bad_labels(y: list[object], message: str) -> None:
    with _raises(message):
        Dataset(np.zeros((3, 1)), y)


def test_no_rows() -> None:
    with _raises("the dataset has no rows"):
        Dataset(np.zeros((0, 2)), [])


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="length mismatch"):
        Dataset(np.zeros((3, 2)), [0, 1])
