"""Reading R data files (``.rda`` / ``.RData``) with the ``rdata`` package, quietly."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from poisonguard.errors import DependencyError, IntegrityError

__all__ = ["read_rda_frame"]


def read_rda_frame(path: Path, name: str, *, what: str) -> Any:
    """The R data frame ``name`` stored in ``path``, as a pandas DataFrame.

    ``rdata`` warns "Unknown encoding. Assumed ASCII." for every string of files written by
    older R versions; the data sets read here are ASCII, so the warning is silenced.

    Raises
    ------
    DependencyError
        ``rdata`` is not installed; ``what`` names the data set in the message.
    IntegrityError
        The file holds no object called ``name``.
    """
    try:
        import rdata
    except ImportError as exc:
        raise DependencyError(f"reading {what} needs the 'rdata' package: pip install rdata "
                              "(or pip install 'poisonguard[data]')") from exc
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Unknown encoding", category=UserWarning)
        frames = rdata.read_rda(path)
    if name not in frames:
        raise IntegrityError(f"'{path}' holds no {name!r} object (got {sorted(frames)})")
    return frames[name]
