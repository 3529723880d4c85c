"""Detectors: small, pure scorers of how suspicious each training row is.

Every module in this package that does not start with ``_`` defines detectors and registers
them in :data:`DETECTORS` (imported here, in name order). :mod:`._ensemble` puts their scores
on one scale and picks the flagged rows.
"""

import importlib
import pkgutil

from poisonguard.detectors._base import DEFAULT_DETECTORS, DETECTORS, Detector, get_detector, register
from poisonguard.detectors._ensemble import calibrate, combine

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    importlib.import_module(f"{__name__}.{_module}")

__all__ = ["DEFAULT_DETECTORS", "DETECTORS", "Detector", "calibrate", "combine", "get_detector",
           "register"]
