"""The feature encoding of a hardened model, kept in its ``spec.json`` under ``encoding``.

``poisonguard harden`` turns its training data into numbers with :func:`fit_encoding` and keeps
how; ``certify`` and the audits (:mod:`poisonguard.audits.load`) read that back with
:func:`read_encoding` and turn new data into the same numbers. Tables and images: the numeric
columns (missing numbers filled), then one-hot columns named ``column=value``
(:class:`TableEncoding`); text: TF-IDF with the kept vocabulary, IDF and settings
(:func:`tfidf`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from poisonguard.errors import InputError

if TYPE_CHECKING:
    from pathlib import Path

    from poisonguard.dataset import Dataset

__all__ = ["TableEncoding", "fit_encoding", "read_encoding", "tfidf"]


def fit_encoding(ds: Dataset) -> tuple[Any, dict[str, Any]]:
    """Features as numbers and the encoding that reproduces them: tables and images through
    :class:`~poisonguard.models._codec.NumericCodec`; text through the modality's own
    featurizer (TF-IDF, sparse), its vocabulary, IDF and settings kept."""
    from poisonguard.models import featurizer
    from poisonguard.models._codec import NumericCodec

    if ds.modality == "text":
        vec = featurizer(ds)
        X = vec.fit_transform(np.asarray(ds.X, dtype=str))
        terms = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
        return X, {"text": {"vocabulary": terms, "idf": [float(v) for v in vec.idf_],
                            "ngram_range": list(vec.ngram_range),
                            "sublinear_tf": bool(vec.sublinear_tf),
                            "lowercase": bool(vec.lowercase)}}
    codec = NumericCodec.fit(ds)
    return codec.encode(ds.X), codec.spec()


def read_encoding(spec: dict[str, Any], where: str | Path) -> dict[str, Any]:
    """The ``encoding`` of a model's ``spec.json`` (a text encoding when it has ``"text"``,
    else read it with :meth:`TableEncoding.read`)."""
    enc = spec.get("encoding")
    if not isinstance(enc, dict):
        raise InputError(f"{where}: spec.json has no feature 'encoding'")
    return enc


def tfidf(enc: Any, where: str | Path) -> Any:
    """The fitted ``TfidfVectorizer`` of a text encoding, every part checked."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        terms = [str(t) for t in enc["vocabulary"]]
        idf = np.asarray(enc["idf"], dtype=np.float64)
        ngram = (int(enc["ngram_range"][0]), int(enc["ngram_range"][1]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{where}: malformed text 'encoding' in spec.json ({exc})") from None
    if not (terms and idf.shape == (len(terms),) and np.all(np.isfinite(idf))
            and len(set(terms)) == len(terms) and 1 <= ngram[0] <= ngram[1] <= 5):
        raise InputError(f"{where}: text 'encoding' in spec.json does not hold together")
    vec = TfidfVectorizer(ngram_range=ngram, sublinear_tf=bool(enc.get("sublinear_tf", True)),
                          lowercase=bool(enc.get("lowercase", True)), dtype=np.float64,
                          vocabulary={t: i for i, t in enumerate(terms)})
    vec.idf_ = idf
    return vec


@dataclass(frozen=True)
class TableEncoding:
    """The encoding of tables and images: ``numeric`` columns (a missing number takes its
    ``fill``), then one-hot ``categories`` (``(column, values)`` pairs) for a table
    (``frame``); the flattened values of an array whose rows have ``shape`` otherwise, its
    ``columns`` named when tabular."""

    frame: bool
    numeric: list[str]
    categories: list[tuple[str, list[str]]]
    fill: np.ndarray
    columns: list[str]
    shape: list[int]

    @classmethod
    def read(cls, enc: dict[str, Any], where: str | Path) -> TableEncoding:
        """The encoding from its JSON form (:func:`read_encoding`), every part checked."""
        try:
            frame = bool(enc["frame"])
            numeric = [str(c) for c in enc["numeric"]]
            categories = [(str(c), [str(v) for v in values]) for c, values in enc["categories"]]
            fill = np.asarray(enc["fill"], dtype=np.float64)
            columns = [str(c) for c in enc["columns"]]
            shape = [int(s) for s in enc["shape"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: malformed 'encoding' in spec.json ({exc})") from None
        if not shape or any(s <= 0 for s in shape) or fill.ndim != 1 or not np.all(np.isfinite(fill)):
            raise InputError(f"{where}: 'encoding' in spec.json does not hold together")
        return cls(frame, numeric, categories, fill, columns, shape)

    @property
    def width(self) -> int:
        """How many numbers a row becomes."""
        if self.frame:
            return len(self.numeric) + sum(len(v) for _, v in self.categories)
        return int(np.prod(self.shape))

    @property
    def names(self) -> tuple[str, ...]:
        """The names of those numbers: the numeric columns, then ``column=value``; an array's
        columns (none for images)."""
        if self.frame:
            return tuple(self.numeric) + tuple(f"{c}={v}" for c, values in self.categories
                                               for v in values)
        return tuple(self.columns)

    def reorders(self, ds: Dataset) -> bool:
        """Whether ``ds`` is an array whose named columns must be put in the model's order."""
        return not self.frame and bool(self.columns) and list(ds.feature_names) != self.columns

    def encode(self, ds: Dataset) -> np.ndarray:
        """The features of ``ds`` as the model's rows ``(n, p)``: a table's columns found by
        name, an array's columns put in the model's order. Missing columns are an
        :class:`InputError` naming the data; the caller checks an array's shape."""
        from poisonguard.models._codec import encode_features

        if self.frame:
            X = ds.X if ds.is_frame else ds.frame()
            missing = [c for c in self.columns if c not in X.columns]
            if missing:
                raise InputError(f"{ds.name}: lacks the model's columns {', '.join(missing[:5])}")
            return encode_features(X[self.columns], frame=True, numeric=self.numeric,
                                   categories=self.categories, fill=self.fill)
        X = ds.X
        if self.reorders(ds):
            have = list(map(str, ds.feature_names))
            if sorted(have) != sorted(self.columns):
                from poisonguard._validation import column_difference

                raise InputError(f"{ds.name}: its columns differ from the model's "
                                 f"({column_difference(have, self.columns)})")
            X = ds.frame()[self.columns].to_numpy(dtype=np.float64)
        return encode_features(X, frame=False, numeric=self.numeric, categories=self.categories,
                               fill=self.fill)
