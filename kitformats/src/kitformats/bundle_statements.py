"""The kit's signed statement of a sealed bundle: what a laptop checks before it takes one.

Its one job: :func:`bundle_statement` says what the kit states of a sealed file (its id,
SHA-256, size, time and kit) and :func:`check_statement` checks such a statement — signed by
a kit, the kit it names, and matching the sealed file when that is at hand — each failure one
:class:`BundleRejected` sentence. The kit signs it when it seals (kitd.crypto.bundle); the
field laptop checks it against the kit's certificate it pinned at pairing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from cryptography import x509

from kitformats.cms import SignatureInvalid
from kitformats.errors import KitError
from kitformats.signing import KIT_CN_PREFIX, common_name
from kitformats.statements import verify_statement

SEALED_SUFFIX = ".p7m"
STATEMENT_SUFFIX = ".statement.json"
STATEMENT_KIND = "kitd-bundle-statement/1"


class BundleRejected(KitError):
    """A bundle (or its statement) fails a check; the message says which and why."""


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def bundle_statement(
    bundle_id: str, sealed: bytes, created: dt.datetime, kit_id: str, visit_id: str | None = None
) -> dict[str, Any]:
    """What the kit states of a sealed file: enough for a laptop with the kit's certificate,
    and for the kit's own start-up to register a sealed file it finds without its row (the
    visit's id is a random name, nothing personal)."""
    statement = {
        "kind": STATEMENT_KIND,
        "bundle_id": bundle_id,
        "sha256": hashlib.sha256(sealed).hexdigest(),
        "size": len(sealed),
        "created_at": _stamp(created),
        "kit_id": kit_id,
    }
    if visit_id is not None:
        statement["visit_id"] = visit_id
    return statement


def check_statement(
    document: Any,
    sealed: bytes | None,
    trust: Sequence[x509.Certificate],
    kit: x509.Certificate | None = None,
    pinned: x509.Certificate | None = None,
) -> dict[str, Any]:
    """The kit's statement of ``sealed``, checked: its signature (to ``trust``, or made by the
    ``pinned`` kit certificate alone, as a laptop checks it), its kit, and — when the sealed
    file is at hand — its hash and size."""
    try:
        statement, signer = verify_statement(document, trust, pinned=pinned)
    except SignatureInvalid as exc:
        raise BundleRejected(f"statement: {exc}") from None
    if not common_name(signer).startswith(KIT_CN_PREFIX):
        raise BundleRejected(f"statement: signed by {common_name(signer)!r}, not by a kit")
    if kit is not None and signer.public_key() != kit.public_key():
        raise BundleRejected("statement: signed by another kit than the bundle")
    if statement.get("kind") != STATEMENT_KIND:
        raise BundleRejected(f"statement: kind is {statement.get('kind')!r}, not {STATEMENT_KIND}")
    if statement.get("kit_id") != common_name(signer)[len(KIT_CN_PREFIX) :]:
        raise BundleRejected("statement: kit_id is not the signing kit's")
    if sealed is None:
        return statement
    if statement.get("sha256") != hashlib.sha256(sealed).hexdigest() or statement.get("size") != len(sealed):
        raise BundleRejected("statement: does not match its sealed file (SHA-256 or size differ)")
    return statement
