"""The laptop's ledger of one kit: which bundles it holds, which the kit knows it holds.

Its one job: a small SQLite file per kit (``ledger.sqlite``) that makes a repeated pull a
no-op. A bundle is ``stored`` once its sealed file and statement are on the laptop's disk,
fsynced; ``acknowledged`` once the kit took the laptop's receipt for it; ``delivered`` once
the kit took the central office's. It also keeps where the outcomes feed stopped (the kit's
cursor) and what the last sync found, for ``kit-sync status``; and the kit's audit log as this
laptop checked it: the checkpoints it trusts (each shown to extend the one before), and every
inconsistency it found, with both checkpoints' notes, kept for good.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kitsync.errors import SyncError

SCHEMA = """
CREATE TABLE IF NOT EXISTS bundles (
    bundle_id TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    sealed_at TEXT,
    path TEXT NOT NULL,
    stored_at TEXT NOT NULL,
    acknowledged_at TEXT,
    receipt TEXT,
    delivered_at TEXT
);
CREATE TABLE IF NOT EXISTS sync (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- The ledger grows by tables: one written by an older kit-sync gains these when it is opened.
CREATE TABLE IF NOT EXISTS audit_checkpoints (
    size INTEGER PRIMARY KEY,
    root_hash BLOB NOT NULL,
    note TEXT NOT NULL,
    checked_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_inconsistencies (
    id INTEGER PRIMARY KEY,
    found_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    trusted_note TEXT,
    new_note TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class TrustedCheckpoint:
    """A checkpoint of the kit's audit log that this laptop checked and trusts."""

    size: int
    root_hash: bytes
    note: str
    checked_at: str


@dataclass(frozen=True)
class LedgerBundle:
    bundle_id: str
    sha256: str
    size: int
    sealed_at: str | None
    path: str
    stored_at: str
    acknowledged_at: str | None
    receipt: dict[str, Any] | None
    delivered_at: str | None

    @property
    def state(self) -> str:
        if self.delivered_at:
            return "delivered"
        return "acknowledged" if self.acknowledged_at else "stored"


def _unreadable(path: Path, exc: sqlite3.DatabaseError) -> SyncError:
    """Why the ledger at `path` cannot be used, and what to do."""
    if exc.sqlite_errorcode not in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        # Locked, read-only (files left by a sudo), not a file, a disk error: nothing is damaged.
        return SyncError(f"{path}: this laptop's ledger of the kit cannot be read ({exc})")
    # Not "move it aside": the ledger also holds the kit's trusted audit checkpoint and the
    # inconsistencies found, which a new one would forget; its -wal file holds the latest.
    return SyncError(
        f"{path}: this laptop's ledger of the kit is damaged ({exc}); it holds the kit's trusted "
        "audit checkpoint: leave ledger.sqlite* as they are and call a technician"
    )


class Ledger:
    """One kit's ledger; every change is committed (and synced) before the method returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        conn = None
        try:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.row_factory = sqlite3.Row
            # A stored bundle recorded must survive a power cut: the receipt follows it. WAL: one
            # fsync a commit (the rollback journal takes several), and a reader never waits.
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise _unreadable(path, exc) from None
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def bundle(self, bundle_id: str) -> LedgerBundle | None:
        row = self.conn.execute("SELECT * FROM bundles WHERE bundle_id = ?", (bundle_id,)).fetchone()
        return None if row is None else _bundle(row)

    def bundles(self) -> list[LedgerBundle]:
        return [
            _bundle(row) for row in self.conn.execute("SELECT * FROM bundles ORDER BY stored_at, bundle_id")
        ]

    def record_stored(
        self, bundle_id: str, sha256: str, size: int, sealed_at: str | None, path: Path, now: str
    ) -> None:
        """The bundle's files are on disk, fsynced (a bundle stored again replaces its row)."""
        self.record_stored_together([(bundle_id, sha256, size, sealed_at, path)], now)

    def record_stored_together(self, bundles: list[tuple[str, str, int, str | None, Path]], now: str) -> None:
        """Several bundles whose files are on disk, fsynced (bundle id, SHA-256, size, sealed
        at, path each): one commit, one fsync, for all of them (a bundle stored again replaces
        its row)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                "INSERT OR REPLACE INTO bundles (bundle_id, sha256, size, sealed_at, path, stored_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(*bundle[:4], str(bundle[4]), now) for bundle in bundles],
            )

    def record_acknowledged(self, taken: list[tuple[str, dict[str, Any]]], now: str) -> None:
        """The kit took these bundles' receipts (bundle id, the receipt): one commit for all."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                "UPDATE bundles SET acknowledged_at = COALESCE(acknowledged_at, ?), receipt = ? "
                "WHERE bundle_id = ?",
                [(now, json.dumps(receipt), bundle_id) for bundle_id, receipt in taken],
            )

    def record_delivered(self, bundle_id: str, now: str) -> bool:
        """The kit took the central office's receipt (a bundle this ledger holds: whether it does)."""
        changed = self.conn.execute(
            "UPDATE bundles SET delivered_at = COALESCE(delivered_at, ?) WHERE bundle_id = ?",
            (now, bundle_id),
        )
        return changed.rowcount > 0

    def forget(self, bundle_id: str) -> None:
        """The bundle's files are gone from the laptop: it will be pulled again."""
        self.conn.execute("DELETE FROM bundles WHERE bundle_id = ?", (bundle_id,))

    def counts(self) -> dict[str, int]:
        counts = {"stored": 0, "acknowledged": 0, "delivered": 0}
        for bundle in self.bundles():
            counts[bundle.state] += 1
        return counts

    # --- the sync's own values ---------------------------------------------------------------

    def value(self, name: str, default: Any = None) -> Any:
        row = self.conn.execute("SELECT value FROM sync WHERE name = ?", (name,)).fetchone()
        return default if row is None else json.loads(row["value"])

    def set_value(self, name: str, value: Any) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sync (name, value) VALUES (?, ?)", (name, json.dumps(value))
        )

    @property
    def outcomes_cursor(self) -> int:
        return int(self.value("outcomes_cursor", 0))

    @outcomes_cursor.setter
    def outcomes_cursor(self, cursor: int) -> None:
        self.set_value("outcomes_cursor", cursor)

    def record_sync(
        self, at: str, offered: list[dict[str, Any]], unacknowledged: list[dict[str, Any]]
    ) -> None:
        """What a pull found: the kit's pending bundles, and those still not acknowledged after it."""
        sealed = sorted(b["sealed_at"] for b in unacknowledged if isinstance(b.get("sealed_at"), str))
        self.set_value(
            "last_sync",
            {
                "at": at,
                "pending": len(offered),
                "unacknowledged": len(unacknowledged),
                "oldest_unacknowledged": sealed[0] if sealed else None,
            },
        )

    @property
    def last_sync(self) -> dict[str, Any] | None:
        return self.value("last_sync")

    # --- the kit's audit log -----------------------------------------------------------------

    def trusted_checkpoint(self) -> TrustedCheckpoint | None:
        """The latest checkpoint this laptop trusts (the largest: each extends the one before)."""
        row = self.conn.execute("SELECT * FROM audit_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else _trusted(row)

    def trust_checkpoint(
        self, before: TrustedCheckpoint | None, size: int, root_hash: bytes, note: str, now: str
    ) -> bool:
        """Keep a checkpoint shown to extend ``before``, unless another kit-sync trusted another
        one meanwhile (it was not compared with that one: the next sync will be); whether it is
        trusted now."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            latest = self.trusted_checkpoint()
            if latest is not None and (latest.size, latest.root_hash) == (size, root_hash):
                return True
            if latest != before:
                return False
            self.conn.execute(
                "INSERT INTO audit_checkpoints (size, root_hash, note, checked_at) VALUES (?, ?, ?, ?)",
                (size, root_hash, note, now),
            )
        return True

    def record_inconsistency(self, reason: str, trusted_note: str | None, new_note: str, now: str) -> None:
        """A checkpoint that does not extend the trusted one, kept with both notes (once per pair)."""
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            seen = self.conn.execute(
                "SELECT 1 FROM audit_inconsistencies WHERE trusted_note IS ? AND new_note = ?",
                (trusted_note, new_note),
            ).fetchone()
            if seen is None:
                self.conn.execute(
                    "INSERT INTO audit_inconsistencies (found_at, reason, trusted_note, new_note) "
                    "VALUES (?, ?, ?, ?)",
                    (now, reason, trusted_note, new_note),
                )

    def inconsistencies(self) -> list[dict[str, Any]]:
        """Every inconsistency found, oldest first."""
        rows = self.conn.execute("SELECT * FROM audit_inconsistencies ORDER BY id").fetchall()
        return [dict(row) for row in rows]


@contextmanager
def one_at_a_time(lock_path: Path, what: str) -> Iterator[None]:
    """Hold ``lock_path`` for the block, or SyncError if another kit-sync holds it: two pulls
    from one kit would write the same ``.part``. SQLite's lock is the operating system's, so
    a process killed with it held lets it go (a lock file would stay behind)."""
    conn = sqlite3.connect(lock_path, timeout=0, isolation_level=None)
    try:
        try:
            conn.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError:
            raise SyncError(f"another kit-sync is busy with {what} (it holds {lock_path.name})") from None
        yield
    finally:
        conn.close()


def _trusted(row: sqlite3.Row) -> TrustedCheckpoint:
    return TrustedCheckpoint(int(row["size"]), bytes(row["root_hash"]), row["note"], row["checked_at"])


def _bundle(row: sqlite3.Row) -> LedgerBundle:
    return LedgerBundle(
        row["bundle_id"],
        row["sha256"],
        row["size"],
        row["sealed_at"],
        row["path"],
        row["stored_at"],
        row["acknowledged_at"],
        json.loads(row["receipt"]) if row["receipt"] else None,
        row["delivered_at"],
    )
