"""Issue 11: no command writes over one of its own inputs, pairs land together, keys are never
written through a planted link, report CSVs cannot run formulas, and a full disk is one line."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from poisonguard import io
from poisonguard.cli import main
from poisonguard.errors import InputError


def _table(path: Path, n: int = 60, ids: list[str] | None = None) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=n).round(3), "b": rng.normal(size=n).round(3),
                          "label": np.arange(n) % 2})
    if ids is not None:
        frame.insert(0, "id", ids)
    frame.to_csv(path, index=False)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], *protected: Path) -> str:
    """Run ``argv``; it must exit 2 with one error line and leave ``protected`` byte-identical."""
    before = {p: _digest(p) for p in protected}
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert {p: _digest(p) for p in protected} == before
    return err[0]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return _table(tmp_path / "in.csv")


@pytest.mark.parametrize("option", ["--out", "--truth", "--save-trigger"])
def test_attack_refuses_every_output_on_its_input(data: Path, tmp_path: Path, option: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["attack", str(data), "--attack", "backdoor", "--trigger", "feature", "--rate", "0.1",
            "--out", str(tmp_path / "p.csv")]
    if option == "--out":
        argv[-1] = str(data)
    else:
        argv += [option, str(data)]
    line = _refused(capsys, argv, data)
    assert line.startswith(f"error: {option} {data}: output would overwrite the input {data}")
    assert not (tmp_path / "p.csv").exists()


def test_default_truth_path_may_not_land_on_the_input(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    victim = _table(tmp_path / "X.truth.csv")
    line = _refused(capsys, ["attack", str(victim), "--attack", "label-flip", "--rate", "0.1",
                             "--out", str(tmp_path / "X.csv")], victim)
    assert line.startswith(f"error: --truth {victim}: output would overwrite the input")
    assert not (tmp_path / "X.csv").exists()


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_link_to_the_input_is_the_input(data: Path, tmp_path: Path, link: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    alias = tmp_path / "alias.csv"
    (os.symlink if link == "symlink" else os.link)(data, alias)
    _refused(capsys, ["attack", str(data), "--attack", "label-flip", "--rate", "0.1",
                      "--out", str(alias)], data)
    assert alias.exists()


def test_trigger_apply_and_monitor_init_keep_their_inputs(data: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    trig = tmp_path / "t.json"
    assert main(["attack", str(data), "--attack", "backdoor", "--trigger", "feature", "--rate",
                 "0.1", "--out", str(tmp_path / "p.csv"), "--save-trigger", str(trig)]) == 0
    for out in (data, trig):
        _refused(capsys, ["trigger", "apply", str(trig), str(data), "--out", str(out)], data, trig)
    _refused(capsys, ["monitor", "init", str(data), "--out", str(data)], data)


def test_scan_refuses_scores_over_its_input_before_scanning(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    victim = _table(folder / "scores.csv")
    line = _refused(capsys, ["scan", str(victim), "--out", str(folder), "--quiet"], victim)
    assert line.startswith(f"error: --out {victim}: output would overwrite the input")
    assert sorted(p.name for p in folder.iterdir()) == ["scores.csv"]


def test_write_clean_may_not_replace_the_scan_s_own_scores(data: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    line = _refused(capsys, ["scan", str(data), "--out", str(out), "--quiet",
                             "--write-clean", str(out / "scores.csv")], data)
    assert line == (f"error: --write-clean {out / 'scores.csv'}: is where the scan writes its "
                    "own scores.csv; choose another path")


def test_write_clean_keeps_the_cells_as_written(tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    rows = "".join(f"0{1400 + i},{i % 7}e1,{i % 2}\n" for i in range(60))
    path.write_text("zip,v,label\n" + rows)
    clean = tmp_path / "clean.csv"
    assert main(["scan", str(path), "--out", str(tmp_path / "o"), "--quiet",
                 "--write-clean", str(clean)]) == 0
    kept = clean.read_text().splitlines()
    assert kept[0] == "zip,v,label"
    assert set(kept[1:]) <= set(rows.splitlines()) and kept[1].startswith("0140")
    scores = pd.read_csv(tmp_path / "o" / "scores.csv")
    assert len(kept) - 1 == int((scores["flagged"] == 0).sum())


def test_attack_group_puts_the_data_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash before the data file lands leaves no data file, never data with an old truth."""
    truth, out = tmp_path / "p.truth.csv", tmp_path / "p.csv"
    truth.write_text("old truth\n")
    out.write_text("old data\n")
    real = io._commit

    def crash_on_data(tmp: Path, target: Path) -> None:
        if target == out:
            raise KeyboardInterrupt  # the process dies between the two renames
        real(tmp, target)

    monkeypatch.setattr(io, "_commit", crash_on_data)
    with pytest.raises(KeyboardInterrupt), io.atomic_paths([truth, out]) as (t_tmp, o_tmp):
        t_tmp.write_text("new truth\n")
        o_tmp.write_text("new data\n")
    assert truth.read_text() == "new truth\n" and not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.truth.csv"]  # no temporary left


def test_keygen_never_follows_a_planted_link(tmp_path: Path) -> None:
    """The old temporary name was ``.NAME.tmp<pid>``: a link planted there leaked the key."""
    stolen = tmp_path / "stolen"
    stolen.write_bytes(b"")
    os.symlink(stolen, tmp_path / f".key.tmp{os.getpid()}")
    assert main(["keygen", "--out", str(tmp_path / "key")]) == 0
    assert stolen.read_bytes() == b""
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    assert b"PRIVATE KEY" in (tmp_path / "key").read_bytes()


def test_report_csvs_neutralise_formulas_but_copies_stay_exact(tmp_path: Path) -> None:
    ids = [f"=HYPERLINK(\"x\",{i})" if i % 3 == 0 else (f"+{i}" if i % 3 == 1 else f"r{i}")
           for i in range(60)]
    data = _table(tmp_path / "in.csv", ids=ids)
    out, truth = tmp_path / "p.csv", tmp_path / "p.truth.csv"
    assert main(["attack", str(data), "--attack", "label-flip", "--rate", "0.1", "--id-col", "id",
                 "--out", str(out)]) == 0
    t = pd.read_csv(truth, dtype=str)
    assert t["row_id"].str.startswith("'=").sum() == 20 and t["row_id"].str.startswith("'+").sum() == 20
    assert pd.read_csv(out, dtype=str)["id"].tolist() == ids  # the data copy is exact
    assert main(["scan", str(data), "--id-col", "id", "--out", str(tmp_path / "o"), "--quiet",
                 "--write-clean", str(tmp_path / "clean.csv")]) == 0
    scores = pd.read_csv(tmp_path / "o" / "scores.csv", dtype=str)
    assert not scores["row_id"].str.match(r"^[=+\-@]").any()
    assert sorted(scores["row_id"].str.lstrip("'")) == sorted(ids)
    clean_ids = pd.read_csv(tmp_path / "clean.csv", dtype=str)["id"]
    assert set(clean_ids) <= set(ids) and clean_ids.str.startswith("=").any()


def test_a_full_disk_is_one_line(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    def full(dataset: object, tmp: Path, *, fmt: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp))

    monkeypatch.setattr(io, "save_to", full)
    out = tmp_path / "p.csv"
    line = _refused(capsys, ["attack", str(data), "--attack", "label-flip", "--rate", "0.1",
                             "--out", str(out)], data)
    assert line == f"error: {out}: cannot write (No space left on device)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


@pytest.mark.parametrize("command", ["attack", "scan"])
@pytest.mark.parametrize("seed", ["-1", "1099511627776"])
def test_seeds_out_of_range_are_usage_errors(data: Path, tmp_path: Path, command: str, seed: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = {"attack": ["attack", str(data), "--attack", "label-flip", "--out", str(tmp_path / "p.csv")],
            "scan": ["scan", str(data), "--out", str(tmp_path / "o")]}[command]
    assert main([*argv, "--seed", seed]) == 2
    err = capsys.readouterr().err
    assert "--seed" in err and "Traceback" not in err
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "o").exists()


@pytest.mark.parametrize("text, why", [
    ('{"kind": "feature", "size": 1e400}', "number 1e400 is out of range"),
    ('{"kind": "feature", "size": ' + "9" * 5000 + "}", "an integer of 5000 digits is out of range"),
    ("[" * 100_000 + "]" * 100_000, "JSON nested too deeply"),
    ('{"kind": NaN}', "NaN is not a number JSON allows"),
])
def test_hand_edited_json_is_one_line(data: Path, tmp_path: Path, text: str, why: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    trig = tmp_path / "t.json"
    trig.write_text(text)
    line = _refused(capsys, ["trigger", "apply", str(trig), str(data), "--out",
                             str(tmp_path / "o.csv")], data, trig)
    assert line == f"error: {trig}: not a trigger JSON file ({why})"


def test_the_guard_is_for_commands_not_for_library_calls(data: Path) -> None:
    ds = io.load(data)
    io.save(ds, data)  # a library user may overwrite their own file on purpose
    with io.guarded_outputs():
        io.load(data)
        with pytest.raises(InputError, match="output would overwrite the input"):
            io.save(ds, data)


def test_a_file_rewritten_during_the_scan_is_refused(data: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The scan's provenance (SHA-256, Merkle root) must be of the rows it scanned."""
    from poisonguard.provenance import manifest

    real = manifest.fingerprint

    def rewrite_then_hash(path: str, **roles: object) -> object:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write("0.5,0.5,1\n")  # another writer appends a row meanwhile
        return real(path, **roles)  # type: ignore[arg-type]

    monkeypatch.setattr(manifest, "fingerprint", rewrite_then_hash)
    capsys.readouterr()
    assert main(["scan", str(data), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert capsys.readouterr().err == (f"error: {data}: the file changed while it was being "
                                       "scanned; scan it again\n")
    assert not (tmp_path / "o" / "report.json").exists()
