"""``poisonguard gate``: the split (nothing lost), quarantine floors, rejection, exit codes, and
inputs left untouched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard.attacks import get_attack
from poisonguard.cli import main
from poisonguard.datasets import load_dataset
from poisonguard.io import save


@pytest.fixture(scope="module")
def digits_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A trusted reference (1,200 digits images, NPZ) and a 400-row batch with 10 % random
    label flips."""
    folder = tmp_path_factory.mktemp("gate")
    ds = load_dataset("digits")
    ds = ds.replace(ids=[f"d{i}" for i in range(ds.n_rows)])
    order = np.random.default_rng(0).permutation(ds.n_rows)
    ref, batch = ds.take(order[:1200]), ds.take(order[1200:1600])
    res = get_attack("label-flip")(strategy="random", rate=0.1).poison(
        batch, rng=np.random.default_rng(1))
    files = {"ref": folder / "ref.npz", "batch": folder / "batch.npz"}
    save(ref, files["ref"])
    save(res.dataset, files["batch"])
    pd.DataFrame({"id": res.dataset.ids, "poisoned": res.mask}).to_csv(folder / "truth.csv",
                                                                       index=False)
    files["truth"] = folder / "truth.csv"
    return files


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _run(files: dict[str, Path], out: Path, *extra: str) -> int:
    return main(["gate", str(files["batch"]), "--reference", str(files["ref"]),
                 "--accepted", str(out / "accepted.npz"), "--quarantine", str(out / "q"),
                 "--quiet", *extra])


def test_split_loses_nothing_and_quarantines_the_flips(digits_files: dict[str, Path],
                                                      tmp_path: Path) -> None:
    before = {k: p.read_bytes() for k, p in digits_files.items()}
    assert _run(digits_files, tmp_path) == 1
    batch = _npz(digits_files["batch"])
    accepted = _npz(tmp_path / "accepted.npz")
    held = _npz(tmp_path / "q" / "quarantined.npz")
    reasons = pd.read_csv(tmp_path / "q" / "reasons.csv")
    ids = np.concatenate([accepted["ids"], held["ids"]])
    assert sorted(ids.tolist()) == sorted(batch["ids"].tolist())  # nothing lost, nothing added
    where = {i: k for k, i in enumerate(batch["ids"])}
    back = np.array([where[i] for i in ids])
    assert np.array_equal(np.concatenate([accepted["X"], held["X"]]), batch["X"][back])
    assert np.array_equal(np.concatenate([accepted["y"], held["y"]]), batch["y"][back])
    assert reasons["row_id"].tolist() == held["ids"].tolist()
    assert reasons["reason"].str.len().min() > 0
    truth = pd.read_csv(digits_files["truth"]).set_index("id")["poisoned"]
    caught = truth.loc[held["ids"]].sum() / truth.sum()
    false = (~truth.loc[held["ids"]]).sum() / (~truth).sum()
    assert caught >= 0.9 and false <= 0.05  # measured: 40 of 40 flips, 2 of 360 clean rows
    summary = json.loads((tmp_path / "q" / "gate.json").read_text())
    assert summary["status"] == "quarantined"
    assert (summary["accepted"], summary["quarantined"]) == (len(accepted["y"]), len(held["y"]))
    assert sum(summary["scan"]["flagged_by"].values()) == len(held["y"])
    assert {k: p.read_bytes() for k, p in digits_files.items()} == before


def test_dry_run_writes_nothing(digits_files: dict[str, Path], tmp_path: Path) -> None:
    assert _run(digits_files, tmp_path, "--dry-run") == 1
    assert list(tmp_path.iterdir()) == []


def test_drifted_batch_is_rejected(digits_files: dict[str, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    batch = _npz(digits_files["batch"])
    batch["X"] = np.clip(batch["X"] * 1.8 + 3.0, 0, None)
    files = {**digits_files, "batch": tmp_path / "shifted.npz"}
    np.savez(files["batch"], **batch)
    assert _run(files, tmp_path) == 3
    assert "rejected: drift" in capsys.readouterr().err
    assert len(_npz(tmp_path / "accepted.npz")["y"]) == 0  # nothing accepted, no stale file
    assert len(_npz(tmp_path / "q" / "quarantined.npz")["y"]) == len(batch["y"])


def test_provenance_failure_rejects_and_a_ledger_records_accepted_rows(
        digits_files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = tmp_path / "m.json"
    assert main(["manifest", str(digits_files["ref"]), "--out", str(m)]) == 0
    assert _run(digits_files, tmp_path, "--manifest", str(m)) == 3  # the manifest of another file
    assert len(_npz(tmp_path / "accepted.npz")["y"]) == 0
    good = tmp_path / "batch.json"
    assert main(["manifest", str(digits_files["batch"]), "--out", str(good)]) == 0
    book = tmp_path / "ledger.db"
    assert main(["ledger", "init", str(book)]) == 0
    capsys.readouterr()
    assert _run(digits_files, tmp_path, "--manifest", str(good), "--ledger", str(book)) == 1
    assert (tmp_path / "accepted.manifest.json").exists()
    assert (f"wrote {tmp_path / 'accepted.manifest.json'} and appended it to {book} as entry 1"
            in capsys.readouterr().out)
    assert main(["verify", str(tmp_path / "accepted.npz"),
                 str(tmp_path / "accepted.manifest.json")]) == 0
    assert main(["ledger", "verify", str(book)]) == 0


@pytest.mark.parametrize(("change", "message"), [
    (lambda z: {**z, "X": z["X"][:, :, :6]}, "batch images are (8, 6) but reference images are"),
    (lambda z: {k: v[:0] for k, v in z.items()}, "no rows"),
])
def test_bad_batches_exit_2(digits_files: dict[str, Path], tmp_path: Path,
                            capsys: pytest.CaptureFixture[str], change: object,
                            message: str) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, **change(_npz(digits_files["batch"])))  # type: ignore[operator]
    capsys.readouterr()
    assert _run({**digits_files, "batch": bad}, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "q").exists()


def test_tabular_batch_with_other_columns_exits_2(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    ref, batch = tmp_path / "ref.csv", tmp_path / "batch.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50),
                  "label": rng.integers(0, 2, 50)}).to_csv(ref, index=False)
    pd.DataFrame({"a": rng.normal(size=20), "c": rng.normal(size=20),
                  "label": rng.integers(0, 2, 20)}).to_csv(batch, index=False)
    capsys.readouterr()
    assert main(["gate", str(batch), "--reference", str(ref), "--accepted",
                 str(tmp_path / "ok.csv"), "--quarantine", str(tmp_path / "q"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {batch}: the data's columns differ from the reference's (missing "
                   f"'b'; unexpected 'c') (--reference {ref})\n")
    assert not (tmp_path / "q").exists() and not (tmp_path / "ok.csv").exists()


def test_every_row_quarantined_and_outputs_never_land_on_inputs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    ref, batch = tmp_path / "ref.csv", tmp_path / "q" / "quarantined.csv"
    batch.parent.mkdir()
    pd.DataFrame({"a": rng.normal(size=80), "b": rng.normal(size=80),
                  "label": rng.integers(0, 2, 80)}).to_csv(ref, index=False)
    pd.DataFrame({"a": rng.normal(size=30), "b": rng.normal(size=30),
                  "label": rng.choice(["yes", "no"], 30)}).to_csv(batch, index=False)
    before = batch.read_bytes()
    assert main(["gate", str(batch), "--reference", str(ref), "--accepted",
                 str(tmp_path / "ok.csv"), "--quarantine", str(tmp_path / "q"), "-q"]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert batch.read_bytes() == before
    moved = tmp_path / "batch.csv"
    moved.write_bytes(before)
    code = main(["gate", str(moved), "--reference", str(ref), "--accepted",
                 str(tmp_path / "ok.csv"), "--quarantine", str(tmp_path / "out"), "-q"])
    assert code == 1  # labels the reference never had: every row held back, none lost
    assert len(pd.read_csv(tmp_path / "ok.csv")) == 0
    assert pd.read_csv(tmp_path / "out" / "quarantined.csv").equals(pd.read_csv(moved))
    assert len(pd.read_csv(tmp_path / "out" / "reasons.csv")) == 30


def test_outputs_are_checked_before_the_quarantine_folder_is_made(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    ref, batch = tmp_path / "ref.csv", tmp_path / "batch.csv"
    for path, n in ((ref, 80), (batch, 30)):
        pd.DataFrame({"a": rng.normal(size=n), "label": rng.integers(0, 2, n)}).to_csv(
            path, index=False)
    (tmp_path / "alias.csv").hardlink_to(batch)
    (tmp_path / "adir.csv").mkdir()
    (tmp_path / "q2").mkdir()
    (tmp_path / "q2" / "reasons.csv").mkdir()
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    for accepted, quarantine, message in (
            ("alias.csv", "q", "--accepted"), ("adir.csv", "q", "is a directory"),
            ("ok.csv", "q2", "is a directory")):
        capsys.readouterr()
        assert main(["gate", str(batch), "--reference", str(ref), "--accepted",
                     str(tmp_path / accepted), "--quarantine", str(tmp_path / quarantine),
                     "-q"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, err
        assert sorted(p.name for p in tmp_path.rglob("*")) == listing  # no q/ made


def test_bad_engine_fails_before_any_work(digits_files: dict[str, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _run(digits_files, tmp_path, "--engine", "spark") == 2
    assert capsys.readouterr().err == "error: --engine must be one of local, dask (got 'spark')\n"
    assert not (tmp_path / "q").exists() and not (tmp_path / "accepted.npz").exists()
