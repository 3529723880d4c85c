"""``poisonguard audit``: a hardened model audited end to end on digits, exit 0 when no audit
calls it suspicious and 1 when one does, the report and trigger files written as one group,
never over an input; ``audits`` lists the audits; ``audit strip`` screens inputs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard import io
from poisonguard.cli import main
from poisonguard.datasets import load_dataset

pytest.importorskip("torch")
pytest.importorskip("poisonguard.audits.neural_cleanse")

_FAST = ["--audit", "neural-cleanse", "--param", "n_samples=30", "--param", "steps=10",
         "--param", "round_steps=5"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("digits")
    full = load_dataset("digits")
    ds = full.take(np.flatnonzero(np.isin(full.y, [0, 1, 2])))  # three classes: three searches
    io.save(ds.take(np.arange(0, 300)), folder / "train.npz")
    io.save(ds.take(np.arange(300, 400)), folder / "clean.npz")
    io.save(ds.take(np.arange(400, 430)), folder / "incoming.npz")
    assert main(["harden", str(folder / "train.npz"), "--defense", "robust-net", "--param",
                 "epochs=3", "--param", "width=8", "--out", str(folder / "model")]) == 0
    return {"model": folder / "model", "clean": folder / "clean.npz",
            "incoming": folder / "incoming.npz"}


def _one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), (code, err)
    return err[0]


@pytest.mark.slow
@pytest.mark.parametrize("threshold, code", [(1000.0, 0), (1e-9, 1)])
def test_exit_code_follows_the_verdict(digits: dict[str, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str], threshold: float,
                                       code: int) -> None:
    out = tmp_path / "audit"
    argv = ["audit", str(digits["model"]), "--data", str(digits["clean"]), "--out", str(out),
            *_FAST, "--param", f"neural-cleanse.threshold={threshold}"]
    assert main(argv) == code
    report = json.loads((out / "audit.json").read_text())
    assert report["suspicious"] is bool(code) and report["torch_module"] is True
    assert report["modality"] == "image" and report["input_shape"] == [8, 8]
    (entry,) = report["audits"]
    assert entry["audit"] == "neural-cleanse" and entry["suspicious"] is bool(code)
    assert entry["files"] == ["trigger-neural-cleanse.npz", "trigger-neural-cleanse.png"]
    with np.load(out / "trigger-neural-cleanse.npz", allow_pickle=False) as z:
        assert z["mask"].shape == (8, 8) and z["pattern"].shape == (8, 8)
    assert (out / "trigger-neural-cleanse.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "neural-cleanse" in printed and ("YES" in printed) is bool(code)


@pytest.mark.slow
def test_same_seed_same_report_and_run_is_the_default(digits: dict[str, Path], tmp_path: Path) -> None:
    runs = []
    for i, head in enumerate((["audit"], ["audit", "run"])):
        out = tmp_path / f"a{i}"
        main([*head, str(digits["model"]), "--data", str(digits["clean"]), "--out", str(out),
              *_FAST, "--seed", "3"])
        doc = json.loads((out / "audit.json").read_text())
        runs.append([{k: v for k, v in a.items() if k != "seconds"} for a in doc["audits"]])
        runs[-1].append(hashlib.sha256((out / "trigger-neural-cleanse.npz").read_bytes()).hexdigest())
    assert runs[0] == runs[1]


def test_audits_lists_the_registered_audits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audits"]) == 0
    assert "neural-cleanse" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--audit", "nope"], "--audit 'nope': unknown; known: "),
    (["--audit", "neural-cleanse", "--param", "colour=red"], "--param colour: not a parameter of "
                                                             "neural-cleanse"),
    (["--audit", "neural-cleanse", "--param", "strip.n=3"], "--param strip.n: 'strip' is not among"),
    (["--audit", "neural-cleanse", "--param", "steps"], "--param 'steps': expected KEY=VALUE"),
    (["--audit", "neural-cleanse", "--param", "steps=-1"], "'steps' must be an integer"),
    (["--classes", "a,b"], "--classes a,b: the model"),
])
def test_bad_options_are_one_line(digits: dict[str, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str], extra: list[str],
                                  message: str) -> None:
    line = _one_error_line(capsys, ["audit", str(digits["model"]), "--data", str(digits["clean"]),
                                    "--out", str(tmp_path / "o"), *extra])
    assert message in line, line
    assert not (tmp_path / "o").exists()


def test_data_that_does_not_fit_the_model_is_one_line(digits: dict[str, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0], "label": [0, 1]}).to_csv(tmp_path / "t.csv",
                                                                            index=False)
    line = _one_error_line(capsys, ["audit", str(digits["model"]), "--data", str(tmp_path / "t.csv"),
                                    "--out", str(tmp_path / "o")])
    assert "image model, but tabular inputs" in line or "the model takes" in line


def test_outputs_never_overwrite_inputs(digits: dict[str, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    out.mkdir()
    victim = out / "trigger-neural-cleanse.npz"
    victim.write_bytes(digits["clean"].read_bytes())
    before = hashlib.sha256(victim.read_bytes()).hexdigest()
    line = _one_error_line(capsys, ["audit", str(digits["model"]), "--data", str(victim),
                                    "--out", str(out), *_FAST])
    assert line.startswith(f"error: --out {victim}: output would overwrite the input")
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == before
    assert not (out / "audit.json").exists()
    line = _one_error_line(capsys, ["audit", str(digits["model"]), "--data", str(digits["clean"]),
                                    "--out", str(victim), *_FAST])
    assert "is a file, expected a folder" in line


def test_strip_screens_inputs(digits: dict[str, Path], tmp_path: Path) -> None:
    pytest.importorskip("poisonguard.audits.strip")
    out = tmp_path / "s"
    code = main(["audit", "strip", str(digits["model"]), str(digits["incoming"]), "--data",
                 str(digits["clean"]), "--frr", "0.05", "--out", str(out)])
    table = pd.read_csv(out / "strip.csv")
    assert list(table.columns) == ["row_id", "entropy", "flagged"] and len(table) == 30
    assert code == (1 if table["flagged"].any() else 0)
    assert set(table["flagged"]) <= {0, 1} and np.isfinite(table["entropy"]).all()


def test_strip_refuses_a_bad_frr(digits: dict[str, Path], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("poisonguard.audits.strip")
    out = tmp_path / "s"
    line = _one_error_line(capsys, ["audit", "strip", str(digits["model"]), str(digits["incoming"]),
                                    "--data", str(digits["clean"]), "--frr", "2", "--out", str(out)])
    assert "--frr must be in (0, 1)" in line
