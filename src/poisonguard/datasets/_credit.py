"""German Credit (Statlog), the ``GermanCredit`` data of the Debian package ``r-cran-caret``."""

from __future__ import annotations

import numpy as np

from poisonguard.dataset import Dataset
from poisonguard.datasets._files import find_pinned
from poisonguard.datasets._rda import read_rda_frame
from poisonguard.datasets._subset import subset

__all__ = ["load_credit"]

_RELPATH = "usr/lib/R/site-library/caret/data/GermanCredit.RData"
_SHA256 = "177356bb474439655c700693159767ae5694a4c9709ae13c262bee56c1ea4bbe"
_HINT = ("run `bash scripts/get-data.sh` (apt-get download r-cran-caret + dpkg -x into "
         "~/.local/share/poisonguard/root) or apt-get install r-cran-caret")
_LABEL = "Class"


def load_credit(*, n_rows: int | None = None, random_state: int = 0) -> Dataset:
    """German Credit: 1,000 rows, 61 float64 features (one-hot coded), labels ``"Good"``/``"Bad"``.

    ``n_rows`` takes a seeded stratified subset. The file is checked against its pinned SHA-256.

    Raises
    ------
    DependencyError
        The file or the ``rdata`` reader is missing; the message says how to install it.
    IntegrityError
        The file's SHA-256 differs from the pinned one.
    """
    path = find_pinned(_RELPATH, _SHA256, what="German Credit", hint=_HINT)
    df = read_rda_frame(path, "GermanCredit", what="German Credit")
    features = df.drop(columns=[_LABEL])
    X = features.to_numpy(dtype=np.float64)
    y = df[_LABEL].astype(str).to_numpy()
    ds = Dataset(X, y, feature_names=[str(c) for c in features.columns], modality="tabular",
                 name="credit")
    return subset(ds, n_rows, random_state)
