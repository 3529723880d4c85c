"""Tables with missing values and categories from Debian's R packages.

* ``pima``: ``PimaIndiansDiabetes2`` of ``r-cran-mlbench`` — the corrected Pima data, where the
  impossible zeros of the original are missing values;
* ``house_votes``: ``HouseVotes84`` of ``r-cran-mlbench`` — 16 y/n votes, abstentions missing;
* ``spambase``: ``spam`` of ``r-cran-kernlab`` — word and character frequencies of e-mails;
* ``penguins``: ``penguins.csv`` of ``r-cran-palmerpenguins`` — measurements, island and sex.

Every file is pinned by SHA-256; ``scripts/get-data.sh`` fetches the packages.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from poisonguard.dataset import Dataset
from poisonguard.datasets._files import find_pinned
from poisonguard.datasets._rda import read_rda_frame
from poisonguard.datasets._subset import subset
from poisonguard.errors import IntegrityError

__all__ = ["load_house_votes", "load_penguins", "load_pima", "load_spambase"]

_R = "usr/lib/R/site-library"
PIMA = (f"{_R}/mlbench/data/PimaIndiansDiabetes2.rda",
        "986f0c7dab95708aee2d1d8f8ae8fe6f03fdd93008ee83b5716dce1516e5c1fc")
HOUSE_VOTES = (f"{_R}/mlbench/data/HouseVotes84.rda",
               "18318b91a4b1dfaa2d1f9ff915aff018c2bb3140386073bfc02136fbf8e232b7")
SPAM = (f"{_R}/kernlab/data/spam.rda",
        "09281b38bc7b064f63616d9056091f924f59e38aa9fd07dd3bc1af0cba9613d3")
PENGUINS = (f"{_R}/palmerpenguins/extdata/penguins.csv",
            "f204db2c753b0937caac3cb35258562c14f073e4bbc76be24b4c51ce22767a93")


def _hint(package: str) -> str:
    return (f"run `bash scripts/get-data.sh` (apt-get download {package} + dpkg -x into "
            f"~/.local/share/poisonguard/root) or apt-get install {package}")


def _split(df: Any, label: str, path: Any) -> tuple[pd.DataFrame, np.ndarray]:
    if label not in df.columns:
        raise IntegrityError(f"'{path}' has no column {label!r} (got {list(df.columns)})")
    return df.drop(columns=[label]), df[label].astype(str).to_numpy()


def _categories(frame: pd.DataFrame) -> pd.DataFrame:
    """Text and R factor columns as Python strings, missing values as None."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype.kind not in "iufb":
            values = out[col].astype(object)
            out[col] = values.where(values.notna(), None).map(lambda v: v if v is None else str(v))
    return out


def load_pima(*, n_rows: int | None = None, random_state: int = 0) -> Dataset:
    """Pima Indians diabetes (corrected): 768 rows, 8 float64 features, 652 missing values
    (insulin 48.7 %, triceps 29.6 %, pressure, mass, glucose), labels ``"neg"``/``"pos"``.

    ``n_rows`` takes a seeded stratified subset. The file is checked against its pinned SHA-256.
    """
    path = find_pinned(*PIMA, what="Pima Indians diabetes", hint=_hint("r-cran-mlbench"))
    features, y = _split(read_rda_frame(path, "PimaIndiansDiabetes2", what="Pima Indians diabetes"),
                         "diabetes", path)
    ds = Dataset(features.to_numpy(dtype=np.float64), y, modality="tabular", name="pima",
                 feature_names=[str(c) for c in features.columns])
    return subset(ds, n_rows, random_state)


def load_house_votes(*, n_rows: int | None = None, random_state: int = 0) -> Dataset:
    """1984 US House of Representatives votes: 435 rows, 16 categorical columns ``V1``..``V16``
    of ``"y"``/``"n"`` with 392 abstentions missing, labels ``"democrat"``/``"republican"``.

    ``n_rows`` takes a seeded stratified subset. The file is checked against its pinned SHA-256.
    """
    path = find_pinned(*HOUSE_VOTES, what="House votes 1984", hint=_hint("r-cran-mlbench"))
    features, y = _split(read_rda_frame(path, "HouseVotes84", what="House votes 1984"), "Class", path)
    ds = Dataset(_categories(features), y, name="house_votes")
    return subset(ds, n_rows, random_state)


def load_spambase(*, n_rows: int | None = None, random_state: int = 0) -> Dataset:
    """Spambase: 4,601 e-mails, 57 float64 word / character frequency and capital-run features,
    labels ``"nonspam"``/``"spam"``.

    ``n_rows`` takes a seeded stratified subset. The file is checked against its pinned SHA-256.
    """
    path = find_pinned(*SPAM, what="Spambase", hint=_hint("r-cran-kernlab"))
    features, y = _split(read_rda_frame(path, "spam", what="Spambase"), "type", path)
    ds = Dataset(features.to_numpy(dtype=np.float64), y, modality="tabular", name="spambase",
                 feature_names=[str(c) for c in features.columns])
    return subset(ds, n_rows, random_state)


def load_penguins(*, n_rows: int | None = None, random_state: int = 0) -> Dataset:
    """Palmer penguins: 344 rows; ``island`` and ``sex`` (11 missing) categorical, four
    measurements (2 rows missing them) and ``year`` numeric; labels ``"Adelie"``,
    ``"Chinstrap"``, ``"Gentoo"``.

    ``year`` (2007-2009) is kept: the table is used as published, and a column that says little
    about the label is part of real data. ``n_rows`` takes a seeded stratified subset; the file
    is checked against its pinned SHA-256.
    """
    path = find_pinned(*PENGUINS, what="Palmer penguins", hint=_hint("r-cran-palmerpenguins"))
    features, y = _split(pd.read_csv(path), "species", path)
    ds = Dataset(_categories(features), y, name="penguins")
    return subset(ds, n_rows, random_state)
