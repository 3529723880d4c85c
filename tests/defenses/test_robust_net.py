"""Networks with robust losses: at 40 % random flips on digits GCE and SCE keep several points
that cross-entropy loses, for the MLP and the CNN; runs are reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.utils.estimator_checks import parametrize_with_checks

pytest.importorskip("torch")

from poisonguard.defenses import RobustNet, get_defense


@pytest.fixture(scope="module")
def flipped() -> tuple[np.ndarray, ...]:
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X.reshape(-1, 8, 8), y, test_size=0.3, random_state=0,
                                          stratify=y)
    rng = np.random.default_rng(0)
    noisy = ytr.copy()
    idx = rng.choice(len(noisy), int(0.4 * len(noisy)), replace=False)
    noisy[idx] = (noisy[idx] + rng.integers(1, 10, len(idx))) % 10
    return Xtr, noisy, Xte, yte


@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_bounded_losses_keep_what_cross_entropy_loses(flipped: tuple[np.ndarray, ...],
                                                      net: str) -> None:
    Xtr, noisy, Xte, yte = flipped
    score = {loss: get_defense("robust-net", net=net, loss=loss).fit(Xtr, noisy).score(Xte, yte)
             for loss in ("ce", "gce", "sce")}
    # measured on this split: mlp ce 0.896, gce 0.930, sce 0.943; cnn ce 0.915, gce 0.944,
    # sce 0.959. benchmarks/results/harden.md (`nets`, other splits, 2 seeds) agrees for SCE on
    # both networks and GCE on the MLP, but GCE on the CNN gains nothing there (0.943 vs 0.941):
    # only what holds in both is asserted
    assert score["sce"] >= score["ce"] + 0.02
    if net == "mlp":
        assert score["gce"] >= score["ce"] + 0.02
    assert min(score.values()) >= 0.85


def test_reproducible_and_parameters_named(flipped: tuple[np.ndarray, ...]) -> None:
    Xtr, noisy, Xte, _ = flipped
    a = RobustNet(loss="sce", epochs=5).fit(Xtr, noisy).predict_proba(Xte)
    b = RobustNet(loss="sce", epochs=5).fit(Xtr, noisy).predict_proba(Xte)
    assert np.array_equal(a, b)
    for params, message in (({"loss": "mae"}, "loss must be one of"),
                            ({"warmup": -1}, "warmup must be >= 0"), ({"net": "rnn"}, "net must be")):
        with pytest.raises(ValueError, match=message):
            RobustNet(**params).fit(Xtr[:40], noisy[:40])  # type: ignore[arg-type]


@parametrize_with_checks([RobustNet(loss="gce", epochs=30, warmup=10, batch_size=16)])
def test_sklearn_contract(estimator: RobustNet, check: object) -> None:
    check(estimator)  # type: ignore[operator]


@pytest.mark.parametrize("name", ["robust-net", "abl", "dp-sgd"])
def test_networks_take_sparse_text_features(toy_tfidf: tuple[object, np.ndarray], name: str) -> None:
    """TF-IDF text (sparse) trains the torch defences as it trains the linear ones: the two
    vocabularies are learnt, dense and sparse copies give the same predictions."""
    if name == "dp-sgd":
        pytest.importorskip("opacus")
    X, y = toy_tfidf
    params = {"epsilon": 8.0} if name == "dp-sgd" else {}
    model = get_defense(name, random_state=0, **params).fit(X, y)
    assert model.score(X, y) >= 0.9
    np.testing.assert_array_equal(model.predict(X), model.predict(X.toarray()))


def test_oversized_sparse_input_is_refused_with_its_size(monkeypatch: pytest.MonkeyPatch,
                                                         toy_tfidf: tuple[object, np.ndarray]) -> None:
    from poisonguard.defenses import _torch

    monkeypatch.setattr(_torch, "DENSE_LIMIT", 1024)
    X, y = toy_tfidf
    with pytest.raises(ValueError, match=r"sparse input of 400 x \d+ needs .* GiB dense"):
        get_defense("robust-net").fit(X, y)
