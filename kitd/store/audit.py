"""The audit log's entries and signed checkpoints in the kit's database.

Its one job: append an entry — sequence, time, whether the clock was confirmed, actor (a
NIP or ``system``), action, details — with its Merkle leaf hash (RFC 6962, over the entry's
RFC 8785 canonical JSON), inside the caller's transaction when there is one so that an
action and its entry commit together; read entries and leaf hashes back; keep the signed
checkpoints. Details never carry biometric data, and every NIK in them (16 digits) is
masked to its first 6 and last 2 digits before it is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from kitformats.audit.merkle import leaf_hash

from kitd.clock import clock_of

SYSTEM = "system"
# A NIK: 16 digits standing alone (an 18-digit NIP is not one).
NIK = re.compile(r"(?<!\d)(\d{6})\d{8}(\d{2})(?!\d)")
# A hex digest (a bundle's SHA-256, a certificate's fingerprint) holds a 16-digit run in about
# one of 250: masking it would falsify the hash the entry records.
HEX_DIGEST = re.compile(r"[0-9a-fA-F]{32,}")


@dataclass(frozen=True)
class AuditEntry:
    """What an action writes to the audit log beside its own change."""

    actor: str
    action: str
    details: Mapping[str, Any] = field(default_factory=dict)


def mask_niks(value: Any) -> Any:
    """``value`` with every NIK in its strings (keys too) masked: 357601******0001."""
    if isinstance(value, str):
        if HEX_DIGEST.fullmatch(value):
            return value
        return NIK.sub(lambda m: f"{m.group(1)}{'*' * 8}{m.group(2)}", value)
    if isinstance(value, Mapping):
        return {mask_niks(k): mask_niks(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_niks(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and 10**15 <= value < 10**16:
        return mask_niks(str(value))  # a NIK given as a number
    return value


def entry_document(
    seq: int, at: str, clock_confirmed: bool, actor: str, action: str, details: Mapping[str, Any]
) -> dict[str, Any]:
    """An entry as it is hashed and as the API serves it."""
    return {
        "seq": seq,
        "at": at,
        "clock_confirmed": bool(clock_confirmed),
        "actor": actor,
        "action": action,
        "details": dict(details),
    }


def entry_leaf(document: Mapping[str, Any]) -> bytes:
    """The entry's Merkle leaf hash: SHA-256(0x00 || RFC 8785 JSON of the entry)."""
    return leaf_hash(rfc8785.dumps(dict(document)))


def append_entry(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    details: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
    clock_confirmed: bool | None = None,
) -> int:
    """Append one entry (in the caller's transaction, or in one of its own); its sequence.
    Its time and whether the clock was confirmed are the kit clock's unless given."""
    clock = clock_of(conn)
    if clock_confirmed is None:
        clock_confirmed = clock.confirmed
    at = (now or clock.now()).astimezone(dt.UTC).isoformat(timespec="milliseconds")
    clean = mask_niks(dict(details or {}))
    try:
        rfc8785.dumps(clean)
    except (ValueError, TypeError, RecursionError):
        # Something a client sent that JSON's canonical form cannot hold (1e400, 2**60):
        # kept as text rather than failing the action it records.
        clean = {"unencodable": repr(clean)[:500]}
    own = not conn.in_transaction
    if own:
        conn.execute("BEGIN IMMEDIATE")
    try:
        seq = int(conn.execute("SELECT coalesce(max(seq), -1) + 1 FROM audit_entries").fetchone()[0])
        document = entry_document(seq, at, clock_confirmed, actor or SYSTEM, action, clean)
        conn.execute(
            "INSERT INTO audit_entries (seq, at, clock_confirmed, actor, action, details, leaf_hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                seq,
                at,
                int(bool(clock_confirmed)),
                document["actor"],
                action,
                rfc8785.dumps(clean).decode(),
                entry_leaf(document),
            ),
        )
        if own:
            conn.execute("COMMIT")
    except BaseException:
        if own:
            conn.execute("ROLLBACK")
        raise
    return seq


def _document(row: sqlite3.Row) -> dict[str, Any]:
    try:
        details = json.loads(row["details"])
    except (ValueError, TypeError, RecursionError):
        details = None
    if not isinstance(details, dict):  # edited by hand: shown as it is, and its leaf will differ
        details = {"unreadable": str(row["details"])[:200]}
    return entry_document(
        row["seq"], row["at"], bool(row["clock_confirmed"]), row["actor"], row["action"], details
    )


def content_leaf(document: Mapping[str, Any]) -> bytes:
    """:func:`entry_leaf`, or a hash no entry has when the content (edited by hand) has no
    canonical form: a check then finds the entry changed instead of failing on it."""
    try:
        return entry_leaf(document)
    except (ValueError, TypeError, RecursionError):
        return hashlib.sha256(b"an entry with no canonical form").digest()


def latest_entry_time(conn: sqlite3.Connection) -> dt.datetime | None:
    """When the last entry was written (its ``at``), or None for an empty log."""
    row = conn.execute("SELECT at FROM audit_entries ORDER BY seq DESC LIMIT 1").fetchone()
    return dt.datetime.fromisoformat(row[0]) if row else None


def log_size(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(seq), -1) + 1 FROM audit_entries").fetchone()[0])


def entries(conn: sqlite3.Connection, start: int, count: int) -> list[dict[str, Any]]:
    """Entries ``start`` .. ``start + count - 1`` as stored."""
    rows = conn.execute(
        "SELECT * FROM audit_entries WHERE seq >= ? AND seq < ? ORDER BY seq", (start, start + count)
    ).fetchall()
    return [_document(r) for r in rows]


def stored_rows(conn: sqlite3.Connection) -> list[tuple[dict[str, Any], bytes]]:
    """Every entry with the leaf hash stored beside it, in the order of their sequence."""
    rows = conn.execute("SELECT * FROM audit_entries ORDER BY seq").fetchall()
    return [(_document(r), bytes(r["leaf_hash"])) for r in rows]


def leaf_hashes(conn: sqlite3.Connection, size: int) -> list[bytes]:
    """The stored leaf hashes of the first ``size`` entries."""
    rows = conn.execute("SELECT leaf_hash FROM audit_entries WHERE seq < ? ORDER BY seq", (size,)).fetchall()
    return [bytes(r[0]) for r in rows]


def leaf_hashes_between(conn: sqlite3.Connection, start: int, end: int) -> list[tuple[int, bytes]]:
    """(sequence, stored leaf hash) of the entries ``start`` .. ``end - 1``."""
    rows = conn.execute(
        "SELECT seq, leaf_hash FROM audit_entries WHERE seq >= ? AND seq < ? ORDER BY seq", (start, end)
    ).fetchall()
    return [(int(r[0]), bytes(r[1])) for r in rows]


def find_entries(
    conn: sqlite3.Connection, since: str | None = None, actor: str | None = None, action: str | None = None
) -> list[dict[str, Any]]:
    """Entries at or after ``since`` (an ISO time), by ``actor``, of ``action``, oldest first."""
    where, args = [], []
    for clause, value in (("at >= ?", since), ("actor = ?", actor), ("action = ?", action)):
        if value is not None:
            where.append(clause)
            args.append(value)
    query = (
        "SELECT * FROM audit_entries" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
    )
    return [_document(r) for r in conn.execute(query, args).fetchall()]


def record_checkpoint(conn: sqlite3.Connection, size: int, root: bytes, note: str, now: dt.datetime) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO audit_checkpoints (size, root_hash, note, signed_at) VALUES (?, ?, ?, ?)",
        (size, root, note, now.astimezone(dt.UTC).isoformat(timespec="seconds")),
    )


def checkpoints(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM audit_checkpoints ORDER BY size").fetchall()
    return [dict(r, root_hash=bytes(r["root_hash"])) for r in rows]


def latest_checkpoint(conn: sqlite3.Connection) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM audit_checkpoints ORDER BY size DESC LIMIT 1").fetchone()
    return None if row is None else dict(row, root_hash=bytes(row["root_hash"]))
