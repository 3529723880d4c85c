"""``harden`` writes a defended model without pickle and ``certify`` reads it back: the
certificates are the in-memory model's, the curve is certified accuracy, and a model folder
that is not ours (or was edited) is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard import io
from poisonguard.cli import main
from poisonguard.datasets import load_dataset
from poisonguard.defenses import FiniteAggregation, PartitionEnsemble


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("digits")
    ds = load_dataset("digits")
    train, test = folder / "train.npz", folder / "test.npz"
    io.save(ds.take(np.arange(0, 1200)), train)
    io.save(ds.take(np.arange(1200, 1500)), test)
    return train, test


@pytest.mark.parametrize("defense, params, model", [
    ("dpa", ["n_partitions=12"], PartitionEnsemble(n_partitions=12)),
    ("fa", ["n_partitions=6", "spread=3"], FiniteAggregation(n_partitions=6, spread=3)),
])
def test_certificates_are_the_fitted_model_s(digits: tuple[Path, Path], tmp_path: Path,
                                             defense: str, params: list[str],
                                             model: PartitionEnsemble) -> None:
    train, test = digits
    argv = ["harden", str(train), "--defense", defense, "--out", str(tmp_path / "m")]
    for p in params:
        argv += ["--param", p]
    assert main(argv) == 0
    spec = json.loads((tmp_path / "m" / "spec.json").read_text())
    assert spec["defense"] == defense and spec["trained_on"]["rows"] == 1200
    assert main(["certify", str(tmp_path / "m"), str(test), "--out", str(tmp_path / "c")]) == 0
    got = pd.read_csv(tmp_path / "c" / "certificates.csv")
    tr, te = io.load(train), io.load(test)
    X = np.asarray(tr.X, dtype=np.float64).reshape(tr.n_rows, -1)
    cert = model.fit(X, tr.y).certify(np.asarray(te.X, dtype=np.float64).reshape(te.n_rows, -1))
    assert np.array_equal(got["prediction"], cert.prediction)
    assert np.array_equal(got["radius"], cert.radius)
    assert np.array_equal(got["radius_changed"], cert.radius_changed)
    curve = pd.read_csv(tmp_path / "c" / "curve.csv")
    y_test = np.asarray(te.y)
    assert list(curve["radius"]) == list(range(int(cert.radius.max()) + 2))
    assert np.allclose(curve["certified_accuracy"],
                       [cert.certified_accuracy(y_test, r) for r in curve["radius"]])
    assert np.allclose(curve["certified_accuracy_changed"],
                       [cert.certified_accuracy(y_test, r, changed=True) for r in curve["radius"]])
    assert curve["certified_accuracy"].iloc[0] >= 0.85
    assert (tmp_path / "c" / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_robust_linear_on_a_mixed_table_and_no_certificate(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    n = 300
    colour = rng.choice(["red", "green", "blue"], n)
    x = rng.normal(size=n)
    frame = pd.DataFrame({"x": x, "colour": colour,
                          "label": ((x + (colour == "red")) > 0.5).astype(int)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    assert main(["harden", str(tmp_path / "t.csv"), "--param", "loss=sce",
                 "--out", str(tmp_path / "m")]) == 0
    spec = json.loads((tmp_path / "m" / "spec.json").read_text())
    assert spec["encoding"]["categories"] == [["colour", ["blue", "green", "red"]]]
    assert spec["params"]["loss"] == "sce"
    capsys.readouterr()
    assert main(["certify", str(tmp_path / "m"), str(tmp_path / "t.csv"), "--out",
                 str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'm'}: a robust-linear model has no "
                                       "certificate; harden with --defense dpa or fa\n")


@pytest.mark.parametrize("extra, message", [
    (["--param", "depth=3"], "--param depth: not a parameter of robust-linear (known: alpha, beta"),
    (["--param", "loss=mse"], "--defense robust-linear: loss must be one of ce, smooth, gce"),
    (["--param", "loss"], "--param 'loss': expected KEY=VALUE"),
    (["--defense", "magic"], "--defense 'magic': unknown; known: abl, dp-sgd, dpa, fa, "
     "robust-linear, robust-net"),
])
def test_bad_options_are_one_line(digits: tuple[Path, Path], tmp_path: Path, extra: list[str],
                                  message: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["harden", str(digits[0]), "--out", str(tmp_path / "m"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "m").exists()


def test_text_is_hardened_and_certified_through_its_own_tfidf(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    rng = np.random.default_rng(0)
    spam, ham = ["win", "cash", "prize", "free", "now"], ["lunch", "see", "you", "home", "today"]
    texts = [" ".join(rng.choice(spam if i % 2 else ham, 6)) for i in range(300)]
    frame = pd.DataFrame({"text": texts, "label": np.where(np.arange(300) % 2, "spam", "ham")})
    frame.to_csv(tmp_path / "sms.csv", index=False)
    assert main(["harden", str(tmp_path / "sms.csv"), "--defense", "dpa", "--param",
                 "n_partitions=6", "--out", str(tmp_path / "m")]) == 0
    assert main(["certify", str(tmp_path / "m"), str(tmp_path / "sms.csv"), "--out",
                 str(tmp_path / "c")]) == 0
    got = pd.read_csv(tmp_path / "c" / "certificates.csv")
    X = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts)
    assert sparse.issparse(X)
    cert = PartitionEnsemble(n_partitions=6).fit(X, frame["label"]).certify(X)
    assert list(got["prediction"]) == list(cert.prediction)
    assert np.array_equal(got["radius"], cert.radius) and got["correct"].mean() >= 0.95
    # networks take the same TF-IDF (made dense): DP-SGD trains on text; it certifies nothing
    pytest.importorskip("opacus")
    assert main(["harden", str(tmp_path / "sms.csv"), "--defense", "dp-sgd", "--out",
                 str(tmp_path / "m2")]) == 0
    assert (tmp_path / "m2" / "spec.json").is_file()
    capsys.readouterr()
    assert main(["certify", str(tmp_path / "m2"), str(tmp_path / "sms.csv"), "--out",
                 str(tmp_path / "c2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


@pytest.fixture(scope="module")
def small_dpa(digits: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "m"
    assert main(["harden", str(digits[0]), "--defense", "dpa", "--param", "n_partitions=4",
                 "--out", str(out)]) == 0
    return out


def _edited(folder: Path, tmp_path: Path, edit: str) -> Path:
    bad = tmp_path / f"bad-{edit}"
    bad.mkdir()
    spec = json.loads((folder / "spec.json").read_text())
    arrays = dict(np.load(folder / "arrays.npz", allow_pickle=False))
    if edit == "shape":
        arrays["m0.coef"] = arrays["m0.coef"][:, :10]
    elif edit == "nan":
        arrays["m1.intercept"] = arrays["m1.intercept"] * np.nan
    elif edit == "pickle":
        arrays["m0.coef"] = np.array([{"x": 1}], dtype=object)
    elif edit == "format":
        spec["format"] = "something-else"
    elif edit == "member":
        spec["members"][0] = "os.system"
    (bad / "spec.json").write_text(json.dumps(spec))
    np.savez(bad / "arrays.npz", **arrays, allow_pickle=True) if edit == "pickle" else np.savez(
        bad / "arrays.npz", **arrays)
    return bad


@pytest.mark.parametrize("edit, message", [
    ("shape", "array 'm0.coef' has shape (10, 10)"),
    ("nan", "array 'm1.intercept' holds values that are not finite"),
    ("pickle", "arrays.npz is not a numpy archive"),
    ("format", "spec.json is not a poisonguard model"),
    ("member", "member 0 is 'os.system'"),
])
def test_an_edited_model_is_refused(digits: tuple[Path, Path], small_dpa: Path, tmp_path: Path,
                                    edit: str, message: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = _edited(small_dpa, tmp_path, edit)
    test = digits[1]
    capsys.readouterr()
    assert main(["certify", str(bad), str(test), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {bad}: {message}") and err.count("\n") == 1, err
    assert not (tmp_path / "c").exists()


def test_dp_sgd_round_trip(digits: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("opacus")
    from poisonguard.defenses import DPSGDClassifier
    from poisonguard.defenses.store import load_model

    train, test = digits
    assert main(["harden", str(train), "--defense", "dp-sgd", "--param", "epsilon=3",
                 "--param", "epochs=3", "--out", str(tmp_path / "m")]) == 0
    loaded, spec = load_model(tmp_path / "m")
    tr, te = io.load(train), io.load(test)
    fitted = DPSGDClassifier(epsilon=3, epochs=3).fit(
        np.asarray(tr.X, dtype=np.float64).reshape(tr.n_rows, -1), tr.y)
    X_test = np.asarray(te.X, dtype=np.float64).reshape(te.n_rows, -1)
    assert np.allclose(loaded.predict_proba(X_test), fitted.predict_proba(X_test))
    assert spec["privacy"]["epsilon"] == pytest.approx(fitted.epsilon_)
    assert loaded.group_privacy(2)[0] == pytest.approx(2 * fitted.epsilon_)


def test_scan_then_harden_in_one_go(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "flipped.csv"
    assert main(["datasets", "export", "breast_cancer", "--out", str(tmp_path / "bc.csv")]) == 0
    assert main(["attack", str(tmp_path / "bc.csv"), "--attack", "label-flip", "--rate", "0.1",
                 "--out", str(data)]) == 0
    out = tmp_path / "scan"
    assert main(["scan", str(data), "--out", str(out), "-q", "--harden", "dpa",
                 "--harden-param", "n_partitions=5"]) == 0
    scores = pd.read_csv(out / "scores.csv")
    spec = json.loads((out / "model" / "spec.json").read_text())
    assert spec["defense"] == "dpa"
    assert spec["trained_on"]["rows"] == len(scores) - int(scores["flagged"].sum())
    assert main(["certify", str(out / "model"), str(tmp_path / "bc.csv"), "--out",
                 str(tmp_path / "c")]) == 0
    curve = pd.read_csv(tmp_path / "c" / "curve.csv")
    assert curve["certified_accuracy"].iloc[0] >= 0.9  # five parts of ~100 clean-ish rows
    capsys.readouterr()
    assert main(["scan", str(data), "--out", str(tmp_path / "s2"), "-q", "--model-out",
                 str(tmp_path / "m2")]) == 2
    assert capsys.readouterr().err == ("error: --harden-param and --model-out belong to --harden: "
                                       "give --harden NAME\n")


@pytest.mark.parametrize("defense, params", [
    ("robust-net", ["loss=sce", "epochs=4"]),
    ("abl", ["net=cnn", "epochs=3", "isolation_epochs=1", "unlearning_epochs=1"]),
])
def test_networks_round_trip(digits: tuple[Path, Path], tmp_path: Path, defense: str,
                             params: list[str]) -> None:
    pytest.importorskip("torch")
    from poisonguard.defenses import get_defense
    from poisonguard.defenses.store import load_model

    train, test = digits
    argv = ["harden", str(train), "--defense", defense, "--out", str(tmp_path / "m")]
    for p in params:
        argv += ["--param", p]
    assert main(argv) == 0
    loaded, spec = load_model(tmp_path / "m")
    tr, te = io.load(train), io.load(test)
    kwargs = {k: int(v) if v.isdigit() else v for k, v in (p.split("=") for p in params)}
    model = get_defense(defense, **kwargs)
    cnn = kwargs.get("net") == "cnn"
    shape = (-1, 8, 8) if cnn else (-1, 64)
    fitted = model.fit(np.asarray(tr.X, dtype=np.float64).reshape(shape), tr.y)
    X_test = np.asarray(te.X, dtype=np.float64).reshape(shape)
    assert np.allclose(loaded.predict_proba(X_test), fitted.predict_proba(X_test), atol=1e-6)
    assert spec["network"]["shape"] == ([8, 8] if cnn else [64])


def test_an_edited_network_shape_is_refused_before_building(digits: tuple[Path, Path],
                                                            tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from poisonguard.defenses.store import load_model
    from poisonguard.errors import InputError

    assert main(["harden", str(digits[0]), "--defense", "robust-net", "--param", "epochs=1",
                 "--out", str(tmp_path / "m")]) == 0
    spec = json.loads((tmp_path / "m" / "spec.json").read_text())
    spec["network"]["shape"] = [100_000, 100_000]  # a 10^10-input layer if it were built
    (tmp_path / "m" / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(InputError, match=r"array 'net.1.weight' has shape \(64, 64\)"):
        load_model(tmp_path / "m")
