"""``association``: rows that share a rare feature bound to one label while the rest of their
content reads as another label — the footprint of a dirty-label backdoor.

A dirty-label backdoor stamps one trigger (a rare token, a phrase, a sentence, a character or
punctuation pattern in text; a few columns set to one value in a table) on rows of other classes
and relabels them to the target class. A proxy model learns the trigger, so the labels look right
to it, and the triggered rows are each other's nearest neighbours (the default scan reached AUROC
0.68-0.78 on SMS spam with a token or sentence trigger). This detector asks what a row says
without the feature it shares with the others.

1. **Candidates.** Text: word 1-3-grams and character 3-5-grams within words, hashed into
   2**22 buckets per kind (the 50,000 most held of each). Tables: per numeric column its upper
   and lower 1 % tails, each exact value held by >= 0.5 % of the rows and "missing"; per
   categorical column each level. A candidate is held by max(3, 0.1 % of the rows) to 20 % of
   them. Images: not applicable.
2. **Label-bound groups.** Candidates whose rows carry one label ``c`` for >= 90 % of them;
   candidates held by the same rows (the n-grams of one inserted sentence) are one group. No
   binomial test against the base rate: a trigger into the majority class is not significant
   (SMS spam, 87 % ham: 49 triggered rows, all ham, give p = 1e-3 before any correction, rank
   643rd among the word n-grams) — the content test carries the evidence. At most 2,000,000
   (group, row) pairs are scored, the most significant groups first.
3. **Content without the feature.** A logistic regression is cross-fitted in 5 folds (text:
   TF-IDF of the word n-grams held by >= 2 rows; tables: standardised columns, one-hot levels).
   For each row of a group labelled ``c`` the features behind the group — those held >= 80 %
   inside it — are ablated (text: their n-grams dropped, the row renormalised; tables: their
   columns replaced by the Gaussian conditional mean given the other columns) and the held-out
   model reads the rest: ``e = 1 - min(1, P(c | rest) / pi_c)`` is 0 when the rest agrees with
   ``c`` or says nothing, near 1 when it reads as another class. Plugging in the column mean, or
   ablating what is held >= 50 % inside, flagged 17-27 % of clean iris (a mean petal width
   reads as versicolor); with both as above, none. Groups scoring >= 0.3 (step 4) are suspects:
   a second pass also ablates the features of every suspect of the same class, for triggers
   spread over many words (homoglyphs, an archaic style: recall at 0.5 from 0.40 to 0.64).
4. **Score.** ``d_g``, the mean ``e`` over the group's rows labelled ``c`` plus 5 pseudo-rows at
   ``d0_c`` (the mean ``e`` of all rows labelled ``c``, nothing ablated), gives
   ``p_g = clip((d_g - d0_c) / (0.5 - d0_c), 0, 1)`` times a purity factor rising from 0 at 90 %
   to 1 at 95 %. A row scores the most over its groups of ``p_g (0.4 + 0.6 r)``, ``r`` its own
   ``e`` on the scale of ``p_g``, so that the natural rows of a group made mostly of triggered
   ones stay under 0.5. Rows in no group score 0.

Measured (``backdoor``, seed 0, flagged = score >= 0.5). SMS spam into ham: token, phrase,
sentence, punct AUROC 0.999-1.000 at 1 % and 3 % (precision 0.96-1.00, recall 0.96-0.98),
char 0.98 / 0.97, style 0.96; into spam the same four 1.000, char and style 0.6-0.75 (a third of
those rows hold no word the trigger rewrites; on the rewritten rows char 1.000, style 0.84).
Tables at 3 %: ``feature``, ``rare``, ``common`` on breast cancer, spambase and wine
0.999-1.000; ``rare`` on a 100,000 x 20 table with sparse columns 1.000 (wine at 1 % is two
rows, under the 3-row minimum). Clean: no row reaches 0.5 on SMS spam, breast cancer, wine,
iris, spambase, pima, credit, penguins, house votes or the synthetic sets (highest 0.31).
Added to the default scan it lifts SMS spam with a sentence trigger at 3 % from AUROC 0.73 to
1.00 and the triggered rows flagged from 0 % to 97 %; on clean SMS spam, breast cancer and wine
the scan flags the same share as before. Time, 2 shared cores: SMS spam 1-2.5 s, the
100,000-row table 3-4 s.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from poisonguard.detectors._base import Calibration, Detector, register

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence

__all__ = ["Association", "AssociationResult", "association"]

_MIN_ROWS, _MIN_SHARE, _MAX_SHARE = 3, 0.001, 0.2
_TAIL, _VALUE_SHARE, _MAX_LEVELS = 0.01, 0.005, 64
_PURITY, _PURITY_FULL = 0.9, 0.95
_INSIDE = 0.8
_FOLDS = 5
_PSEUDO, _CENTER, _FLOOR, _SUSPECT = 5.0, 0.5, 0.4, 0.3
_MAX_PAIRS = 2_000_000  # (group, row) pairs scored, the most significant groups first
_BUCKETS = 2**22
_MAX_CANDIDATES = 50_000  # per kind of n-gram, the most held
_MAX_CONTENT = 100_000  # word n-grams the content model reads, the most held
_NGRAMS = {"word": ("word", (1, 3)), "char": ("char_wb", (3, 5))}
_C_TEXT, _C_TABLE = 10.0, 1.0
_ABSENT = -30.0  # logit of a class a training fold lacks
_NAME_OVERLAP = 0.9


@dataclass(frozen=True)
class _Features:
    """Candidate features and the content they are ablated from.

    ``candidates`` ``(n, q)`` marks the rows holding each candidate; ``indicators`` ``(n, r)`` the
    features whose concentration inside a group decides what is ablated, ``to_content`` ``(r,
    v)`` the content columns behind each; ``content`` ``(n, v)`` is what the model reads (sparse,
    rows of unit length, for text; dense and standardised for tables)."""

    candidates: sp.csc_matrix
    names: tuple[str, ...]
    kinds: np.ndarray
    indicators: sp.csc_matrix
    to_content: sp.csr_matrix
    content: Any


@dataclass(frozen=True)
class AssociationResult:
    """Per row ``scores`` (higher = more suspicious) and ``group`` (the group that gave the score,
    -1 for none); per group its ``feature`` (a candidate index), ``size`` (rows holding it),
    ``purity``, ``label`` code, ``share`` (``d_g``), ``p_label`` (mean ``P(label | rest)``),
    ``other`` (the class the rest reads as) and ``prior`` per class."""

    scores: np.ndarray
    group: np.ndarray
    feature: np.ndarray
    size: np.ndarray
    purity: np.ndarray
    label: np.ndarray
    share: np.ndarray
    p_label: np.ndarray
    other: np.ndarray
    prior: np.ndarray
    features: _Features | None


def _hashed(texts: list[str], kind: str) -> sp.csc_matrix:
    from sklearn.feature_extraction.text import HashingVectorizer

    analyzer, ngrams = _NGRAMS[kind]
    vec = HashingVectorizer(analyzer=analyzer, ngram_range=ngrams, n_features=_BUCKETS,
                            binary=True, norm=None, alternate_sign=False, dtype=np.float64)
    return vec.transform(texts).tocsc()


def _text_features(texts: list[str], lo: int, hi: int) -> _Features:
    from sklearn.feature_extraction.text import TfidfTransformer

    words, chars = _hashed(texts, "word"), _hashed(texts, "char")
    blocks, names, kinds = [], [], []
    for kind, M in (("word", words), ("char", chars)):
        keep = _most_held(np.diff(M.indptr), lo, hi, _MAX_CANDIDATES)
        blocks.append(M[:, keep])
        names += [str(b) for b in keep]
        kinds += [kind] * len(keep)
    shared = words[:, _most_held(np.diff(words.indptr), 2, len(texts), _MAX_CONTENT)]
    content = TfidfTransformer(sublinear_tf=True).fit_transform(shared).tocsr() if (
        shared.shape[1]) else sp.csr_matrix((len(texts), 0))
    return _Features(sp.hstack(blocks, format="csc"), tuple(names), np.asarray(kinds),
                     shared.tocsc(), sp.identity(shared.shape[1], format="csr"), content)


def _most_held(df: np.ndarray, lo: int, hi: int, most: int) -> np.ndarray:
    """Sorted indices of the (at most ``most``) columns held by the most rows within
    ``[lo, hi]``."""
    keep = np.flatnonzero((df >= lo) & (df <= hi))
    return np.sort(keep[np.argsort(-df[keep], kind="stable")[:most]])


def _column_candidates(v: np.ndarray, name: str, lo: int, hi: int,
                       value_rows: int) -> list[tuple[np.ndarray, str]]:
    out: list[tuple[np.ndarray, str]] = []
    present = ~np.isnan(v)
    out.append((~present, f"{name} is missing"))
    if not present.any():
        return out
    top, bottom = np.quantile(v[present], [1 - _TAIL, _TAIL])
    out.append((present & (v >= top), f"{name} >= {top:.6g}"))
    out.append((present & (v <= bottom), f"{name} <= {bottom:.6g}"))
    values, inverse, counts = np.unique(v[present], return_inverse=True, return_counts=True)
    where = np.flatnonzero(present)
    for k in np.flatnonzero((counts >= max(lo, value_rows)) & (counts <= hi)):
        held = np.zeros(len(v), dtype=bool)
        held[where[inverse == k]] = True
        out.append((held, f"{name} = {values[k]:.6g}"))
    return out


def _table_features(X: Any, feature_names: tuple[str, ...], lo: int, hi: int) -> _Features:
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X),
                                                                 columns=list(feature_names))
    n = len(frame)
    blocks: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    names: list[str] = []
    source: list[tuple[int, int]] = []
    width = 0
    for j, name in enumerate(frame.columns):
        col = frame.iloc[:, j]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            v = col.to_numpy(dtype=np.float64, na_value=np.nan)
            filled = np.where(np.isnan(v), np.nanmedian(v) if (~np.isnan(v)).any() else 0.0, v)
            sd = filled.std()
            blocks.append(((filled - filled.mean()) / sd if sd > 0 else np.zeros(n))[:, None])
            found = _column_candidates(v, str(name), lo, hi, int(np.ceil(_VALUE_SHARE * n)))
        else:
            level = col.astype(str).where(col.notna(), "<missing>").to_numpy()
            values, inverse, counts = np.unique(level, return_inverse=True, return_counts=True)
            kept = np.argsort(-counts, kind="stable")[:_MAX_LEVELS]
            kept = kept[counts[kept] >= lo]
            onehot = (inverse[:, None] == kept[None, :]).astype(np.float64)
            blocks.append(onehot - onehot.mean(axis=0) if len(kept) else np.zeros((n, 1)))
            found = [(inverse == k, f"{name} = {values[k]}")
                     for k in np.flatnonzero((counts >= lo) & (counts <= hi))]
        for held, label in found:
            if lo <= held.sum() <= hi:
                rows.append(np.flatnonzero(held))
                names.append(label)
                source.append((width, width + blocks[-1].shape[1]))
        width += blocks[-1].shape[1]
    content = np.hstack(blocks) if blocks else np.zeros((n, 0))
    cand = _indicator(rows, n)
    to_content = _indicator([np.arange(a, b) for a, b in source], width).T.tocsr()
    return _Features(cand, tuple(names), np.full(len(rows), "table"), cand, to_content, content)


def _indicator(columns: list[np.ndarray], n: int) -> sp.csc_matrix:
    """``(n, len(columns))`` binary matrix whose column ``j`` marks the rows ``columns[j]``."""
    indptr = np.zeros(len(columns) + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(c) for c in columns], dtype=np.int64)
    indices = np.concatenate(columns).astype(np.int64) if columns else np.zeros(0, np.int64)
    return sp.csc_matrix((np.ones(len(indices)), indices, indptr), shape=(n, len(columns)))


def _fit_fold(F: Any, y: np.ndarray, n_classes: int, C: float,
              random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(v, n_classes)`` and intercepts of a logistic regression on ``F``, ``y``; one
    logit per class (a binary model's first class at 0), classes absent here at ``_ABSENT``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    W = np.zeros((F.shape[1], n_classes))
    b = np.full(n_classes, _ABSENT)
    present = np.unique(y)
    b[present] = 0.0
    if len(present) < 2 or F.shape[1] == 0:
        return W, b
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if len(present) == 2:
            # the dual problem is the faster one when columns outnumber rows (text: 30x)
            model = LogisticRegression(C=C, solver="liblinear", dual=F.shape[1] > F.shape[0],
                                       random_state=random_state)
            model.fit(F, y == present[1])
            W[:, present[1]], b[present[1]] = model.coef_[0], model.intercept_[0]
        else:
            model = LogisticRegression(C=C, max_iter=300).fit(F, y)
            W[:, present], b[present] = model.coef_.T, model.intercept_
    return W, b


def _softmax(Z: np.ndarray) -> np.ndarray:
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def _label_bound_groups(cand: sp.csc_matrix, labels: np.ndarray,
                        n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Representative candidate, majority label and purity of each label-bound group (candidates
    with identical rows merged), the most significant first."""
    from scipy.stats import binom

    n = len(labels)
    cand.sort_indices()
    size = np.diff(cand.indptr)
    onehot = sp.csr_matrix((np.ones(n), (np.arange(n), labels)), shape=(n, n_classes))
    per = np.asarray((cand.T @ onehot).todense())
    major = per.argmax(axis=1)
    purity = per.max(axis=1) / np.maximum(size, 1)
    seen: set[bytes] = set()
    reps = []
    for j in np.flatnonzero(purity >= _PURITY):
        key = cand.indices[cand.indptr[j]:cand.indptr[j + 1]].tobytes()
        if key not in seen:
            seen.add(key)
            reps.append(j)
    rep = np.asarray(reps, dtype=np.int64)
    prior = np.bincount(labels, minlength=n_classes) / n
    held = per[rep, major[rep]]
    logp = binom.logsf(held - 1, size[rep], prior[major[rep]])
    order = np.argsort(logp, kind="stable")
    order = order[np.cumsum(held[order]) <= _MAX_PAIRS]
    return rep[order], major[rep[order]], purity[rep[order]]


def association(evidence: Evidence) -> AssociationResult:
    """Score every row of ``evidence`` (see the module docstring); cached on the evidence."""
    return evidence.memo(("association", "result"), lambda: _associate(evidence))


def _nothing(n: int, prior: np.ndarray) -> AssociationResult:
    none, nothing = np.zeros(0, dtype=np.int64), np.zeros(0)
    return AssociationResult(np.zeros(n), np.full(n, -1), none, none, nothing, none, nothing,
                             nothing, none, prior, None)


def _associate(evidence: Evidence) -> AssociationResult:
    ds, labels = evidence.dataset, evidence.labels
    n, n_classes = evidence.n_rows, len(evidence.classes)
    prior = np.bincount(labels, minlength=n_classes) / n
    lo = max(_MIN_ROWS, int(np.ceil(_MIN_SHARE * n)))
    hi = int(_MAX_SHARE * n)
    if n_classes < 2 or hi < lo or ds.modality == "image":
        return _nothing(n, prior)
    if ds.modality == "text":
        feats = _text_features([str(t) for t in np.asarray(ds.X, dtype=object)], lo, hi)
    else:
        feats = _table_features(ds.X, ds.feature_names, lo, hi)
    rep, label, purity = _label_bound_groups(feats.candidates, labels, n_classes)
    if len(rep) == 0:
        return _nothing(n, prior)
    # the content model, cross-fitted: no row is read by a model that saw it
    F, sparse = feats.content, ds.modality == "text"
    folds = np.random.default_rng(evidence.random_state).permutation(n) % min(_FOLDS, n)
    fitted = [_fit_fold(F[folds != f], labels[folds != f], n_classes,
                        _C_TEXT if sparse else _C_TABLE, evidence.random_state)
              for f in range(int(folds.max()) + 1)]
    W = np.stack([w for w, _ in fitted])
    bias = np.stack([b for _, b in fitted])[folds]
    Z = bias.copy()
    for f in range(len(fitted)):
        Z[folds == f] += np.asarray(F[folds == f] @ W[f])
    e_all = np.clip(1.0 - _softmax(Z)[np.arange(n), labels] / prior[labels], 0.0, 1.0)
    d0 = np.array([e_all[labels == c].mean() if (labels == c).any() else 0.0
                   for c in range(n_classes)])
    # what each group ablates: the features held >= 80 % inside it
    groups = feats.candidates[:, rep].tocsc()
    inside = (groups.T @ feats.indicators).tocsr()
    df = np.diff(feats.indicators.indptr)
    inside.data = ((inside.data >= _INSIDE * df[inside.indices]) & (df[inside.indices] >= lo)
                   ).astype(np.float64)
    ablate = _binary(inside @ feats.to_content)
    # (group, row) pairs: the rows of each group that carry its label
    pairs = groups.tocoo()
    keep = labels[pairs.row] == label[pairs.col]
    order = np.lexsort((pairs.row[keep], pairs.col[keep]))
    pg, pr = pairs.col[keep][order], pairs.row[keep][order]
    m = len(rep)
    count = np.maximum(np.bincount(pg, minlength=m), 1)
    gate = np.clip((purity - _PURITY) / (_PURITY_FULL - _PURITY), 0.0, 1.0)
    scale = np.maximum(_CENTER - d0, 0.05)

    def evaluate(abl: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        P = _ablated(F, W, Z, bias, folds, abl, pg, pr, sparse)
        e = np.clip(1.0 - P[np.arange(len(pr)), label[pg]] / prior[label[pg]], 0.0, 1.0)
        share = (np.bincount(pg, weights=e, minlength=m) + _PSEUDO * d0[label]) / (
            count + _PSEUDO)
        return e, P, share, np.clip((share - d0[label]) / scale[label], 0.0, 1.0) * gate

    e, P, share, p_group = evaluate(ablate)
    suspect = p_group >= _SUSPECT
    if suspect.any():  # ablate the features of a class's suspects in all its groups
        by_class = sp.csr_matrix((np.ones(int(suspect.sum())),
                                  (label[suspect], np.flatnonzero(suspect))),
                                 shape=(n_classes, m)) @ ablate
        e, P, share, p_group = evaluate(_binary(ablate + _binary(by_class)[label]))
    r = np.clip((e - d0[label[pg]]) / scale[label[pg]], 0.0, 1.0)
    pair_score = p_group[pg] * (_FLOOR + (1.0 - _FLOOR) * r)
    # each row keeps its highest pair (ties: the purer group, then the one reading most as
    # another class)
    best = np.lexsort((share[pg], purity[pg], pair_score, pr))
    last = best[np.r_[pr[best][1:] != pr[best][:-1], True]]
    scores, group = np.zeros(n), np.full(n, -1)
    scores[pr[last]], group[pr[last]] = pair_score[last], pg[last]
    mean_p = np.stack([np.bincount(pg, weights=P[:, k], minlength=m) for k in range(n_classes)],
                      axis=1) / count[:, None]
    rival = mean_p.copy()
    rival[np.arange(m), label] = -1.0
    return AssociationResult(scores, group, rep, np.diff(feats.candidates.indptr)[rep], purity,
                             label, share, mean_p[np.arange(m), label], rival.argmax(axis=1),
                             prior, feats)


def _binary(M: Any) -> sp.csr_matrix:
    out = sp.csr_matrix(M)
    out.data[:] = 1.0
    out.eliminate_zeros()
    return out


def _ablated(F: Any, W: np.ndarray, Z: np.ndarray, bias: np.ndarray, folds: np.ndarray,
             abl: sp.csr_matrix, pg: np.ndarray, pr: np.ndarray, sparse: bool) -> np.ndarray:
    """Held-out class probabilities ``(pairs, n_classes)`` of each (group ``pg``, row ``pr``)
    pair, the group's ablated columns (rows of ``abl``) taken out of the row."""
    n_classes = W.shape[2]
    if sparse:
        # text: drop the ablated terms of the logits and renormalise the rest of the row
        used = np.unique(abl.indices)
        gone = abl[:, used].tocsr()[pg].multiply(F[:, used].tocsr()[pr]).tocoo()
        weights = W[folds[pr[gone.row]], used[gone.col]]
        drop = np.stack([np.bincount(gone.row, weights=gone.data * weights[:, k],
                                     minlength=len(pr)) for k in range(n_classes)], axis=1)
        lost = np.bincount(gone.row, weights=gone.data ** 2, minlength=len(pr))
        norm = np.asarray(F.multiply(F).sum(axis=1)).ravel()[pr]
        rest = np.clip(norm - lost, 0.0, None)
        factor = np.where(rest > 1e-9, 1.0 / np.sqrt(np.maximum(rest, 1e-12)), 0.0)
        return _softmax(bias[pr] + (Z[pr] - bias[pr] - drop) * factor[:, None])
    # tables: the ablated columns take their Gaussian conditional mean given the other columns
    v = F.shape[1]
    precision = _precision(F)
    logits = np.zeros((len(pr), n_classes))
    starts = np.searchsorted(pg, np.arange(abl.shape[0] + 1))
    for g in np.flatnonzero(np.diff(starts)):
        a, b = starts[g], starts[g + 1]
        cols, rows = abl.indices[abl.indptr[g]:abl.indptr[g + 1]], pr[a:b]
        X = np.array(F[rows], dtype=np.float64)
        if len(cols):
            others = np.setdiff1d(np.arange(v), cols)
            X[:, cols] = -X[:, others] @ np.linalg.solve(
                precision[np.ix_(cols, cols)], precision[np.ix_(cols, others)]).T
        for f in np.unique(folds[rows]):
            mine = folds[rows] == f
            logits[a:b][mine] = X[mine] @ W[f] + bias[rows[mine]]
    return _softmax(logits)


def _precision(F: np.ndarray) -> np.ndarray:
    """Inverse of the (ridged) covariance of the standardised columns ``F``."""
    # einsum, not F.T @ F: OpenBLAS took 3 s on a C-ordered 100,000 x 20 matrix, einsum 0.02 s
    return np.linalg.inv(np.einsum("ij,ik->jk", F, F) / len(F) + 1e-3 * np.eye(F.shape[1]))


def _feature_name(evidence: Evidence, result: AssociationResult, group: int, row: int) -> str:
    """The group's feature as a reader sees it in ``row`` (one of its rows): for text the longest
    run of words covered by the word n-grams held by nearly the same rows (Jaccard >= 0.9; else
    the longest such character n-gram); for tables the condition."""
    feats = result.features
    assert feats is not None
    j = int(result.feature[group])
    if feats.kinds[j] == "table":
        return feats.names[j]
    from sklearn.feature_extraction.text import HashingVectorizer

    cand = feats.candidates
    rows = cand.indices[cand.indptr[j]:cand.indptr[j + 1]]
    # the candidates held by (nearly) the same rows: the other n-grams of one inserted sentence
    held = np.zeros(cand.shape[0])
    held[rows] = 1.0
    overlap = cand.T @ held
    same = np.flatnonzero(overlap >= _NAME_OVERLAP * (np.diff(cand.indptr) + len(rows) - overlap))
    text = HashingVectorizer().build_preprocessor()(
        str(np.asarray(evidence.dataset.X, dtype=object)[row]))
    words = _covered(HashingVectorizer().build_tokenizer()(text), " ", _NGRAMS["word"][1],
                     {int(feats.names[k]) for k in same if feats.kinds[k] == "word"})
    if any(ch.isalnum() for ch in words):
        return words
    chars = {int(feats.names[k]) for k in same if feats.kinds[k] == "char"}
    runs = [_covered(list(f" {w} "), "", _NGRAMS["char"][1], chars) for w in text.split()]
    return max([words, *runs], key=len).strip() or "?"


def _covered(tokens: list[str], sep: str, sizes: tuple[int, int], buckets: set[int]) -> str:
    """The longest run of ``tokens`` covered by n-grams (``sizes``, joined by ``sep``) whose
    hash bucket is in ``buckets``, joined by ``sep``."""
    covered = np.zeros(len(tokens) + 1, dtype=bool)
    for size in range(sizes[0], sizes[1] + 1):
        for i in range(len(tokens) - size + 1):
            if _bucket(sep.join(tokens[i:i + size])) in buckets:
                covered[i:i + size] = True
    runs = np.split(np.arange(len(covered)), np.flatnonzero(~covered))
    longest = max(runs, key=lambda run: int(covered[run].sum()))
    return sep.join(tokens[int(i)] for i in longest if covered[i])


def _bucket(gram: str) -> int:
    """The hash bucket of ``gram``, as :class:`~sklearn.feature_extraction.text.HashingVectorizer`
    computes it."""
    from sklearn.utils import murmurhash3_32

    return abs(int(murmurhash3_32(gram, seed=0))) % _BUCKETS


@register
class Association(Detector):
    """Rows sharing a rare feature bound to one label whose other content reads as another label;
    the score is the probability that the row carries a backdoor trigger (higher = more
    suspicious; 0 for rows without such a feature).

    Examples
    --------
    >>> import numpy as np
    >>> from poisonguard.attacks import get_attack
    >>> from poisonguard.datasets import load_dataset
    >>> from poisonguard.evidence import Evidence
    >>> res = get_attack("backdoor")(trigger="rare", rate=0.03).poison(
    ...     load_dataset("breast_cancer"), rng=np.random.default_rng(0))
    >>> scores = Association().suspicion(Evidence(res.dataset, random_state=0))
    >>> bool((scores[res.mask] >= 0.5).all()), int((scores[~res.mask] >= 0.5).sum())
    (True, 0)
    """

    name = "association"
    two_phase = False  # scores only the rows it was fitted on (one-phase shortcuts)
    summary = "shares a rare, label-bound feature while the rest of the row reads as another label"
    requires = ("labels",)
    calibration: ClassVar[Calibration] = "probability"
    answers = ("backdoor",)
    papers = ("Dai, Chen and Li. A Backdoor Attack Against LSTM-Based Text Classification "
              "Systems. IEEE Access 2019",
              "Chen and Dai. Mitigating Backdoor Attacks in LSTM-Based Text Classification "
              "Systems by Backdoor Keyword Identification. Neurocomputing 2021",
              "Chen et al. BadNL: Backdoor Attacks against NLP Models with Semantic-preserving "
              "Improvements. ACSAC 2021")

    def applies(self, evidence: Evidence) -> str | None:
        if evidence.dataset.modality == "image":
            return "images have no discrete features to share (patch triggers: spectral, clusters)"
        if len(evidence.classes) < 2:
            return "needs at least two classes"
        return super().applies(evidence)

    def suspicion(self, evidence: Evidence) -> np.ndarray:
        return association(evidence).scores.copy()

    def explain(self, evidence: Evidence, rows: np.ndarray) -> list[str]:
        """The shared feature, how many rows hold it, their label and what the rest reads as."""
        result = association(evidence)
        classes = evidence.classes
        lines = []
        for row in np.asarray(rows, dtype=np.int64):
            g = int(result.group[row])
            if g < 0:
                lines.append("shares no rare, label-bound feature with other rows")
                continue
            c = int(result.label[g])
            cls, p, base = classes[c], result.p_label[g], result.prior[c]
            rest = (f"their content reads as {classes[int(result.other[g])]!s}" if p < base
                    else "their content agrees")
            lines.append(f"shares {_feature_name(evidence, result, g, int(row))!r} with "
                         f"{int(result.size[g]) - 1} other rows, {100 * result.purity[g]:.0f} % "
                         f"labelled {cls!s}; without it {rest} (P({cls!s}) {p:.2f} against "
                         f"{base:.2f})")
        return lines
