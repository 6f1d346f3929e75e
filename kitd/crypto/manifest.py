"""The bundle's manifest: what a finished visit recorded besides its images, as canonical JSON.

Its one job: :func:`build_manifest` gathers a visit's facts (items with their scores,
checks, attempts and exceptions, consent, devices, software, clock) and the SHA-256 of
each record of its transaction into one document that ``manifest.schema.json`` describes;
:func:`manifest_bytes` writes it as RFC 8785 canonical JSON (the same bytes for the same
facts); :func:`read_manifest` parses and checks one, naming the first field that is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import rfc8785
from jsonschema import Draft202012Validator

from kitd.errors import KitError
from kitd.schemas import first_problem

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
FORMAT = "kitd-bundle/1"
DEVICE_FACTS = ("id", "kind", "model", "serial", "firmware")


class ManifestError(KitError):
    """A manifest that is not what a kit writes; the message names the field."""


@cache
def manifest_validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def _plain_value(value: Any) -> Any:
    """Metrics as JSON numbers: numpy scalars and non-finite floats do not survive RFC 8785."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def item_entry(
    item: Mapping[str, Any], metrics: Mapping[str, Any] | None, record: str | None
) -> dict[str, Any]:
    """One visit item (its JSON in the visit record) as the manifest lists it."""
    entry: dict[str, Any] = {
        "item": item["item"],
        "status": item["status"],
        "forced": item["status"] == "forced",
        "score": item["score"],
        "passed": item["passed"],
        "attempts": item["attempts"],
        "feedback": list(item["feedback"]),
        "failed_checks": list(item["failed_checks"]),
        "metrics": {str(k): _plain_value(v) for k, v in (metrics or {}).items()},
        "exception": item["exception"],
        "record": record,
        "history": list(item.get("history") or []),
    }
    if item.get("finger") is not None:
        entry["finger"] = item["finger"]
    return entry


def build_manifest(
    *,
    bundle_id: str,
    created_at: str,
    kit: Mapping[str, str],
    visit: Mapping[str, Any],
    order: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    devices: Sequence[Mapping[str, Any]],
    records: Mapping[str, str],
    clock_confirmed_at: str | None = None,
    officer_signed: bool = True,
) -> dict[str, Any]:
    """The manifest of one bundle; checked against its schema before it is returned."""
    manifest = {
        "format": FORMAT,
        "bundle_id": bundle_id,
        "created_at": created_at,
        "kit": dict(kit),
        "officer": visit["officer"],
        "officer_signed": officer_signed,
        "order": {k: order[k] for k in ("order_id", "kind", "category")},
        "visit": {
            "id": visit["id"],
            "started_at": visit["started_at"],
            "finished_at": visit["updated_at"],
            "resumed": bool(visit.get("resumed")),
        },
        "consent": dict(visit["identity"]),
        "items": [dict(i) for i in items],
        "devices": [{k: None if d.get(k) is None else str(d[k]) for k in DEVICE_FACTS} for d in devices],
        "clock": {"confirmed": clock_confirmed_at is not None, "confirmed_at": clock_confirmed_at},
        "records": dict(records),
    }
    problem = first_problem(manifest_validator(), manifest)
    if problem is not None:
        raise ManifestError(f"manifest: {problem}")
    return manifest


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return rfc8785.dumps(dict(manifest))


def read_manifest(data: bytes) -> dict[str, Any]:
    """A manifest from its bytes, checked against the schema."""
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"manifest.json is not JSON ({exc})") from None
    problem = first_problem(manifest_validator(), manifest)
    if problem is not None:
        raise ManifestError(f"manifest.json: {problem}")
    return manifest
