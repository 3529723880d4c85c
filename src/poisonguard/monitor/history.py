"""Every check, stored: :class:`History` over SQLite (default) or any SQLAlchemy database.

``History(db)``: ``db`` is a file path (SQLite through the standard library, no extra
dependency) or a URL. ``sqlite:///path`` is the same SQLite file; any other URL (for a team,
``postgresql+psycopg://user@host/db``) goes through SQLAlchemy, imported only then
(``pip install 'poisonguard[postgres]'``). Connections are opened per call and closed after it
(no pool), so a History holds no resource between calls.

Tables (created on the first write, all prefixed ``poisonguard_`` so they can share a team
database): ``checks`` (one row per drift check or canary check, with the full report as JSON
in ``payload``), ``tests`` (effect, gate, adjusted p-value and alarm of every test, for
trends) and ``labels`` (each check's label shares). ``meta`` holds the schema version; a
database written by another version is refused. Times are stored as ISO 8601 text in UTC (a
naive ``when`` is taken as UTC); rows come back oldest first. Reading a database that holds
no history yet returns nothing and creates nothing.

A SQLite file is the history's own: one that holds other tables (a ledger, an application's
database) is refused, naming it, and so is any file that is not SQLite (a CSV given to
``--db`` by mistake), before anything is written to it. A database URL may be shared.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poisonguard.errors import DependencyError, InputError

if TYPE_CHECKING:
    from poisonguard.monitor.canary import CanaryResult
    from poisonguard.monitor.drift import DriftReport

__all__ = ["DEFAULT_DB", "SCHEMA", "History", "HistoryRow", "LabelShare", "TrendPoint", "default_db",
           "user_home"]

DEFAULT_DB = "history.sqlite"  # under :func:`user_home`


def user_home() -> Path:
    """poisonguard's own folder for what it keeps between runs: ``$POISONGUARD_HOME``, else
    ``$XDG_DATA_HOME/poisonguard``, else ``~/.local/share/poisonguard`` (where
    ``scripts/get-data.sh`` also puts the data sets)."""
    import os

    if os.environ.get("POISONGUARD_HOME"):
        return Path(os.environ["POISONGUARD_HOME"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "poisonguard"


def default_db() -> Path:
    """The history database used when none is named: ``history.sqlite`` in :func:`user_home`."""
    return user_home() / DEFAULT_DB


SCHEMA = "poisonguard-history/1"
_TABLES = """
CREATE TABLE IF NOT EXISTS poisonguard_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS poisonguard_checks (
    id {id}, kind TEXT NOT NULL, batch TEXT NOT NULL, recorded_at TEXT NOT NULL,
    profile TEXT NOT NULL, reference TEXT NOT NULL, n_rows BIGINT NOT NULL, alarm INTEGER NOT NULL,
    summary TEXT NOT NULL, accuracy DOUBLE PRECISION, baseline DOUBLE PRECISION, model TEXT,
    payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS poisonguard_tests (
    check_id BIGINT NOT NULL REFERENCES poisonguard_checks (id), test TEXT NOT NULL,
    feature TEXT NOT NULL, effect DOUBLE PRECISION NOT NULL, gate DOUBLE PRECISION NOT NULL,
    p_adjusted DOUBLE PRECISION NOT NULL, alarm INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS poisonguard_labels (
    check_id BIGINT NOT NULL REFERENCES poisonguard_checks (id), label TEXT NOT NULL,
    share DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS poisonguard_tests_check ON poisonguard_tests (check_id);
CREATE INDEX IF NOT EXISTS poisonguard_labels_check ON poisonguard_labels (check_id)
"""
_OWN_TABLES = frozenset({"poisonguard_meta", "poisonguard_checks", "poisonguard_tests",
                         "poisonguard_labels"})
_SQLITE_MAGIC = b"SQLite format 3\x00"
_CHECK_COLUMNS = ("id, kind, batch, recorded_at, profile, reference, n_rows, alarm, summary, accuracy, "
                  "baseline, model")


@dataclass(frozen=True)
class HistoryRow:
    """One stored check: ``kind`` is ``drift`` or ``canary``; ``alarm`` is drift or an alert."""

    id: int
    kind: str
    batch: str
    when: datetime
    profile: str
    reference: str
    n_rows: int
    alarm: bool
    summary: str
    accuracy: float | None = None
    baseline: float | None = None
    model: str | None = None


@dataclass(frozen=True)
class TrendPoint:
    """One test of one stored drift check."""

    check_id: int
    batch: str
    when: datetime
    test: str
    feature: str
    effect: float
    gate: float
    p_adjusted: float
    alarm: bool


@dataclass(frozen=True)
class LabelShare:
    """The share of one label in one stored drift check's batch."""

    check_id: int
    label: str
    share: float


class _Connection:
    """One open transaction: ``execute`` with ``:name`` parameters returns the rows."""

    def __init__(self, run: Any, many: Any) -> None:
        self._run, self._many = run, many

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return list(self._run(sql, params or {}))

    def executemany(self, sql: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._many(sql, rows)


class History:
    """Checks over time in a SQLite file or a database URL (SQLAlchemy).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from poisonguard.datasets import load_dataset
    >>> from poisonguard.monitor import DriftMonitor, Profile
    >>> ds = load_dataset("wine")
    >>> profile = Profile.fit(ds.take(range(0, 178, 2)), random_state=0)
    >>> report = DriftMonitor(random_state=0).check(profile, ds.take(range(1, 178, 2)))
    >>> history = History(pathlib.Path(tempfile.mkdtemp()) / "history.sqlite")
    >>> history.record(report, batch="day 1")
    1
    >>> [(r.batch, r.kind, r.alarm) for r in history.rows()]
    [('day 1', 'drift', False)]
    """

    def __init__(self, db: str | Path | None = None) -> None:
        self.db = str(default_db() if db is None else db)
        self._url = self.db if "://" in self.db and not self.db.startswith("sqlite:///") else None
        self._path = Path(self.db[len("sqlite:///"):] if self.db.startswith("sqlite:///") else self.db)
        self._engine: Any = None

    def __repr__(self) -> str:
        return f"History({self.shown!r})"

    @property
    def shown(self) -> str:
        """The database as it may be printed: a URL's password is masked."""
        if self._url is None:
            return str(self._path)
        return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", self._url)

    # ------------------------------------------------------------ connections
    @contextmanager
    def _begin(self) -> Iterator[_Connection]:
        if self._url is None:
            yield from self._begin_sqlite()
        else:
            yield from self._begin_sqlalchemy()

    def check_store(self) -> None:
        """Refuse (:class:`InputError` naming it) a SQLite file that holds tables other than the
        history's own or that is not SQLite at all; reads only. Recording and reading check
        this too; a command calls it first to refuse before it writes anything else."""
        if self._url is None:
            self._check_own_file()

    def _check_own_file(self) -> None:
        p = self._path
        if not os.path.lexists(p):
            return
        if p.is_dir():
            raise InputError(f"{p}: is a directory, expected a SQLite file")
        if not p.is_file():
            raise InputError(f"{p}: not a regular file, expected a SQLite history database")
        try:
            with p.open("rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise InputError(f"{p}: cannot open ({exc.strerror})") from None
        if not head:
            return  # an empty file: nothing in it to damage
        if head != _SQLITE_MAGIC:
            raise InputError(f"{p}: not a usable history database (not a SQLite file); give "
                             "--db a history file or a new path")
        try:
            conn = sqlite3.connect(p.resolve().as_uri() + "?mode=ro", uri=True)
            try:
                names = {row[0] for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise InputError(f"{p}: not a usable history database ({exc})") from None
        other = sorted(n for n in names if n not in _OWN_TABLES and not n.startswith("sqlite_"))
        if other:
            shown = ", ".join(other[:5]) + (f" and {len(other) - 5} more" if len(other) > 5 else "")
            raise InputError(f"{p}: holds tables that are not poisonguard history ({shown}); "
                             "refusing to add history to another database (a ledger?); give "
                             "--db a file of its own")

    def _begin_sqlite(self) -> Iterator[_Connection]:
        self._check_own_file()
        try:  # only writes get here for a file that does not exist yet
            self._path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"{self._path}: cannot open ({exc})") from None
        try:
            with conn:
                yield _Connection(conn.execute, conn.executemany)
        except sqlite3.DatabaseError as exc:
            raise InputError(f"{self._path}: not a usable history database ({exc})") from None
        finally:
            conn.close()

    def _begin_sqlalchemy(self) -> Iterator[_Connection]:
        try:
            import sqlalchemy
            from sqlalchemy.pool import NullPool
        except ImportError:
            raise DependencyError("a database URL needs SQLAlchemy and a driver: "
                                  "pip install 'poisonguard[postgres]'") from None
        if self._engine is None:
            try:
                self._engine = sqlalchemy.create_engine(str(self._url), poolclass=NullPool)
            except ImportError as exc:
                raise DependencyError(f"{self.shown}: the driver is not installed ({exc}); "
                                      "pip install 'poisonguard[postgres]'") from None
            except sqlalchemy.exc.ArgumentError as exc:
                raise InputError(f"{self.shown}: not a database URL ({exc})") from None

        def run(sql: str, params: dict[str, Any]) -> Any:
            result = conn.execute(sqlalchemy.text(sql), params)
            return result.all() if result.returns_rows else []

        try:
            with self._engine.begin() as conn:
                yield _Connection(run, lambda sql, rows: conn.execute(sqlalchemy.text(sql), rows))
        except sqlalchemy.exc.SQLAlchemyError as exc:
            orig = getattr(exc, "orig", None)  # the driver's own error, without SQLAlchemy's notes
            first = str(exc if orig is None else orig).splitlines()[0]
            raise InputError(f"{self.shown}: {first}") from None

    def _create(self, conn: _Connection) -> None:
        ident = "INTEGER PRIMARY KEY" if self._url is None else "BIGSERIAL PRIMARY KEY"
        for statement in _TABLES.format(id=ident).split(";"):
            conn.execute(statement)
        conn.execute("INSERT INTO poisonguard_meta (key, value) VALUES ('schema', :v) "
                     "ON CONFLICT (key) DO NOTHING", {"v": SCHEMA})
        self._check_schema(conn)

    def _check_schema(self, conn: _Connection) -> None:
        found = conn.execute("SELECT value FROM poisonguard_meta WHERE key = 'schema'")
        if not found or found[0][0] != SCHEMA:
            raise InputError(f"{self.shown}: history schema {found[0][0] if found else None!r} "
                             f"is not supported (expected {SCHEMA!r})")

    def _exists(self, conn: _Connection) -> bool:
        if self._url is None:
            sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'poisonguard_meta'"
        else:
            sql = "SELECT to_regclass('poisonguard_meta') IS NOT NULL"
        found = conn.execute(sql)
        ok = bool(found and found[0][0])
        if ok:
            self._check_schema(conn)
        return ok

    def _read(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        if self._url is None and not self._path.exists():
            return []
        with self._begin() as conn:
            return conn.execute(sql, params) if self._exists(conn) else []

    # ----------------------------------------------------------------- writing
    def record(self, result: DriftReport | CanaryResult, *, batch: str | None = None,
               when: datetime | None = None) -> int:
        """Store one check (a :class:`DriftReport` or a :class:`CanaryResult`); its id."""
        from poisonguard.monitor.canary import CanaryResult
        from poisonguard.monitor.drift import DriftReport

        if not isinstance(result, DriftReport | CanaryResult):
            raise InputError(f"'result' must be a DriftReport or a CanaryResult "
                             f"(got {type(result).__name__})")
        stamp = datetime.now(UTC) if when is None else (
            when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC))
        row: dict[str, Any] = {"batch": batch or result.batch, "profile": result.profile,
                               "when": stamp.isoformat(timespec="microseconds"),
                               "reference": result.reference,
                               "payload": json.dumps(result.to_dict(), ensure_ascii=False)}
        if isinstance(result, DriftReport):
            alarms = result.alarms
            what = ", ".join(dict.fromkeys(t.feature for t in alarms))
            row |= {"kind": "drift", "n_rows": result.n_batch, "alarm": int(result.drift),
                    "summary": f"drift: {what}" if alarms else "no drift", "accuracy": None,
                    "baseline": None, "model": None}
        else:
            row |= {"kind": "canary", "n_rows": result.n_rows, "alarm": int(result.alert),
                    "summary": result.verdict(), "accuracy": result.accuracy,
                    "baseline": result.baseline, "model": result.model}
        with self._begin() as conn:
            self._create(conn)
            check_id = int(conn.execute(
                "INSERT INTO poisonguard_checks (kind, batch, recorded_at, profile, reference, n_rows, "
                "alarm, summary, accuracy, baseline, model, payload) VALUES (:kind, :batch, :when, "
                ":profile, :reference, :n_rows, :alarm, :summary, :accuracy, :baseline, :model, "
                ":payload) RETURNING id", row)[0][0])
            if isinstance(result, DriftReport):
                conn.executemany(
                    "INSERT INTO poisonguard_tests (check_id, test, feature, effect, gate, p_adjusted, "
                    "alarm) VALUES (:id, :test, :feature, :effect, :gate, :p, :alarm)",
                    [{"id": check_id, "test": t.test, "feature": t.feature, "effect": t.effect,
                      "gate": t.gate, "p": t.p_adjusted, "alarm": int(t.alarm)} for t in result.tests])
                conn.executemany(
                    "INSERT INTO poisonguard_labels (check_id, label, share) VALUES (:id, :label, :share)",
                    [{"id": check_id, "label": name, "share": share}
                     for t in result.tests if t.test == "label" for name, _, share in t.shares])
        return check_id

    # ----------------------------------------------------------------- reading
    @staticmethod
    def _where(conditions: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        used = {k: v for k, v in conditions.items() if v is not None}
        clause = " AND ".join(f"{k} = :{k.split('.')[-1]}" for k in used)
        return (f" WHERE {clause}" if clause else ""), {k.split(".")[-1]: v for k, v in used.items()}

    def rows(self, *, kind: str | None = None, profile: str | None = None) -> tuple[HistoryRow, ...]:
        """Stored checks, oldest first; only one ``kind`` or ``profile`` (digest) if given."""
        where, params = self._where({"kind": kind, "profile": profile})
        found = self._read(f"SELECT {_CHECK_COLUMNS} FROM poisonguard_checks{where} "
                           "ORDER BY recorded_at, id", params)
        return tuple(HistoryRow(int(r[0]), r[1], r[2], datetime.fromisoformat(r[3]), r[4], r[5],
                                int(r[6]), bool(r[7]), r[8], r[9], r[10], r[11]) for r in found)

    def trend(self, feature: str | None = None, *, profile: str | None = None) -> tuple[TrendPoint, ...]:
        """Every stored test of ``feature`` (all features if None): oldest check first, then by
        feature and test name."""
        where, params = self._where({"t.feature": feature, "c.profile": profile})
        found = self._read(
            "SELECT t.check_id, c.batch, c.recorded_at, t.test, t.feature, t.effect, t.gate, "
            "t.p_adjusted, t.alarm FROM poisonguard_tests t JOIN poisonguard_checks c ON "
            f"c.id = t.check_id{where} ORDER BY c.recorded_at, c.id, t.feature, t.test", params)
        return tuple(TrendPoint(int(r[0]), r[1], datetime.fromisoformat(r[2]), r[3], r[4], float(r[5]),
                                float(r[6]), float(r[7]), bool(r[8])) for r in found)

    def label_shares(self, *, profile: str | None = None) -> tuple[LabelShare, ...]:
        """Each stored drift check's label shares, oldest check first."""
        where, params = self._where({"c.profile": profile})
        found = self._read(
            "SELECT l.check_id, l.label, l.share FROM poisonguard_labels l JOIN poisonguard_checks c "
            f"ON c.id = l.check_id{where} ORDER BY c.recorded_at, c.id, l.label", params)
        return tuple(LabelShare(int(r[0]), r[1], float(r[2])) for r in found)

    def payload(self, check_id: int) -> dict[str, Any]:
        """The full stored report of one check (its ``to_dict()``)."""
        found = self._read("SELECT payload FROM poisonguard_checks WHERE id = :id", {"id": int(check_id)})
        if not found:
            raise InputError(f"{self.shown}: no check with id {check_id}")
        return dict(json.loads(found[0][0]))
