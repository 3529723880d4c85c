"""Start-up stays light: ``import poisonguard`` and every ``--help`` load no ML stack.

Each check runs in a fresh interpreter and looks at ``sys.modules``, never at the clock.
"""

from __future__ import annotations

import json
import subprocess
import sys

import typer

from poisonguard.cli import app


def _loaded_after(code: str, modules: tuple[str, ...]) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``code``."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps([m for m in {list(modules)!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def _command_paths(command: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under ``command`` (a Click command), as argument lists."""
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*prefix, name))
    return paths


def test_import_poisonguard_loads_no_heavy_library() -> None:
    assert _loaded_after("import poisonguard", ("pandas", "sklearn", "scipy", "torch")) == []


def test_help_of_every_command_loads_no_heavy_library() -> None:
    paths = _command_paths(typer.main.get_command(app))
    assert len(paths) > 20 and ("scan",) in paths and ("monitor", "check") in paths
    code = ("import contextlib, io\n"
            "from poisonguard.cli import main\n"
            f"for path in {paths!r}:\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        assert main([*path, '--help']) == 0, path\n")
    assert _loaded_after(code, ("sklearn", "torch", "scipy", "pandas", "matplotlib")) == []


def test_console_script_help_loads_no_heavy_library() -> None:
    code = ("import contextlib, io, sys\n"
            "sys.argv = ['poisonguard', '--help']\n"
            "from poisonguard.cli import entry\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    entry()\n")
    assert _loaded_after(code, ("sklearn", "torch")) == []
