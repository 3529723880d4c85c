"""What every command shares: --version, listings that are not cut off, tables that fit the
terminal."""

from __future__ import annotations

import pytest

from poisonguard import __version__
from poisonguard.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"poisonguard {__version__}"


def test_command_listings_are_not_cut_off(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for group in ([], ["monitor"], ["ledger"], ["datasets"], ["audit"]):
        assert main([*group, "--help"]) == 0
        listing = capsys.readouterr().out.partition("Commands:")[2]
        assert listing and "..." not in listing


@pytest.mark.parametrize("width", [80, 120])
def test_tables_fit_the_width(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                              width: int) -> None:
    monkeypatch.setenv("COLUMNS", str(width))
    for command in (["attacks"], ["detectors"], ["defenses"], ["catalog"]):
        assert main(command) == 0
        lines = capsys.readouterr().out.splitlines()
        assert max(len(line) for line in lines) <= width, command
