"""What changed between two row tables: rows added, removed and changed, grouped by source.

Keyed by id, a row present on both sides with another hash is *changed*; keyed by content
(no id column) rows are only added or removed, counted as a multiset (a duplicated row is one
row added).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.provenance.manifest import RowTable

__all__ = ["Changes", "compare"]


@dataclass(frozen=True)
class Changes:
    """Keys (ids, or row hashes in hex) of the rows ``added``, ``removed`` and ``changed`` from
    old to new, with each row's source (new side; old side for removed rows)."""

    added: np.ndarray
    removed: np.ndarray
    changed: np.ndarray
    added_sources: np.ndarray
    removed_sources: np.ndarray
    changed_sources: np.ndarray
    unchanged: int

    @property
    def any(self) -> bool:
        return bool(len(self.added) or len(self.removed) or len(self.changed))

    def counts(self) -> dict[str, int]:
        return {"added": len(self.added), "removed": len(self.removed),
                "changed": len(self.changed), "unchanged": self.unchanged}

    def by_source(self) -> pd.DataFrame:
        """Per source: rows added, removed and changed (sources sorted; '' = no source)."""
        frames = [pd.DataFrame({"source": np.asarray(src, dtype=object), "kind": kind})
                  for kind, src in (("added", self.added_sources),
                                    ("removed", self.removed_sources),
                                    ("changed", self.changed_sources))]
        both = pd.concat(frames, ignore_index=True)
        both["source"] = both["source"].fillna("").astype(str)
        if both.empty:
            return pd.DataFrame(columns=["source", "added", "removed", "changed"])
        table = pd.crosstab(both["source"], both["kind"])
        for kind in ("added", "removed", "changed"):
            if kind not in table:
                table[kind] = 0
        return table[["added", "removed", "changed"]].reset_index().rename_axis(None, axis=1)

    def to_dict(self, limit: int = 1000) -> dict[str, Any]:
        """JSON-ready: counts, per-source counts and up to ``limit`` keys of each kind."""
        return {**self.counts(),
                "by_source": self.by_source().to_dict(orient="records"),
                "rows": {kind: [str(k) for k in keys[:limit]] for kind, keys in
                         (("added", self.added), ("removed", self.removed),
                          ("changed", self.changed))}}


def _sources(table: RowTable, index: np.ndarray) -> np.ndarray:
    if table.sources is None:
        return np.full(len(index), None, dtype=object)
    out: np.ndarray = np.asarray(table.sources[index], dtype=object)
    return out


def compare(old: RowTable, new: RowTable) -> Changes:
    """Rows added, removed and changed from ``old`` to ``new`` (both in leaf order)."""
    if len(old.ids) and len(new.ids):
        _, i_old, i_new = np.intersect1d(old.ids, new.ids, assume_unique=True,
                                              return_indices=True)
        same = np.all(old.hashes[i_old] == new.hashes[i_new], axis=1)
        gone = np.setdiff1d(np.arange(old.n_rows), i_old, assume_unique=True)
        fresh = np.setdiff1d(np.arange(new.n_rows), i_new, assume_unique=True)
        keys_old, keys_new = old.key_strings(), new.key_strings()
        changed = i_new[~same]
        return Changes(keys_new[fresh], keys_old[gone], keys_new[changed],
                       _sources(new, fresh), _sources(old, gone), _sources(new, changed),
                       int(same.sum()))
    # keyed by content (or one side keyed, the other not): multiset difference of row hashes
    ho = old.hashes.view("S32").ravel()
    hn = new.hashes.view("S32").ravel()
    fresh, gone = _multiset_minus(hn, ho), _multiset_minus(ho, hn)
    empty = np.empty(0, dtype=object)
    # keys from the uint8 rows: bytes of an S32 view drop trailing zero bytes
    return Changes(new.key_strings()[fresh], old.key_strings()[gone], empty,
                   _sources(new, fresh), _sources(old, gone), empty,
                   new.n_rows - len(fresh))


def _multiset_minus(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Positions in ``a`` of the rows left after removing ``b`` as a multiset."""
    order = np.argsort(a, kind="stable")
    sa = a[order]
    # the k-th copy of a value in a survives when b has fewer than k copies of it
    first = np.searchsorted(sa, sa, side="left")
    rank = np.arange(len(sa)) - first
    in_b = np.searchsorted(np.sort(b), sa, side="right") - np.searchsorted(np.sort(b), sa,
                                                                             side="left")
    out: np.ndarray = np.sort(order[rank >= in_b])
    return out
