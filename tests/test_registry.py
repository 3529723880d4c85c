"""The one generic registry, and each real registry against what its CLI command lists."""

from __future__ import annotations

from typing import ClassVar

import pytest

from poisonguard._registry import Registry
from poisonguard.attacks import ATTACKS, get_attack
from poisonguard.cli import main
from poisonguard.datasets import DATASETS, load_dataset
from poisonguard.defenses import DEFENSES, get_defense
from poisonguard.detectors import DETECTORS
from poisonguard.errors import InputError


class Thing:
    name: ClassVar[str] = "thing"


def _named(name: str) -> type[Thing]:
    return type(f"Thing_{name}", (Thing,), {"name": name})


@pytest.fixture()
def things() -> Registry[type[Thing]]:
    reg: Registry[type[Thing]] = Registry("widget")
    for name in ("beta", "alpha", "gamma"):
        reg.register(_named(name))
    return reg


def test_register_is_a_class_decorator_that_returns_the_class() -> None:
    reg: Registry[type[Thing]] = Registry("widget")

    @reg.register
    class Spanner(Thing):
        name = "spanner"

    assert reg.get("spanner") is Spanner
    assert reg["spanner"] is Spanner


def test_register_takes_instances_with_a_name_too() -> None:
    class Info:
        def __init__(self, name: str) -> None:
            self.name = name

    reg: Registry[Info] = Registry("data set")
    info = reg.register(Info("iris"))
    assert reg.get("iris") is info


def test_registering_a_name_twice_is_a_bug() -> None:
    reg: Registry[type[Thing]] = Registry("widget")
    reg.register(_named("alpha"))
    with pytest.raises(RuntimeError, match=r"^widget 'alpha' registered twice$"):
        reg.register(_named("alpha"))
    assert len(reg) == 1


@pytest.mark.parametrize("name", [None, "", 3])
def test_an_entry_needs_a_string_name(name: object) -> None:
    reg: Registry[object] = Registry("widget")
    with pytest.raises(TypeError, match="non-empty string 'name'"):
        reg.register(type("Nameless", (), {"name": name}))
    assert len(reg) == 0


def test_unknown_name_is_one_line_listing_the_known_sorted(things: Registry[type[Thing]]) -> None:
    with pytest.raises(InputError) as info:
        things.get("delta")
    assert str(info.value) == "unknown widget 'delta'; known: alpha, beta, gamma"


@pytest.mark.parametrize("name", [None, 7, ["alpha"], b"alpha"])
def test_unknown_non_string_names_are_input_errors(things: Registry[type[Thing]],
                                                   name: object) -> None:
    with pytest.raises(InputError, match=r"^unknown widget .*; known: alpha, beta, gamma$"):
        things.get(name)  # type: ignore[arg-type]


def test_read_only_mapping_protocol(things: Registry[type[Thing]]) -> None:
    assert len(things) == 3
    assert list(things) == ["beta", "alpha", "gamma"]  # registration order, as a dict
    assert things.names() == ("alpha", "beta", "gamma")
    assert list(things.keys()) == list(things)
    assert [cls.name for cls in things.values()] == list(things)
    assert [(name, cls.name) for name, cls in things.items()] == [(n, n) for n in things]
    assert sorted(things) == list(things.names())
    assert dict(things) == dict(things.items())
    assert "alpha" in things
    assert "delta" not in things
    assert ["alpha"] not in things  # unhashable: not a name, no TypeError
    with pytest.raises(KeyError):
        things["delta"]
    assert not hasattr(things, "__setitem__")
    assert not hasattr(things, "__delitem__")
    assert "widget" in repr(things) and "alpha, beta, gamma" in repr(things)


# ------------------------------------------------------------------ the real registries
def _first_column(out: str) -> list[str]:
    """The first cell of each row of a table ``echo_table`` printed (wrapped lines skipped)."""
    cells = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    return [cell for cell in cells if cell]


@pytest.mark.parametrize(("command", "names"), [
    (["attacks"], lambda: ATTACKS),
    (["detectors"], lambda: DETECTORS),
    (["datasets", "list"], lambda: DATASETS),
    (["defenses"], lambda: DEFENSES),
])
def test_cli_lists_exactly_the_registered_names(command: list[str], names: object,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(command) == 0
    listed = _first_column(capsys.readouterr().out)
    registered = sorted(names())  # type: ignore[operator]
    assert registered, f"nothing registered for {command}"
    assert sorted(listed) == registered


@pytest.mark.parametrize(("get", "kind"), [
    (get_attack, "attack"), (load_dataset, "data set"), (get_defense, "defence")])
def test_real_registries_keep_their_wording(get: object, kind: str) -> None:
    with pytest.raises(InputError, match=rf"^unknown {kind} 'nope'; known: \S"):
        get("nope")  # type: ignore[operator]


def test_real_registries_are_registries() -> None:
    for registry, kind in ((ATTACKS, "attack"), (DATASETS, "data set"), (DEFENSES, "defence")):
        assert isinstance(registry, Registry)
        assert registry.kind == kind
    assert get_attack("label-flip") is ATTACKS["label-flip"]
    assert load_dataset("iris", n_rows=30).n_rows == 30
