"""The ledger: appends round-trip, proofs verify, every tamper we can think of is reported, and
concurrent or killed writers leave a ledger that verifies."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from poisonguard.errors import InputError, IntegrityError
from poisonguard.provenance import keys, ledger, merkle
from poisonguard.provenance.ledger import Checkpoint, Ledger, encode_entry

N = 12  # entries in the ledger the tamper tests start from
TRIGGERS = ["entries_no_update", "entries_no_delete", "checkpoints_no_update",
            "checkpoints_no_delete"]
CHILD = """
import sys
from poisonguard.provenance.ledger import Ledger
tag, loops = sys.argv[2], int(sys.argv[3])
with Ledger.open(sys.argv[1]) as ledger:
    print("ready", flush=True)
    if loops:
        sys.stdin.readline()
    i = 0
    while not loops or i < loops:
        ledger.append("manifest", f"{tag}-{i}", bytes(4096))
        i += 1
        print(i, flush=True)
"""


def payload(i: int) -> bytes:
    return f'{{"version": {i}, "rows": {100 + i}}}'.encode()


def make(path: Path, n: int, key: Ed25519PrivateKey | None = None) -> list[Checkpoint]:
    with Ledger.init(path, public_key=None if key is None else key.public_key()) as led:
        return [led.append("scan" if i % 3 else "manifest", f"data-v{i}.csv", payload(i), key=key)
                for i in range(1, n + 1)]


def new_key(folder: Path, name: str) -> Ed25519PrivateKey:
    priv, _ = keys.generate(folder / name)
    return keys.load_private_key(priv)


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection with the append-only triggers dropped, as an attacker would."""
    conn = sqlite3.connect(path, isolation_level=None)
    for trigger in TRIGGERS:
        conn.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    return conn


def releaf(conn: sqlite3.Connection, seq: int) -> None:
    """Recompute an entry's digest and leaf after an edit (a thorough attacker)."""
    row = conn.execute("SELECT seq, kind, name, created, payload FROM entries WHERE seq = ?",
                       (seq,)).fetchone()
    digest = hashlib.sha256(row[4]).hexdigest()
    leaf = merkle.leaf_hash(encode_entry(row[0], row[1], row[2], digest, row[3], row[4]))
    conn.execute("UPDATE entries SET digest = ?, leaf = ? WHERE seq = ?", (digest, leaf, seq))


def refrontier(conn: sqlite3.Connection) -> None:
    f = merkle.Frontier()
    for (leaf,) in conn.execute("SELECT leaf FROM entries ORDER BY seq").fetchall():
        f = f.append(leaf)
    conn.execute("UPDATE frontier SET state = ?", (f.to_bytes(),))


def test_round_trip_log_and_proofs(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    cps = make(path, 25)
    assert [cp.size for cp in cps] == list(range(1, 26))
    with Ledger.open(path) as led:
        entries = led.entries()
        assert [e.seq for e in entries] == list(range(1, 26))
        assert entries[2].kind == "manifest" and entries[3].name == "data-v4.csv"
        assert all(e.digest == hashlib.sha256(payload(e.seq)).hexdigest() for e in entries)
        assert led.payload(7) == payload(7)
        result = led.verify()
        assert result.ok and result.problems == () and result.size == 25
        assert result.root == led.checkpoint().root == cps[-1].root
        assert led.public_key is None and result.signatures_checked == 0
        for size in (1, 2, 7, 16, 25):
            for seq in range(1, size + 1):
                proof = led.prove(seq, size=size if size < 25 else None)
                assert proof.verify() and proof.root == cps[size - 1].root
                assert proof.leaf == entries[seq - 1].leaf
        for old in range(26):
            for new in range(old, 26, 4):
                assert led.consistency(old, new or None).verify()
        bad = led.prove(5)
        assert not merkle.verify_inclusion(bad.leaf, 5, bad.size, bad.path, bad.root)
        with pytest.raises(InputError, match="no entry 26 in the first 25 entries"):
            led.prove(26)
        with pytest.raises(InputError, match="no checkpoint at size 30"):
            led.consistency(2, 30)
        with pytest.raises(InputError, match="no entry 99"):
            led.payload(99)
        assert led.append("scan", "again", b"").size == 26
        assert led.verify(trusted=cps[-1]).ok
        again = Checkpoint.from_dict(led.checkpoint().to_dict())
        assert again == led.checkpoint()
        assert led.verify(trusted=(again.size, again.root)).ok


def test_not_a_ledger(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such ledger file"):
        Ledger.open(tmp_path / "missing.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all " * 100)
    with pytest.raises(InputError, match=r"junk.db: is not a poisonguard ledger \(not an SQLite"):
        Ledger.open(junk)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t(x)")
    conn.close()
    with pytest.raises(InputError, match=r"other\.db: is not a poisonguard ledger"):
        Ledger.open(other)
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('format', 'something-else/1')")
    conn.commit()
    conn.close()
    with pytest.raises(InputError, match="format 'something-else/1'"):
        Ledger.open(other)
    with pytest.raises(InputError, match="is not a file"):
        Ledger.open(tmp_path)
    make(tmp_path / "l.db", 1)
    with pytest.raises(InputError, match=r"l.db: already exists"):
        Ledger.init(tmp_path / "l.db")
    with pytest.raises(InputError, match="no such directory"):
        Ledger.init(tmp_path / "nope" / "l.db")


def test_bad_arguments_name_the_parameter(tmp_path: Path) -> None:
    with Ledger.init(tmp_path / "l.db") as led:
        with pytest.raises(InputError, match="'kind' must be"):
            led.append("two words", "x", b"")
        with pytest.raises(InputError, match="'name' must be a non-empty one-line"):
            led.append("scan", "a\nb", b"")
        with pytest.raises(InputError, match="'payload' must be bytes"):
            led.append("scan", "x", "text")  # type: ignore[arg-type]
        with pytest.raises(InputError, match="no checkpoint yet"):
            led.checkpoint()
        assert led.verify().ok and led.verify().root == merkle.EMPTY_ROOT
        with pytest.raises(InputError, match="'trusted' must be"):
            led.verify(trusted=(1, b"short"))
    with pytest.raises(InputError, match="not a ledger checkpoint"):
        Checkpoint.from_dict({"size": 3})
    assert ledger.__all__ == sorted(ledger.__all__, key=lambda n: (not n.isupper(), n))


def test_signed_ledger(tmp_path: Path) -> None:
    key, other = new_key(tmp_path, "k"), new_key(tmp_path, "other")
    path = tmp_path / "signed.db"
    cps = make(path, 6, key)
    assert all(cp.key_id == keys.key_id(key) and cp.signature for cp in cps)
    with Ledger.open(path) as led:
        assert keys.key_id(led.public_key or other) == keys.key_id(key)
        result = led.verify(public_key=key.public_key())
        assert result.ok and result.signatures_checked == 6
        result = led.verify(public_key=other.public_key())
        assert not result.ok
        assert any(p.startswith("meta: the ledger records signing key") for p in result.problems)
        assert "checkpoint 1: signed by key" in result.problems[1]
        with pytest.raises(InputError, match="give its private key"):
            led.append("scan", "x", b"")
        with pytest.raises(InputError, match="is not this ledger's signing key"):
            led.append("scan", "x", b"", key=other)
        assert led.append("scan", "x", b"", key=key).size == 7
    with Ledger.init(tmp_path / "plain.db") as led, \
            pytest.raises(InputError, match="created without a public key"):
        led.append("scan", "x", b"", key=key)
    # Another key's checkpoints: re-signed with it, or with a forged key id.
    conn = raw(path)
    for cp in cps[2:4]:
        forged = Checkpoint(cp.size, cp.root, cp.created)
        conn.execute("UPDATE checkpoints SET key_id = ?, signature = ? WHERE size = ?",
                     (keys.key_id(other), keys.sign(other, forged.message()), cp.size))
    conn.execute("UPDATE checkpoints SET signature = ? WHERE size = 5",
                 (keys.sign(other, cps[4].message()),))
    conn.execute("UPDATE checkpoints SET signature = NULL, key_id = NULL WHERE size = 6")
    conn.close()
    with Ledger.open(path) as led:
        problems = led.verify().problems
    assert problems == ("checkpoint 3: signed by key " + keys.key_id(other)[:16] + "..., expected "
                        + keys.key_id(key)[:16] + "...",
                        "checkpoint 4: signed by key " + keys.key_id(other)[:16] + "..., expected "
                        + keys.key_id(key)[:16] + "...",
                        "checkpoint 5: bad signature", "checkpoint 6: not signed")
    # Removing the recorded key does not turn a signed ledger into an unsigned one quietly.
    conn = raw(path)
    conn.execute("DELETE FROM meta WHERE key = 'public_key'")
    conn.close()
    with Ledger.open(path) as led:
        assert "checkpoint 1: signed, but the ledger records no public key" in \
            led.verify().problems[0]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Checkpoint]]:
    path = tmp_path_factory.mktemp("ledger") / "pristine.db"
    return path, make(path, N)


TAMPERS = ["payload", "name", "kind", "created", "digest", "leaf", "rewrite", "delete", "swap",
           "renumber", "negative", "truncate", "uncovered", "clean-truncate", "frontier"]


@pytest.mark.parametrize("how", TAMPERS)
@settings(max_examples=12, deadline=None)
@given(st.integers(1, N), st.integers(1, N - 1), st.data())
def test_every_tamper_is_reported(pristine: tuple[Path, list[Checkpoint]], how: str, seq: int,
                                  other: int, data: st.DataObject) -> None:
    base, cps = pristine
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.db"
        shutil.copy(base, path)
        conn = raw(path)
        expect = tamper(conn, how, seq, other, data)
        conn.close()
        with Ledger.open(path) as led:
            plain, with_trusted = led.verify(), led.verify(trusted=cps[-1])
    assert not with_trusted.ok
    assert any(expect in p for p in with_trusted.problems), (expect, with_trusted.problems)
    if how == "clean-truncate":  # the file alone is self-consistent: only `trusted` catches it
        assert plain.ok and plain.size == seq - 1
    else:
        assert not plain.ok and any(expect in p for p in plain.problems), (expect, plain.problems)


def tamper(conn: sqlite3.Connection, how: str, seq: int, other: int, data: st.DataObject) -> str:
    """Apply one tamper; return the text a problem must contain."""
    update = "UPDATE entries SET {} WHERE seq = ?".format
    if how == "payload":
        at = data.draw(st.integers(0, len(payload(seq)) - 1), label="byte")
        edited = bytearray(payload(seq))
        edited[at] ^= data.draw(st.integers(1, 255), label="xor")
        conn.execute(update("payload = ?"), (bytes(edited), seq))
        return f"entry {seq}: payload does not match its digest"
    if how in ("name", "kind", "created"):
        value = {"name": "evil.csv", "kind": "approved", "created": "1999-01-01T00:00:00Z"}[how]
        conn.execute(update(f"{how} = ?"), (value, seq))
        return f"entry {seq}: stored leaf does not match its fields"
    if how in ("digest", "leaf"):
        conn.execute(update(f"{how} = ?"), ("00" * 32 if how == "digest" else bytes(32), seq))
        return f"entry {seq}: " + ("payload does not match" if how == "digest" else "stored leaf")
    if how == "rewrite":  # edit the payload and recompute digest and leaf
        conn.execute(update("payload = ?"), (b'{"version": 666}', seq))
        releaf(conn, seq)
        return f"checkpoint {seq}: root does not match entries 1..{seq}"
    if how == "delete":
        conn.execute("DELETE FROM entries WHERE seq = ?", (seq,))
        return f"entry {seq}: missing" if seq < N else f"checkpoint {N}: beyond the last entry ({N - 1})"
    if how == "swap":
        j, k = sorted({seq, other if other != seq else N})
        conn.execute("UPDATE entries SET payload = CASE seq WHEN ? THEN ? ELSE ? END "
                     "WHERE seq IN (?, ?)", (j, payload(k), payload(j), j, k))
        return f"entry {j}: payload does not match its digest"
    if how == "renumber":
        if data.draw(st.booleans(), label="to zero"):
            conn.execute(update("seq = 0"), (seq,))
            releaf(conn, 0)
            return "entry 0: out of sequence (expected 1)"
        conn.execute(update("seq = ?"), (N + 5, seq))
        releaf(conn, N + 5)
        return f"entry {seq}: missing" if seq < N else f"entries {N}..{N + 4}: missing"
    if how == "negative":
        conn.execute(update("seq = -3"), (seq,))
        return "entry -3: cannot be encoded"
    if how == "truncate":  # the last entries go, their checkpoints stay
        conn.execute("DELETE FROM entries WHERE seq >= ?", (seq,))
        return f"{N}: beyond the last entry ({seq - 1}); entries were removed"
    if how == "uncovered":  # an entry appended without a checkpoint
        conn.execute("INSERT INTO entries VALUES (?, 'scan', 'late', '', '', x'', x'')", (N + 1,))
        releaf(conn, N + 1)
        refrontier(conn)
        return f"entry {N + 1}: not covered by a checkpoint"
    if how == "clean-truncate":  # entries and their checkpoints go, the frontier is redone
        conn.execute("DELETE FROM entries WHERE seq >= ?", (seq,))
        conn.execute("DELETE FROM checkpoints WHERE size >= ?", (seq,))
        refrontier(conn)
        return f"trusted checkpoint {N}: beyond the last entry ({seq - 1})"
    assert how == "frontier"
    conn.execute("UPDATE frontier SET state = ?", (merkle.Frontier().to_bytes(),))
    return f"tree frontier: the stored state does not match the {N} entries"


def test_appending_to_a_tampered_ledger_refuses(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    make(path, 4)
    conn = raw(path)
    conn.execute("DELETE FROM entries WHERE seq = 4")
    conn.close()
    with Ledger.open(path) as led, pytest.raises(IntegrityError, match="the ledger was altered"):
        led.append("scan", "x", b"")
    with Ledger.open(path) as led, pytest.raises(IntegrityError, match="do not match the checkpoint"):
        led.prove(1)


def test_a_failed_append_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    make(path, 3)
    conn = sqlite3.connect(path, isolation_level=None)  # fail after the entry is written
    conn.execute("CREATE TRIGGER crash BEFORE INSERT ON checkpoints "
                 "BEGIN SELECT RAISE(ABORT, 'simulated crash'); END")
    conn.close()
    with Ledger.open(path) as led:
        with pytest.raises(IntegrityError, match="simulated crash"):
            led.append("scan", "x", b"lost")
        assert len(led.entries()) == 3 and led.verify().ok
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("DROP TRIGGER crash")
        conn.close()
        assert led.append("scan", "x", b"kept").size == 4 and led.verify().ok


def test_two_processes_append_at_once(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    Ledger.init(path).close()
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(path), tag, "30"], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
             for tag in ("a", "b")]
    for proc in procs:  # both opened the ledger: now start them together
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outs = [proc.communicate(timeout=60)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0] and all("30\n" in o for o in outs)
    with Ledger.open(path) as led:
        names = [e.name for e in led.entries()]
        assert led.verify().ok and len(names) == 60
    for tag in ("a", "b"):
        assert [n for n in names if n.startswith(tag)] == [f"{tag}-{i}" for i in range(30)]


def test_a_killed_writer_leaves_a_ledger_that_verifies(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    Ledger.init(path).close()
    with subprocess.Popen([sys.executable, "-c", CHILD, str(path), "k", "0"], text=True,
                          stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]  # "ready", then one per append
        proc.kill()  # SIGKILL, most likely in the middle of an append
    assert lines[-1] == "5\n" and proc.returncode == -9
    with Ledger.open(path) as led:
        result = led.verify()
        assert result.ok and result.size >= 5, result.problems
        assert led.append("scan", "after", b"").size == result.size + 1
