"""History: round trip on SQLite and on a real PostgreSQL server, ordering, filters, bad stores."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from poisonguard import InputError
from poisonguard.datasets import load_dataset
from poisonguard.monitor import CanaryMonitor, DriftMonitor, DriftReport, History, Profile

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def reports() -> tuple[Profile, list[DriftReport]]:
    """Wine: a clean batch, a batch with alcohol shifted by 2 SD, and one without class 0."""
    wine = load_dataset("wine")
    profile = Profile.fit(wine.take(range(0, 178, 2)), random_state=0)
    batch = wine.take(range(1, 178, 2))
    X = batch.X.copy()
    X[:, 0] += 2 * wine.X[:, 0].std()
    monitor = DriftMonitor(random_state=0)
    return profile, [monitor.check(profile, batch), monitor.check(profile, batch.replace(X=X)),
                     monitor.check(profile, batch.take(batch.y != 0))]


def _round_trip(history: History, profile: Profile, reports: list[DriftReport]) -> None:
    assert history.rows() == ()
    # recorded out of order: rows come back by time; a naive time is UTC
    ids = [history.record(reports[1], batch="day 2", when=T0 + timedelta(days=1)),
           history.record(reports[0], batch="day 1", when=T0.replace(tzinfo=None)),
           history.record(reports[2], when=(T0 + timedelta(days=2)).astimezone(timezone(timedelta(hours=5))))]
    rows = history.rows()
    assert [r.id for r in rows] == [ids[1], ids[0], ids[2]]
    assert [r.batch for r in rows] == ["day 1", "day 2", reports[2].batch]
    assert [r.when for r in rows] == [T0, T0 + timedelta(days=1), T0 + timedelta(days=2)]
    assert [r.alarm for r in rows] == [False, True, True]
    assert rows[1].summary.startswith("drift: alcohol")
    assert all(r.kind == "drift" and r.profile == profile.digest and r.reference == "wine" for r in rows)
    assert rows[0].n_rows == 89 and rows[2].n_rows == reports[2].n_batch
    alcohol = history.trend("alcohol")
    assert [(p.check_id, p.test) for p in alcohol] == [
        (i, t) for i in (ids[1], ids[0], ids[2]) for t in ("ks", "psi")]
    assert [p.alarm for p in alcohol if p.test == "ks"] == [False, True, False]
    ks = next(t for t in reports[1].tests if t.test == "ks" and t.feature == "alcohol")
    stored = next(p for p in alcohol if p.check_id == ids[0] and p.test == "ks")
    assert (stored.effect, stored.gate, stored.p_adjusted) == (ks.effect, ks.gate, ks.p_adjusted)
    assert len(history.trend()) == sum(len(r.tests) for r in reports)
    shares = [s for s in history.label_shares() if s.check_id == ids[2]]
    assert {s.label: s.share for s in shares}["0"] == 0.0
    assert history.payload(ids[0]) == reports[1].to_dict()
    assert history.rows(profile="sha256:other") == ()
    assert len(history.rows(kind="drift", profile=profile.digest)) == 3


def test_sqlite_round_trip(tmp_path: Path, reports: tuple[Profile, list[DriftReport]]) -> None:
    _round_trip(History(tmp_path / "h.sqlite"), *reports)


def test_sqlite_url_is_the_same_file(tmp_path: Path, reports: tuple[Profile, list[DriftReport]]) -> None:
    found = reports[1]
    History(f"sqlite:///{tmp_path / 'h.sqlite'}").record(found[0], batch="a")
    assert [r.batch for r in History(tmp_path / "h.sqlite").rows()] == ["a"]


def test_postgresql_round_trip(pg_url: str, reports: tuple[Profile, list[DriftReport]]) -> None:
    _round_trip(History(pg_url), *reports)


def test_postgresql_canary_round_trip(pg_url: str, reports: tuple[Profile, list[DriftReport]]) -> None:
    profile, _ = reports
    wine = load_dataset("wine")
    result = CanaryMonitor(random_state=0).check(profile, wine.take(range(1, 178, 2)))
    history = History(pg_url)
    check_id = history.record(result, batch="canary 1", when=T0)
    (row,) = history.rows(kind="canary")
    assert (row.id, row.accuracy, row.baseline, row.model, row.alarm) == (
        check_id, result.accuracy, result.baseline, "logreg", False)
    assert history.payload(check_id)["accuracy"] == result.accuracy


def test_reading_creates_nothing(tmp_path: Path) -> None:
    history = History(tmp_path / "none.sqlite")
    assert history.rows() == () and history.trend("x") == () and history.label_shares() == ()
    assert not (tmp_path / "none.sqlite").exists()
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).close()  # an empty database of someone else's: read, not changed
    assert History(other).rows() == ()


def test_bad_stores_give_one_line_errors(tmp_path: Path, reports: tuple[Profile, list[DriftReport]]) -> None:
    report = reports[1][0]
    text = tmp_path / "notes.txt"
    text.write_text("this is not a database\n" * 20)
    with pytest.raises(InputError, match=r"notes.txt: not a usable history database"):
        History(text).record(report)
    with pytest.raises(InputError, match="is a directory"):
        History(tmp_path).rows()
    db = tmp_path / "h.sqlite"
    History(db).record(report)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE poisonguard_meta SET value = 'poisonguard-history/9'")
    conn.close()
    with pytest.raises(InputError, match="history schema 'poisonguard-history/9' is not supported"):
        History(db).rows()


def test_an_unreachable_server_is_one_line_without_the_password(
        reports: tuple[Profile, list[DriftReport]]) -> None:
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("psycopg")
    history = History("postgresql+psycopg://pg:s3cret@127.0.0.1:1/none?connect_timeout=5")
    with pytest.raises(InputError) as err:
        history.record(reports[1][0])
    message = str(err.value)
    assert "s3cret" not in message and "\n" not in message
    assert message.startswith("postgresql+psycopg://pg:***@127.0.0.1:1/")


def test_a_record_needs_a_report(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="must be a DriftReport or a CanaryResult"):
        History(tmp_path / "h.sqlite").record(np.zeros(3))  # type: ignore[arg-type]


def test_a_database_of_other_tables_is_not_a_history(
        tmp_path: Path, reports: tuple[Profile, list[DriftReport]]) -> None:
    from poisonguard.provenance.ledger import Ledger

    book = tmp_path / "ledger.db"
    with Ledger.init(book) as ledger:
        ledger.append("manifest", "v1.csv", b"{}")
    before = book.read_bytes()
    for call in (lambda h: h.check_store(), lambda h: h.rows(),
                 lambda h: h.record(reports[1][0])):
        with pytest.raises(InputError, match=r"ledger.db: holds tables that are not poisonguard "
                                             r"history \(checkpoints, entries, frontier, meta\)"):
            call(History(book))
        with pytest.raises(InputError, match="holds tables"):
            call(History(f"sqlite:///{book}"))
    assert book.read_bytes() == before
    with Ledger.open(book) as ledger:
        assert ledger.verify().ok
    empty = tmp_path / "empty.sqlite"
    empty.touch()  # an empty file holds nothing to lose: it becomes a history
    History(empty).record(reports[1][0])
    History(empty).check_store()
    assert len(History(empty).rows()) == 1
