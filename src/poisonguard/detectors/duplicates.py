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

**Two phases.** ``fit`` keeps the fitted rows' 64-bit content hashes, sorted, with the exact
group of each fitted row, the feature distance of a near copy and the embedding distance under
which pairs are measured (:class:`DuplicatesState`: one hash, row number and group per fitted
row). Scoring the fitted rows gives the scores above. A row the evidence was not fitted on (a
chunk of a large file) is compared with the fitted rows and with the other rows of its own
chunk: its exact copies are the fitted rows with its hash and the chunk's rows with its hash,
confirmed value by value (the fitted rows concerned are re-read from ``view.evidence``), and
its near copies are its nearest fitted rows (``view.neighbors``) within the near-copy distance
of its features (``view.features`` against ``view.evidence.features``); the table above then
applies to all of them. The fitted rows keep the scores the fitted rows gave: copies spread
across two chunks that are both outside the fitted sample are only seen through the sample
(when it holds a copy too), and near copies within a chunk are not looked for.
"""

from __future__ import annotations

import itertools
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from poisonguard.detectors._base import Calibration, Detector, Scores, register

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence, View

__all__ = ["Duplicates", "DuplicatesState", "exact_groups", "normalise_text"]

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
    return _confirm(*_row_keys(X, modality))


def _confirm(keys: np.ndarray, exact: Any) -> np.ndarray:
    """Exact groups of rows with hashes ``keys`` and exact representations ``exact``: rows whose
    hash repeats, confirmed value by value."""
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


def _stack_exact(parts: list[Any]) -> Any:
    """The exact representations of several sets of rows (from :func:`_row_keys`), one after
    the other."""
    if isinstance(parts[0], pd.DataFrame):
        return pd.concat(parts, ignore_index=True)
    if parts[0].ndim == 1:
        return np.concatenate(parts)
    return np.vstack(parts)


def _edge_distances(F: Any, rows: np.ndarray, cols: np.ndarray, G: Any = None) -> np.ndarray:
    """Euclidean feature distances of the pairs ``(rows[i], cols[i])``: rows of ``F`` and rows of
    ``G`` (default ``F``)."""
    G = F if G is None else G
    out = np.empty(len(rows))
    for start in range(0, len(rows), 65536):
        r, c = rows[start:start + 65536], cols[start:start + 65536]
        diff = F[r] - G[c]
        if sp.issparse(diff):
            out[start:start + len(r)] = np.sqrt(np.asarray(diff.multiply(diff).sum(axis=1)).ravel())
        else:
            out[start:start + len(r)] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def _near_scale(evidence: Evidence, near: float) -> tuple[float, float]:
    """The feature distance of a near copy (``near`` times the typical distance from a fitted row
    to its nearest graph neighbour) and the embedding distance under which pairs are measured
    (half the typical first-neighbour distance there); ``(-1, -1)`` when no near copy can be
    measured."""
    nb = evidence.neighbors
    n, k = nb.indices.shape
    if k == 0 or near <= 0:
        return -1.0, -1.0
    F = evidence.features
    sample = np.unique(np.linspace(0, n - 1, min(n, _TYPICAL_ROWS)).astype(np.int64))
    first = _edge_distances(F, sample, nb.indices[sample, 0])
    positive = first[first > 0]
    if positive.size == 0:
        return -1.0, -1.0
    tol = near * float(np.median(positive))
    # the embedding is a continuous map of the features, so near copies in feature space are
    # also close in it: only edges under half the typical first-neighbour length are checked
    emb_typical = float(np.median(np.asarray(nb.distances, dtype=np.float64)[:, 0]))
    return tol, _PREFILTER * emb_typical


def _near_edges(evidence: Evidence, tol: float, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Graph edges ``(i, j)``, ``i < j``, between fitted rows within feature distance ``tol``
    (measured where the embedding distance is at most ``limit``)."""
    if tol < 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    nb = evidence.neighbors
    emb = np.asarray(nb.distances, dtype=np.float64)
    rows, pos = np.nonzero(emb <= limit)
    cols = nb.indices[rows, pos]
    dist = _edge_distances(evidence.features, rows, cols)
    ok = dist <= tol
    a, b = np.minimum(rows[ok], cols[ok]), np.maximum(rows[ok], cols[ok])
    if a.size == 0:
        return a, b
    pairs = np.unique(np.stack([a, b], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


def near_pairs(evidence: Evidence, near: float) -> tuple[np.ndarray, np.ndarray]:
    """Graph edges ``(i, j)``, ``i < j``, whose feature distance is at most ``near`` times the
    typical distance from a row to its nearest graph neighbour."""
    return _near_edges(evidence, *_near_scale(evidence, near))


def _count_by(*keys: np.ndarray) -> np.ndarray:
    """For each row, how many rows share all of its ``keys``."""
    _, inverse, counts = np.unique(np.stack(keys, axis=1), axis=0, return_inverse=True,
                                   return_counts=True)
    out: np.ndarray = counts[np.asarray(inverse).ravel()]
    return out


def _codes(*values: Any) -> list[np.ndarray]:
    """Integer codes of several arrays of values in one coding (equal values, equal codes)."""
    _, inverse = np.unique(np.concatenate([np.asarray(v, dtype=str) for v in values]),
                           return_inverse=True)
    inverse = np.asarray(inverse).ravel()
    bounds = np.cumsum([0] + [len(v) for v in values])
    return [inverse[a:b] for a, b in itertools.pairwise(bounds)]


@dataclass(frozen=True)
class DuplicatesState:
    """What scoring needs from the fitted rows: their 64-bit content hashes, sorted (``keys``,
    with the fitted row of each in ``order``), the exact group of each fitted row (``groups``,
    -1 for none), the feature distance of a near copy (``tol``, negative when none can be
    measured) and the embedding distance under which pairs are measured (``limit``). One
    hash, row number and group per fitted row, two floats."""

    keys: np.ndarray
    order: np.ndarray
    groups: np.ndarray
    tol: float
    limit: float


@dataclass(frozen=True)
class _Copies:
    """Per row: copies found (``size`` counts the row itself; 1 = none), rows among them with
    the row's label (``same``), whether the conflicting (else any) copies include an exact one,
    and whether one of them comes from another source."""

    size: np.ndarray
    same: np.ndarray
    exact: np.ndarray
    cross: np.ndarray


def _tally(labels: np.ndarray, src: np.ndarray, members: np.ndarray, g: np.ndarray,
           lab: np.ndarray, s: np.ndarray, ends: np.ndarray, agree: np.ndarray,
           other_src: np.ndarray) -> _Copies:
    """Copies of each row of a view: exact ones from its group (``members`` of the view sit at
    these positions of the group arrays ``g``, ``lab``, ``s``, which may hold other rows too),
    near ones from edges (``ends``: the view's row; ``agree``: same label; ``other_src``: the
    partner comes from another source)."""
    n = len(labels)
    size, same = np.ones(n, dtype=np.int64), np.ones(n, dtype=np.int64)
    exact_conflict = np.zeros(n, dtype=bool)
    cross = np.zeros(n, dtype=bool)
    in_group = members >= 0
    if in_group.any():
        at = members[in_group]
        g_size, g_same = _count_by(g)[at], _count_by(g, lab)[at]
        g_src, g_both = _count_by(g, s)[at], _count_by(g, lab, s)[at]
        size[in_group], same[in_group] = g_size, g_same
        exact_conflict[in_group] = g_same < g_size
        # copies from another source: among the other labels when there is a conflict
        other_label_other_src = g_size - g_same - g_src + g_both
        cross[in_group] = np.where(g_same < g_size, other_label_other_src > 0, g_src < g_size)
    if ends.size:
        size += np.bincount(ends, minlength=n)
        same += np.bincount(ends, weights=agree, minlength=n).astype(np.int64)
        near_cross = np.bincount(ends, weights=other_src, minlength=n) > 0
        conflict_cross = np.bincount(ends, weights=other_src & ~agree, minlength=n) > 0
        conflict = same < size
        cross |= np.where(conflict, conflict_cross, near_cross)
    exact = np.where(same < size, exact_conflict, in_group)
    return _Copies(size, same, exact, cross)


def _group_edges(queries: np.ndarray, members: np.ndarray, g: np.ndarray, lab: np.ndarray,
                 s: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate exact copies of rows whose partner is to be named: for each query (a position
    in the group arrays ``g``, ``lab``, ``s``, ``key``; ``members`` are the positions in a
    group) the first two members of each label of its group and the first of each label from
    another source than that label's first (by ``key``). Whatever the filters on label and
    source, the first copy that passes them is among these. Returns the (query, candidate)
    edges, self excluded."""
    if not len(queries):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    order = members[np.lexsort((key[members], lab[members], g[members]))]
    gs, ls, ss = g[order], lab[order], s[order]
    new = np.r_[True, (gs[1:] != gs[:-1]) | (ls[1:] != ls[:-1])]
    start = np.flatnonzero(new)
    combo = np.cumsum(new) - 1
    second = start + 1
    second = second[(second < len(order)) & ~new[np.minimum(second, len(order) - 1)]]
    other = np.flatnonzero(ss != ss[start[combo]])
    other = other[np.r_[True, combo[other][1:] != combo[other][:-1]]] if other.size else other
    cand = np.unique(order[np.concatenate([start, second, other])])
    cand = cand[np.argsort(g[cand], kind="stable")]
    lo = np.searchsorted(g[cand], g[queries], side="left")
    count = np.searchsorted(g[cand], g[queries], side="right") - lo
    q = np.repeat(queries, count)
    c = cand[np.repeat(lo - np.cumsum(count) + count, count) + np.arange(int(count.sum()))]
    keep = q != c
    return q[keep], c[keep]


def _first_partner(n: int, q: np.ndarray, partner: np.ndarray, key: np.ndarray,
                   p_label: np.ndarray, p_src: np.ndarray, labels: np.ndarray, src: np.ndarray,
                   c: _Copies, sources: bool) -> np.ndarray:
    """The edge (index into ``q``) naming each row's copy, -1 for none: among a row's edges
    (``q``: its position in the view), those with another label when its copies conflict, of
    those the ones from another source when the row has a copy from another source and one of
    them does; the least ``key``."""
    conflict = c.same < c.size
    lab_ok = ~conflict[q] | (p_label != labels[q])
    src_ok = p_src != src[q]
    any_src = np.bincount(q, weights=lab_ok & src_ok, minlength=n) > 0
    use_src = sources & c.cross & any_src
    eligible = np.flatnonzero(lab_ok & (src_ok | ~use_src[q]))
    eligible = eligible[np.lexsort((key[eligible], q[eligible]))]
    first = eligible[np.r_[True, q[eligible][1:] != q[eligible][:-1]]] if eligible.size else eligible
    out = np.full(n, -1, dtype=np.int64)
    out[q[first]] = first
    return out


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

    def fit(self, evidence: Evidence) -> DuplicatesState:
        ds = evidence.dataset
        keys, exact = _row_keys(ds.X, ds.modality)
        groups = _confirm(keys, exact)
        order = np.argsort(keys, kind="stable")
        return DuplicatesState(keys[order], order, groups, *_near_scale(evidence, self.near))

    def score(self, view: View, state: DuplicatesState) -> Scores:
        """Probability-like score per row (see the module docstring); 0 for rows without a
        copy, higher = more suspicious. The payload keeps per row the copies found, how many
        carry its label, whether the named copy is exact, and which copy a reason names."""
        c, partner, fitted = (self._in_sample if view.in_sample else self._new_rows)(view, state)
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
        return Scores(out, {"size": c.size, "same": c.same, "exact": c.exact, "cross": c.cross,
                            "partner": partner, "partner_fitted": fitted})

    def _in_sample(self, view: View, state: DuplicatesState
                   ) -> tuple[_Copies, np.ndarray, np.ndarray]:
        evidence = view.evidence
        ds, labels, n = evidence.dataset, evidence.labels, evidence.n_rows
        groups = state.groups
        a, b = _near_edges(evidence, state.tol, state.limit)
        keep = (groups[a] < 0) | (groups[a] != groups[b])  # not already exact copies
        a, b = a[keep], b[keep]
        src = np.zeros(n, dtype=np.int64) if ds.sources is None else np.unique(
            ds.sources, return_inverse=True)[1].ravel()
        members = np.where(groups >= 0, np.cumsum(groups >= 0) - 1, -1)
        in_group = groups >= 0
        g, lab, s = groups[in_group], labels[in_group], src[in_group]
        ends, partner = np.concatenate([a, b]), np.concatenate([b, a])
        c = _tally(labels, src, members, g, lab, s, ends, labels[ends] == labels[partner],
                   src[ends] != src[partner])
        # the copy a reason names: exact copies in row order; near ones, the later rows first
        rows = np.flatnonzero(in_group)
        q_ex, c_ex = _group_edges(members[c.exact & in_group], np.arange(len(rows)), g, lab, s,
                                  rows)
        q_ex, c_ex = rows[q_ex], rows[c_ex]
        near = ~c.exact[ends]
        q = np.concatenate([q_ex, ends[near]])
        mate = np.concatenate([c_ex, partner[near]])
        key = np.concatenate([c_ex, partner[near] + n * (partner[near] < ends[near])])
        edge = _first_partner(n, q, mate, key, labels[mate], src[mate], labels, src, c,
                              ds.sources is not None)
        named = np.where(edge >= 0, mate[np.maximum(edge, 0)] if len(mate) else -1, -1)
        return c, named, np.ones(n, dtype=bool)

    def _new_rows(self, view: View, state: DuplicatesState
                  ) -> tuple[_Copies, np.ndarray, np.ndarray]:
        ev, ds = view.evidence, view.dataset
        fitted_ds = ev.dataset
        n, n_fit = view.n_rows, ev.n_rows
        labels, fit_labels = view.labels, ev.labels
        keys, exact = _row_keys(ds.X, ds.modality)
        # the fitted rows with one of the chunk's hashes (all copies of a chunk row among them)
        lo = np.searchsorted(state.keys, keys, side="left")
        count = np.searchsorted(state.keys, keys, side="right") - lo
        spans = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
        found = np.unique(state.order[spans])
        # exact groups over those fitted rows and the chunk's rows, confirmed value by value
        fit_keys, fit_exact = _row_keys(fitted_ds.take(found).X, fitted_ds.modality) if len(
            found) else (np.zeros(0, dtype=np.uint64), None)
        both = _confirm(np.concatenate([fit_keys, keys]),
                        exact if fit_exact is None else _stack_exact([fit_exact, exact]))
        mine = both[len(found):]
        # near copies: nearest fitted rows within the feature distance of a near copy
        nb = view.neighbors
        rows, pos = np.nonzero(np.asarray(nb.distances, dtype=np.float64) <= state.limit) if (
            state.tol >= 0) else (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        cols = nb.indices[rows, pos]
        if len(rows):
            ok = _edge_distances(view.features, rows, cols, ev.features) <= state.tol
            rows, pos, cols = rows[ok], pos[ok], cols[ok]
        at = np.minimum(np.searchsorted(found, cols), max(len(found) - 1, 0))
        copy = (len(found) > 0) & (found[at] == cols) if len(found) else np.zeros(len(cols), bool)
        copy = copy & (mine[rows] >= 0) & (both[at] == mine[rows])
        rows, pos, cols = rows[~copy], pos[~copy], cols[~copy]
        # sources, coded alike for the fitted rows concerned and the chunk's
        chunk_src, fit_src = ds.sources, fitted_ds.sources
        sources = chunk_src is not None and fit_src is not None
        if chunk_src is not None and fit_src is not None:
            src, src_found, src_cols = _codes(chunk_src, fit_src[found], fit_src[cols])
        else:
            src, src_found, src_cols = (np.zeros(n, np.int64), np.zeros(len(found), np.int64),
                                        np.zeros(len(cols), np.int64))
        # the group arrays: the fitted rows found, then the chunk's rows; only rows in a group
        g_all = both
        lab_all = np.concatenate([fit_labels[found], labels])
        s_all = np.concatenate([src_found, src])
        in_all = np.flatnonzero(g_all >= 0)
        position = np.full(len(g_all), -1)
        position[in_all] = np.arange(len(in_all))
        members = position[len(found):]
        g, lab, s = g_all[in_all], lab_all[in_all], s_all[in_all]
        c = _tally(labels, src, members, g, lab, s, rows, labels[rows] == fit_labels[cols],
                   src[rows] != src_cols)
        # the copy a reason names: a fitted copy before one of the chunk, each in row order;
        # near copies, the nearest first
        global_row = np.concatenate([found, n_fit + np.arange(n)])[in_all]
        q_ex, c_ex = _group_edges(members[c.exact & (members >= 0)], np.arange(len(in_all)), g,
                                  lab, s, global_row)
        q_view = global_row[q_ex] - n_fit
        near = ~c.exact[rows]
        q = np.concatenate([q_view, rows[near]])
        mate = np.concatenate([global_row[c_ex], cols[near]])
        key = np.concatenate([global_row[c_ex], pos[near]])
        edge = _first_partner(n, q, mate, key, np.concatenate([lab[c_ex], fit_labels[cols[near]]]),
                              np.concatenate([s[c_ex], src_cols[near]]), labels, src, c, sources)
        named = np.where(edge >= 0, mate[np.maximum(edge, 0)] if len(mate) else -1, -1)
        fitted = named < n_fit
        return c, np.where(fitted, named, named - n_fit), fitted

    def reasons(self, view: View, scores: Scores, rows: np.ndarray) -> list[str]:
        """The copy (exact or near) a row has, preferring one with another label (and from
        another source), and how many of its copies carry its label."""
        p = scores.payload
        size, same, exact = p["size"], p["same"], p["exact"]
        ds, classes = view.dataset, view.classes
        fit_ds = view.evidence.dataset
        labels, fit_labels = view.labels, view.evidence.labels
        src, fit_src = ds.sources, fit_ds.sources
        default_ids = view.in_sample and ds.has_default_ids
        out = []
        for row in np.asarray(rows, dtype=np.int64).tolist():
            if size[row] <= 1:
                out.append("no exact or near copy of this row")
                continue
            j = int(p["partner"][row])
            other = fit_ds if p["partner_fitted"][row] else ds
            other_label = (fit_labels if p["partner_fitted"][row] else labels)[j]
            other_src = (fit_src if p["partner_fitted"][row] else src)
            what = "exact duplicate" if exact[row] else "near duplicate"
            if view.in_sample:
                name = f"row {j}" if default_ids else f"row {j} (id {str(ds.ids[j])!r})"
            else:
                name = f"row {str(other.ids[j])!r}"
            mine = classes[labels[row]]
            if same[row] < size[row]:
                text = f"{what} of {name} with label {classes[other_label]} instead of {mine}"
                if size[row] > 2:
                    text += f" ({same[row]} of {size[row]} copies labelled {mine})"
            else:
                text = f"{what} of {name}, same label {mine}"
                if size[row] > 2:
                    text += f" ({size[row]} copies)"
            if src is not None and other_src is not None and other_src[j] != src[row]:
                text += f"; the copy comes from source {str(other_src[j])!r}, this row from " \
                        f"{str(src[row])!r}"
            out.append(text)
        return out
