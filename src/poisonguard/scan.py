"""``scan(dataset) -> ScanReport``: score every row for suspicion, explain, and clean.

The scan builds one :class:`~poisonguard.evidence.Evidence` (proxy models and neighbour graph,
computed once), runs each requested detector on it, calibrates and combines their scores
(:mod:`poisonguard.detectors._ensemble`) and flags rows without being told the poison rate.

Up to ``sample_rows`` rows (50,000 by default) everything is fitted on all rows at once. Beyond,
the scan runs in two phases: the evidence, each detector's state and the combination are fitted
on a seeded sample stratified by label; the sample's rows keep their own (out-of-fold) scores and
every other row is scored in chunks of ``chunk_rows`` from the fitted state, with bounded
memory. The report's ``regime`` says which ran.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from poisonguard.dataset import Dataset
from poisonguard.detectors import DEFAULT_DETECTORS, DETECTORS, get_detector
from poisonguard.detectors._ensemble import (
    THRESHOLD,
    Combination,
    calibrate,
    combine,
    fit_combination,
    resolve_scan_budget,
)
from poisonguard.errors import InputError
from poisonguard.evidence import Evidence

if TYPE_CHECKING:
    from poisonguard.engine import Engine
    from poisonguard.selftest import SelfTest

__all__ = ["CHUNK_ROWS", "SAMPLE_ROWS", "ScanReport", "scan"]

Progress = Callable[[str], Any]
SAMPLE_ROWS = 50_000  # fitted on all rows up to this many; beyond, on a sample of this many
CHUNK_ROWS = 100_000  # rows scored at once outside the sample
_MIN_PER_CLASS = 50  # a sample keeps at least this many rows of every class (all, if fewer)


def _versions() -> dict[str, str]:
    import scipy
    import sklearn

    import poisonguard

    out = {"poisonguard": poisonguard.__version__, "python": platform.python_version(),
           "numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
           "pandas": pd.__version__}
    if "torch" in sys.modules:
        out["torch"] = str(sys.modules["torch"].__version__)
    return out


@dataclass(frozen=True)
class ScanReport:
    """The result of a scan.

    ``dataset`` is the scanned data; for a scan of data read as partitions
    (:func:`poisonguard.scan_partitions.scan_partitions`) it holds the labels, ids and sources
    of every row but no features: ``held`` has the flagged rows' data and ``partitions`` where
    the rest is (:meth:`row_data`, :meth:`clean`). ``table`` has one row per dataset row:
    ``row_id``, ``score`` (combined, in [0, 1]),
    ``flagged``, ``reason`` and ``top_detector`` (the detector behind the flag; both empty when
    not flagged) and one column per detector with its calibrated score. ``raw`` holds each
    detector's uncalibrated scores; ``weights`` the weight each detector's ranking got in the
    combined score (:mod:`poisonguard.detectors._ensemble`).
    """

    dataset: Dataset
    table: pd.DataFrame
    raw: Mapping[str, np.ndarray]
    detectors: tuple[str, ...]
    threshold: float
    budget: int | None = None
    skipped: Mapping[str, str] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)
    seed: int = 0
    data_path: str | None = None
    weights: Mapping[str, float] = field(default_factory=dict)
    self_test: SelfTest | None = None
    regime: Mapping[str, Any] = field(default_factory=dict)
    held: Any = None  # scan_partitions.Held
    partitions: Any = None  # (partitions, roles) the data was read from

    @property
    def scores(self) -> np.ndarray:
        """Combined scores in [0, 1]."""
        return np.asarray(self.table["score"], dtype=np.float64)

    @property
    def flagged(self) -> np.ndarray:
        """True for every flagged row."""
        return np.asarray(self.table["flagged"], dtype=bool)

    @property
    def n_flagged(self) -> int:
        """Number of flagged rows."""
        return int(self.flagged.sum())

    def clean(self) -> Dataset:
        """The dataset without its flagged rows (ids, sources and origin kept); for a scan of
        data read as partitions, the unflagged rows read again, in this process."""
        keep = np.flatnonzero(~self.flagged)
        if self.partitions is None:
            return self.dataset.take(keep)
        from poisonguard.engine import LocalEngine
        from poisonguard.scan_partitions import read_rows

        parts, roles = self.partitions
        return read_rows(parts, roles, keep, LocalEngine(threads=1), self.dataset.name)

    def row_data(self, positions: Sequence[int] | np.ndarray) -> Dataset:
        """The rows at ``positions`` with their features (for a scan of data read as
        partitions: flagged rows only, the ones it holds)."""
        idx = np.asarray(positions, dtype=np.int64)
        if self.held is None:
            return self.dataset.take(idx)
        where = np.searchsorted(self.held.positions, idx)
        if len(idx) and (np.any(where >= len(self.held.positions))
                         or np.any(self.held.positions[np.minimum(
                             where, len(self.held.positions) - 1)] != idx)):
            raise InputError("this scan read its data as partitions and holds the features of "
                             "its flagged rows only")
        out: Dataset = self.held.rows.take(where)
        return out

    def flagged_by(self) -> dict[str, int]:
        """Flagged rows per detector that gave their reason, largest first."""
        counts = self.table.loc[self.flagged, "top_detector"].value_counts()
        return {str(k): int(v) for k, v in counts.items()}

    def evaluate(self, mask: Sequence[bool] | np.ndarray) -> dict[str, float]:
        """Detection quality against ground truth ``mask`` (True = poisoned).

        AUROC and average precision of the combined score (and of each detector as
        ``auroc_<name>``), precision / recall / F1 and false-positive rate of the flagged set.
        """
        from poisonguard.evaluation.metrics import detection_metrics

        truth = np.asarray(mask, dtype=bool)
        if truth.shape != (self.dataset.n_rows,):
            raise InputError(f"'mask' must have one entry per row ({self.dataset.n_rows}); "
                             f"got shape {truth.shape}")
        out = detection_metrics(truth, self.scores, self.flagged)
        for name in self.detectors:
            out[f"auroc_{name}"] = detection_metrics(truth, self.raw[name], None)["auroc"]
        return out

    def summary(self) -> dict[str, Any]:
        """Counts, threshold, detectors run and skipped, reasons, sources, timings and notes."""
        out: dict[str, Any] = {
            "data": self.data_path or self.dataset.name or "",
            "rows": self.dataset.n_rows,
            "modality": self.dataset.modality,
            "classes": [str(c) for c in self.dataset.classes],
            "flagged": self.n_flagged,
            "flagged_share": self.n_flagged / max(self.dataset.n_rows, 1),
            "threshold": self.threshold,
            "budget": self.budget,
            "detectors": list(self.detectors),
            "skipped": dict(self.skipped),
            "flagged_by": self.flagged_by(),
            "weights": dict(self.weights),
            "seed": self.seed,
            "regime": dict(self.regime),
        }
        if self.dataset.sources is not None:
            out["sources"] = self.by_source().to_dict(orient="records")
        return out

    def by_source(self) -> pd.DataFrame:
        """Per source: rows, flagged rows, flagged share, mean score and the Beta posterior of
        its poisoning rate (:func:`poisonguard.provenance.reputation.reputation`: ``rate``,
        ``rate_low``, ``rate_high``, ``named``), ranked by ``rate_low`` (sources required)."""
        from poisonguard.provenance.reputation import reputation

        if self.dataset.sources is None:
            raise InputError("this dataset has no sources (use --source-col)")
        frame = pd.DataFrame({"source": np.asarray(self.dataset.sources, dtype=str),
                              "flagged": self.flagged, "score": self.scores})
        grouped = frame.groupby("source", sort=True)
        out = pd.DataFrame({"rows": grouped.size(), "flagged": grouped["flagged"].sum(),
                            "mean_score": grouped["score"].mean()})
        out = out.reset_index()
        rep = reputation(out[["source", "rows", "flagged"]].to_dict(orient="records"))
        out = rep.merge(out[["source", "mean_score"]], on="source", how="left")
        return out[["source", "rows", "flagged", "flagged_share", "mean_score", "rate", "rate_low",
                    "rate_high", "named"]]

    def to_dict(self, top: int = 100, *, provenance: dict[str, Any] | None = None) -> dict[str, Any]:
        """JSON-ready report: summary, the ``top`` flagged rows, timings, versions, notes, the
        self-test when one ran, and ``provenance`` when given (the scanned file's SHA-256 and
        Merkle root, which ``attest`` checks against a manifest)."""
        flagged = self.table[self.table["flagged"]].sort_values("score", ascending=False,
                                                                 kind="stable")
        rows = flagged.head(top)
        out = {
            "summary": self.summary(),
            "top_flagged": json.loads(rows.to_json(orient="records")),
            "timings": {k: round(float(v), 4) for k, v in self.timings.items()},
            "notes": list(self.notes),
            "versions": dict(self.versions),
        }
        if self.self_test is not None:
            out["self_test"] = self.self_test.to_dict()
        if provenance is not None:
            out["provenance"] = dict(provenance)
        return out

    def to_csv(self, path: str | Path) -> Path:
        """Write the per-row table (``row_id,score,flagged,reason,top_detector,<detectors>``)
        atomically; text a spreadsheet would run as a formula starts with a quote."""
        from poisonguard.io import report_csv

        table = self.table.copy()
        table["flagged"] = table["flagged"].astype(int)
        return report_csv(table, path, float_format="%.6g", lineterminator="\n")

    def to_json(self, path: str | Path, top: int = 100, *,
                provenance: dict[str, Any] | None = None) -> Path:
        """Write :meth:`to_dict` as JSON atomically."""
        from poisonguard.io import write_text

        return write_text(path, json.dumps(self.to_dict(top, provenance=provenance), indent=2)
                          + "\n")

    def to_html(self, path: str | Path,
                sections: Sequence[tuple[str, Sequence[Mapping[str, Any]]]] = ()) -> Path:
        """Write the self-contained HTML report atomically; ``sections``: extra tables
        (title, rows of column -> value) shown after the summary."""
        from poisonguard.io import write_text
        from poisonguard.report.html import render_scan

        return write_text(path, render_scan(self, sections))


def _detector_names(detectors: Sequence[str] | str | None, reference: Dataset | None) -> list[str]:
    if detectors is None:
        names = [n for n in DEFAULT_DETECTORS if n in DETECTORS]
        if reference is None:
            names = [n for n in names if not DETECTORS[n].needs_reference]
        return names
    if isinstance(detectors, str):
        detectors = [d.strip() for d in detectors.split(",") if d.strip()]
    names = list(dict.fromkeys(detectors))
    if not names:
        raise InputError("'detectors' is empty")
    for name in names:
        get_detector(name)
    return names


_EVIDENCE_SETTINGS = {"model": "auto", "embedder": "auto", "k": 10, "folds": 5, "reference": None,
                      "random_state": 0, "progress": None, "sample_rows": None}


def scan(dataset: Dataset, *, detectors: Sequence[str] | str | None = None,
         budget: float | int | None = None, reference: Dataset | None = None,
         model: str | Any = "auto", embedder: str = "auto", k: int = 10, folds: int = 5,
         random_state: int = 0, progress: Progress | None = None,
         evidence: Evidence | None = None, sample_rows: int | None = None,
         chunk_rows: int = CHUNK_ROWS, engine: Engine | None = None) -> ScanReport:
    """Score every row of ``dataset`` for suspicion and flag the likely poisoned ones.

    ``detectors`` names detectors (default: all that apply; ``validation`` only with a
    ``reference``). ``budget`` flags exactly that many rows (a count, or a fraction of rows)
    instead of the ensemble's own threshold. ``evidence`` reuses one already built for this
    dataset (its settings are the scan's: passing any of ``model``, ``embedder``, ``k``,
    ``folds``, ``reference``, ``random_state``, ``progress`` or ``sample_rows`` with it is an
    error). ``sample_rows`` (default :data:`SAMPLE_ROWS`) bounds the rows the evidence is fitted
    on; more rows are scored in chunks of ``chunk_rows`` (module docstring), on ``engine``
    (:func:`poisonguard.engine.get_engine`; default: this process) — a Dask engine scores the
    chunks on its workers from the same fitted state, with the same results. Same inputs and
    ``random_state`` give the same table.
    """
    if not isinstance(dataset, Dataset):
        raise InputError(f"scan needs a Dataset (got {type(dataset).__name__})")
    if evidence is not None:
        given = {"model": model, "embedder": embedder, "k": k, "folds": folds,
                 "reference": reference, "random_state": random_state, "progress": progress,
                 "sample_rows": sample_rows}
        clash = [name for name, value in given.items() if value is not _EVIDENCE_SETTINGS[name]
                 and value != _EVIDENCE_SETTINGS[name]]
        if clash:
            raise InputError(f"scan(evidence=...) takes its settings from the evidence; "
                             f"drop {', '.join(repr(c) for c in clash)} or build the evidence "
                             "with them")
        if evidence.dataset is not dataset:
            raise InputError("'evidence' was built for another dataset")
        reference, random_state = evidence.reference, evidence.random_state
    if reference is not None:
        _check_reference(dataset, reference)
    n_budget = resolve_scan_budget(budget, dataset.n_rows)
    names = _detector_names(detectors, reference)
    limit = SAMPLE_ROWS if sample_rows is None else _positive("sample_rows", sample_rows)
    chunk = _positive("chunk_rows", chunk_rows)
    if evidence is None and dataset.n_rows > max(limit, 2):
        return _sampled_scan(dataset, names, n_budget, limit, chunk, reference=reference,
                             model=model, embedder=embedder, k=k, folds=folds,
                             random_state=random_state, progress=progress, engine=engine)
    start = time.perf_counter()
    ev = evidence if evidence is not None else Evidence(
        dataset, model=model, embedder=embedder, k=k, folds=folds, reference=reference,
        random_state=random_state, progress=progress)
    view = ev.view()
    fitted, skipped, timings = _fit_detectors(names, ev, progress, sampled=None)
    found = {name: (det, scored) for name, (det, _, scored) in fitted.items()}
    raw = {name: np.asarray(scored.suspicion, dtype=np.float64) for name, (_, scored) in found.items()}
    calibrated = {name: calibrate(raw[name], found[name][0].calibration) for name in raw}
    combined = combine(raw, calibrated, dataset.n_rows, n_budget)
    reasons = np.full(dataset.n_rows, "", dtype=object)
    tops = np.full(dataset.n_rows, "", dtype=object)
    t0 = time.perf_counter()
    for j, name in enumerate(combined.names):
        rows = np.flatnonzero(combined.flagged & (combined.top == j))
        if len(rows):
            det, scored = found[name]
            reasons[rows] = [f"{name}: {line}" for line in det.reasons(view, scored, rows)]
            tops[rows] = name
    timings["explain"] = time.perf_counter() - t0
    table = _table(dataset, combined.score, combined.flagged, reasons, tops,
                   {name: calibrated[name] for name in combined.names})
    timings = {**ev.timings, **timings, "total": time.perf_counter() - start}
    return ScanReport(dataset=dataset, table=table, raw=raw, detectors=combined.names,
                      threshold=combined.threshold, budget=n_budget, skipped=skipped,
                      timings=timings, notes=tuple(ev.notes), versions=_versions(),
                      seed=ev.random_state, weights=combined.weights,
                      regime=_regime(ev, dataset.n_rows, chunks=1, chunk_rows=dataset.n_rows))


def _fit_detectors(names: Sequence[str], ev: Evidence, progress: Progress | None, *,
                   sampled: int | None) -> tuple[dict[str, tuple[Any, Any, Any]],
                                                 dict[str, str], dict[str, float]]:
    """Fit each detector that applies on ``ev`` and score its fitted rows: ``(detector, state,
    scores)`` by name, the skipped ones with why, seconds per detector. ``sampled`` (the sample
    size of a two-phase scan) leaves out detectors that score only their fitted rows."""
    fitted: dict[str, tuple[Any, Any, Any]] = {}
    skipped: dict[str, str] = {}
    timings: dict[str, float] = {}
    own = ev.view()
    for name in names:
        det = get_detector(name)
        why = det.applies(ev)
        if why is None and sampled is not None and not det.two_phase:
            why = (f"scores only the rows it was fitted on: left out of a scan of more than "
                   f"{sampled:,} rows")
        if why is not None:
            skipped[name] = why
            continue
        if progress is not None:
            progress(f"detector {name}")
        t0 = time.perf_counter()
        state = det.fit(ev)
        scored = det.score(own, state)
        _check_scores(name, scored.suspicion, ev.n_rows)
        fitted[name] = (det, state, scored)
        timings[f"detector {name}"] = time.perf_counter() - t0
    return fitted, skipped, timings


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"'{name}' must be a positive whole number of rows (got {value!r})")
    return int(value)


def _check_scores(name: str, scores: np.ndarray, n_rows: int) -> None:
    scores = np.asarray(scores)
    if scores.shape != (n_rows,) or not np.all(np.isfinite(scores)):
        raise RuntimeError(f"detector {name!r} broke its contract (shape {scores.shape})")


def _table(dataset: Dataset, score: np.ndarray, flagged: np.ndarray, reasons: np.ndarray,
           tops: np.ndarray, calibrated: Mapping[str, np.ndarray]) -> pd.DataFrame:
    # reasons stay Python strings: as a numpy str array every row would take the longest's width
    table = pd.DataFrame({"row_id": np.asarray(dataset.ids, dtype=str), "score": score,
                          "flagged": flagged, "reason": reasons.astype(object),
                          "top_detector": tops.astype(object)})
    for name, column in calibrated.items():
        table[name] = column
    return table


def _regime(ev: Evidence, n_rows: int, *, chunks: int, chunk_rows: int) -> dict[str, Any]:
    """What ran: rows scanned and fitted, chunks, the neighbour index, folds and proxies."""
    out: dict[str, Any] = {"rows": int(n_rows), "fitted_rows": ev.n_rows,
                           "sampled": ev.n_rows < n_rows, "chunks": int(chunks),
                           "chunk_rows": int(chunk_rows), "engine": "local", "read": "whole"}
    if "neighbors" in ev.__dict__ or "feature_neighbors" in ev.__dict__:
        nb = ev.__dict__.get("neighbors") or ev.__dict__["feature_neighbors"]
        out["neighbors"] = "exact" if nb.exact else "approximate (k-means cells)"
    if "proba" in ev.__dict__:
        from poisonguard.models.proxies import proba_model

        out["folds"] = ev.config.n_folds(ev.n_rows)
        out["proba_model"] = type(proba_model(ev.config, ev.features)).__name__
    if "_network" in ev.__dict__:
        out["embedder"] = ev._network[2].kind
    return out


def _sample_rows(dataset: Dataset, size: int, random_state: int) -> np.ndarray:
    """A seeded sample of about ``size`` rows, stratified by label (each class in proportion,
    at least ``_MIN_PER_CLASS`` rows of it, or all of them), sorted."""
    rng = np.random.default_rng(random_state)
    y = np.asarray(dataset.y)
    classes, codes = np.unique(y, return_inverse=True)
    n = len(y)
    picked = []
    for c in range(len(classes)):
        members = np.flatnonzero(codes == c)
        want = min(len(members), max(_MIN_PER_CLASS, round(size * len(members) / n)))
        picked.append(rng.choice(members, size=want, replace=False))
    return np.sort(np.concatenate(picked))


def _sampled_scan(dataset: Dataset, names: list[str], n_budget: int | None, limit: int,
                  chunk: int, *, reference: Dataset | None, model: str | Any, embedder: str,
                  k: int, folds: int, random_state: int, progress: Progress | None,
                  engine: Engine | None) -> ScanReport:
    """The two-phase scan of a file larger than ``limit`` rows (module docstring)."""
    start = time.perf_counter()
    n = dataset.n_rows
    sample = _sample_rows(dataset, limit, random_state)
    ev = Evidence(dataset.take(sample), model=model, embedder=embedder, k=k, folds=folds,
                  reference=reference, random_state=random_state, progress=progress,
                  classes=dataset.classes)
    own = ev.view()
    fitted, skipped, timings = _fit_detectors(names, ev, progress, sampled=limit)
    comb = fit_combination({name: f[2].suspicion for name, f in fitted.items()},
                           {name: f[0].calibration for name, f in fitted.items()}, n)
    raw, cal, score, flagged, reasons, tops = empty_results(comb.names, n)
    in_sample = np.zeros(n, dtype=bool)
    in_sample[sample] = True
    rest = np.flatnonzero(~in_sample)
    blocks = [rest[begin:begin + chunk] for begin in range(0, len(rest), chunk)]
    n_chunks = 1 + len(blocks)
    runner = engine if engine is not None else _local_engine()
    if blocks:
        _warm(ev)  # fitted once here, not once per thread or worker
    shared = (comb, {name: (det, state, None) for name, (det, state, _) in fitted.items()}, ev)
    t0 = time.perf_counter()
    pieces = runner.map_ordered(_chunk_task, (dataset.take(rows) for rows in blocks),
                                shared=shared)
    for i, (rows, piece) in enumerate(zip(blocks, pieces, strict=True)):
        # scored, combined and explained at once: the chunk's view is gone before the next one
        if progress is not None:
            progress(f"chunk {i + 1} of {len(blocks)} scored")
        _store(piece, rows, raw, cal, score, flagged, reasons, tops)
    if blocks:
        timings["score chunks"] = time.perf_counter() - t0
    flagged, threshold = finish_sample(comb, fitted, own, sample, n_budget, raw, cal, score,
                                       flagged, reasons, tops, dataset, ev)
    table = _table(dataset, score, flagged, reasons, tops, cal)
    timings = {**ev.timings, **timings, "total": time.perf_counter() - start}
    return ScanReport(dataset=dataset, table=table, raw=raw, detectors=comb.names,
                      threshold=threshold, budget=n_budget, skipped=skipped, timings=timings,
                      notes=tuple(ev.notes), versions=_versions(), seed=random_state,
                      weights={name: round(float(w), 4)
                               for name, w in zip(comb.names, comb.weights, strict=True)},
                      regime={**_regime(ev, n, chunks=n_chunks, chunk_rows=chunk),
                              "engine": runner.name})


def finish_sample(comb: Combination, fitted: Mapping[str, tuple[Any, Any, Any]], own: Any,
                  sample: np.ndarray, n_budget: int | None, raw: dict[str, np.ndarray],
                  cal: dict[str, np.ndarray], score: np.ndarray, flagged: np.ndarray,
                  reasons: np.ndarray, tops: np.ndarray, dataset: Dataset,
                  ev: Evidence) -> tuple[np.ndarray, float]:
    """Store the fitted sample's own scores, then apply a budget (a top-k over every row,
    explained): the final flags and threshold of a two-phase scan."""
    _store(_score_piece(comb, fitted, own, {name: f[2] for name, f in fitted.items()}), sample,
           raw, cal, score, flagged, reasons, tops)
    if n_budget is None:
        return flagged, THRESHOLD
    chosen = np.argsort(-score, kind="stable")[:n_budget]
    flagged = np.zeros(len(score), dtype=bool)
    flagged[chosen] = True
    _explain_budget(comb, flagged, reasons, tops, sample, own, fitted, dataset, ev, cal)
    return flagged, float(score[chosen].min())


def empty_results(names: Sequence[str], n: int) -> tuple[
        dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray,
        np.ndarray]:
    """Per-row results of ``n`` rows to fill (:func:`_store`): raw and calibrated scores per
    detector, combined score, flags, reasons and the detector behind each."""
    return ({name: np.empty(n) for name in names}, {name: np.empty(n) for name in names},
            np.empty(n), np.zeros(n, dtype=bool), np.full(n, "", dtype=object),
            np.full(n, "", dtype=object))


@dataclass(frozen=True)
class _Piece:
    """One chunk's results: raw and calibrated scores per detector, combined score, flags, and
    the reason and detector of each flagged row (positions into the chunk)."""

    raw: Mapping[str, np.ndarray]
    calibrated: Mapping[str, np.ndarray]
    score: np.ndarray
    flagged: np.ndarray
    reasons: Mapping[int, tuple[str, str]]


def _score_piece(comb: Combination, fitted: Mapping[str, tuple[Any, Any, Any]], view: Any,
                 scores: Mapping[str, Any] | None = None) -> _Piece:
    """Score (unless ``scores`` are given), combine and explain the rows of ``view``: all a
    worker does for its chunk, from the fitted state alone."""
    if scores is None:
        pool = max(det.neighbor_pool(view.evidence) for det, _, _ in fitted.values())
        if pool:  # one neighbour query serves every detector
            view.nearest(pool)
        scores = {name: det.score(view, state) for name, (det, state, _) in fitted.items()}
        for name, sc in scores.items():
            _check_scores(name, sc.suspicion, view.n_rows)
    piece_raw = {name: np.asarray(scores[name].suspicion, dtype=np.float64) for name in comb.names}
    piece_cal = comb.calibrated(piece_raw)
    combined = comb.apply(piece_raw, piece_cal)
    why: dict[int, tuple[str, str]] = {}
    for j, name in enumerate(comb.names):
        local = np.flatnonzero(combined.flagged & (combined.top == j))
        if len(local):
            lines = fitted[name][0].reasons(view, scores[name], local)
            why.update({int(r): (name, f"{name}: {line}") for r, line in zip(local, lines, strict=True)})
    return _Piece(piece_raw, piece_cal, combined.score, combined.flagged, why)


def _chunk_task(shared: tuple[Combination, Mapping[str, tuple[Any, Any, Any]], Evidence],
                chunk: Dataset) -> _Piece:
    """What an engine runs per chunk (in this process or on a worker)."""
    comb, fitted, ev = shared
    return _score_piece(comb, fitted, ev.view(chunk))


def _local_engine() -> Engine:
    from poisonguard.engine import LocalEngine

    return LocalEngine()


def _warm(ev: Evidence) -> None:
    """Fit, before chunks are scored side by side (threads, workers), what viewing new rows
    will need: the refitted probability model and the neighbour indexes' cells (for the fields
    the sample used); after this, scoring only reads the evidence."""
    if "proba" in ev.__dict__:
        _ = ev.fitted_proba
    if "neighbors" in ev.__dict__:
        ev.neighbor_index.prepare()
    if "feature_neighbors" in ev.__dict__:
        ev.feature_index.prepare()


def _store(piece: _Piece, rows: np.ndarray, raw: dict[str, np.ndarray], cal: dict[str, np.ndarray],
           score: np.ndarray, flagged: np.ndarray, reasons: np.ndarray, tops: np.ndarray) -> None:
    for name in piece.raw:
        raw[name][rows] = piece.raw[name]
        cal[name][rows] = piece.calibrated[name]
    score[rows] = piece.score
    flagged[rows] = piece.flagged
    for local, (name, line) in piece.reasons.items():
        reasons[rows[local]] = line
        tops[rows[local]] = name


def _explain_budget(comb: Combination, flagged: np.ndarray, reasons: np.ndarray,
                    tops: np.ndarray, sample: np.ndarray, own: Any,
                    fitted: Mapping[str, tuple[Any, Any, Any]], dataset: Dataset,
                    ev: Evidence, cal: Mapping[str, np.ndarray]) -> None:
    """With a budget the flagged rows are the top-k over all chunks: rows flagged by the budget
    but not by the threshold are explained by their strongest calibrated detector, the other
    rows lose theirs."""
    missing = np.flatnonzero(flagged & (reasons == ""))
    reasons[~flagged] = ""
    tops[~flagged] = ""
    explain_rows(comb, missing, reasons, tops, sample, own, fitted, dataset, ev, cal)


def explain_rows(comb: Combination, missing: np.ndarray, reasons: np.ndarray, tops: np.ndarray,
                 sample: np.ndarray, own: Any, fitted: Mapping[str, tuple[Any, Any, Any]],
                 dataset: Dataset, ev: Evidence, cal: Mapping[str, np.ndarray]) -> None:
    """Explain the rows ``missing`` (positions into ``dataset``) by their strongest calibrated
    detector: rows of the fitted ``sample`` from ``own``'s scores, others from a view."""
    if not len(missing):
        return
    stacked = np.stack([cal[name][missing] for name in comb.names], axis=1)
    best = stacked.argmax(axis=1)
    position = np.full(dataset.n_rows, -1)
    position[sample] = np.arange(len(sample))
    for j, name in enumerate(comb.names):
        rows = missing[best == j]
        if not len(rows):
            continue
        det, state, sample_scores = fitted[name]
        inside = rows[position[rows] >= 0]
        if len(inside):
            lines = det.reasons(own, sample_scores, position[inside])
            reasons[inside] = [f"{name}: {line}" for line in lines]
        outside = rows[position[rows] < 0]
        if len(outside):
            view = ev.view(dataset.take(outside))
            lines = det.reasons(view, det.score(view, state), np.arange(len(outside)))
            reasons[outside] = [f"{name}: {line}" for line in lines]
        tops[rows] = name


def _check_reference(dataset: Dataset, reference: Dataset) -> None:
    if not isinstance(reference, Dataset):
        raise InputError(f"'reference' must be a Dataset (got {type(reference).__name__})")
    if reference.modality != dataset.modality:
        raise InputError(f"reference is {reference.modality} data but the scanned data is "
                         f"{dataset.modality}")
    if dataset.modality == "tabular":
        from poisonguard._validation import column_difference

        differ = column_difference(dataset.feature_names, reference.feature_names)
        if differ is not None:
            raise InputError(f"the data's columns differ from the reference's ({differ})")
