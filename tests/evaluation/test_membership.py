"""poisonguard.evaluation.membership: metrics, the loss attack, LiRA, and the red team's use."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from poisonguard.attacks import TruthSerum
from poisonguard.datasets import load_dataset
from poisonguard.errors import InputError
from poisonguard.evaluation import run_redteam
from poisonguard.evaluation.membership import (
    ShadowRun,
    lira,
    logit_confidence,
    loss_attack,
    membership_metrics,
    run_shadow_models,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ------------------------------------------------------------------------------ metrics
def test_metrics_on_a_hand_made_case() -> None:
    """1,000 non-members scored 0..999; 20 members: 5 above every non-member, 5 above all but
    the top 4, 10 in the middle."""
    score = np.concatenate([np.arange(1000.0), [1000.5] * 5, [995.5] * 5, [500.5] * 10])
    member = np.arange(1020) >= 1000
    r = membership_metrics(score, member)
    assert (r.n_members, r.n_non_members, r.note) == (20, 1000, "")
    assert r.resolves_0_1_fpr
    assert r.tpr_at_0_1_fpr == 0.25  # one false positive allowed: only the top five
    assert r.tpr_at_1_fpr == 0.5     # ten allowed: the 995.5 members come in
    assert r.auc == pytest.approx((5 * 1000 + 5 * 996 + 10 * 501) / 20_000)


def test_perfect_reversed_and_tied_scores() -> None:
    member = np.repeat([True, False], 200)
    perfect = membership_metrics(member.astype(float), member)
    assert (perfect.auc, perfect.tpr_at_0_1_fpr, perfect.tpr_at_1_fpr) == (1.0, 1.0, 1.0)
    reversed_ = membership_metrics(-member.astype(float), member)
    assert (reversed_.auc, reversed_.tpr_at_1_fpr) == (0.0, 0.0)
    tied = membership_metrics(np.zeros(400), member)
    assert (tied.auc, tied.tpr_at_0_1_fpr, tied.tpr_at_1_fpr) == (0.5, 0.0, 0.0)
    assert "200 non-member pairs cannot resolve 0.1 % FPR" in tied.note
    assert not tied.resolves_0_1_fpr
    few = membership_metrics(np.arange(60.0), np.arange(60) % 2 == 0)
    assert "resolve neither 1 % nor 0.1 % FPR" in few.note


def test_an_uninformative_score_gives_tpr_equal_to_fpr() -> None:
    rng = _rng(1)
    member = rng.random(200_000) < 0.5
    r = membership_metrics(rng.random(200_000), member)
    assert r.auc == pytest.approx(0.5, abs=0.01)
    assert r.tpr_at_1_fpr == pytest.approx(0.01, abs=0.002)
    assert r.tpr_at_0_1_fpr == pytest.approx(0.001, abs=0.0005)


@pytest.mark.parametrize(("score", "member", "match"), [
    ([0.1, 0.2], [True], "same size"),
    ([0.1, np.nan], [True, False], "finite"),
    ([0.1, 0.2], [True, True], "both members and non-members"),
])
def test_metric_errors(score: Any, member: Any, match: str) -> None:
    with pytest.raises(InputError, match=match):
        membership_metrics(score, member)


def test_logit_confidence() -> None:
    proba = np.array([[0.9, 0.1, 0.0], [1 - 1e-15, 5e-16, 5e-16], [0.2, 0.3, 0.5]])
    out = logit_confidence(proba, np.array([0, 0, 7]), np.array([0, 1, 2]))
    assert out[0] == pytest.approx(math.log(9))
    assert out[1] == pytest.approx(math.log(1e15), rel=1e-9)  # 1 - p would round off
    assert out[2] < -600  # a label the model never saw: p = 0


# --------------------------------------------------------------------------------- LiRA
def _hand_run(shift: float, n_models: int = 8, n_targets: int = 40) -> ShadowRun:
    rng = _rng(3)
    member = rng.random((n_models, n_targets)).argsort(axis=0) < n_models // 2
    base = rng.normal(size=n_targets) * 3  # targets differ: a global threshold suffers
    conf = base + rng.normal(scale=0.5, size=(n_models, n_targets)) + shift * member
    return ShadowRun(conf, member, np.full(n_models, np.nan), 0.0)


def test_lira_calibrates_per_target_where_the_loss_attack_cannot() -> None:
    run = _hand_run(shift=2.0)
    online, offline, loss = lira(run), lira(run, online=False), loss_attack(run)
    assert (online.method, offline.method, loss.method) == ("lira-online", "lira-offline", "loss")
    assert online.auc > 0.95 and offline.auc > 0.95
    assert loss.auc < 0.8
    none = lira(_hand_run(shift=0.0))
    assert none.auc == pytest.approx(0.5, abs=0.08)
    spread = lira(_hand_run(shift=2.0, n_models=16), per_target_variance=True)
    assert spread.auc > 0.95
    assert (online.n_members, online.n_non_members) == (160, 160)


class _Noise:
    """A model that ignores its training data: seeded random probabilities."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def fit(self, X: Any, y: Any) -> _Noise:
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        p = _rng(self.seed).random((len(X), len(self.classes_)))
        out: np.ndarray = p / p.sum(axis=1, keepdims=True)
        return out

    def predict(self, X: Any) -> np.ndarray:
        out: np.ndarray = self.classes_[self.predict_proba(X).argmax(axis=1)]
        return out


def test_a_model_that_learns_nothing_leaks_nothing() -> None:
    ds = load_dataset("breast_cancer")
    run = run_shadow_models(_Noise, ds.X, ds.y, n_models=16, rng=_rng(0))
    for r in (lira(run), lira(run, online=False), loss_attack(run)):
        assert r.auc == pytest.approx(0.5, abs=0.03) and r.resolves_0_1_fpr
        assert r.tpr_at_1_fpr == pytest.approx(0.01, abs=0.01)
        assert r.tpr_at_0_1_fpr <= 0.005


def test_shadow_run_is_balanced_seeded_and_leaves_inputs_alone() -> None:
    ds = load_dataset("breast_cancer", n_rows=200)
    X = np.array(ds.X, copy=True)
    poison = (ds.X[:3], np.asarray(ds.y[:3]))

    def make(seed: int) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(random_state=seed))

    a = run_shadow_models(make, X, ds.y, n_models=6, targets=[5, 1, 9], extra=poison,
                          test=(ds.X, ds.y), rng=_rng(4))
    b = run_shadow_models(make, X, ds.y, n_models=6, targets=[5, 1, 9], extra=poison,
                          test=(ds.X, ds.y), rng=_rng(4))
    assert np.array_equal(X, ds.X)
    assert a.confidence.tobytes() == b.confidence.tobytes()
    assert np.array_equal(a.member, b.member) and np.array_equal(a.accuracy, b.accuracy)
    assert a.confidence.shape == a.member.shape == (6, 3) and a.n_models == 6
    assert (a.member.sum(axis=0) == 3).all()  # each target in exactly half of the models
    assert (a.accuracy > 0.8).all()
    c = run_shadow_models(make, X, ds.y, n_models=6, targets=[5, 1, 9], rng=_rng(5))
    assert not np.array_equal(a.member, c.member)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_models": 3}, r"'n_models' must be an integer >= 4 \(got 3\)"),
    ({"targets": [0, 500]}, r"'targets' must be distinct row positions in \[0, 100\)"),
    ({"targets": [1, 1]}, "'targets' must be distinct"),
    ({"extra": np.zeros((2, 30))}, r"'extra' must be a tuple \(X, y\)"),
    ({"test": (np.zeros((2, 30)), [0])}, "'test' has 2 rows of X but 1 labels"),
    ({"rng": 0}, r"'rng' must be a numpy.random.Generator"),
])
def test_shadow_run_errors_name_the_parameter(kwargs: dict[str, Any], match: str) -> None:
    ds = load_dataset("breast_cancer", n_rows=100)
    args: dict[str, Any] = {"rng": _rng(0), **kwargs}
    with pytest.raises(InputError, match=match):
        run_shadow_models(lambda s: LogisticRegression(), ds.X, ds.y, **args)


def test_dp_sgd_classifier_is_a_model_factory() -> None:
    pytest.importorskip("opacus")
    from poisonguard.defenses import DPSGDClassifier

    ds = load_dataset("breast_cancer", n_rows=100)
    run = run_shadow_models(lambda s: DPSGDClassifier(epsilon=4.0, epochs=2, hidden=8,
                                                      random_state=s),
                            ds.X, ds.y, n_models=4, targets=list(range(20)), test=(ds.X, ds.y),
                            rng=_rng(0))
    assert np.isfinite(run.confidence).all() and ((run.accuracy >= 0) & (run.accuracy <= 1)).all()
    assert 0.0 <= lira(run).auc <= 1.0


@pytest.mark.slow
def test_dp_sgd_hides_the_poisoned_targets() -> None:
    """Digits, 16 models, 32 targets with 4 replicas: without noise the poison shows the
    targets' membership; DP-SGD at epsilon 1 brings LiRA back near chance."""
    pytest.importorskip("opacus")
    from poisonguard.defenses import DPSGDClassifier

    ds = load_dataset("digits", n_rows=900)
    X = np.asarray(ds.X, dtype=np.float64).reshape(ds.n_rows, -1)
    targets = np.sort(_rng(0).choice(ds.n_rows, 32, replace=False))
    res = TruthSerum(targets=targets, copies=4).poison(ds, rng=_rng(1))
    poison = res.dataset.take(res.mask)
    extra = (np.asarray(poison.X, dtype=np.float64).reshape(poison.n_rows, -1), poison.y)
    auc = {}
    for epsilon in (math.inf, 1.0):
        run = run_shadow_models(lambda s, e=epsilon: DPSGDClassifier(epsilon=e, random_state=s),
                                X, ds.y, n_models=16, targets=targets, extra=extra, rng=_rng(2))
        auc[epsilon] = lira(run).auc
    assert auc[math.inf] >= 0.85 and auc[1.0] <= 0.65


# ----------------------------------------------------------------------------- red team
def test_red_team_measures_privacy_attacks_by_membership_auc() -> None:
    ds = load_dataset("digits", n_rows=900)
    t = run_redteam(ds, budgets=(0.1,), attacks=["truth-serum"], seed=0).table
    row = t.iloc[0]
    assert (row["attack"], row["variant"], row["note"]) == ("truth-serum", "membership AUC", "")
    assert row["n_poisoned"] == round(0.1 * 630)
    assert row["attack_success"] >= 0.8  # LiRA's AUC on the 15 targets (0.91; 0.5 is chance)
    default = run_redteam(load_dataset("iris"), budgets=(0.1,), attacks=None).table
    assert "truth-serum" not in set(default["attack"])  # shadow models: only when named
