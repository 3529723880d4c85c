"""Puts tests/ on sys.path (pytest's default import mode), so tests can share ``_data``; gives
every test its own poisonguard home."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def own_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What poisonguard keeps between runs (the monitor's history) goes to a folder of the
    test's own, never the user's ``~/.local/share/poisonguard``."""
    home = tmp_path_factory.mktemp("poisonguard-home")
    monkeypatch.setenv("POISONGUARD_HOME", str(home))
    monkeypatch.delenv("POISONGUARD_DB", raising=False)
    return home
