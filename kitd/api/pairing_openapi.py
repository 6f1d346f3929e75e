"""The OpenAPI document of the pairing port (kitd.api.pairing's pairing app).

Its one job: describe every route a laptop finds on ``network.pairing_port`` while a pairing
window is open — the two steps of kitd-pairing/1 (kitformats.pairing) and this document, the
same paths as the app serves (tests/test_hil_pairing.py keeps them equal) — with the shapes of
each step's body and of every answer the handlers give, refusals included.
"""

from __future__ import annotations

import copy
from typing import Any

from kitformats.pairing import (
    ATTEMPTS,
    CONFIRM_PATH,
    FINGERPRINT_BYTES,
    LAPTOP_NAME,
    MAX_PEM_CHARS,
    PROTOCOL,
    START_PATH,
)

from kitd import __version__
from kitd.api.openapi_parts import json_answer, ref
from kitd.schemas import SCHEMAS

PAIRING_OPENAPI_PATH = "/pairing/v1/openapi.json"
# A pairing message is a few kilobytes (two certificates); nothing bigger is read.
MAX_PAIRING_BODY = 64 * 1024

HEX_SHA256 = {"type": "string", "pattern": f"^[0-9a-fA-F]{{{2 * FINGERPRINT_BYTES}}}$"}
BASE64 = {"type": "string", "contentEncoding": "base64", "minLength": 1}
PEM_CERTIFICATE = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_PEM_CHARS,
    "description": "One PEM certificate of an ECDSA P-256 key, made by the laptop for itself "
    "(kitformats.link_certificates)",
}

PAIRING_SCHEMAS: dict[str, Any] = {
    "PairingStart": {
        "type": "object",
        "description": "The laptop's first step: who it is, its two certificates, its SPAKE2 message "
        "(side A, keyed by the code)",
        "required": ["laptop_name", "tls_certificate", "receipt_certificate", "message"],
        "properties": {
            "laptop_name": {
                "type": "string",
                "pattern": f"^{LAPTOP_NAME.pattern}$",
                "description": "What its receipts say they are by; never given twice, even after a "
                "revocation",
            },
            "tls_certificate": {
                **PEM_CERTIFICATE,
                "description": "The TLS client certificate the laptop will present to the network API",
            },
            "receipt_certificate": {
                **PEM_CERTIFICATE,
                "description": "The certificate of the key the laptop signs its receipts with",
            },
            "message": {**BASE64, "description": "The laptop's SPAKE2 message"},
        },
    },
    "PairingStarted": {
        "type": "object",
        "description": "The kit's SPAKE2 message (side B, keyed by the window's code) and the "
        "exchange to confirm",
        "required": ["exchange", "message", "kit_id"],
        "properties": {
            "exchange": {"type": "string", "description": "Names this exchange in the confirm"},
            "message": {**BASE64, "description": "The kit's SPAKE2 message"},
            "kit_id": {"type": "string"},
        },
    },
    "PairingConfirm": {
        "type": "object",
        "description": "The laptop's proof that it holds the key over the transcript it saw",
        "required": ["exchange", "confirmation"],
        "properties": {
            "exchange": {"type": "string", "description": "As the start's answer named it"},
            "confirmation": {
                **HEX_SHA256,
                "description": "HMAC-SHA256(K, 'laptop' || T), hex",
            },
        },
    },
    "PairingConfirmed": {
        "type": "object",
        "description": "The laptop is paired: the kit's own proof, then what the laptop keeps (to be "
        "trusted only once that proof verifies)",
        "required": [
            "confirmation",
            "kit_id",
            "laptop_name",
            "network_port",
            "kit_signing_certificate",
            "audit_note_key",
        ],
        "properties": {
            "confirmation": {
                **HEX_SHA256,
                "description": "HMAC-SHA256(K, 'kit' || T), hex",
            },
            "kit_id": {"type": "string"},
            "laptop_name": {"type": "string", "pattern": f"^{LAPTOP_NAME.pattern}$"},
            "network_port": {
                "type": "integer",
                "minimum": 1,
                "maximum": 65535,
                "description": "Where the network API for paired laptops listens",
            },
            "kit_signing_certificate": {
                "type": ["string", "null"],
                "description": "The kit's signing certificate (PEM), which signs its bundles' "
                "statements; null when the kit has none",
            },
            "audit_note_key": {
                "type": ["string", "null"],
                "description": "The verifier key of the kit's audit checkpoints; null when it has none",
            },
        },
    },
    "WrongCode": {
        "type": "object",
        "description": "The laptop's confirmation does not verify: another code, or someone between "
        "the laptop and the kit (the kit cannot tell them apart)",
        "required": ["error", "message", "attempts_left"],
        "properties": {
            "error": {"const": "wrong_code"},
            "message": {"type": "string"},
            "attempts_left": {
                "type": "integer",
                "minimum": 0,
                "maximum": ATTEMPTS - 1,
                "description": "Starts the window still allows; at 0, once no start awaits its "
                "confirm, the window closes",
            },
        },
    },
}


def _refusal(code: str, description: str) -> dict[str, Any]:
    """An ``{error, message}`` answer whose error is ``code``."""
    return json_answer({"allOf": [ref("Error"), {"properties": {"error": {"const": code}}}]}, description)


def _step(
    summary: str,
    description: str,
    body: str,
    answer: dict[str, Any],
    more: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One step's operation: its body, its answer, the refusals both steps share and ``more``
    (by status)."""
    return {
        "summary": summary,
        "description": description,
        "requestBody": {"required": True, "content": {"application/json": {"schema": ref(body)}}},
        "responses": {
            "200": answer,
            "400": _refusal(
                "bad_request",
                "No body, a body that is not JSON (or labelled as something else), or a field that is "
                "not as the protocol says (named in field)",
            ),
            "403": _refusal(
                "pairing_closed",
                "No window is open (its time is up), or its attempts are used up: open one on the kit",
            ),
            "409": _refusal(
                "laptop_name_taken",
                "The name is another laptop's (revoked ones included), or these certificates are "
                "already a laptop's (field: laptop_name)",
            ),
            "413": _refusal("too_large", f"The body is over {MAX_PAIRING_BODY} bytes"),
            **(more or {}),
        },
    }


PATHS: dict[str, Any] = {
    START_PATH: {
        "post": _step(
            "Start an exchange: the kit's SPAKE2 message for the laptop's",
            "Uses one of the window's attempts (a refused start uses none).",
            "PairingStart",
            json_answer(ref("PairingStarted"), "Started (Cache-Control: no-store)"),
        )
    },
    CONFIRM_PATH: {
        "post": _step(
            "Confirm an exchange: the laptop is recorded and the window closes",
            "A right confirmation records the laptop, admits its TLS certificate to the network API "
            "and closes the window (and this port).",
            "PairingConfirm",
            json_answer(ref("PairingConfirmed"), "Paired (Cache-Control: no-store)"),
            {
                "401": json_answer(ref("WrongCode"), "Wrong code, with the attempts left (wrong_code)"),
                "404": _refusal(
                    "unknown_exchange",
                    "No such exchange in this window (never started, already confirmed, or from an "
                    "earlier window): start again",
                ),
            },
        )
    },
    PAIRING_OPENAPI_PATH: {
        "get": {
            "summary": "This document",
            "responses": {"200": json_answer({"type": "object"}, "The pairing port's OpenAPI document")},
        }
    },
}


def pairing_openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kitd pairing port",
            "version": __version__,
            "description": f"A field laptop pairs with the e-KTP recording kit by {PROTOCOL} "
            "(kitformats.pairing): SPAKE2 keyed by the 6-digit code the kit shows, whose key confirms "
            "both sides' certificates. HTTPS, TLS 1.3 only, with the kit's TLS certificate (the laptop "
            "hashes what its handshake shows) and no client certificate: the code authenticates. "
            "The port (network.pairing_port) listens only while a pairing window is open. Errors are "
            "{error, message}, with field when one is named; another path answers 404 not_found, "
            "another method 405 method_not_allowed.",
        },
        "paths": copy.deepcopy(PATHS),
        "components": {
            "schemas": {"Error": copy.deepcopy(SCHEMAS["Error"]), **copy.deepcopy(PAIRING_SCHEMAS)}
        },
    }
