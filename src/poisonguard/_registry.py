"""One registry for every family: attacks, detectors, defences, data sets.

A :class:`Registry` maps names to entries (usually classes) that carry their own ``name``. It
reads like a read-only mapping, so ``sorted(ATTACKS.items())`` and ``name in DEFENSES`` keep
working, while :meth:`Registry.get` turns an unknown name into an
:class:`~poisonguard.errors.InputError` that lists the known ones.

Examples
--------
>>> class Named:
...     name = "plain"
>>> things: Registry[type[Named]] = Registry("thing")
>>> _ = things.register(Named)
>>> things.get("plain") is Named, "plain" in things, things.names()
(True, True, ('plain',))
>>> things.get("nope")
Traceback (most recent call last):
...
poisonguard.errors.InputError: unknown thing 'nope'; known: plain
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Generic, TypeVar

from poisonguard.errors import InputError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries by name; ``kind`` names what they are in messages (``"attack"``, ``"data set"``).

    A detector registry is ``Registry[type[Detector]]("detector")``. Entries are added by
    :meth:`register` (a class decorator, or a plain call for instances) under their ``name``
    attribute and are never removed. Iteration follows registration order; :meth:`names` is
    sorted.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, entry: T) -> T:
        """Add ``entry`` under its ``name`` and return it unchanged (usable as a decorator).

        Raises
        ------
        RuntimeError
            The name is taken (two classes claiming one name is a bug of ours, not the user's).
        TypeError
            ``entry`` has no non-empty string ``name``.
        """
        name = getattr(entry, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"a registered {self.kind} needs a non-empty string 'name' "
                            f"(got {name!r} on {entry!r})")
        if name in self._entries:
            raise RuntimeError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises
        ------
        InputError
            ``name`` is not registered; the one-line message lists the known names.
        """
        if name not in self:
            raise InputError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> tuple[str, ...]:
        """Every registered name, sorted."""
        return tuple(sorted(self._entries))

    # ------------------------------------------------------------ read-only mapping protocol
    def __getitem__(self, name: str) -> T:
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> KeysView[str]:
        """Registered names, in registration order."""
        return self._entries.keys()

    def values(self) -> ValuesView[T]:
        """Registered entries, in registration order."""
        return self._entries.values()

    def items(self) -> ItemsView[str, T]:
        """``(name, entry)`` pairs, in registration order."""
        return self._entries.items()

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self.names())})"
