"""``duplicates``: exact and near copies of a row, above all copies that carry another label.

*Exact* copies share the same raw features: numeric rows and images compared value for value
(``-0.0`` equals ``0.0``, integers equal their float), DataFrame rows column by column, text
after normalisation (Unicode NFKC, case folded, whitespace collapsed). Rows are hashed to 64
bits in one pass and only rows whose hash repeats are compared exactly, so this is ``O(n d)``.

*Near* copies are graph neighbours (``evidence.neighbors``) whose encoded features
(``evidence.features``) lie within ``near`` (default 0.1) times the typical feature distance
between a row and its nearest graph neighbour (the median over up to 50,000 evenly spaced
rows, taken where it is not 0). Only graph edges shorter than half the typical first-neighbour
distance in the embedding are measured: the embedding is a continuous map of the features.
In data with one or two continuous dimensions some rows are that close by chance (the share
falls like ``near ** d``); on the bundled real data sets no clean row is.

Scores are probabilities that the row is poisoned or mislabelled (calibration "probability"):

===============================================  ======  ==========
the row's copies                                  exact   near
===============================================  ======  ==========
another label, the row's label in the minority    0.90    0.80
another label, tie                                0.70    0.60
another label, the row's label in the majority    0.40    0.35
same label (a plain copy)                         0.15    0.10
===============================================  ======  ==========

A plain copy adds 0.05 for a group of three or more rows and 0.05 when a copy comes from another
source (``dataset.sources``), so it stays at most 0.25; a conflicting copy from another source
adds 0.05. Rows without any copy score 0.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from poisonguard.detectors._base import Calibration, Detector, register

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence

__all__ = ["Duplicates", "exact_groups", "normalise_text"]

_MINORITY, _TIE, _MAJORITY, _PLAIN = 0.90, 0.70, 0.40, 0.15
_NEAR_DISCOUNT = {_MINORITY: 0.80, _TIE: 0.60, _MAJORITY: 0.35, _PLAIN: 0.10}
_BUMP = 0.05
_TYPICAL_ROWS = 50_000  # rows (evenly spaced) that measure the typical neighbour distance
_PREFILTER = 0.5
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def normalise_text(text: str) -> str:
    """``text`` as compared for exact duplicates: NFKC, case folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, element-wise on uint64 (wraps on purpose)."""
    h = h ^ (h >> np.uint64(30))
    h = h * _M1
    h = h ^ (h >> np.uint64(27))
    h = h * _M2
    out: np.ndarray = h ^ (h >> np.uint64(31))
    return out


def _hash_columns(columns: list[np.ndarray], n: int) -> np.ndarray:
    h = np.zeros(n, dtype=np.uint64)
    for j, col in enumerate(columns):
        h = _mix(h ^ _mix(col + np.uint64(j + 1)))
    return h


def _hash_matrix(bits: np.ndarray) -> np.ndarray:
    """One 64-bit hash per row of a uint64 matrix: a random odd-weighted sum (mod 2**64), mixed.
    Not collision-proof, which is fine: equal hashes are confirmed value by value."""
    weights = np.random.default_rng(20240601).integers(0, 2**63, size=bits.shape[1],
                                                       dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    h = np.zeros(len(bits), dtype=np.uint64)
    for start in range(0, len(bits), 65536):
        h[start:start + 65536] = (bits[start:start + 65536] * weights).sum(axis=1, dtype=np.uint64)
    return _mix(h)


def _numeric_bits(values: np.ndarray) -> np.ndarray:
    v = np.ascontiguousarray(np.asarray(values, dtype=np.float64) + 0.0)  # -0.0 -> 0.0
    return v.view(np.uint64)


def _row_keys(X: Any, modality: str) -> tuple[np.ndarray, Any]:
    """A 64-bit hash per row and an exact, comparable representation of the rows."""
    if isinstance(X, pd.DataFrame):
        cols, exact = [], {}
        for name in X.columns:
            values = X[name]
            if values.dtype.kind in "iufb":
                bits = _numeric_bits(values.to_numpy())
                cols.append(bits)
                exact[name] = bits
            else:
                as_str = values.astype(str).to_numpy(dtype=object)
                cols.append(pd.util.hash_array(as_str, categorize=False))
                exact[name] = as_str
        return _hash_columns(cols, len(X)), pd.DataFrame(exact)
    if modality == "text":
        norm = np.asarray([normalise_text(str(t)) for t in X], dtype=object)
        return pd.util.hash_array(norm, categorize=False), norm
    bits = _numeric_bits(np.asarray(X).reshape(len(X), -1))
    return _hash_matrix(bits), bits


def exact_groups(X: Any, modality: str) -> np.ndarray:
    """Group number ``(n,)`` of every row among its exact copies, -1 for a row without one."""
    keys, exact = _row_keys(X, modality)
    n = len(keys)
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    candidates = np.flatnonzero(counts[inverse] > 1)
    out = np.full(n, -1, dtype=np.int64)
    if candidates.size == 0:
        return out
    # confirm the hash groups value by value (a 64-bit collision must not make a duplicate)
    if isinstance(exact, pd.DataFrame):
        sub = exact.iloc[candidates]
        group = sub.groupby(list(sub.columns), sort=True, dropna=False).ngroup().to_numpy()
    elif exact.ndim == 1:
        _, group = np.unique(exact[candidates].astype(str), return_inverse=True)
    else:
        _, group = np.unique(exact[candidates], axis=0, return_inverse=True)
    group = np.asarray(group).ravel()
    sizes = np.bincount(group)
    keep = sizes[group] > 1
    out[candidates[keep]] = group[keep]
    return out


def _edge_distances(F: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Euclidean feature distances of the pairs ``(rows[i], cols[i])``."""
    out = np.empty(len(rows))
    for start in range(0, len(rows), 65536):
        r, c = rows[start:start + 65536], cols[start:start + 65536]
        diff = F[r] - F[c]
        if sp.issparse(diff):
            out[start:start + len(r)] = np.sqrt(np.asarray(diff.multiply(diff).sum(axis=1)).ravel())
        else:
            out[start:start + len(r)] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def near_pairs(evidence: Evidence, near: float) -> tuple[np.ndarray, np.ndarray]:
    """Graph edges ``(i, j)``, ``i < j``, whose feature distance is at most ``near`` times the
    typical distance from a row to its nearest graph neighbour."""
    nb = evidence.neighbors
    n, k = nb.indices.shape
    if k == 0 or near <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    F = evidence.features
    sample = np.unique(np.linspace(0, n - 1, min(n, _TYPICAL_ROWS)).astype(np.int64))
    first = _edge_distances(F, sample, nb.indices[sample, 0])
    positive = first[first > 0]
    if positive.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    tol = near * float(np.median(positive))
    # the embedding is a continuous map of the features, so near copies in feature space are
    # also close in it: only edges under half the typical first-neighbour length are checked
    emb = np.asarray(nb.distances, dtype=np.float64)
    emb_typical = float(np.median(emb[:, 0]))
    rows, pos = np.nonzero(emb <= _PREFILTER * emb_typical)
    cols = nb.indices[rows, pos]
    dist = _edge_distances(F, rows, cols)
    ok = dist <= tol
    a, b = np.minimum(rows[ok], cols[ok]), np.maximum(rows[ok], cols[ok])
    if a.size == 0:
        return a, b
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def _count_by(*keys: np.ndarray) -> np.ndarray:
    """For each row, how many rows share all of its ``keys``."""
    _, inverse, counts = np.unique(np.stack(keys, axis=1), axis=0, return_inverse=True,
                                   return_counts=True)
    out: np.ndarray = counts[np.asarray(inverse).ravel()]
    return out


@dataclass(frozen=True)
class _Copies:
    """Per row: copies found (``size`` counts the row itself; 1 = none), rows among them with
    the row's label (``same``), whether the conflicting (else any) copies include an exact one,
    and whether one of them comes from another source."""

    groups: np.ndarray
    near_a: np.ndarray
    near_b: np.ndarray
    size: np.ndarray
    same: np.ndarray
    exact: np.ndarray
    cross: np.ndarray

@register
class Duplicates(Detector):
    """Exact and near copies of a row, scored by whether the copies carry another label
    (see the module docstring for the scale). Higher = more suspicious; 0 without copies.

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard import Dataset
    >>> from poisonguard.evidence import Evidence
    >>> X = np.arange(160.0).reshape(80, 2)
    >>> X[5], X[6] = X[4], X[4]  # rows 4, 5, 6 are copies; row 6 carries another label
    >>> y = np.arange(80) % 2
    >>> y[4:7] = [0, 0, 1]
    >>> Duplicates().suspicion(Evidence(Dataset(X, y), random_state=0))[3:8].tolist()
    [0.0, 0.4, 0.4, 0.9, 0.0]
    """

    name = "duplicates"
    two_phase = False  # scores only the rows it was fitted on (one-phase shortcuts)
    summary = "an exact or near copy of another row, above all one with another label"
    requires = ("features", "neighbors", "labels")
    calibration: ClassVar[Calibration] = "probability"
    answers = ("availability", "targeted", "backdoor")
    papers = (
        "Broder. On the Resemblance and Containment of Documents. SEQUENCES 1997",
        "Northcutt, Jiang, Chuang. Confident Learning: Estimating Uncertainty in Dataset Labels. "
        "JAIR 2021",
        "Carlini et al. Poisoning Web-Scale Training Datasets is Practical. IEEE S&P 2024",
    )

    def __init__(self, *, near: float = 0.1) -> None:
        self.near = near

    def _copies(self, evidence: Evidence) -> _Copies:
        ds, labels, n = evidence.dataset, evidence.labels, evidence.n_rows
        groups = exact_groups(ds.X, ds.modality)
        a, b = near_pairs(evidence, self.near)
        keep = (groups[a] < 0) | (groups[a] != groups[b])  # not already exact copies
        a, b = a[keep], b[keep]
        src = np.zeros(n, dtype=np.int64) if ds.sources is None else np.unique(
            ds.sources, return_inverse=True)[1].ravel()
        in_group = groups >= 0
        size, same = np.ones(n, dtype=np.int64), np.ones(n, dtype=np.int64)
        exact_conflict = np.zeros(n, dtype=bool)
        cross = np.zeros(n, dtype=bool)
        if in_group.any():
            g, lab, s = groups[in_group], labels[in_group], src[in_group]
            g_size, g_same = _count_by(g), _count_by(g, lab)
            g_src, g_both = _count_by(g, s), _count_by(g, lab, s)
            size[in_group], same[in_group] = g_size, g_same
            exact_conflict[in_group] = g_same < g_size
            # copies from another source: among the other labels when there is a conflict
            other_label_other_src = g_size - g_same - g_src + g_both
            cross[in_group] = np.where(g_same < g_size, other_label_other_src > 0, g_src < g_size)
        if a.size:
            ends = np.concatenate([a, b])
            partner = np.concatenate([b, a])
            agree = labels[ends] == labels[partner]
            size += np.bincount(ends, minlength=n)
            same += np.bincount(ends, weights=agree, minlength=n).astype(np.int64)
            near_cross = np.bincount(ends, weights=src[ends] != src[partner], minlength=n) > 0
            conflict_cross = np.bincount(ends, weights=(src[ends] != src[partner]) & ~agree,
                                         minlength=n) > 0
            conflict = same < size
            cross |= np.where(conflict, conflict_cross, near_cross)
        exact = np.where(same < size, exact_conflict, in_group)
        return _Copies(groups, a, b, size, same, exact, cross)

    def suspicion(self, evidence: Evidence) -> np.ndarray:
        """Probability-like score per row (see the module docstring); 0 for rows without a
        copy, higher = more suspicious."""
        c = self._copies(evidence)
        share = c.same / c.size
        conflict = c.same < c.size
        base_exact = np.select([share < 0.5, share == 0.5, conflict], [_MINORITY, _TIE, _MAJORITY],
                               _PLAIN)
        base_near = np.select([share < 0.5, share == 0.5, conflict],
                              [_NEAR_DISCOUNT[v] for v in (_MINORITY, _TIE, _MAJORITY)],
                              _NEAR_DISCOUNT[_PLAIN])
        score = np.where(c.exact, base_exact, base_near)
        score += _BUMP * ((~conflict & (c.size >= 3)).astype(np.float64) + c.cross)
        out: np.ndarray = np.where(c.size > 1, np.minimum(score, 1.0), 0.0)
        return out

    def explain(self, evidence: Evidence, rows: np.ndarray) -> list[str]:
        c = self._copies(evidence)
        ds, labels, classes = evidence.dataset, evidence.labels, evidence.classes
        src = ds.sources
        default_ids = ds.has_default_ids
        order = np.argsort(c.groups, kind="stable")
        sorted_groups = c.groups[order]
        out = []
        for row in np.asarray(rows, dtype=np.int64).tolist():
            if c.size[row] <= 1:
                out.append("no exact or near copy of this row")
                continue
            exact_copies = np.empty(0, dtype=np.int64)
            if c.groups[row] >= 0:
                lo, hi = np.searchsorted(sorted_groups, c.groups[row], side="left"), \
                    np.searchsorted(sorted_groups, c.groups[row], side="right")
                exact_copies = order[lo:hi]
                exact_copies = exact_copies[exact_copies != row]
            near_copies = np.concatenate([c.near_b[c.near_a == row], c.near_a[c.near_b == row]])
            conflict = bool(c.same[row] < c.size[row])
            pool = exact_copies if c.exact[row] else near_copies
            if conflict:
                pool = pool[labels[pool] != labels[row]]
            if src is not None and c.cross[row] and np.any(src[pool] != src[row]):
                pool = pool[src[pool] != src[row]]
            j = int(pool[0])
            what = "exact duplicate" if c.exact[row] else "near duplicate"
            name = f"row {j}" if default_ids else f"row {j} (id {str(ds.ids[j])!r})"
            mine = classes[labels[row]]
            if conflict:
                text = f"{what} of {name} with label {classes[labels[j]]} instead of {mine}"
                if c.size[row] > 2:
                    text += f" ({c.same[row]} of {c.size[row]} copies labelled {mine})"
            else:
                text = f"{what} of {name}, same label {mine}"
                if c.size[row] > 2:
                    text += f" ({c.size[row]} copies)"
            if src is not None and src[j] != src[row]:
                text += f"; the copy comes from source {str(src[j])!r}, this row from " \
                        f"{str(src[row])!r}"
            out.append(text)
        return out
