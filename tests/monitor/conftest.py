"""A PostgreSQL server for the history tests: ``POISONGUARD_TEST_PG_URL``, or one started with
``scripts/start-postgres.sh`` for the session. Where neither works the PostgreSQL tests skip,
except under ``CI=true``, where they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "start-postgres.sh"
TABLES = "poisonguard_tests, poisonguard_labels, poisonguard_checks, poisonguard_meta"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: PostgreSQL is required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A SQLAlchemy URL of a PostgreSQL database the tests may write to."""
    for module in ("sqlalchemy", "psycopg"):
        try:
            __import__(module)
        except ImportError:
            _unavailable(f"{module} is not installed (pip install -e '.[postgres]')")
    url = os.environ.get("POISONGUARD_TEST_PG_URL")
    if url:
        yield url
        return
    base = tempfile.mkdtemp(prefix="poisonguard-pg-")
    try:
        proc = subprocess.run(["bash", str(SCRIPT), base], capture_output=True, text=True,
                              timeout=180, check=False)
    except subprocess.TimeoutExpired:
        proc = subprocess.CompletedProcess([], 1, "", "timed out after 180 s")
    if proc.returncode != 0 or not proc.stdout.strip():
        shutil.rmtree(base, ignore_errors=True)
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        _unavailable(f"no PostgreSQL: POISONGUARD_TEST_PG_URL is not set and {SCRIPT.name} "
                     f"failed: {last}")
    try:
        yield proc.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(["bash", str(SCRIPT), "--stop", base], capture_output=True, timeout=120,
                       check=False)


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """``pg_server`` with the history tables dropped, so that each test starts empty."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(pg_server, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP TABLE IF EXISTS {TABLES}"))
    engine.dispose()
    return pg_server
