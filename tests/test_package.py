"""Package surface: explicit sorted __all__, light import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import poisonguard
import poisonguard.attacks
import poisonguard.datasets
import poisonguard.models


@pytest.mark.parametrize("module", [poisonguard, poisonguard.attacks, poisonguard.datasets,
                                    poisonguard.models])
def test_all_is_explicit_and_importable(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(module, name)


def test_import_is_light() -> None:
    code = ("import sys, poisonguard; heavy = [m for m in ('torch', 'sklearn', 'matplotlib') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
