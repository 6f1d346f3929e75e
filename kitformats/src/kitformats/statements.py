"""Signed statements: a JSON object and a detached CMS signature over its canonical form.

Its one job: sign and verify ``{"statement": {...}, "signature": "<base64 DER>"}``. The
signature covers the RFC 8785 (JCS) bytes of the statement, so key order and whitespace in
transit do not matter, and ``openssl cms -verify -binary -content`` checks it given those bytes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Sequence
from typing import Any

import rfc8785
from cryptography import x509

from kitformats.cms import SignatureInvalid, sign_content, verify_signed
from kitformats.signing import Signer


def canonical_bytes(statement: dict[str, Any]) -> bytes:
    """The RFC 8785 canonical JSON of ``statement``: the bytes that are signed."""
    return rfc8785.dumps(statement)


def sign_statement(
    statement: dict[str, Any], signer: Signer, *, signing_time: dt.datetime | None = None
) -> dict[str, Any]:
    """``statement`` with a detached SignedData over its canonical bytes, base64-encoded."""
    signature = sign_content(canonical_bytes(statement), [signer], detached=True, signing_time=signing_time)
    return {"statement": statement, "signature": base64.b64encode(signature).decode("ascii")}


def signature_der(document: Any) -> bytes:
    """The detached CMS of a signed statement (SignatureInvalid if it is not one)."""
    if not isinstance(document, dict):
        raise SignatureInvalid("a signed statement is a JSON object with 'statement' and 'signature'")
    if not isinstance(document.get("statement"), dict):
        raise SignatureInvalid("the signed statement has no 'statement' object")
    signature = document.get("signature")
    if not isinstance(signature, str):
        raise SignatureInvalid("the signed statement has no 'signature' string")
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid("the statement's 'signature' is not base64") from None


def verify_statement(
    document: Any,
    trust: Sequence[x509.Certificate],
    *,
    at: dt.datetime | None = None,
    pinned: x509.Certificate | None = None,
) -> tuple[dict[str, Any], x509.Certificate]:
    """The statement and its signer's certificate, once the signature checks out against ``trust``
    (or, with ``pinned`` and no trust, made by exactly that certificate: a kit's, say)."""
    der = signature_der(document)
    statement = document["statement"]
    try:
        content = canonical_bytes(statement)
    except (rfc8785.CanonicalizationError, TypeError, ValueError):
        raise SignatureInvalid("the 'statement' cannot be put in canonical JSON form") from None
    verified = verify_signed(der, trust, content=content, at=at, pinned=pinned)
    if len(verified.signers) != 1:
        raise SignatureInvalid(f"a statement has exactly one signer, this one has {len(verified.signers)}")
    return statement, verified.signers[0]
