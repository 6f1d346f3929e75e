"""The outbox's rows and the laptops the kit knows (paired or trusted) in the kit's database.

Its one job: the SQL of a bundle's life — ``sealing`` (registered before its files are
written) -> ``sealed`` -> ``offered`` -> ``acknowledged`` -> ``delivered`` -> ``erased`` (and
``acknowledged`` back to ``sealed`` when its laptop is revoked) — each change one committed
transaction, and of the laptops: paired with the kit's code (their
TLS client certificate and receipts certificate), trusted for receipts only, revoked.
Nothing here touches a file (kitd.services.outbox does, through the kit's I/O layer).
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any

from kitd.errors import KitError
from kitd.store.audit import SYSTEM, AuditEntry, append_entry
from kitd.store.database import transaction
from kitd.store.visits import close_order_in, save_visit

STATES: tuple[str, ...] = ("sealing", "sealed", "offered", "acknowledged", "delivered", "erased")
# Bundles the office does not have yet: never erased, whatever the disk says.
UNACKNOWLEDGED: tuple[str, ...] = ("sealed", "offered")
# Bundles whose files the outbox keeps.
KEPT: tuple[str, ...] = ("sealed", "offered", "acknowledged", "delivered")


class LaptopError(KitError):
    """A laptop cannot be trusted or revoked as asked (names it)."""


def stamp(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).isoformat(timespec="seconds")


def bundle_row(conn: sqlite3.Connection, bundle_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM outbox WHERE bundle_id = ?", (bundle_id,)).fetchone()
    return None if row is None else dict(row)


def bundle_rows(conn: sqlite3.Connection, states: tuple[str, ...] = STATES) -> list[dict[str, Any]]:
    marks = ", ".join("?" * len(states))
    rows = conn.execute(
        f"SELECT * FROM outbox WHERE state IN ({marks}) ORDER BY sealed_at, bundle_id", states
    ).fetchall()
    return [dict(r) for r in rows]


def sealing_row_of_visit(conn: sqlite3.Connection, visit_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT * FROM outbox WHERE visit_id = ? AND state = 'sealing'", (visit_id,)
    ).fetchone()
    return None if row is None else dict(row)


def register_sealing(
    conn: sqlite3.Connection,
    bundle_id: str,
    visit_record: dict[str, Any],
    sha256: str,
    size: int,
    sealed_at: str,
) -> None:
    """The bundle is about to be written for this finished visit (committed on return)."""
    conn.execute(
        "INSERT INTO outbox (bundle_id, visit_id, state, sha256, size, sealed_at, visit_record) "
        "VALUES (?, ?, 'sealing', ?, ?, ?, ?)",
        (
            bundle_id,
            visit_record["id"],
            sha256,
            size,
            sealed_at,
            json.dumps(visit_record, ensure_ascii=False, separators=(",", ":")),
        ),
    )


def complete_sealing(
    conn: sqlite3.Connection, bundle_id: str, now: dt.datetime, at_start_up: bool = False
) -> dict[str, Any]:
    """The bundle's files are whole: in one transaction it becomes ``sealed``, its visit is
    saved finished (the audit log saying so) and its order closed. Returns the visit's record."""
    with transaction(conn):
        row = bundle_row(conn, bundle_id)
        if row is None or row["state"] != "sealing" or row["visit_record"] is None:
            raise KitError(f"bundle {bundle_id} is not being sealed")
        record = json.loads(row["visit_record"])
        facts = {"visit": record["id"], "order": record["order_id"], "state": record["state"]}
        facts.update(bundle=bundle_id, sha256=row["sha256"], size=row["size"])
        if at_start_up:
            facts["registered_at_start_up"] = True
        save_visit(
            conn, record, AuditEntry(SYSTEM if at_start_up else record["officer"], "visit_finished", facts)
        )
        close_order_in(conn, record["order_id"], "finished", None, now)
        conn.execute(
            "UPDATE outbox SET state = 'sealed', visit_record = NULL WHERE bundle_id = ?", (bundle_id,)
        )
    return record


def forget_sealing(conn: sqlite3.Connection, bundle_id: str) -> None:
    """A bundle whose files were never whole: it was never sealed."""
    conn.execute("DELETE FROM outbox WHERE bundle_id = ? AND state = 'sealing'", (bundle_id,))


def register_found(
    conn: sqlite3.Connection, bundle_id: str, visit_id: str | None, sha256: str, size: int, sealed_at: str
) -> None:
    """A whole, verified sealed file that had no row (start-up found it): ``sealed``, with its
    audit entry (in the caller's transaction, or in one of its own)."""
    if conn.in_transaction:
        append_entry(conn, SYSTEM, "bundle_found", {"bundle": bundle_id, "visit": visit_id, "sha256": sha256})
        _insert_found(conn, bundle_id, visit_id, sha256, size, sealed_at)
        return
    with transaction(conn):
        register_found(conn, bundle_id, visit_id, sha256, size, sealed_at)


def _insert_found(
    conn: sqlite3.Connection, bundle_id: str, visit_id: str | None, sha256: str, size: int, sealed_at: str
) -> None:
    conn.execute(
        "INSERT INTO outbox (bundle_id, visit_id, state, sha256, size, sealed_at) "
        "VALUES (?, ?, 'sealed', ?, ?, ?)",
        (bundle_id, visit_id, sha256, size, sealed_at),
    )


def mark_offered(conn: sqlite3.Connection, bundle_ids: list[str], laptop: str, now: dt.datetime) -> int:
    """Bundles listed to ``laptop``: sealed ones become offered (an offered one is offered again)."""
    changed = 0
    with transaction(conn):
        for bundle_id in bundle_ids:
            changed += conn.execute(
                "UPDATE outbox SET state = 'offered', offered_at = ?, offered_to = ? "
                "WHERE bundle_id = ? AND state IN ('sealed', 'offered')",
                (stamp(now), laptop, bundle_id),
            ).rowcount
        if bundle_ids:
            append_entry(conn, SYSTEM, "bundles_offered", {"laptop": laptop, "bundles": list(bundle_ids)})
    return changed


def mark_acknowledged(
    conn: sqlite3.Connection,
    bundle_id: str,
    by: str,
    receipt: dict[str, Any],
    now: dt.datetime,
    actor: str = SYSTEM,
) -> bool:
    """A laptop's receipt: a sealed or offered bundle becomes acknowledged."""
    with transaction(conn):
        changed = conn.execute(
            "UPDATE outbox SET state = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?, "
            "laptop_receipt = ? WHERE bundle_id = ? AND state IN ('sealed', 'offered')",
            (stamp(now), by, json.dumps(receipt, separators=(",", ":")), bundle_id),
        ).rowcount
        if changed:
            append_entry(conn, actor, "bundle_acknowledged", {"bundle": bundle_id, "by": by})
    return changed == 1


def mark_delivered(
    conn: sqlite3.Connection, bundle_id: str, receipt: dict[str, Any], now: dt.datetime, actor: str = SYSTEM
) -> bool:
    """The central office's receipt: a bundle not yet delivered becomes delivered."""
    with transaction(conn):
        changed = conn.execute(
            "UPDATE outbox SET state = 'delivered', delivered_at = ?, central_receipt = ? "
            "WHERE bundle_id = ? AND state IN ('sealed', 'offered', 'acknowledged')",
            (stamp(now), json.dumps(receipt, separators=(",", ":")), bundle_id),
        ).rowcount
        if changed:
            by = receipt.get("statement", {}).get("by")
            append_entry(conn, actor, "bundle_delivered", {"bundle": bundle_id, "by": by})
    return changed == 1


def mark_erased(conn: sqlite3.Connection, cutoff: dt.datetime, now: dt.datetime) -> list[str]:
    """Delivered bundles delivered at or before ``cutoff`` become erased (their files go next).
    Only ``delivered`` rows are ever chosen."""
    with transaction(conn):
        ids = [
            r["bundle_id"]
            for r in conn.execute(
                "SELECT bundle_id FROM outbox WHERE state = 'delivered' AND delivered_at <= ? "
                "ORDER BY delivered_at",
                (stamp(cutoff),),
            ).fetchall()
        ]
        for bundle_id in ids:
            # Its files are gone on purpose: what start-up found wrong with them no longer is.
            append_entry(conn, SYSTEM, "bundle_erased", {"bundle": bundle_id})
            conn.execute(
                "UPDATE outbox SET state = 'erased', erased_at = ?, problem = NULL, problem_since = NULL "
                "WHERE bundle_id = ? AND state = 'delivered'",
                (stamp(now), bundle_id),
            )
    return ids


def set_problem(conn: sqlite3.Connection, bundle_id: str, problem: str | None, now: dt.datetime) -> None:
    """Record (or, with None, clear) what start-up found wrong with a bundle's files."""
    conn.execute(
        "UPDATE outbox SET problem = ?, problem_since = CASE WHEN ? IS NULL THEN NULL "
        "WHEN problem IS ? THEN problem_since ELSE ? END WHERE bundle_id = ?",
        (problem, problem, problem, stamp(now), bundle_id),
    )


def state_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts = dict.fromkeys(STATES[1:], 0)
    for row in conn.execute("SELECT state, count(*) AS n FROM outbox GROUP BY state"):
        if row["state"] in counts:
            counts[row["state"]] = int(row["n"])
    return counts


def oldest_unacknowledged(conn: sqlite3.Connection) -> str | None:
    marks = ", ".join("?" * len(UNACKNOWLEDGED))
    row = conn.execute(
        f"SELECT min(sealed_at) AS oldest FROM outbox WHERE state IN ({marks})", UNACKNOWLEDGED
    ).fetchone()
    return None if row is None else row["oldest"]


def problems(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT bundle_id, state, problem, problem_since FROM outbox WHERE problem IS NOT NULL "
        "ORDER BY problem_since, bundle_id"
    ).fetchall()
    return [dict(r) for r in rows]


# --- laptops -------------------------------------------------------------------------------


def trust_laptop(
    conn: sqlite3.Connection, name: str, pem: str, fingerprint: str, now: dt.datetime, actor: str = SYSTEM
) -> None:
    """Trust a laptop's receipts (its certificate); a revoked name or key is not trusted again."""
    with transaction(conn):
        same_key = conn.execute("SELECT name FROM laptops WHERE fingerprint = ?", (fingerprint,)).fetchone()
        if same_key is not None and same_key["name"] != name:
            raise LaptopError(f"this certificate is laptop '{same_key['name']}''s: one key, one name")
        existing = conn.execute(
            "SELECT revoked_at, fingerprint FROM laptops WHERE name = ?", (name,)
        ).fetchone()
        if existing is not None:
            if existing["revoked_at"] is not None:
                raise LaptopError(
                    f"laptop '{name}' was revoked on {existing['revoked_at']}: give it a new name"
                )
            if existing["fingerprint"] != fingerprint:
                raise LaptopError(f"laptop '{name}' is trusted with another certificate: revoke it first")
            return
        conn.execute(
            "INSERT INTO laptops (name, certificate, fingerprint, trusted_at) VALUES (?, ?, ?, ?)",
            (name, pem, fingerprint, stamp(now)),
        )
        append_entry(conn, actor, "laptop_trusted", {"laptop": name, "fingerprint": fingerprint})


def pairing_problem(conn: sqlite3.Connection, name: str, tls_fp: str, receipt_fp: str) -> str | None:
    """Why laptop ``name`` with these certificates (SHA-256 hex) cannot be paired, or None: a
    name is never given twice (not even after its revocation), a certificate is one laptop's."""
    row = conn.execute("SELECT revoked_at FROM laptops WHERE name = ?", (name,)).fetchone()
    if row is not None:
        if row["revoked_at"] is not None:
            return f"laptop name '{name}' was revoked on {row['revoked_at']}: pair it under a new name"
        # (A pairing cut off after the kit recorded it leaves the name taken: the laptop kept
        # nothing, and a name is never given again, so another name is the way on.)
        return (
            f"laptop name '{name}' is taken (a laptop paired under it, perhaps a pairing cut off "
            "before this laptop kept it): pair under another name (--name)"
        )
    for column, fingerprint in (("tls_fingerprint", tls_fp), ("fingerprint", receipt_fp)):
        other = conn.execute(f"SELECT name FROM laptops WHERE {column} = ?", (fingerprint,)).fetchone()
        if other is not None:
            return f"this certificate is laptop '{other['name']}''s: one key, one name"
    return None


def pair_laptop(
    conn: sqlite3.Connection,
    name: str,
    tls_pem: str,
    tls_fp: str,
    receipt_pem: str,
    receipt_fp: str,
    now: dt.datetime,
    actor: str = SYSTEM,
) -> None:
    """Record a laptop paired with the kit's code: its TLS client certificate (the network API
    admits it) and its receipts certificate, audited ``laptop_paired``. LaptopError when the
    name or a certificate is taken (:func:`pairing_problem`)."""
    with transaction(conn):
        problem = pairing_problem(conn, name, tls_fp, receipt_fp)
        if problem is not None:
            raise LaptopError(problem)
        conn.execute(
            "INSERT INTO laptops (name, certificate, fingerprint, trusted_at, tls_certificate, "
            "tls_fingerprint, paired_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (name, receipt_pem, receipt_fp, stamp(now), tls_pem, tls_fp, stamp(now)),
        )
        append_entry(
            conn,
            actor,
            "laptop_paired",
            {"laptop": name, "tls_fingerprint": tls_fp, "receipt_fingerprint": receipt_fp},
        )


def laptop_by_tls_fingerprint(conn: sqlite3.Connection, fp_hex: str) -> dict[str, Any] | None:
    """The laptop whose TLS client certificate has this SHA-256 (hex), revoked or not."""
    row = conn.execute("SELECT * FROM laptops WHERE tls_fingerprint = ?", (fp_hex.lower(),)).fetchone()
    return None if row is None else dict(row)


def paired_tls_certificates(conn: sqlite3.Connection) -> list[str]:
    """The TLS client certificates (PEM) of the paired laptops not revoked."""
    rows = conn.execute(
        "SELECT tls_certificate FROM laptops WHERE tls_certificate IS NOT NULL AND revoked_at IS NULL "
        "ORDER BY name"
    ).fetchall()
    return [r["tls_certificate"] for r in rows]


def touch_laptop(conn: sqlite3.Connection, name: str, now: dt.datetime) -> None:
    """Laptop ``name`` synced now (it listed the outbox)."""
    conn.execute("UPDATE laptops SET last_sync_at = ? WHERE name = ?", (stamp(now), name))


def revoke_laptop(conn: sqlite3.Connection, name: str, now: dt.datetime, actor: str = SYSTEM) -> list[str]:
    """Refuse laptop ``name`` from now on. The bundles it acknowledged that the office has not
    confirmed go back to ``sealed``, to be offered to the other laptops: a laptop is revoked
    because it is lost, stolen or broken, and its copies with it (the office takes a bundle
    twice as once). Returns their ids (none when it was revoked before)."""
    with transaction(conn):
        row = conn.execute("SELECT revoked_at FROM laptops WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise LaptopError(f"no laptop '{name}' is trusted")
        if row["revoked_at"] is not None:
            return []
        conn.execute("UPDATE laptops SET revoked_at = ? WHERE name = ?", (stamp(now), name))
        append_entry(conn, actor, "laptop_revoked", {"laptop": name})
        taken = conn.execute(
            "SELECT bundle_id, acknowledged_at, laptop_receipt FROM outbox "
            "WHERE state = 'acknowledged' AND acknowledged_by = ? ORDER BY sealed_at",
            (name,),
        ).fetchall()
        for row in taken:
            # The laptop's signed receipt moves to the audit log (the evidence that it took the
            # bundle, for whoever asks where a lost laptop's copies went); the row is sealed again.
            receipt = json.loads(row["laptop_receipt"]) if row["laptop_receipt"] else None
            details = {
                "bundle": row["bundle_id"],
                "laptop": name,
                "acknowledged_at": row["acknowledged_at"],
                "laptop_receipt": receipt,
            }
            append_entry(conn, actor, "bundle_offered_again", details)
        conn.execute(
            "UPDATE outbox SET state = 'sealed', offered_at = NULL, offered_to = NULL, "
            "acknowledged_at = NULL, acknowledged_by = NULL, laptop_receipt = NULL "
            "WHERE state = 'acknowledged' AND acknowledged_by = ?",
            (name,),
        )
        return [row["bundle_id"] for row in taken]


def laptops(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT * FROM laptops ORDER BY name").fetchall()
    return [dict(r) for r in rows]
