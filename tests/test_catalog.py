"""The catalog: one entry per attack family, joined with the registries."""

from __future__ import annotations

from poisonguard.attacks import ATTACKS
from poisonguard.catalog import FAMILIES, catalog
from poisonguard.detectors import DETECTORS


def test_every_attack_family_has_an_entry() -> None:
    assert {cls.family for cls in ATTACKS.values()} <= set(FAMILIES)


def test_catalog_joins_attacks_and_detectors() -> None:
    entries = {e.family: e for e in catalog()}
    assert sorted(entries) == sorted({cls.family for cls in ATTACKS.values()})
    for name, cls in ATTACKS.items():
        assert name in [a["name"] for a in entries[cls.family].attacks]
    for entry in entries.values():
        expected = sorted(n for n, d in DETECTORS.items() if entry.family in d.answers)
        assert [d["name"] for d in entry.detectors] == expected
        assert entry.to_dict()["family"] == entry.family
