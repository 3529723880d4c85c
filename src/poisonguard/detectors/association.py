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

**Two phases.** The fitted rows are scored as above (cross-fitted; cached on the evidence).
``fit`` keeps what new rows need (:class:`AssociationState`): the label-bound groups whose
``p_g`` is positive (the others cannot raise a score; at most the 1,000 most probable), each
with its feature (a word or character n-gram's hash bucket, or a table condition such as
``x3 >= 4.2`` with the fitted threshold), label, purity, ``p_g``, ``d_g`` and its ablated
content columns (its own, and per class the suspects'), ``d0`` and the scale per class, and
the content model: the mean of the fold models' weights (a row outside the fitted rows was
held out by all of them), with the fitted TF-IDF vocabulary (at most 100,000 word n-grams) or
each column's encoding and the columns' precision. A new row holding a group's feature and
carrying its label is read by that model with the group's features ablated, exactly as in
step 3, and scored as in step 4 against the fitted group's ``p_g`` and ``d0``; it keeps its
highest pair. A feature held by too few fitted rows to form a group (fewer than max(3, 0.1 %)
of them) is not seen in new rows: a trigger must reach the fitted sample. Measured (fitted on
70 %, the other 30 % scored, seed 0): SMS spam token, sentence, phrase and punct triggers
AUROC 0.999-1.000 on the new rows, breast cancer's rare, feature and common 1.000, and no
clean new row of SMS spam, wine, penguins or iris reaches 0.1.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from poisonguard.detectors._base import Calibration, Detector, Scores, register

if TYPE_CHECKING:
    from poisonguard.evidence import Evidence, View

__all__ = ["Association", "AssociationResult", "AssociationState", "association"]

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
    conditions: tuple[tuple[int, str, Any], ...] = ()
    encoders: tuple[_Encoder, ...] = ()
    vocabulary: np.ndarray | None = None
    tfidf: Any = None


@dataclass(frozen=True)
class _Encoder:
    """How one table column became content columns: numeric (``fill`` for a missing value, then
    ``(v - mean) / sd``, or 0 for a constant column) or categorical (one-hot over ``levels``,
    centred by ``means``)."""

    numeric: bool
    fill: float = 0.0
    mean: float = 0.0
    sd: float = 0.0
    levels: tuple[str, ...] = ()
    means: np.ndarray | None = None


@dataclass(frozen=True)
class _Content:
    """What scoring new rows needs besides the groups: the fold models' mean weights ``(v,
    n_classes)`` and intercepts, each group's own ablation ``(groups, v)``, the suspects'
    features ablated in every group of their class (``(n_classes, v)``, ``None`` without
    suspects), each group's probability ``p_g``, and ``d0`` and the scale per class."""

    W: np.ndarray
    b: np.ndarray
    ablate: sp.csr_matrix
    suspects: sp.csr_matrix | None
    p_group: np.ndarray
    d0: np.ndarray
    scale: np.ndarray


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
    content: _Content | None = None


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
    vocabulary = _most_held(np.diff(words.indptr), 2, len(texts), _MAX_CONTENT)
    shared = words[:, vocabulary]
    tfidf = TfidfTransformer(sublinear_tf=True) if shared.shape[1] else None
    content = tfidf.fit_transform(shared).tocsr() if tfidf is not None else sp.csr_matrix(
        (len(texts), 0))
    return _Features(sp.hstack(blocks, format="csc"), tuple(names), np.asarray(kinds),
                     shared.tocsc(), sp.identity(shared.shape[1], format="csr"), content,
                     vocabulary=vocabulary, tfidf=tfidf)


def _most_held(df: np.ndarray, lo: int, hi: int, most: int) -> np.ndarray:
    """Sorted indices of the (at most ``most``) columns held by the most rows within
    ``[lo, hi]``."""
    keep = np.flatnonzero((df >= lo) & (df <= hi))
    return np.sort(keep[np.argsort(-df[keep], kind="stable")[:most]])


def _column_candidates(v: np.ndarray, name: str, lo: int, hi: int,
                       value_rows: int) -> list[tuple[np.ndarray, str, str, Any]]:
    """A numeric column's candidates: the rows holding each, its name, and its condition
    (``missing``, ``ge`` / ``le`` a tail bound, ``eq`` a value) for :func:`_holds`."""
    out: list[tuple[np.ndarray, str, str, Any]] = []
    present = ~np.isnan(v)
    out.append((~present, f"{name} is missing", "missing", None))
    if not present.any():
        return out
    top, bottom = np.quantile(v[present], [1 - _TAIL, _TAIL])
    out.append((present & (v >= top), f"{name} >= {top:.6g}", "ge", float(top)))
    out.append((present & (v <= bottom), f"{name} <= {bottom:.6g}", "le", float(bottom)))
    values, inverse, counts = np.unique(v[present], return_inverse=True, return_counts=True)
    where = np.flatnonzero(present)
    for k in np.flatnonzero((counts >= max(lo, value_rows)) & (counts <= hi)):
        held = np.zeros(len(v), dtype=bool)
        held[where[inverse == k]] = True
        out.append((held, f"{name} = {values[k]:.6g}", "eq", float(values[k])))
    return out


def _numeric(col: pd.Series) -> np.ndarray:
    out: np.ndarray = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64,
                                                                    na_value=np.nan)
    return out


def _levels(col: pd.Series) -> np.ndarray:
    out: np.ndarray = col.astype(str).where(col.notna(), "<missing>").to_numpy()
    return out


def _holds(frame: pd.DataFrame, condition: tuple[int, str, Any]) -> np.ndarray:
    """The rows of ``frame`` meeting a table candidate's condition (column position, kind,
    value)."""
    j, op, value = condition
    col = frame.iloc[:, j]
    if op == "level":
        held: np.ndarray = _levels(col) == value
        return held
    v = _numeric(col)
    present = ~np.isnan(v)
    with np.errstate(invalid="ignore"):
        held = {"missing": ~present, "ge": present & (v >= value), "le": present & (v <= value),
                "eq": present & (v == value)}[op]
    return held


def _table_features(X: Any, feature_names: tuple[str, ...], lo: int, hi: int) -> _Features:
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X),
                                                                 columns=list(feature_names))
    n = len(frame)
    blocks: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    names: list[str] = []
    conditions: list[tuple[int, str, Any]] = []
    encoders: list[_Encoder] = []
    source: list[tuple[int, int]] = []
    width = 0
    for j, name in enumerate(frame.columns):
        col = frame.iloc[:, j]
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            v = col.to_numpy(dtype=np.float64, na_value=np.nan)
            fill = np.nanmedian(v) if (~np.isnan(v)).any() else 0.0
            filled = np.where(np.isnan(v), fill, v)
            sd = filled.std()
            blocks.append(((filled - filled.mean()) / sd if sd > 0 else np.zeros(n))[:, None])
            encoders.append(_Encoder(True, float(fill), float(filled.mean()), float(sd)))
            found = _column_candidates(v, str(name), lo, hi, int(np.ceil(_VALUE_SHARE * n)))
        else:
            level = _levels(col)
            values, inverse, counts = np.unique(level, return_inverse=True, return_counts=True)
            kept = np.argsort(-counts, kind="stable")[:_MAX_LEVELS]
            kept = kept[counts[kept] >= lo]
            onehot = (inverse[:, None] == kept[None, :]).astype(np.float64)
            blocks.append(onehot - onehot.mean(axis=0) if len(kept) else np.zeros((n, 1)))
            encoders.append(_Encoder(False, levels=tuple(str(x) for x in values[kept]),
                                     means=onehot.mean(axis=0)))
            found = [(inverse == k, f"{name} = {values[k]}", "level", str(values[k]))
                     for k in np.flatnonzero((counts >= lo) & (counts <= hi))]
        for held, label, op, value in found:
            if lo <= held.sum() <= hi:
                rows.append(np.flatnonzero(held))
                names.append(label)
                conditions.append((j, op, value))
                source.append((width, width + blocks[-1].shape[1]))
        width += blocks[-1].shape[1]
    content = np.hstack(blocks) if blocks else np.zeros((n, 0))
    cand = _indicator(rows, n)
    to_content = _indicator([np.arange(a, b) for a, b in source], width).T.tocsr()
    return _Features(cand, tuple(names), np.full(len(rows), "table"), cand, to_content, content,
                     conditions=tuple(conditions), encoders=tuple(encoders))


def _encode(frame: pd.DataFrame, encoders: tuple[_Encoder, ...]) -> np.ndarray:
    """New rows' content columns, encoded as the fitted rows' were."""
    n = len(frame)
    blocks = []
    for j, enc in enumerate(encoders):
        col = frame.iloc[:, j]
        if enc.numeric:
            v = _numeric(col)
            filled = np.where(np.isnan(v), enc.fill, v)
            blocks.append(((filled - enc.mean) / enc.sd if enc.sd > 0 else np.zeros(n))[:, None])
        elif enc.levels and enc.means is not None:
            onehot = (_levels(col)[:, None] == np.asarray(enc.levels, dtype=object)[None, :])
            blocks.append(onehot.astype(np.float64) - enc.means)
        else:
            blocks.append(np.zeros((n, 1)))
    return np.hstack(blocks) if blocks else np.zeros((n, 0))


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
    suspects = None
    suspect = p_group >= _SUSPECT
    if suspect.any():  # ablate the features of a class's suspects in all its groups
        by_class = sp.csr_matrix((np.ones(int(suspect.sum())),
                                  (label[suspect], np.flatnonzero(suspect))),
                                 shape=(n_classes, m)) @ ablate
        suspects = _binary(by_class)
        e, P, share, p_group = evaluate(_binary(ablate + suspects[label]))
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
    content = _Content(W.mean(axis=0), np.stack([b for _, b in fitted]).mean(axis=0), ablate,
                       suspects, p_group, d0, scale)
    return AssociationResult(scores, group, rep, np.diff(feats.candidates.indptr)[rep], purity,
                             label, share, mean_p[np.arange(m), label], rival.argmax(axis=1),
                             prior, feats, content)


def _binary(M: Any) -> sp.csr_matrix:
    out = sp.csr_matrix(M)
    out.data[:] = 1.0
    out.eliminate_zeros()
    return out


def _ablated(F: Any, W: np.ndarray, Z: np.ndarray, bias: np.ndarray, folds: np.ndarray,
             abl: sp.csr_matrix, pg: np.ndarray, pr: np.ndarray, sparse: bool,
             precision: np.ndarray | None = None) -> np.ndarray:
    """Held-out class probabilities ``(pairs, n_classes)`` of each (group ``pg``, row ``pr``)
    pair, the group's ablated columns (rows of ``abl``) taken out of the row (tables: the
    columns' ``precision``, by default that of ``F``)."""
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
    precision = _precision(F) if precision is None else precision
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
    cand = feats.candidates
    rows = cand.indices[cand.indptr[j]:cand.indptr[j + 1]]
    # the candidates held by (nearly) the same rows: the other n-grams of one inserted sentence
    held = np.zeros(cand.shape[0])
    held[rows] = 1.0
    overlap = cand.T @ held
    same = np.flatnonzero(overlap >= _NAME_OVERLAP * (np.diff(cand.indptr) + len(rows) - overlap))
    return _text_name(str(np.asarray(evidence.dataset.X, dtype=object)[row]),
                      {int(feats.names[k]) for k in same if feats.kinds[k] == "word"},
                      {int(feats.names[k]) for k in same if feats.kinds[k] == "char"})


def _same_buckets(feats: _Features, reps: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each candidate in ``reps``, the word and the character buckets held by nearly the same
    rows (Jaccard >= 0.9), as :func:`_feature_name` finds them."""
    cand = feats.candidates
    if not len(reps):
        return []
    df = np.diff(cand.indptr)
    overlap = (cand.T @ cand[:, reps]).tocsc()
    kinds = np.asarray(feats.kinds)
    buckets = np.asarray([int(name) if kind != "table" else -1
                          for name, kind in zip(feats.names, kinds, strict=True)], dtype=np.int64)
    out = []
    for g, j in enumerate(reps):
        k = overlap.indices[overlap.indptr[g]:overlap.indptr[g + 1]]
        o = overlap.data[overlap.indptr[g]:overlap.indptr[g + 1]]
        same = np.sort(k[o >= _NAME_OVERLAP * (df[k] + df[j] - o)])
        out.append((buckets[same[kinds[same] == "word"]], buckets[same[kinds[same] == "char"]]))
    return out


def _text_name(raw: str, words: set[int], chars: set[int]) -> str:
    """The longest run of words of ``raw`` covered by the word n-grams in ``words`` (hash
    buckets); when that holds no letter or digit, the longest run of characters covered by the
    character n-grams in ``chars``."""
    from sklearn.feature_extraction.text import HashingVectorizer

    text = HashingVectorizer().build_preprocessor()(raw)
    covered = _covered(HashingVectorizer().build_tokenizer()(text), " ", _NGRAMS["word"][1],
                       words)
    if any(ch.isalnum() for ch in covered):
        return covered
    runs = [_covered(list(f" {w} "), "", _NGRAMS["char"][1], chars) for w in text.split()]
    return max([covered, *runs], key=len).strip() or "?"


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


_BLOCK_ROWS = 8192  # new text rows hashed at a time
_STATE_GROUPS = 1000  # groups kept for new rows: the most probable of those with p_g > 0


@dataclass(frozen=True)
class AssociationState:
    """What scoring new rows needs from the fitted rows: the label-bound groups that can give a
    row a positive score (``p_g > 0``; the others add nothing) and the content model.

    Per group: ``kind`` (``word`` / ``char`` n-gram or ``table``), the n-gram's hash ``bucket``
    (text) or the ``conditions`` (tables: column position, ``missing`` / ``ge`` / ``le`` /
    ``eq`` / ``level``, value), ``names`` (tables), the word and character buckets that name it
    in a reason (``words``, ``chars``; text), ``label``, ``purity``, ``p_group``, ``share``
    (``d_g``), ``size`` (fitted rows holding it), ``p_label`` and ``other`` (for reasons) and
    its own ``ablate`` row ``(groups, v)``. Per class: ``prior``, ``d0``, ``scale``, and the
    ``suspects``' features ablated in each group of the class besides its own. The
    content model: the fold models' mean weights ``W`` ``(v, n_classes)`` and intercepts ``b``;
    text: the word-n-gram ``vocabulary`` (hash buckets) and the fitted ``tfidf``; tables: each
    column's encoder and the content columns' ``precision``. Without groups the model is left
    out (``W`` is ``None``)."""

    modality: str
    feature_names: tuple[str, ...]
    prior: np.ndarray
    d0: np.ndarray
    scale: np.ndarray
    kind: np.ndarray
    bucket: np.ndarray
    conditions: tuple[tuple[int, str, Any], ...]
    names: tuple[str, ...]
    words: tuple[np.ndarray, ...]
    chars: tuple[np.ndarray, ...]
    label: np.ndarray
    purity: np.ndarray
    p_group: np.ndarray
    share: np.ndarray
    size: np.ndarray
    p_label: np.ndarray
    other: np.ndarray
    ablate: sp.csr_matrix
    suspects: sp.csr_matrix | None = None
    W: np.ndarray | None = None
    b: np.ndarray | None = None
    vocabulary: np.ndarray | None = None
    tfidf: Any = None
    encoders: tuple[_Encoder, ...] = ()
    precision: np.ndarray | None = None


def _state(evidence: Evidence, result: AssociationResult) -> AssociationState:
    """The state of :class:`AssociationState` from the fitted rows' result."""
    ds = evidence.dataset
    n_classes = len(evidence.classes)
    feats, content = result.features, result.content
    keep = np.zeros(0, dtype=np.int64) if content is None else np.flatnonzero(content.p_group > 0)
    if content is not None and len(keep) > _STATE_GROUPS:  # the most probable groups
        keep = np.sort(keep[np.argsort(-content.p_group[keep], kind="stable")[:_STATE_GROUPS]])
    names = tuple(str(f) for f in ds.feature_names)
    if feats is None or content is None or not len(keep):
        none = np.zeros(0, dtype=np.int64)
        return AssociationState(ds.modality, names, result.prior, np.zeros(n_classes),
                                np.ones(n_classes), kind=np.zeros(0, dtype="<U5"), bucket=none,
                                conditions=(), names=(), words=(), chars=(), label=none,
                                purity=np.zeros(0), p_group=np.zeros(0), share=np.zeros(0),
                                size=none, p_label=np.zeros(0), other=none,
                                ablate=sp.csr_matrix((0, 0)))
    reps = result.feature[keep]
    kind = np.asarray(feats.kinds)[reps]
    table = ds.modality != "text"
    same = [] if table else _same_buckets(feats, reps)
    return AssociationState(
        ds.modality, names, result.prior, content.d0, content.scale, kind=kind,
        bucket=np.asarray([-1 if table else int(feats.names[j]) for j in reps], dtype=np.int64),
        conditions=tuple(feats.conditions[j] for j in reps) if table else (),
        names=tuple(feats.names[j] for j in reps) if table else (),
        words=tuple(w for w, _ in same), chars=tuple(c for _, c in same),
        label=result.label[keep], purity=result.purity[keep], p_group=content.p_group[keep],
        share=result.share[keep], size=result.size[keep], p_label=result.p_label[keep],
        other=result.other[keep], ablate=content.ablate[keep].tocsr(), suspects=content.suspects,
        W=content.W, b=content.b,
        vocabulary=feats.vocabulary, tfidf=feats.tfidf, encoders=feats.encoders,
        precision=_precision(feats.content) if table else None)


def _text_holders(texts: list[str], state: AssociationState) -> sp.csr_matrix:
    """``(rows, groups)``: which of ``texts`` hold each group's n-gram (hashed a block of rows at
    a time)."""
    rows, cols = [], []
    for start in range(0, len(texts), _BLOCK_ROWS):
        part = texts[start:start + _BLOCK_ROWS]
        for kind in ("word", "char"):
            gs = np.flatnonzero(state.kind == kind)
            if len(gs):
                held = _hashed(part, kind)[:, state.bucket[gs]].tocoo()
                rows.append(held.row.astype(np.int64) + start)
                cols.append(gs[held.col])
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    return sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(texts), len(state.label)))


def _frame(X: Any, feature_names: tuple[str, ...]) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X),
                                                              columns=list(feature_names))


def _score_new(view: View, state: AssociationState) -> tuple[np.ndarray, np.ndarray]:
    """Scores and groups of rows the state was not fitted on (see the module docstring)."""
    m = view.n_rows
    scores, group = np.zeros(m), np.full(m, -1)
    if not len(state.label) or state.W is None or state.b is None:
        return scores, group
    labels = view.labels
    sparse = state.modality == "text"
    if sparse:
        texts = [str(t) for t in np.asarray(view.dataset.X, dtype=object)]
        holders = _text_holders(texts, state).tocoo()
    else:
        frame = _frame(view.dataset.X, state.feature_names)
        holders = sp.csc_matrix(np.stack([_holds(frame, c) for c in state.conditions],
                                         axis=1).astype(np.float64)).tocoo()
    keep = labels[holders.row] == state.label[holders.col]
    order = np.lexsort((holders.row[keep], holders.col[keep]))
    pg, pr = holders.col[keep][order].astype(np.int64), holders.row[keep][order].astype(np.int64)
    if not len(pr):
        return scores, group
    # the content of the rows in a pair, read by the mean of the fold models
    rows, local = np.unique(pr, return_inverse=True)
    if sparse:
        words = _hashed([texts[i] for i in rows], "word")[:, state.vocabulary]
        F: Any = state.tfidf.transform(words).tocsr() if state.tfidf is not None else (
            sp.csr_matrix((len(rows), 0)))
    else:
        F = _encode(frame.iloc[rows], state.encoders)
    bias = np.broadcast_to(state.b, (len(rows), len(state.b)))
    Z = bias + np.asarray(F @ state.W)
    ablate = state.ablate if state.suspects is None else _binary(
        state.ablate + state.suspects[state.label])
    P = _ablated(F, state.W[None], Z, bias, np.zeros(len(rows), dtype=np.int64), ablate,
                 pg, np.asarray(local).ravel(), sparse, state.precision)
    c = state.label[pg]
    e = np.clip(1.0 - P[np.arange(len(pr)), c] / state.prior[c], 0.0, 1.0)
    r = np.clip((e - state.d0[c]) / state.scale[c], 0.0, 1.0)
    pair_score = state.p_group[pg] * (_FLOOR + (1.0 - _FLOOR) * r)
    best = np.lexsort((state.share[pg], state.purity[pg], pair_score, pr))
    last = best[np.r_[pr[best][1:] != pr[best][:-1], True]]
    scores[pr[last]], group[pr[last]] = pair_score[last], pg[last]
    return scores, group


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

    def fit(self, evidence: Evidence) -> AssociationState:
        """The fitted rows' groups that can give a row a positive score, with the content model
        (the fitted rows' own scores are cached on the evidence, :func:`association`)."""
        return _state(evidence, association(evidence))

    def score(self, view: View, state: AssociationState) -> Scores:
        """The fitted rows' scores (cross-fitted, as the module docstring says), or for other
        rows the most over the state's groups they hold with the group's label; the payload
        keeps each row's group."""
        if view.in_sample:
            result = association(view.evidence)
            return Scores(result.scores.copy(), {"group": result.group, "result": result})
        scores, group = _score_new(view, state)
        return Scores(scores, {"group": group, "state": state})

    def reasons(self, view: View, scores: Scores, rows: np.ndarray) -> list[str]:
        """The shared feature, how many rows hold it, their label and what the rest reads as."""
        p = scores.payload
        result: AssociationResult | None = p.get("result")
        state: AssociationState | None = p.get("state")
        classes = view.classes
        lines = []
        for row in np.asarray(rows, dtype=np.int64):
            g = int(p["group"][row])
            if g < 0:
                lines.append("shares no rare, label-bound feature with other rows")
                continue
            if result is not None:
                c, p_label, prior = int(result.label[g]), result.p_label[g], result.prior
                other, purity = int(result.other[g]), result.purity[g]
                name = _feature_name(view.evidence, result, g, int(row))
                others = int(result.size[g]) - 1
            else:
                assert state is not None
                c, p_label, prior = int(state.label[g]), state.p_label[g], state.prior
                other, purity = int(state.other[g]), state.purity[g]
                name = state.names[g] if state.modality != "text" else _text_name(
                    str(np.asarray(view.dataset.X, dtype=object)[row]),
                    set(state.words[g].tolist()), set(state.chars[g].tolist()))
                others = int(state.size[g])
            cls, base = classes[c], prior[c]
            rest = (f"their content reads as {classes[other]!s}" if p_label < base
                    else "their content agrees")
            lines.append(f"shares {name!r} with {others} other rows, {100 * purity:.0f} % "
                         f"labelled {cls!s}; without it {rest} (P({cls!s}) {p_label:.2f} against "
                         f"{base:.2f})")
        return lines
