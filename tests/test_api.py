"""The public API: an explicit, sorted, complete ``__all__`` whose names all resolve."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import types

import pytest

import poisonguard


def test_all_is_sorted_without_duplicates() -> None:
    assert poisonguard.__all__ == sorted(poisonguard.__all__)
    assert len(set(poisonguard.__all__)) == len(poisonguard.__all__)


@pytest.mark.parametrize("name", poisonguard.__all__)
def test_every_name_resolves(name: str) -> None:
    value = getattr(poisonguard, name)
    assert value is not None
    if name != "__version__":
        assert not isinstance(value, types.ModuleType)
        assert value.__module__.startswith("poisonguard.")


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from poisonguard import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(poisonguard.__all__)


def test_all_is_complete() -> None:
    lazy = poisonguard._LAZY  # type: ignore[attr-defined]
    assert set(lazy) <= set(poisonguard.__all__)
    for name in poisonguard.__all__:  # resolve every lazy name, then look at what is bound
        getattr(poisonguard, name)
    public = {name for name, value in vars(poisonguard).items()
              if not name.startswith("_") and not isinstance(value, types.ModuleType)
              and str(getattr(value, "__module__", "")).startswith("poisonguard")}
    assert public == set(poisonguard.__all__) - {"__version__"}
    assert set(poisonguard.__all__) <= set(dir(poisonguard))


def test_lazy_names_come_from_their_modules() -> None:
    for name, module in poisonguard._LAZY.items():  # type: ignore[attr-defined]
        assert getattr(poisonguard, name) is getattr(importlib.import_module(module), name)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        poisonguard.nope  # type: ignore[attr-defined]  # noqa: B018


def test_version_matches_the_installed_metadata() -> None:
    assert poisonguard.__version__ == importlib.metadata.version("poisonguard")


@pytest.mark.parametrize("name", ["scan", "gate"])
def test_function_wins_over_its_module_whatever_is_imported_first(name: str) -> None:
    """``poisonguard.scan`` is the function even after ``import poisonguard.scan`` (a fresh
    interpreter, so the module really is imported before the name is looked up)."""
    code = (f"import sys, types, poisonguard.{name}\n"
            f"from poisonguard.{name} import {name} as direct\n"
            "import poisonguard\n"
            f"assert poisonguard.{name} is direct, poisonguard.{name}\n"
            f"assert isinstance(sys.modules['poisonguard.{name}'], types.ModuleType)\n"
            f"from poisonguard import {name} as again\n"
            "assert again is direct\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)


def test_submodules_stay_importable_by_from_import() -> None:
    from poisonguard.gate import GateResult, check_schema
    from poisonguard.scan import ScanReport

    assert poisonguard.ScanReport is ScanReport
    assert poisonguard.GateResult is GateResult
    assert callable(check_schema)
    assert poisonguard.scan is sys.modules["poisonguard.scan"].scan
