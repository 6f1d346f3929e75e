"""The kit's one SQLite database in data_dir, opened safely and migrated in order.

Its one job: :func:`open_database` returns a connection with write-ahead logging,
``synchronous=FULL`` (a committed row survives a power cut), foreign keys enforced,
and every migration of :data:`MIGRATIONS` applied that ``PRAGMA user_version`` says
is missing, each in its own transaction. Later issues append migrations; a shipped
one is never edited.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kitd.clock import KitClock
from kitd.errors import KitError

DATABASE_NAME = "kitd.sqlite3"
# How long a writer waits for another (kitctl beside the daemon) before failing.
BUSY_TIMEOUT_S = 10.0

# Migration N (1-based) brings the database from user_version N-1 to N.
MIGRATIONS: tuple[str, ...] = (
    # 1: officers and work orders (issue 20).
    """
    CREATE TABLE officers (
        nip TEXT PRIMARY KEY CHECK (length(nip) = 18),
        name TEXT NOT NULL CHECK (length(name) > 0),
        role TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'technician')),
        active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
        pin_hash TEXT NOT NULL,
        pin_failures INTEGER NOT NULL DEFAULT 0,
        locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
        created_at TEXT NOT NULL
    );
    CREATE TABLE work_orders (
        order_id TEXT PRIMARY KEY,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
        -- The order as imported (personal data: erased when its visit ends).
        content TEXT,
        appointment_start TEXT,
        imported_at TEXT NOT NULL
    );
    CREATE INDEX work_orders_pending ON work_orders (status, appointment_start);
    """,
    # 2: visits (issue 21). A visit's record is its state machine as JSON: identity,
    # consent, exceptions, scores and outcome; never a capture (captures stay in memory).
    # An order whose visit ended keeps only its id, outcome and times.
    """
    CREATE TABLE visits (
        id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL REFERENCES work_orders (order_id),
        state TEXT NOT NULL,
        record TEXT NOT NULL,
        started_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX visits_state ON visits (state);
    ALTER TABLE work_orders ADD COLUMN outcome TEXT;
    ALTER TABLE work_orders ADD COLUMN ended_at TEXT;
    """,
    # 3: the outbox and the laptops whose receipts the kit trusts (issue 24). A bundle's
    # row is made ('sealing', with the finished visit's record) before its files are
    # written, and becomes 'sealed' in the transaction that finishes the visit.
    """
    CREATE TABLE outbox (
        bundle_id TEXT PRIMARY KEY,
        visit_id TEXT,
        state TEXT NOT NULL CHECK (
            state IN ('sealing', 'sealed', 'offered', 'acknowledged', 'delivered', 'erased')
        ),
        sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
        size INTEGER NOT NULL CHECK (size > 0),
        sealed_at TEXT NOT NULL,
        -- While 'sealing': the finished visit's record, saved with the bundle's registration.
        visit_record TEXT,
        offered_at TEXT,
        offered_to TEXT,
        acknowledged_at TEXT,
        acknowledged_by TEXT,
        laptop_receipt TEXT,
        delivered_at TEXT,
        central_receipt TEXT,
        erased_at TEXT,
        -- What start-up found wrong with its files ('missing', 'damaged'), and since when.
        problem TEXT,
        problem_since TEXT
    );
    CREATE INDEX outbox_state ON outbox (state, sealed_at);
    CREATE UNIQUE INDEX outbox_one_bundle_per_visit ON outbox (visit_id) WHERE state != 'erased';
    CREATE TABLE laptops (
        name TEXT PRIMARY KEY CHECK (length(name) > 0),
        certificate TEXT NOT NULL,
        fingerprint TEXT NOT NULL UNIQUE,
        trusted_at TEXT NOT NULL,
        revoked_at TEXT
    );
    """,
    # 4: the audit log (issue 25): append-only entries, each with its Merkle leaf hash, and
    # the signed checkpoints. The triggers keep the kit's own code from editing history; a
    # hand-edited database is caught by the tree (kitctl audit verify, a laptop's proofs).
    """
    CREATE TABLE audit_entries (
        seq INTEGER PRIMARY KEY CHECK (seq >= 0),
        at TEXT NOT NULL,
        clock_confirmed INTEGER NOT NULL CHECK (clock_confirmed IN (0, 1)),
        actor TEXT NOT NULL CHECK (length(actor) > 0),
        action TEXT NOT NULL CHECK (length(action) > 0),
        details TEXT NOT NULL,
        leaf_hash BLOB NOT NULL CHECK (length(leaf_hash) = 32)
    );
    CREATE INDEX audit_entries_actor ON audit_entries (actor, seq);
    CREATE INDEX audit_entries_action ON audit_entries (action, seq);
    CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
    BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END;
    CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
    BEGIN
        SELECT RAISE(ABORT, 'the audit log is append-only');
    END;
    CREATE TABLE audit_checkpoints (
        size INTEGER PRIMARY KEY CHECK (size >= 0),
        root_hash BLOB NOT NULL CHECK (length(root_hash) = 32),
        note TEXT NOT NULL,
        signed_at TEXT NOT NULL
    );
    """,
    # 5: the touch screen's language, remembered per officer (Bahasa Indonesia unless chosen).
    """
    ALTER TABLE officers ADD COLUMN language TEXT NOT NULL DEFAULT 'id' CHECK (language IN ('id', 'en'));
    """,
    # 6: paired laptops (issue 29): a laptop paired with the kit's code has its TLS client
    # certificate here beside its receipts certificate (certificate, fingerprint); a laptop
    # trusted for receipts only (before pairing existed) has none. last_sync_at: its last
    # listing of the outbox.
    """
    ALTER TABLE laptops ADD COLUMN tls_certificate TEXT;
    ALTER TABLE laptops ADD COLUMN tls_fingerprint TEXT;
    ALTER TABLE laptops ADD COLUMN paired_at TEXT;
    ALTER TABLE laptops ADD COLUMN last_sync_at TEXT;
    CREATE UNIQUE INDEX laptops_one_tls_certificate ON laptops (tls_fingerprint)
        WHERE tls_fingerprint IS NOT NULL;
    """,
    # 7: orders a laptop replaces or withdraws (issue 29). A withdrawn order is closed (its
    # personal fields erased) at once, or, while its visit runs, when that visit ends.
    """
    ALTER TABLE work_orders ADD COLUMN updated_at TEXT;
    ALTER TABLE work_orders ADD COLUMN withdrawn_at TEXT;
    """,
    # 8: diagnostics runs (issue 31): every run whole (its findings hold measured values and
    # messages, never biometric data), so that a technician sees a check's trend over weeks.
    """
    CREATE TABLE diagnostic_runs (
        run_id TEXT PRIMARY KEY,
        started_at TEXT NOT NULL,
        quick INTEGER NOT NULL CHECK (quick IN (0, 1)),
        status TEXT NOT NULL,
        run TEXT NOT NULL
    );
    CREATE INDEX diagnostic_runs_by_time ON diagnostic_runs (started_at);
    """,
)


class DatabaseError(KitError):
    """The database cannot be opened or migrated (names the file)."""


def database_path(data_dir: Path) -> Path:
    return Path(data_dir) / DATABASE_NAME


class KitConnection(sqlite3.Connection):
    """A connection to the kit's database that carries the kit's clock: the times written
    through it (audit entries, visits, orders) are that clock's (kitd.clock.clock_of)."""

    clock: KitClock | None = None


def open_database(path: Path, clock: KitClock | None = None) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at ``path``; its times are ``clock``'s,
    else those of the kit's clock as kept beside the database (kitctl, on the kit's data_dir)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
            factory=KitConnection,
        )
        conn.clock = clock or KitClock.for_kit(path.parent)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
    except (OSError, sqlite3.Error) as exc:
        raise DatabaseError(f"database {path}: {exc}") from None
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the missing migrations; return the resulting version."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise DatabaseError(
            f"database is at version {version}, newer than this kitd knows ({len(MIGRATIONS)})"
        )
    for number in range(version + 1, len(MIGRATIONS) + 1):
        conn.execute("BEGIN IMMEDIATE")
        # Another process (kitctl beside the daemon) may have migrated while we waited.
        if int(conn.execute("PRAGMA user_version").fetchone()[0]) >= number:
            conn.execute("ROLLBACK")
            continue
        try:
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """The statements of a migration (executescript would commit on its own)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return [s for s in statements if s]


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, committed on leaving, rolled back on any exception.

    Inside another one, a savepoint: on an exception only its own changes are undone, and what
    it did is committed with the outer transaction (one commit, one fsync, for many changes)."""
    if conn.in_transaction:
        conn.execute("SAVEPOINT nested")
        try:
            yield
            conn.execute("RELEASE nested")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK TO nested")
                conn.execute("RELEASE nested")
            raise
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # SQLite rolls back by itself on most failures of COMMIT; if it did not, a later
        # statement would silently join this transaction and never be committed.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
