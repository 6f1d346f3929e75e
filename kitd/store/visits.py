"""Visits in the kit's database, and what a visit's end does to its work order.

Its one job: keep each visit's record (its state machine as JSON, never a capture) so
that a restart finds the active visit again, and close the order when its visit ends:
erase the order's personal fields, keeping only its id, outcome and times, or, for a
rescheduled visit, put the new appointment on the order and keep it pending; list the
visits' ends (outcomes) since a cursor, for a field laptop.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any

from kitd.clock import clock_of
from kitd.errors import KitError, shown_value
from kitd.store.audit import AuditEntry, append_entry
from kitd.store.database import transaction

ACTIVE_STATES: tuple[str, ...] = ("identity", "capturing", "review", "ending")


class OrderNotPending(KitError):
    """The order is unknown, or already done (names it)."""


def pending_order(conn: sqlite3.Connection, order_id: str, withdrawn_too: bool = False) -> dict[str, Any]:
    """The order as imported (or replaced), while it is pending; ``withdrawn_too``: also one the
    office withdrew while its visit runs (that visit may still be sealed)."""
    row = conn.execute(
        "SELECT status, content, withdrawn_at FROM work_orders WHERE order_id = ?", (order_id,)
    ).fetchone()
    if row is None:
        raise OrderNotPending(f"no work order {shown_value(order_id)}")
    if row["withdrawn_at"] is not None and not withdrawn_too:
        raise OrderNotPending(f"work order '{order_id}' was withdrawn by the office on {row['withdrawn_at']}")
    if row["status"] != "pending" or row["content"] is None:
        raise OrderNotPending(f"work order '{order_id}' is {row['status']}, not pending")
    return json.loads(row["content"])


def save_visit(conn: sqlite3.Connection, record: dict[str, Any], entry: AuditEntry | None = None) -> None:
    """Insert or update a visit's record, with the audit ``entry`` of what changed it (in
    the caller's transaction, or committed together before this returns)."""
    if entry is not None and not conn.in_transaction:
        with transaction(conn):
            save_visit(conn, record, entry)
        return
    if entry is not None:
        append_entry(conn, entry.actor, entry.action, entry.details)
    conn.execute(
        "INSERT INTO visits (id, order_id, state, record, started_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET state = excluded.state, record = excluded.record, "
        "updated_at = excluded.updated_at",
        (
            record["id"],
            record["order_id"],
            record["state"],
            json.dumps(record, ensure_ascii=False, separators=(",", ":")),
            record["started_at"],
            record["updated_at"],
        ),
    )


def load_visit(conn: sqlite3.Connection, visit_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT record FROM visits WHERE id = ?", (visit_id,)).fetchone()
    return None if row is None else json.loads(row["record"])


def active_visits(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Visits not yet finished or ended, oldest first (a kit has at most one)."""
    marks = ", ".join("?" * len(ACTIVE_STATES))
    rows = conn.execute(
        f"SELECT record FROM visits WHERE state IN ({marks}) ORDER BY started_at, id", ACTIVE_STATES
    ).fetchall()
    return [json.loads(r["record"]) for r in rows]


def visits_ended_by_others(conn: sqlite3.Connection, officer: str, since: str) -> list[dict[str, Any]]:
    """`officer`'s visits ended with an outcome (not finished) that someone else gave, at or
    after the stamp `since`, oldest first."""
    rows = conn.execute(
        "SELECT record FROM visits WHERE state = 'ended' AND updated_at >= ? "
        "AND json_extract(record, '$.officer') = ? AND json_extract(record, '$.outcome.by') <> ? "
        "ORDER BY updated_at, id",
        (since, officer, officer),
    ).fetchall()
    return [json.loads(r["record"]) for r in rows]


def end_visit(
    conn: sqlite3.Connection,
    record: dict[str, Any],
    entry: AuditEntry,
    outcome: str,
    reschedule: dict[str, str] | None = None,
    now: dt.datetime | None = None,
) -> None:
    """A visit ended with ``outcome``: its record, its audit entry and its order's closing in
    one transaction (a power cut between them would leave the order open, personal data and all)."""
    with transaction(conn):
        save_visit(conn, record, entry)
        close_order_in(conn, record["order_id"], outcome, reschedule, now)


def close_order(
    conn: sqlite3.Connection,
    order_id: str,
    outcome: str,
    reschedule: dict[str, str] | None = None,
    now: dt.datetime | None = None,
) -> None:
    """The order's visit ended with ``outcome`` (``finished`` or an outcome code), committed.

    Rescheduled: the order stays pending with the new appointment, unless the office withdrew
    it meanwhile. Otherwise its personal fields are erased: only the order id, the outcome and
    the times stay.
    """
    with transaction(conn):
        close_order_in(conn, order_id, outcome, reschedule, now)


def close_order_in(
    conn: sqlite3.Connection,
    order_id: str,
    outcome: str,
    reschedule: dict[str, str] | None = None,
    now: dt.datetime | None = None,
) -> None:
    """:func:`close_order` inside the caller's transaction."""
    stamp = (now or clock_of(conn).now()).isoformat(timespec="seconds")
    withdrawn = conn.execute(
        "SELECT 1 FROM work_orders WHERE order_id = ? AND withdrawn_at IS NOT NULL", (order_id,)
    ).fetchone()
    if outcome == "rescheduled" and withdrawn is None:
        if reschedule is None:
            raise ValueError("a rescheduled order needs its new appointment")
        order = pending_order(conn, order_id)
        order["appointment"] = {"start": reschedule["start"], "end": reschedule["end"]}
        start = dt.datetime.fromisoformat(reschedule["start"]).astimezone(dt.UTC).isoformat()
        conn.execute(
            "UPDATE work_orders SET content = ?, appointment_start = ?, outcome = ? WHERE order_id = ?",
            (
                json.dumps(order, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
                start,
                outcome,
                order_id,
            ),
        )
    else:
        conn.execute(
            "UPDATE work_orders SET status = 'done', content = NULL, appointment_start = NULL, "
            "outcome = ?, ended_at = ? WHERE order_id = ?",
            (outcome, stamp, order_id),
        )


# The audit entries that record a visit's end (kitd.store.outbox.complete_sealing for a
# finished one, kitd.services.visits for an outcome). Their sequence numbers are the cursor
# of the outcomes a laptop follows: written in the transaction that ends the visit, in commit
# order, never changed; and the kit already keeps them.
VISIT_END_ACTIONS: tuple[str, ...] = ("visit_finished", "visit_ended")


def outcomes_since(conn: sqlite3.Connection, after: int, limit: int) -> list[dict[str, Any]]:
    """The visits that ended after cursor ``after`` (at most ``limit``, oldest first): each
    ``{"cursor", "order_id", "visit_id", "outcome", "ended_at", "reschedule"}``; ``finished``
    for a sealed visit, else the outcome given (``reschedule``: its new appointment)."""
    marks = ", ".join("?" * len(VISIT_END_ACTIONS))
    # The ids come from the visit's own row: the audit log masks anything shaped like a NIK.
    rows = conn.execute(
        "SELECT a.seq, v.id, v.order_id, v.record FROM audit_entries AS a "
        "JOIN visits AS v ON v.id = json_extract(a.details, '$.visit') "
        f"WHERE a.action IN ({marks}) AND a.seq > ? ORDER BY a.seq LIMIT ?",
        (*VISIT_END_ACTIONS, after, limit),
    ).fetchall()
    outcomes = []
    for row in rows:
        record = json.loads(row["record"])
        given = record.get("outcome") or {}
        outcomes.append(
            {
                "cursor": int(row["seq"]),
                "order_id": row["order_id"],
                "visit_id": row["id"],
                "outcome": "finished" if record["state"] == "finished" else given.get("code"),
                "ended_at": record["updated_at"],
                "reschedule": given.get("reschedule"),
            }
        )
    return outcomes
