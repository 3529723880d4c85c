"""The seeded examples in the monitor's docstrings run and print what they say."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

import poisonguard.monitor
from poisonguard.monitor import canary, drift, history, profile


@pytest.mark.parametrize("module", [canary, drift, history, profile], ids=lambda m: m.__name__)
def test_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_all_is_sorted_and_importable() -> None:
    names = poisonguard.monitor.__all__
    assert names == sorted(names) and len(set(names)) == len(names)
    assert all(hasattr(poisonguard.monitor, n) for n in names)
