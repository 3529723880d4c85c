"""Proxy and victim models by modality, and the numeric codec crafting attacks work in.

``make_model(name, dataset)`` returns an unfitted scikit-learn pipeline that takes the dataset's
``X`` as it is (DataFrame, image array or strings) and encodes it the way the modality needs:
standardised columns and one-hot categories for tabular data (missing values imputed, see
:mod:`poisonguard.models._tabular` and :func:`describe_encoding`), flattened scaled pixels for
images, TF-IDF for text. Any scikit-learn classifier may replace the named ones.
"""

from __future__ import annotations

import warnings
from typing import Any, TypeVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline

from poisonguard.dataset import Dataset
from poisonguard.errors import InputError
from poisonguard.models._codec import NumericCodec
from poisonguard.models._tabular import describe_encoding, tabular_featurizer

__all__ = ["MODEL_NAMES", "Flatten", "NumericCodec", "describe_encoding", "featurizer", "fit_quiet",
           "make_model"]

MODEL_NAMES: tuple[str, ...] = ("logreg", "mlp", "cnn")
_E = TypeVar("_E")


def fit_quiet(model: _E, X: Any, y: Any) -> _E:
    """``model.fit(X, y)`` without convergence warnings: surrogates and victims are trained
    with fixed iteration budgets on purpose, and a not-quite-converged fit is what we want."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)  # type: ignore[attr-defined]
    return model


class Flatten(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Images ``(n, h, w[, c])`` to rows of pixels scaled to [0, 1] by the training maximum."""

    def fit(self, X: Any, y: Any = None) -> Flatten:
        arr = np.asarray(X, dtype=np.float64)
        self.scale_ = float(max(np.abs(arr).max(), 1e-12))
        return self

    def transform(self, X: Any) -> np.ndarray:
        arr = np.asarray(X, dtype=np.float64)
        return arr.reshape(arr.shape[0], -1) / self.scale_


def featurizer(dataset: Dataset) -> Any:
    """An unfitted transformer from the dataset's ``X`` to a numeric matrix.

    Tabular: numbers, booleans and dates standardised, missing values median-imputed with a
    missing-value indicator per column that has them, categories one-hot (missing as its own
    category, at most 64 columns each) or, with many distinct values, frequency-encoded;
    :func:`describe_encoding` says what was done to a dataset.
    """
    if dataset.modality == "text":
        return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    if dataset.modality == "image":
        return Flatten()
    return tabular_featurizer(dataset)


def _classifier(name: str, random_state: int) -> Any:
    if name == "logreg":
        return LogisticRegression(max_iter=2000, C=1.0)
    if name == "mlp":
        return MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, early_stopping=False,
                             random_state=random_state)
    raise InputError(f"'model' must be one of {', '.join(MODEL_NAMES)} or a scikit-learn "
                     f"classifier (got {name!r})")


def make_model(model: str | Any, dataset: Dataset, *, random_state: int = 0) -> Any:
    """An unfitted classifier for ``dataset``: a name from :data:`MODEL_NAMES` or an estimator.

    A scikit-learn estimator is cloned and put behind the modality's featurizer.
    """
    if isinstance(model, str) and model == "cnn":
        if dataset.modality != "image":
            raise InputError(f"model 'cnn' needs image data (got {dataset.modality})")
        from poisonguard.models.cnn import TorchCNNClassifier

        return TorchCNNClassifier(random_state=random_state)
    if isinstance(model, str):
        clf = _classifier(model, random_state)
    elif isinstance(model, ClassifierMixin) or hasattr(model, "predict_proba"):
        clf = clone(model)
    else:
        raise InputError(f"'model' must be a name ({', '.join(MODEL_NAMES)}) or a scikit-learn "
                         f"classifier (got {type(model).__name__})")
    return Pipeline([("features", featurizer(dataset)), ("clf", clf)])
