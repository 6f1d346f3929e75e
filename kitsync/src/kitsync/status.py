"""``kit-sync status``: what this laptop knows of each kit it is paired with, without the kit.

Its one job: per kit directory, the kit's id and address, this laptop's name there, when it
last synced, how many bundles the kit had pending then and the oldest one left unacknowledged,
the ledger's count of bundles stored, acknowledged and delivered, the kit's clock at the last
sync (its skew from this laptop's, corrected or only confirmed), and the kit's audit log as
the laptop checked it (consistent, INCONSISTENT with why, or not checked). It reads only the
laptop's own files: it works in the car with no kit in reach. A kit's status is a JSON object;
a person reads it as a heading and one line per fact (:data:`FACT_LINES`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kitformats.errors import KitError

from kitsync.audit import CONSISTENT, INCONSISTENT, NO_KEY_PINNED, NOT_CHECKED
from kitsync.kit_clock import describe_skew
from kitsync.ledger import Ledger
from kitsync.places import KitFiles, paired_kits, read_kit_record


def kit_status(files: KitFiles) -> dict[str, Any]:
    """One kit's status as a JSON object (``problem`` when its directory cannot be read)."""
    try:
        record = read_kit_record(files)
    except KitError as exc:
        return {"kit_id": files.kit_id, "problem": str(exc)}
    status: dict[str, Any] = {
        "kit_id": record.kit_id,
        "address": record.address,
        "laptop_name": record.laptop_name,
        "paired_at": record.paired_at,
        "kit_signing_certificate": files.kit_signing_certificate.exists(),
        "last_sync_at": None,
        "pending_at_last_sync": None,
        "unacknowledged_at_last_sync": None,
        "oldest_unacknowledged": None,
        "ledger": {"stored": 0, "acknowledged": 0, "delivered": 0},
        "audit": audit_status(files, None),
        "clock": None,
    }
    if files.ledger.exists():
        try:
            ledger = Ledger(files.ledger)
        except KitError as exc:  # damaged: said for this kit, the others still listed
            return {"kit_id": record.kit_id, "problem": str(exc)}
        with ledger:
            sync = ledger.last_sync or {}
            status.update(
                last_sync_at=sync.get("at"),
                pending_at_last_sync=sync.get("pending"),
                unacknowledged_at_last_sync=sync.get("unacknowledged"),
                oldest_unacknowledged=sync.get("oldest_unacknowledged"),
                ledger=ledger.counts(),
                audit=audit_status(files, ledger),
                clock=ledger.value("clock"),
            )
            status["outcomes_cursor"] = ledger.outcomes_cursor
    return status


def audit_status(files: KitFiles, ledger: Ledger | None) -> dict[str, Any]:
    """The kit's audit log as this laptop checked it: ``state`` consistent (up to the trusted
    checkpoint: its ``size`` and when it was checked), inconsistent (``reason``: the last
    inconsistency found; every one stays in the ledger) or not checked (``reason``: why)."""
    trusted = ledger.trusted_checkpoint() if ledger is not None else None
    found = ledger.inconsistencies() if ledger is not None else []
    last = ledger.value("audit_check") if ledger is not None else None
    audit: dict[str, Any] = {
        "state": CONSISTENT,
        "size": None if trusted is None else trusted.size,
        "checked_at": None if trusted is None else trusted.checked_at,
        "reason": None,
        "found_at": None,
        "inconsistencies": len(found),
        "last_check": last,
    }
    if found:
        audit.update(state=INCONSISTENT, reason=found[-1]["reason"], found_at=found[-1]["found_at"])
    elif not files.audit_note_key.exists():
        audit.update(state=NOT_CHECKED, reason=NO_KEY_PINNED)
    elif trusted is None:
        audit.update(state=NOT_CHECKED, reason=last["reason"] if last else "no sync since pairing")
    return audit


def all_status(home: Path) -> list[dict[str, Any]]:
    return [kit_status(files) for files in paired_kits(home)]


def heading_line(status: dict[str, Any]) -> str:
    return (
        f"kit {status['kit_id']} at {status['address']} "
        f"(this laptop: {status['laptop_name']}, paired {status['paired_at']})"
    )


def last_sync_line(status: dict[str, Any]) -> str:
    if status["last_sync_at"] is None:
        return "  last sync: never"
    left = status["unacknowledged_at_last_sync"] or 0
    oldest = f", oldest sealed {status['oldest_unacknowledged']}" if status["oldest_unacknowledged"] else ""
    return (
        f"  last sync: {status['last_sync_at']}: "
        f"{status['pending_at_last_sync']} bundles pending on the kit, "
        f"{left} left unacknowledged{oldest}"
    )


def ledger_line(status: dict[str, Any]) -> str:
    counts = status["ledger"]
    held = counts["stored"] + counts["acknowledged"] + counts["delivered"]
    return (
        f"  ledger: {held} bundles pulled: {counts['acknowledged'] + counts['delivered']} acknowledged "
        f"({counts['delivered']} delivered), {counts['stored']} not acknowledged yet"
    )


def audit_line(status: dict[str, Any]) -> str:
    audit = status["audit"]
    if audit["state"] == INCONSISTENT:
        trusted = (
            f"{audit['size']} entries, checked {audit['checked_at']}" if audit["size"] is not None else "none"
        )
        return (
            f"  audit log: INCONSISTENT: {audit['reason']} (found {audit['found_at']}; "
            f"{audit['inconsistencies']} found in all; last trusted checkpoint: {trusted})"
        )
    if audit["state"] == NOT_CHECKED:
        return f"  audit log: not checked: {audit['reason']}"
    line = f"  audit log: consistent: {audit['size']} entries, checkpoint checked {audit['checked_at']}"
    last = audit["last_check"] or {}
    if last.get("result") == NOT_CHECKED:
        line += f"; the last sync ({last.get('at')}) could not check it: {last.get('reason')}"
    elif last.get("at") and last.get("at") != audit["checked_at"]:
        line += f", still so at {last['at']}"
    return line


def clock_line(status: dict[str, Any]) -> str:
    clock = status.get("clock")
    if not clock:
        return "  kit's clock: not confirmed by this laptop yet"
    if clock.get("problem"):
        return f"  kit's clock: not confirmed at the last sync ({clock['at']}): {clock['problem']}"
    if clock.get("corrected"):
        return (
            f"  kit's clock: was {describe_skew(clock['skew_s'])} at the last sync ({clock['at']}), "
            f"corrected and confirmed"
        )
    return f"  kit's clock: confirmed at the last sync ({clock['at']}), skew {clock['skew_s']:+.1f} s"


# One line per fact under a kit's heading, in this order (a new fact is a function added here).
FACT_LINES: tuple[Callable[[dict[str, Any]], str], ...] = (
    last_sync_line,
    ledger_line,
    clock_line,
    audit_line,
)


def status_lines(status: dict[str, Any]) -> list[str]:
    """One kit's status for a person."""
    if "problem" in status:
        return [f"kit {status['kit_id']}: {status['problem']}"]
    return [heading_line(status), *(fact(status) for fact in FACT_LINES)]


def is_inconsistent(status: dict[str, Any]) -> bool:
    """Whether the kit's audit log was found inconsistent (``kit-sync status`` exits 5)."""
    return status.get("audit", {}).get("state") == INCONSISTENT
