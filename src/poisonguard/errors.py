"""Exceptions raised by poisonguard.

Every user mistake raises an :class:`InputError` whose message names the file, column, row or
parameter at fault; the CLI prints that one line and exits with code 2.
"""

from __future__ import annotations

__all__ = ["DependencyError", "InputError", "IntegrityError", "PoisonguardError"]


class PoisonguardError(Exception):
    """Base class of every error poisonguard raises on purpose."""


class InputError(PoisonguardError, ValueError):
    """Bad data or a bad parameter supplied by the user (CLI exit code 2)."""


class IntegrityError(PoisonguardError):
    """Data that does not match what it claims to be: a checksum or signature failed (exit 3)."""


class DependencyError(PoisonguardError, ImportError):
    """An optional dependency is missing; the message says what to install (exit 2)."""
