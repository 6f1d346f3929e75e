"""``kit-sync status``: what this laptop knows of each kit it is paired with, without the kit.

Its one job: per kit directory, the kit's id and address, this laptop's name there, when it
last synced, how many bundles the kit had pending then and the oldest one left unacknowledged,
and the ledger's count of bundles stored, acknowledged and delivered. It reads only the
laptop's own files: it works in the car with no kit in reach.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kitformats.errors import KitError

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
    }
    if files.ledger.exists():
        with Ledger(files.ledger) as ledger:
            sync = ledger.last_sync or {}
            status.update(
                last_sync_at=sync.get("at"),
                pending_at_last_sync=sync.get("pending"),
                unacknowledged_at_last_sync=sync.get("unacknowledged"),
                oldest_unacknowledged=sync.get("oldest_unacknowledged"),
                ledger=ledger.counts(),
            )
            status["outcomes_cursor"] = ledger.outcomes_cursor
    return status


def all_status(home: Path) -> list[dict[str, Any]]:
    return [kit_status(files) for files in paired_kits(home)]


def status_lines(status: dict[str, Any]) -> list[str]:
    """One kit's status for a person."""
    if "problem" in status:
        return [f"kit {status['kit_id']}: {status['problem']}"]
    lines = [
        f"kit {status['kit_id']} at {status['address']} "
        f"(this laptop: {status['laptop_name']}, paired {status['paired_at']})"
    ]
    if status["last_sync_at"] is None:
        lines.append("  last sync: never")
    else:
        left = status["unacknowledged_at_last_sync"] or 0
        oldest = (
            f", oldest sealed {status['oldest_unacknowledged']}" if status["oldest_unacknowledged"] else ""
        )
        lines.append(
            f"  last sync: {status['last_sync_at']}: "
            f"{status['pending_at_last_sync']} bundles pending on the kit, "
            f"{left} left unacknowledged{oldest}"
        )
    counts = status["ledger"]
    held = counts["stored"] + counts["acknowledged"] + counts["delivered"]
    lines.append(
        f"  ledger: {held} bundles pulled: {counts['acknowledged'] + counts['delivered']} acknowledged "
        f"({counts['delivered']} delivered), {counts['stored']} not acknowledged yet"
    )
    return lines
