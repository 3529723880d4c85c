"""What every command shares: the Typer app, data loading, one-line errors and exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from poisonguard.errors import InputError, IntegrityError, PoisonguardError

if TYPE_CHECKING:
    from poisonguard.dataset import Dataset

__all__ = ["EXIT_FINDINGS", "EXIT_INPUT", "EXIT_INTEGRITY", "SEED_MAX", "app", "engine_option",
           "fail", "fail_integrity", "image_size_option", "key_value", "load_data", "run_app",
           "scheduler_option"]

EXIT_FINDINGS, EXIT_INPUT, EXIT_INTEGRITY = 1, 2, 3
SEED_MAX = 2**32 - 1  # numpy and scikit-learn seeds: 0 .. 2**32 - 1

app = typer.Typer(
    name="poisonguard",
    help="Red-team, scan, harden, trace and monitor training data against data poisoning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from poisonguard import __version__

        typer.echo(f"poisonguard {__version__}")
        raise typer.Exit(0)


@app.callback()
def _top(version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    """Red-team, scan, harden, trace and monitor training data against data poisoning.

    Start with `poisonguard demo`; every command has --help with an example.
    """


def fail(message: str, code: int = EXIT_INPUT) -> None:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def fail_integrity(what: str, problems: Sequence[str], details: Sequence[str] = ()) -> NoReturn:
    """Exit 3 for an integrity failure: every problem on stdout (``problem: ...``) followed by
    ``details`` (e.g. the rows that changed), then one ``error:`` line on stderr naming ``what``
    failed, the first problem and how many more there are."""
    assert problems, "an integrity failure has at least one problem"
    for problem in problems:
        typer.echo(f"problem: {problem}")
    for line in details:
        typer.echo(line)
    rest = len(problems) - 1
    more = f" (and {rest} more, listed on stdout)" if rest else ""
    typer.echo(f"error: {what}: {problems[0]}{more}", err=True)
    raise typer.Exit(EXIT_INTEGRITY)


def load_data(data: str, *, label: str = "label", id_col: str | None = None,
              source_col: str | None = None, image_size: str | None = None) -> Dataset:
    """A data file or folder (:func:`poisonguard.io.load`; ``image_size``: ``--image-size``'s
    text), or the name of a built-in data set when no such file exists."""
    from poisonguard import io
    from poisonguard.datasets import DATASETS, load_dataset
    from poisonguard.formats import parse_image_size

    size = parse_image_size(image_size)
    if not Path(data).exists() and data in DATASETS:
        if size is not None:
            raise InputError(f"--image-size: {data} is a built-in data set, not image files")
        return load_dataset(data)
    if not Path(data).exists() and Path(data).suffix == "":
        raise InputError(f"{data}: no such file, and not a built-in data set "
                         f"({', '.join(sorted(DATASETS))})")
    return io.load(data, label=label, id_col=id_col, source_col=source_col, image_size=size)


def image_size_option() -> Any:
    """``--image-size H[xW]`` for data read from image files."""
    return typer.Option("--image-size", metavar="H[xW]",
                        help="Resize the images of an image folder or Hugging Face image column "
                             "to H x W pixels (one number: square); without it they must all "
                             "have one size.")


def _guarded(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` run inside :func:`poisonguard.io.guarded_outputs`: no output of the command
    may overwrite one of its inputs. ``io`` (and with it pandas) is imported only when a
    command runs, never for ``--help`` or a usage error."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        from poisonguard.io import guarded_outputs

        with guarded_outputs():
            return callback(*args, **kwargs)

    return run


_METAVARS = {"Path": "PATH", "str": "TEXT", "int": "INTEGER", "float": "NUMBER"}


def _guard_commands(command: Any) -> Any:
    """Wrap the callback of every leaf command under ``command`` (a Click command or group) in
    :func:`_guarded`; return ``command``."""
    for param in command.params:  # one metavar style: DATA, --out PATH, --seed INTEGER
        if param.metavar is None and not getattr(param, "is_flag", False):
            param.metavar = (param.name or "").upper() if param.param_type_name == "argument" \
                else _METAVARS.get(param.bare_type().removeprefix("list[").rstrip("]"), "VALUE")
    if not command.short_help and command.help:  # whole first sentence in listings, not cut
        first = command.help.strip().split("\n\n")[0].replace("\n", " ")
        command.short_help = first.split(". ")[0].rstrip(".")
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for sub in subcommands.values():
            _guard_commands(sub)
    elif command.callback is not None:
        command.callback = _guarded(command.callback)
    return command


def run_app(argv: list[str]) -> int:
    """Run the app on ``argv``; poisonguard errors become one line on stderr and an exit code.

    Usage errors are Typer's own (exit 2); a traceback is only ever shown for our own bugs.
    """
    try:
        _guard_commands(typer.main.get_command(app))(args=argv, prog_name="poisonguard")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except IntegrityError as exc:
        typer.echo(f"error: {exc}", err=True)
        return EXIT_INTEGRITY
    except PoisonguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        return EXIT_INPUT
    return 0


def echo_table(rows: list[dict[str, Any]], title: str | None = None) -> None:
    """Print rows as a table on stdout (rich)."""
    from rich.table import Table

    if not rows:
        return
    table = Table(title=title, show_lines=False)
    for key in rows[0]:
        table.add_column(str(key))
    for row in rows:
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()))
    console().print(table)


def console(*, stderr: bool = False) -> Any:
    """A rich console as wide as the terminal; piped, ``$COLUMNS`` wide (160 by default, so a
    log keeps whole rows)."""
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    width = os.environ.get("COLUMNS", "")
    return Console(stderr=stderr, width=int(width) if width.isdigit() and int(width) >= 40 else 160)


def key_value(pair: str, expected: str = "KEY=VALUE") -> tuple[str, Any]:
    """One ``--param KEY=VALUE``: the key, and the value read as JSON (a list as a tuple), else
    as text; a one-line :class:`InputError` saying ``expected`` otherwise."""
    import json

    key, sep, text = pair.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InputError(f"--param {pair!r}: expected {expected}")
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = text
    return key, tuple(value) if isinstance(value, list) else value


def engine_option(where: str) -> Any:
    """``--engine local|dask``; ``where`` says what runs on it (for the help text)."""
    return typer.Option("--engine", metavar="local|dask",
                        help=f"Where {where}: 'local' (this process) or 'dask' (a Dask cluster, "
                             "same results; needs poisonguard[dask]).")


def scheduler_option() -> Any:
    """``--scheduler ADDRESS`` for ``--engine dask``."""
    return typer.Option("--scheduler", metavar="ADDRESS",
                        help="Dask scheduler address (tcp://HOST:8786) for --engine dask; "
                             "default: a local cluster with a worker per CPU. Workers must see "
                             "the data at the same path.")
