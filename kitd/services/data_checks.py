"""Diagnostics of the kit's security and data: credentials, the key, the audit log, the outbox,
the last laptop sync.

Its one job: the checks a technician runs to know whether the kit can still seal, whether its
history holds, and whether its sealed bundles are leaving it — each from the services that
already know (KitKeys' status, the sealer's readiness, AuditLog.verify, the outbox's summary,
the laptops' rows), turned into one finding with what to do.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from typing import Any

from kitd.services.diagnostics import FAILED, NOT_AVAILABLE, OK, WARNING, Check, Words, finding

# Sealed bundles older than this and still on the kit alone: the office is waiting for them.
STALE_BUNDLE_S = 7 * 86400
# A kit that syncs with laptops and has not for this long.
STALE_SYNC_S = 7 * 86400


async def check_credentials(kit: Any) -> dict[str, Any]:
    entries = await asyncio.get_running_loop().run_in_executor(None, kit.keys.status, kit.config.kit_id)
    values = {
        "credentials": [
            {"name": e.name, "not_after": e.not_after, "days_left": e.days_left, "problem": e.problem}
            for e in entries
        ]
    }
    problems = [f"{e.name}: {e.problem}" for e in entries if e.problem]
    if problems:
        values["problems"] = problems
        return finding(
            FAILED,
            values,
            Words(
                f"Kredensial kit bermasalah ({problems[0]}): pasang ulang dengan kitctl keys install.",
                f"A credential of the kit is not usable ({problems[0]}): "
                "install it again (kitctl keys install).",
            ),
        )
    warnings = [e.warning for e in entries if e.warning]
    if warnings:
        values["warnings"] = warnings
        return finding(
            WARNING,
            values,
            Words(
                f"Kredensial kit segera berakhir ({warnings[0]}): minta yang baru ke kantor pusat.",
                f"A credential of the kit ends soon ({warnings[0]}): ask the central office for a new one.",
            ),
        )
    return finding(OK, values)


async def check_key_backend(kit: Any) -> dict[str, Any]:
    readiness = await asyncio.get_running_loop().run_in_executor(None, kit.visits.sealer.readiness)
    values = {"backend": str(kit.config["keys.backend"]), "ready": readiness["ready"]}
    if not readiness["ready"]:
        values["problem"] = readiness["problem"]
        return finding(
            FAILED,
            values,
            Words(
                f"Kit tidak dapat menyegel kunjungan ({readiness['problem']}): periksa token atau kunci kit.",
                f"The kit cannot seal a visit ({readiness['problem']}): check its token or key.",
            ),
        )
    return finding(OK, values)


async def check_audit_log(kit: Any) -> dict[str, Any]:
    checked = await kit.in_database(kit.audit.verify, kit.database)
    values = checked.to_json()
    if not checked.ok:
        return finding(
            FAILED,
            values,
            Words(
                f"Log audit tidak utuh ({checked.problem}): jangan hapus apa pun, laporkan ke kantor pusat.",
                f"The audit log does not hold ({checked.problem}): delete "
                "nothing, report it to the central office.",
            ),
        )
    return finding(OK, values)


async def check_outbox(kit: Any) -> dict[str, Any]:
    summary = await kit.in_database(kit.outbox.summary, kit.database)
    waiting = sum(n for state, n in summary["bundles"].items() if state in ("sealed", "offered"))
    values = {
        "bundles": summary["bundles"],
        "waiting": waiting,
        "oldest_unacknowledged_sealed_at": summary["oldest_unacknowledged_sealed_at"],
        "oldest_unacknowledged_age_s": summary["oldest_unacknowledged_age_s"],
        "problems": len(summary["problems"]),
    }
    if summary["problems"]:
        return finding(
            FAILED,
            values,
            Words(
                "Ada bundel yang berkasnya rusak atau hilang: jalankan "
                "kitctl outbox dan laporkan ke kantor pusat.",
                "Some bundles' files are wrong or missing: run kitctl "
                "outbox and report it to the central office.",
            ),
        )
    age = summary["oldest_unacknowledged_age_s"]
    if age is not None and age > STALE_BUNDLE_S:
        return finding(
            WARNING,
            values,
            Words(
                f"Bundel tertua belum diambil laptop selama {age // 86400} hari: sinkronkan dengan laptop.",
                f"The oldest bundle has waited {age // 86400} days for a laptop: sync with one.",
            ),
        )
    return finding(OK, values)


def _last_sync(conn: sqlite3.Connection) -> tuple[int, str | None]:
    row = conn.execute(
        "SELECT count(*), max(last_sync_at) FROM laptops WHERE "
        "revoked_at IS NULL AND tls_fingerprint IS NOT NULL"
    ).fetchone()
    return int(row[0]), row[1]


async def check_last_sync(kit: Any) -> dict[str, Any]:
    laptops, last = await kit.in_database(_last_sync, kit.database)
    values = {"paired_laptops": laptops, "last_sync_at": last}
    if laptops == 0:
        return finding(
            NOT_AVAILABLE,
            values,
            Words("Belum ada laptop yang dipasangkan dengan kit ini.", "No laptop is paired with this kit."),
        )
    if last is None:
        return finding(
            WARNING,
            values,
            Words(
                "Laptop yang dipasangkan belum pernah sinkron: jalankan kit-sync pull.",
                "No paired laptop has synced yet: run kit-sync pull on it.",
            ),
        )
    age = (kit.clock.now() - dt.datetime.fromisoformat(last)).total_seconds()
    values["age_s"] = round(age)
    if age > STALE_SYNC_S:
        return finding(
            WARNING,
            values,
            Words(
                f"Sinkron terakhir dengan laptop {round(age) // 86400} hari lalu: sinkronkan.",
                f"The last laptop sync was {round(age) // 86400} days ago: sync now.",
            ),
        )
    return finding(OK, values)


DATA_CHECKS = (
    Check("security.credentials", None, check_credentials, time_limit_s=10.0),
    Check("security.key_backend", None, check_key_backend, quick=True, time_limit_s=5.0, visit_critical=True),
    Check("data.audit_log", None, check_audit_log, time_limit_s=60.0),
    Check("data.outbox", None, check_outbox, quick=True, time_limit_s=2.0),
    Check("data.last_sync", None, check_last_sync, time_limit_s=2.0),
)
