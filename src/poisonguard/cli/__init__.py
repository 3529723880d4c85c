"""The ``poisonguard`` command line. One module per command group.

Exit codes: 0 done; 1 findings over ``--fail-on``; 2 bad input or usage; 3 integrity failure.
"""

from __future__ import annotations

import sys

from poisonguard.cli import attack as _attack
from poisonguard.cli import audit as _audit
from poisonguard.cli import data as _data
from poisonguard.cli import gate as _gate
from poisonguard.cli import harden as _harden
from poisonguard.cli import ledger as _ledger
from poisonguard.cli import monitor as _monitor
from poisonguard.cli import redteam as _redteam
from poisonguard.cli import scan as _scan
from poisonguard.cli import trace as _trace
from poisonguard.cli._common import app, run_app

__all__ = ["app", "entry", "main"]

# command modules register themselves on ``app``
_ = (_attack, _audit, _data, _gate, _harden, _ledger, _monitor, _redteam, _scan, _trace)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of raising ``SystemExit``."""
    return run_app(sys.argv[1:] if argv is None else argv)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
