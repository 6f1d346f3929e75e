"""The OpenAPI document of the network API for paired field laptops (kitd.api.network).

Its one job: describe every route of that app — the same paths as the app serves, method by
method (tests/test_network_api.py keeps them equal) — with the shapes of the kit's schemas
(kitd.schemas) and the laptop's own (:data:`NETWORK_SCHEMAS`), and its security: mutual TLS
with a paired laptop's certificate, nothing else.
"""

from __future__ import annotations

import copy
from typing import Any

from kitd import __version__
from kitd.api.openapi import AUDIT_PATHS, ORDER_PATHS, OUTBOX_PATHS
from kitd.api.openapi_parts import UNSUPPORTED_MEDIA_TYPE, error_answer, json_answer, ref, with_body_limit
from kitd.schemas import SCHEMAS
from kitd.store.work_orders import ORDER_STATUSES

# Outcomes in one answer: at most, and when the laptop names no limit.
MAX_OUTCOMES = 1000
DEFAULT_OUTCOMES = 100


def _borrowed(operation: dict[str, Any], summary: str) -> dict[str, Any]:
    """An operation of the local API's document whose handler the network API serves too:
    the same body and answers, without the local sign-in's."""
    taken = copy.deepcopy(operation)
    taken["summary"] = summary
    taken.pop("security", None)
    for status in ("401", "403"):
        taken["responses"].pop(status, None)
    return taken


NETWORK_SCHEMAS: dict[str, Any] = {
    "NetworkOrder": {
        "type": "object",
        "description": "A work order the kit holds: its status, its last visit's outcome, its times; "
        "the order itself (personal data) only while it is pending.",
        "required": [
            "order_id",
            "status",
            "outcome",
            "imported_at",
            "updated_at",
            "ended_at",
            "withdrawn_at",
            "order",
        ],
        "properties": {
            "order_id": {"type": "string"},
            "status": {
                "enum": list(ORDER_STATUSES),
                "description": "pending; closed (its visit ended); withdrawn (by the office; a visit "
                "running then may still have finished: see outcome)",
            },
            "outcome": {
                "type": ["string", "null"],
                "description": "The last visit's: finished, not_home, refused, unable, rescheduled, "
                "cancelled",
            },
            "imported_at": {"type": "string"},
            "updated_at": {"type": ["string", "null"], "description": "When a laptop last replaced it"},
            "ended_at": {"type": ["string", "null"]},
            "withdrawn_at": {"type": ["string", "null"]},
            "order": {
                "type": ["object", "null"],
                "description": "The order as imported or replaced (the work-order schema); null once "
                "it is no longer pending (its personal fields are erased)",
            },
        },
    },
    "OrderReplaced": {
        "type": "object",
        "required": ["order_id", "status", "changed", "warnings"],
        "properties": {
            "order_id": {"type": "string"},
            "status": {"const": "pending"},
            "changed": {"type": "boolean", "description": "false when the order was already this"},
            "warnings": {"type": "array", "items": {"type": "object"}},
        },
    },
    "OrderRefused": {
        "type": "object",
        "description": "The order was not taken: the row's report, as an import gives it",
        "required": ["error", "message", "rejected", "warnings"],
        "properties": {
            "error": {"const": "bad_request"},
            "message": {"type": "string"},
            "field": {"type": "string"},
            "rejected": {"type": "array", "items": {"type": "object"}},
            "warnings": {"type": "array", "items": {"type": "object"}},
        },
    },
    "OrderWithdrawn": {
        "type": "object",
        "required": ["order_id", "status", "visit_running"],
        "properties": {
            "order_id": {"type": "string"},
            "status": {"const": "withdrawn"},
            "visit_running": {
                "type": "boolean",
                "description": "A visit on this order is running: it is flagged (the officer's screen "
                "says so) and may still finish; the office decides what becomes of its bundle",
            },
        },
    },
    "Outcome": {
        "type": "object",
        "required": ["cursor", "order_id", "visit_id", "outcome", "ended_at", "reschedule"],
        "properties": {
            "cursor": {"type": "integer", "description": "Increasing; ask after it next time"},
            "order_id": {"type": "string"},
            "visit_id": {"type": "string"},
            "outcome": {
                "enum": ["finished", "not_home", "refused", "unable", "rescheduled", "cancelled"],
                "description": "finished: sealed into a bundle",
            },
            "ended_at": {"type": "string"},
            "reschedule": {
                "type": ["object", "null"],
                "description": "A rescheduled visit's new appointment",
                "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
            },
        },
    },
    "NetworkBundle": {
        "type": "object",
        "required": ["bundle_id", "size", "sha256", "sealed_at", "statement"],
        "properties": {
            "bundle_id": {"type": "string"},
            "size": {"type": "integer", "description": "Bytes of the sealed file"},
            "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "sealed_at": {"type": "string"},
            "statement": {
                "type": "object",
                "description": "The kit's signed statement of the bundle, as stored beside it "
                "(<bundle id>.statement.json): {statement, signature}",
                "required": ["statement", "signature"],
            },
        },
    },
}

ORDER_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
BUNDLE_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

PATHS: dict[str, Any] = {
    "/api/v1/status": {
        "get": {
            "summary": "The kit's version, uptime, devices by status, sealing, outbox and audit log",
            "responses": {"200": json_answer(ref("Status"), "Status")},
        }
    },
    "/api/v1/devices": {
        "get": {
            "summary": "The kit's devices and their state",
            "responses": {"200": json_answer({"type": "array", "items": ref("Device")}, "Devices")},
        }
    },
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": json_answer({"type": "object"}, "The network API's OpenAPI document")},
        }
    },
    "/api/v1/orders": {
        "post": _borrowed(
            ORDER_PATHS["/api/v1/orders"]["post"],
            "Push work orders: every row checked as the kit's import checks it, good rows stored",
        ),
        "get": {
            "summary": "Every order the kit holds, with its status, outcome and times (personal fields "
            "only while pending)",
            "parameters": [
                {
                    "name": "status",
                    "in": "query",
                    "required": False,
                    "description": "Only orders with this status",
                    "schema": {"enum": list(ORDER_STATUSES)},
                }
            ],
            "responses": {
                "200": json_answer(
                    {
                        "type": "object",
                        "required": ["orders"],
                        "properties": {"orders": {"type": "array", "items": ref("NetworkOrder")}},
                    },
                    "The orders, oldest import first",
                ),
                "400": error_answer("An unknown status"),
            },
        },
    },
    "/api/v1/orders/{id}": {
        "put": {
            "summary": "Replace one pending order whole (checked as an import checks a row)",
            "parameters": [ORDER_ID],
            "requestBody": {
                "required": True,
                "description": "The order (the work-order schema); its order_id is the path's",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
            "responses": {
                "200": json_answer(ref("OrderReplaced"), "Replaced (or the same already)"),
                "400": json_answer(
                    {"anyOf": [ref("OrderRefused"), ref("Error")]},
                    "The order does not pass its checks (the row's report), or the body is not one order "
                    "for this path",
                ),
                "404": error_answer("No such order (unknown_order)"),
                "409": error_answer(
                    "The order cannot change now: order_closed (its visit ended), order_withdrawn, "
                    "visit_running (an officer is visiting it: withdraw it instead)"
                ),
                "415": UNSUPPORTED_MEDIA_TYPE,
            },
        },
        "delete": {
            "summary": "Withdraw the order: closed at once, or, while its visit runs, flagged on the "
            "officer's screen (the visit may still finish) and closed when that visit ends",
            "parameters": [ORDER_ID],
            "responses": {
                "200": json_answer(ref("OrderWithdrawn"), "Withdrawn (withdrawing again changes nothing)"),
                "404": error_answer("No such order (unknown_order)"),
                "409": error_answer("The order's visit ended already (order_closed)"),
            },
        },
    },
    "/api/v1/outcomes": {
        "get": {
            "summary": "The visits that ended (finished, or an outcome with its reschedule) after a cursor",
            "parameters": [
                {
                    "name": "after",
                    "in": "query",
                    "required": False,
                    "description": "The last cursor the laptop has (default 0: from the start)",
                    "schema": {"type": "integer", "minimum": 0},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": f"At most this many (1-{MAX_OUTCOMES}, default {DEFAULT_OUTCOMES})",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_OUTCOMES},
                },
            ],
            "responses": {
                "200": json_answer(
                    {
                        "type": "object",
                        "required": ["outcomes", "next"],
                        "properties": {
                            "outcomes": {"type": "array", "items": ref("Outcome")},
                            "next": {
                                "type": "integer",
                                "description": "The cursor to ask after next (the last one given, "
                                "else after)",
                            },
                        },
                    },
                    "The outcomes, oldest first",
                ),
                "400": error_answer("after or limit is not a whole number in range (named)"),
            },
        }
    },
    "/api/v1/bundles": {
        "get": {
            "summary": "Every bundle the office does not have yet, with the kit's signed statement of it; "
            "each becomes offered to this laptop, whose last sync is now",
            "responses": {
                "200": json_answer(
                    {
                        "type": "object",
                        "required": ["bundles"],
                        "properties": {"bundles": {"type": "array", "items": ref("NetworkBundle")}},
                    },
                    "The bundles, oldest first",
                )
            },
        }
    },
    "/api/v1/bundles/{id}": {
        "get": {
            "summary": "The sealed file (HTTP Range: one range of bytes; ETag: its SHA-256, for If-Range)",
            "parameters": [
                BUNDLE_ID,
                {
                    "name": "Range",
                    "in": "header",
                    "required": False,
                    "description": "bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX (one range)",
                    "schema": {"type": "string"},
                },
                {
                    "name": "If-Range",
                    "in": "header",
                    "required": False,
                    "description": "The ETag the laptop's part came with: another file is sent whole (200)",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": {
                    "description": "The whole file",
                    "headers": {"ETag": {"description": '"SHA-256 hex"', "schema": {"type": "string"}}},
                    "content": {
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                "206": {
                    "description": "The range asked (Content-Range: bytes FIRST-LAST/SIZE)",
                    "content": {
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                "404": error_answer("No such bundle, or erased (unknown_bundle)"),
                "416": error_answer(
                    "The range is outside the file, or not one range of bytes (range_not_satisfiable, "
                    "saying which; Content-Range: bytes */SIZE); a range in another unit than bytes "
                    "is ignored (200, the whole file)"
                ),
                "503": error_answer("The bundle's file cannot be read on the kit (bundle_unavailable)"),
            },
        }
    },
    "/api/v1/receipts": {
        "post": _borrowed(
            OUTBOX_PATHS["/api/v1/outbox/receipts"]["post"],
            "This laptop's receipts: laptop_receipt only, by this laptop (one by another is refused)",
        )
    },
    "/api/v1/central-receipts": {
        "post": _borrowed(
            OUTBOX_PATHS["/api/v1/outbox/receipts"]["post"],
            "The central office's receipts the laptop brings back: central_receipt only",
        )
    },
    "/api/v1/clock": {
        "post": {
            "summary": "The laptop's time, sent at every sync: further than clock.max_skew_s from the "
            "kit's, the kit's clock is corrected to it (audited with the old and new times); either "
            "way the kit's clock counts as confirmed until the kit restarts",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("ClockRequest")}},
            },
            "responses": {
                "200": json_answer(ref("ClockConfirmation"), "What the laptop's time did to the kit's clock"),
                "400": error_answer(
                    "No laptop_time, not an ISO 8601 time with its zone, or implausible (before 2026, "
                    "from 2100, or after the kit's own certificate expires)"
                ),
                "415": UNSUPPORTED_MEDIA_TYPE,
            },
        }
    },
    "/api/v1/audit/checkpoint": {
        "get": _borrowed(
            AUDIT_PATHS["/api/v1/audit/checkpoint"]["get"],
            "The audit log's latest checkpoint: a C2SP tlog-checkpoint in a C2SP signed note, signed "
            "with the kit's note key (the verifier key the laptop pinned at pairing)",
        )
    },
    "/api/v1/audit/proof/consistency": {
        "get": _borrowed(
            AUDIT_PATHS["/api/v1/audit/proof/consistency"]["get"],
            "RFC 9162 consistency proof that the tree of new entries extends the one of old (a "
            "laptop's last checkpoint)",
        )
    },
}

REFUSED = error_answer(
    "The client certificate is not a paired laptop's (not_paired), or the laptop was revoked "
    "(laptop_revoked, with when). A certificate the kit never paired fails the TLS handshake already."
)


def network_openapi_document() -> dict[str, Any]:
    paths = copy.deepcopy(PATHS)
    for operations in paths.values():
        for operation in operations.values():
            operation["responses"]["403"] = REFUSED
    with_body_limit(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kitd network API",
            "version": __version__,
            "description": "The e-KTP recording kit's API for its paired field laptops: HTTPS, TLS 1.3 "
            "only, on network.port. The laptop presents the TLS client certificate it paired with "
            "(kit-sync pair) and pins the kit's certificate. Errors are {error, message}.",
        },
        "paths": paths,
        "components": {
            "schemas": {**copy.deepcopy(SCHEMAS), **copy.deepcopy(NETWORK_SCHEMAS)},
            "securitySchemes": {
                "pairedLaptop": {
                    "type": "mutualTLS",
                    "description": "The laptop's self-signed TLS client certificate, recorded by pairing",
                }
            },
        },
        "security": [{"pairedLaptop": []}],
    }
