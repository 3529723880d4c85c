"""poisonguard: red-team, scan, harden, trace and monitor training data against poisoning.

The names below are the public API. Everything but the errors is imported on first use
(PEP 562), so ``import poisonguard`` loads neither numpy, pandas, scikit-learn nor scipy.

``poisonguard.scan`` and ``poisonguard.gate`` are the functions; their modules of the same
name stay importable (``from poisonguard.scan import ScanReport``), but the package attribute
never becomes the module, whatever was imported first (see ``docs/decisions.md``, "Public API").

Examples
--------
>>> import numpy as np
>>> import poisonguard as pg
>>> ds = pg.load_dataset("iris", n_rows=30)
>>> pg.get_attack("label-flip")(count=3).poison(ds, rng=np.random.default_rng(0)).n_poisoned
3
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from poisonguard.errors import DependencyError, InputError, IntegrityError, PoisonguardError

if TYPE_CHECKING:
    from poisonguard.attacks import PoisonResult, get_attack
    from poisonguard.dataset import Dataset
    from poisonguard.datasets import load_dataset
    from poisonguard.defenses import get_defense
    from poisonguard.detectors import get_detector
    from poisonguard.evidence import Evidence
    from poisonguard.gate import GateResult, gate
    from poisonguard.io import load, save
    from poisonguard.scan import ScanReport, scan

__version__ = "0.1.0"

__all__ = [
    "Dataset",
    "DependencyError",
    "Evidence",
    "GateResult",
    "InputError",
    "IntegrityError",
    "PoisonResult",
    "PoisonguardError",
    "ScanReport",
    "__version__",
    "gate",
    "get_attack",
    "get_defense",
    "get_detector",
    "load",
    "load_dataset",
    "save",
    "scan",
]

# name -> module that defines it, imported on first access
_LAZY: dict[str, str] = {
    "Dataset": "poisonguard.dataset",
    "Evidence": "poisonguard.evidence",
    "GateResult": "poisonguard.gate",
    "PoisonResult": "poisonguard.attacks",
    "ScanReport": "poisonguard.scan",
    "gate": "poisonguard.gate",
    "get_attack": "poisonguard.attacks",  # the package: importing it registers every attack
    "get_defense": "poisonguard.defenses",
    "get_detector": "poisonguard.detectors",
    "load": "poisonguard.io",
    "load_dataset": "poisonguard.datasets",
    "save": "poisonguard.io",
    "scan": "poisonguard.scan",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access and keep the name (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """This package's module type: importing a submodule that shares its name with a public
    function (``poisonguard.scan``, ``poisonguard.gate``) does not rebind the package attribute
    to the module, so ``poisonguard.scan`` is the function whatever was imported first. The
    submodule stays in ``sys.modules`` for ``from poisonguard.scan import ...``."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
