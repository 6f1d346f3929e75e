"""Diagnostics runs in the kit's database: each kept whole, its summary in the audit log.

Its one job: store a run (kitd.services.diagnostics) with an audit entry naming its status,
its counts and the checks not ok, in one transaction; read runs back, newest first, or one by
its id; and one check's values across runs, oldest first, for a trend. How many runs one
read may give (history_limit) is here for the API and kitctl both.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from kitd.store.audit import SYSTEM, append_entry
from kitd.store.database import transaction
from kitd.whole_numbers import whole_number_in

# How many runs one read of the history gives at most, and when not told.
MAX_HISTORY = 500
DEFAULT_HISTORY = 20


def history_limit(text: str) -> int | None:
    """How many runs `text` asks for (a whole number from 1 to MAX_HISTORY); None if it is not one."""
    return whole_number_in(text, 1, MAX_HISTORY)


def record_run(conn: sqlite3.Connection, run: dict[str, Any], actor: str = SYSTEM) -> None:
    """Keep ``run`` and audit its summary (``diagnostics_run``)."""
    summary = {
        "run_id": run["run_id"],
        "quick": run["quick"],
        "status": run["status"],
        "counts": run["counts"],
        "not_ok": {f["id"]: f["status"] for f in run["checks"] if f["status"] != "ok"},
    }
    with transaction(conn):
        conn.execute(
            "INSERT INTO diagnostic_runs (run_id, started_at, quick, status, run) VALUES (?, ?, ?, ?, ?)",
            (run["run_id"], run["started_at"], int(run["quick"]), run["status"], json.dumps(run)),
        )
        append_entry(conn, actor, "diagnostics_run", summary)


def recent_runs(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` runs, newest first."""
    rows = conn.execute(
        "SELECT run FROM diagnostic_runs ORDER BY started_at DESC, rowid DESC LIMIT ?", (limit,)
    ).fetchall()
    return [json.loads(r[0]) for r in rows]


def stored_run(conn: sqlite3.Connection, run_id: str) -> dict[str, Any] | None:
    """The run ``run_id``, or None when none is stored under it."""
    row = conn.execute("SELECT run FROM diagnostic_runs WHERE run_id = ?", (run_id,)).fetchone()
    return None if row is None else json.loads(row[0])


def check_history(conn: sqlite3.Connection, check_id: str, limit: int) -> list[dict[str, Any]]:
    """One check's findings across the last ``limit`` runs that ran it, oldest first:
    ``{"run_id", "started_at", "quick", "status", "values", "message"}`` (the message: what
    to do, when it was not ok)."""
    rows = conn.execute(
        "SELECT run FROM diagnostic_runs ORDER BY started_at DESC, rowid DESC",
    )
    found: list[dict[str, Any]] = []
    for (text,) in rows:
        run = json.loads(text)
        for check in run["checks"]:
            if check["id"] == check_id:
                found.append(
                    {
                        "run_id": run["run_id"],
                        "started_at": run["started_at"],
                        "quick": run["quick"],
                        "status": check["status"],
                        "values": check["values"],
                        "message": check.get("message"),
                    }
                )
                break
        if len(found) >= limit:
            break
    return list(reversed(found))
