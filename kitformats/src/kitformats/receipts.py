"""Receipts: a laptop's or the central office's signed word that it holds a sealed bundle.

Its one job: the receipt's statement — ``{"type": "laptop_receipt" | "central_receipt",
"bundle_id", "sha256", "size", "received_at", "by"}``, signed as a statement
(kitformats.statements) — made by :func:`receipt_statement` on the laptop and checked field by
field by :func:`receipt_fields` on the kit, each refusal one :class:`ReceiptRefused` sentence.
Whose signature the kit accepts is the kit's to decide (kitd.crypto.receipts).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from kitformats.errors import KitError

RECEIPT_TYPES = ("laptop_receipt", "central_receipt")
RECEIPT_FIELDS = ("type", "bundle_id", "sha256", "size", "received_at", "by")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ReceiptRefused(KitError):
    """A receipt the kit does not take; the message says why."""


def receipt_fields(document: Any) -> dict[str, Any]:
    """The receipt's statement, its fields present and of the right kinds."""
    if not isinstance(document, dict) or not isinstance(document.get("statement"), dict):
        raise ReceiptRefused('a receipt is a signed statement: {"statement": {...}, "signature": "..."}')
    statement = document["statement"]
    missing = [name for name in RECEIPT_FIELDS if name not in statement]
    if missing:
        raise ReceiptRefused(f"the receipt has no '{missing[0]}'")
    extra = sorted(set(statement) - set(RECEIPT_FIELDS))
    if extra:
        raise ReceiptRefused(f"the receipt has an unknown field '{extra[0]}'")
    if statement["type"] not in RECEIPT_TYPES:
        raise ReceiptRefused(f"'type' is {statement['type']!r}, not one of {', '.join(RECEIPT_TYPES)}")
    for name in ("bundle_id", "received_at", "by"):
        if not isinstance(statement[name], str) or not statement[name]:
            raise ReceiptRefused(f"'{name}' is not a non-empty string")
    if not isinstance(statement["sha256"], str) or not SHA256_HEX.fullmatch(statement["sha256"]):
        raise ReceiptRefused("'sha256' is not 64 lower-case hexadecimal digits")
    if (
        isinstance(statement["size"], bool)
        or not isinstance(statement["size"], int)
        or statement["size"] <= 0
    ):
        raise ReceiptRefused("'size' is not a positive whole number of bytes")
    try:
        received = dt.datetime.fromisoformat(statement["received_at"])
    except ValueError:
        raise ReceiptRefused("'received_at' is not an ISO 8601 time") from None
    if received.tzinfo is None:
        raise ReceiptRefused("'received_at' has no time zone")
    return statement


def receipt_statement(
    receipt_type: str, bundle_id: str, sha256: str, size: int, received_at: dt.datetime, by: str
) -> dict[str, Any]:
    """The statement of a receipt, to be signed by whoever received the bundle."""
    if received_at.tzinfo is None:
        raise ValueError("received_at needs a time zone")
    statement = {
        "type": receipt_type,
        "bundle_id": bundle_id,
        "sha256": sha256,
        "size": size,
        "received_at": received_at.isoformat(timespec="seconds"),
        "by": by,
    }
    receipt_fields({"statement": statement})  # the same checks the kit makes
    return statement
