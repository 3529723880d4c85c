"""Proxy / victim models by modality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from poisonguard import Dataset, InputError
from poisonguard.datasets import make_images, make_tabular, make_text
from poisonguard.models import NumericCodec, fit_quiet, make_model


def _holdout_accuracy(ds: Dataset, model: str) -> float:
    half = ds.n_rows // 2
    train, test = ds.take(np.arange(half)), ds.take(np.arange(half, ds.n_rows))
    fitted = fit_quiet(make_model(model, train, random_state=0), train.X, train.y)
    return float((fitted.predict(test.X) == test.y).mean())


@pytest.mark.parametrize("make", [make_tabular, make_images, make_text])
@pytest.mark.parametrize("model", ["logreg", "mlp"])
def test_named_models_learn_every_modality(make: object, model: str) -> None:
    assert _holdout_accuracy(make(n_rows=300, random_state=1), model) >= 0.9  # type: ignore[operator]


def test_cnn_learns_images() -> None:
    pytest.importorskip("torch")
    assert _holdout_accuracy(make_images(n_rows=300, random_state=1), "cnn") >= 0.9


def test_cnn_needs_images_and_unknown_names_are_refused() -> None:
    with pytest.raises(InputError, match="model 'cnn' needs image data"):
        make_model("cnn", make_tabular(n_rows=50))
    with pytest.raises(InputError, match="'model' must be one of"):
        make_model("forest", make_tabular(n_rows=50))


def test_codec_round_trips_categorical_rows() -> None:
    frame = pd.DataFrame({"x": [0.5, 1.5, 2.5, 3.5], "n": [1, 2, 3, 4],
                          "c": ["a", "b", "a", "c"]})
    ds = Dataset(frame, [0, 1, 0, 1])
    codec = NumericCodec.fit(ds)
    Z = codec.encode(ds.X)
    assert Z.shape == (4, 2 + 3)
    back = codec.decode(Z)
    pd.testing.assert_frame_equal(back, ds.X)
    nudged = codec.decode(Z + np.array([0.2, 0.4, -0.5, 0.9, 0.0]))  # "b" now wins rows 0-2
    assert nudged["c"].tolist() == ["b", "b", "b", "c"] and nudged["n"].dtype == np.int64
