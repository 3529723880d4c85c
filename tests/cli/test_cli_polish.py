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


def _leaves(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subs = getattr(command, "commands", None)
    if not subs:
        return [path]
    return [leaf for name, sub in sorted(subs.items()) for leaf in _leaves(sub, (*path, name))]


def test_every_command_has_an_example_one_metavar_style_and_described_options(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from poisonguard.cli._common import app

    monkeypatch.setenv("COLUMNS", "200")
    leaves = _leaves(typer.main.get_command(app))
    assert len(leaves) >= 30
    for leaf in leaves:
        assert main([*leaf, "--help"]) == 0
        text = capsys.readouterr().out
        assert "Example: poisonguard " + leaf[0] in " ".join(text.split()), leaf
        arguments = text.splitlines()[0].partition("[OPTIONS]")[2].split()
        assert all(a.strip("{}[].") == a.strip("{}[].").upper() for a in arguments), (leaf, arguments)
        options = text.partition("Options:")[2].splitlines()
        for line in options:
            if line.startswith("  -"):
                assert "<" not in line.split("  ")[1], (leaf, line)
                assert " --out " not in line or "-o, --out" in line, (leaf, line)
                assert len(line.split("  ", 2)) == 3 or "--help" in line, (leaf, line)  # described
