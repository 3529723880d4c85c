"""scan(): the one-shot path, the two-phase path beyond ``sample_rows``, and its options.

Past ``sample_rows`` the evidence, the detectors' states and the combination are fitted on a
stratified sample and every other row is scored in chunks from that state: a user scanning a
large file gets every row scored, the same flagged rows for the same seed, a budget that is a
top-k over all rows, and a report that says which regime ran.
"""

from __future__ import annotations

import numpy as np
import pytest

from poisonguard.attacks import get_attack
from poisonguard.datasets import load_dataset
from poisonguard.errors import InputError
from poisonguard.evidence import Evidence
from poisonguard.scan import scan


@pytest.fixture(scope="module")
def poisoned() -> tuple[object, np.ndarray]:
    ds = load_dataset("digits")
    res = get_attack("backdoor")(rate=0.03, trigger="patch").poison(ds, rng=np.random.default_rng(0))
    return res.dataset, np.asarray(res.mask, dtype=bool)


def test_sampled_scan_scores_every_row_from_the_fitted_state(poisoned: tuple[object, np.ndarray]) -> None:
    ds, mask = poisoned
    full = scan(ds, detectors=["outlier"], random_state=0)  # type: ignore[arg-type]
    part = scan(ds, detectors=["outlier"], random_state=0, sample_rows=600,  # type: ignore[arg-type]
                chunk_rows=400)
    regime = part.summary()["regime"]
    assert regime["sampled"] and regime["fitted_rows"] < ds.n_rows  # type: ignore[attr-defined]
    outside = ds.n_rows - regime["fitted_rows"]  # type: ignore[attr-defined]
    assert regime["rows"] == ds.n_rows and regime["chunks"] == 1 + -(-outside // 400)  # type: ignore[attr-defined]
    assert not full.summary()["regime"]["sampled"]
    assert np.all(np.isfinite(part.scores)) and len(part.scores) == ds.n_rows  # type: ignore[attr-defined]
    # fitted on a third of the rows, the patch is still found about as well as by the full scan
    a_full, a_part = full.evaluate(mask)["auroc"], part.evaluate(mask)["auroc"]
    assert a_part >= a_full - 0.03, (a_full, a_part)
    assert a_part >= 0.9
    flagged = part.table[part.table["flagged"]]
    assert (flagged["reason"].str.len() > 0).all() and (flagged["top_detector"] == "outlier").all()


def test_sampled_scan_is_deterministic(poisoned: tuple[object, np.ndarray]) -> None:
    ds, _ = poisoned
    a = scan(ds, detectors=["outlier"], random_state=3, sample_rows=500)  # type: ignore[arg-type]
    b = scan(ds, detectors=["outlier"], random_state=3, sample_rows=500)  # type: ignore[arg-type]
    assert a.table.to_csv().encode() == b.table.to_csv().encode()


def test_budget_is_a_top_k_over_all_chunks(poisoned: tuple[object, np.ndarray]) -> None:
    ds, _ = poisoned
    rep = scan(ds, detectors=["outlier"], budget=40, sample_rows=500, chunk_rows=300)  # type: ignore[arg-type]
    assert rep.n_flagged == 40
    kept = np.sort(rep.scores[rep.flagged])
    assert kept.min() >= np.max(rep.scores[~rep.flagged])
    assert (rep.table.loc[rep.flagged, "reason"].str.len() > 0).all()
    assert (rep.table.loc[~rep.flagged, "reason"] == "").all()


def test_one_phase_detectors_are_left_out_of_a_sampled_scan_with_a_reason(
        poisoned: tuple[object, np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    """A detector that scores only its fitted rows (``two_phase = False``: a user's own, say)
    runs in a one-shot scan and is left out of a sampled one, saying why."""
    import sys

    from poisonguard.detectors import get_detector
    from poisonguard.detectors.outlier import Outlier

    class FittedRowsOnly(Outlier):
        two_phase = False

        def suspicion(self, evidence: Evidence) -> np.ndarray:
            return Outlier().score(evidence.view(), Outlier().fit(evidence)).suspicion

    module = sys.modules["poisonguard.scan"]
    monkeypatch.setattr(module, "get_detector",
                        lambda name: FittedRowsOnly() if name == "outlier" else get_detector(name))
    ds, _ = poisoned
    whole = scan(ds, detectors=["outlier", "label"])  # type: ignore[arg-type]
    assert whole.detectors == ("outlier", "label")
    part = scan(ds, detectors=["outlier", "label"], sample_rows=600)  # type: ignore[arg-type]
    assert part.detectors == ("label",)
    assert part.skipped["outlier"].startswith("scores only the rows it was fitted on")


def test_evidence_with_other_settings_is_an_error_not_a_silent_drop() -> None:
    ds = load_dataset("wine")
    ev = Evidence(ds, k=5, random_state=4)
    with pytest.raises(InputError, match="drop 'k'"):
        scan(ds, evidence=ev, k=30)
    with pytest.raises(InputError, match="'reference'"):
        scan(ds, evidence=ev, reference=ds)
    rep = scan(ds, evidence=ev)
    assert rep.seed == 4  # the evidence's seed is the one recorded


@pytest.mark.parametrize("bad", [0, -5, 2.5, True])
def test_sample_rows_must_be_a_positive_count(bad: object) -> None:
    with pytest.raises(InputError, match="'sample_rows' must be a positive whole number"):
        scan(load_dataset("wine"), sample_rows=bad)  # type: ignore[arg-type]


def test_dask_engine_scores_chunks_on_workers_with_the_same_answers(
        poisoned: tuple[object, np.ndarray]) -> None:
    """The same fitted state scores the chunks on a Dask worker: identical table, flags and
    reasons to this process, and the regime names the engine."""
    distributed = pytest.importorskip("distributed")
    from poisonguard.engine import DaskEngine

    ds, _ = poisoned
    local = scan(ds, random_state=0, sample_rows=700, chunk_rows=400)  # type: ignore[arg-type]
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address="127.0.0.1:0") as cluster, \
            DaskEngine(cluster.scheduler_address, window=2) as engine:
        remote = scan(ds, random_state=0, sample_rows=700, chunk_rows=400,  # type: ignore[arg-type]
                      engine=engine)
    assert remote.summary()["regime"]["engine"] == "dask"
    assert local.summary()["regime"]["engine"] == "local"
    assert local.table.to_csv().encode() == remote.table.to_csv().encode()
    assert local.skipped == remote.skipped


def test_chunks_scored_side_by_side_give_the_same_table(poisoned: tuple[object, np.ndarray]) -> None:
    """The local engine scores chunks on a few threads once the shared state is fitted: the
    table is the same as one chunk after the other."""
    from poisonguard.engine import LocalEngine

    ds, _ = poisoned
    one = scan(ds, sample_rows=600, chunk_rows=200, engine=LocalEngine(threads=1))  # type: ignore[arg-type]
    three = scan(ds, sample_rows=600, chunk_rows=200, engine=LocalEngine(threads=3))  # type: ignore[arg-type]
    assert one.table.to_csv().encode() == three.table.to_csv().encode()
