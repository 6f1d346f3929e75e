"""Receipts: a laptop's or the central office's signed word that it holds a sealed bundle.

Its one job: :func:`check_receipt` checks a receipt — a signed statement (kitformats.statements)
``{"type": "laptop_receipt" | "central_receipt", "bundle_id", "sha256", "size",
"received_at", "by"}`` — against the keys the kit knows: a laptop receipt must be signed by
a trusted laptop's certificate (not revoked) and say it is by that laptop; a central receipt
by the central office's signing certificate. Each refusal is one :class:`ReceiptRefused`
sentence. Whether it names a file the outbox holds is the outbox's to check.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from kitformats.cms import SignatureInvalid, carried_certificates
from kitformats.receipts import ReceiptRefused, receipt_fields
from kitformats.statements import signature_der, verify_statement


@dataclass(frozen=True)
class KnownLaptop:
    name: str
    certificate: x509.Certificate
    revoked_at: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A receipt whose signature checked out."""

    type: str
    bundle_id: str
    sha256: str
    size: int
    received_at: str
    by: str
    document: dict[str, Any]


def _laptops_carried(document: dict[str, Any], laptops: Sequence[KnownLaptop]) -> list[KnownLaptop]:
    """The known laptops whose certificate the receipt's signature carries (who may have signed)."""
    try:
        carried = carried_certificates(signature_der(document))
    except SignatureInvalid as exc:
        raise ReceiptRefused(f"signature: {exc}") from None
    known = [laptop for laptop in laptops if laptop.certificate in carried]
    if not known:
        raise ReceiptRefused("signed by an unknown key: no laptop this kit trusts")
    return known


def _laptop_signer(
    document: dict[str, Any], laptops: Sequence[KnownLaptop], at: dt.datetime | None
) -> KnownLaptop:
    """The known laptop whose key made the signature (a receipt may carry other certificates)."""
    failure = ""
    for laptop in _laptops_carried(document, laptops):
        try:
            verify_statement(document, [], at=at, pinned=laptop.certificate)
        except SignatureInvalid as exc:
            failure = failure or str(exc)
            continue
        if laptop.revoked_at is not None:
            raise ReceiptRefused(f"signed by laptop '{laptop.name}', revoked on {laptop.revoked_at}")
        return laptop
    raise ReceiptRefused(f"signature: {failure}")


def check_receipt(
    document: Any,
    laptops: Sequence[KnownLaptop],
    central: x509.Certificate | None,
    at: dt.datetime | None = None,
) -> Receipt:
    """The receipt, once its fields and its signature check out (ReceiptRefused says why not)."""
    statement = receipt_fields(document)
    if statement["type"] == "laptop_receipt":
        laptop = _laptop_signer(document, laptops, at)
        if statement["by"] != laptop.name:
            raise ReceiptRefused(f"says it is by {statement['by']!r}, but laptop '{laptop.name}' signed it")
    else:
        if central is None:
            raise ReceiptRefused(
                "the kit trusts no central signing certificate (kitctl keys trust central-signing)"
            )
        try:
            verify_statement(document, [], at=at, pinned=central)
        except SignatureInvalid as exc:
            raise ReceiptRefused(f"signature: {exc}") from None
    return Receipt(
        statement["type"],
        statement["bundle_id"],
        statement["sha256"],
        statement["size"],
        statement["received_at"],
        statement["by"],
        document,
    )
