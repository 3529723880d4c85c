"""The README runs as written: every shell block after the set-up commands, in order, in one
empty folder, each command with the exit code the README gives it (``(exit N)`` in its comment,
0 otherwise), and the Python block."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)
EXIT = re.compile(r"#.*\(exit (\d)\)")


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in BLOCK.finditer(README.read_text(encoding="utf-8"))]


def commands(block: str) -> list[tuple[str, int]]:
    """Shell commands of a block (continuation lines joined) and the exit code each expects."""
    out, pending = [], ""
    for line in block.splitlines():
        line = pending + line
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            found = EXIT.search(line)
            out.append((line.strip(), int(found.group(1)) if found else 0))
    return out


def test_the_readme_starts_with_the_two_set_up_commands() -> None:
    kind, first = blocks()[0]
    lines = [c for c, _ in commands(first)]
    assert kind == "bash" and len(lines) == 2
    assert lines[0].endswith("poisonguard demo") and lines[1].endswith("pytest -q")


def test_the_exit_code_markers_are_read() -> None:
    assert commands("a x \\\n  --y 1   # (exit 3) the rows changed\n# note\nb\n") == [
        ("a x    --y 1   # (exit 3) the rows changed", 3), ("b", 0)]


@pytest.mark.slow
def test_every_command_runs_as_written(tmp_path: Path) -> None:
    from poisonguard.datasets import load_dataset
    from poisonguard.errors import DependencyError

    try:
        load_dataset("spambase")
    except DependencyError:
        pytest.skip("the README uses spambase: run bash scripts/get-data.sh")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "100", "POISONGUARD_HOME": str(tmp_path / "home")}
    ran = 0
    for kind, block in blocks()[1:]:
        if kind == "python":
            done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"the README's Python block failed:\n{done.stderr[-2000:]}"
            continue
        for command, expected in commands(block):
            done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == expected, (
                f"README: `{command}` exited {done.returncode}, the README says {expected}:\n"
                f"{done.stderr[-2000:]}")
            ran += 1
    assert ran >= 40
