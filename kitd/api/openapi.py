"""The OpenAPI document of the daemon's local HTTP API; it grows with every endpoint."""

from __future__ import annotations

import copy
from typing import Any

from kitd import __version__
from kitd.api.event_stream import KEEPALIVE_S
from kitd.api.firmware_openapi import FIRMWARE_PATHS
from kitd.api.openapi_parts import UNSUPPORTED_MEDIA_TYPE, error_answer, json_answer, ref, with_body_limit
from kitd.api.sign_in import COOKIE, PUBLIC_ROUTES, ROUTE_ROLES
from kitd.events import REPLAY_EVENTS
from kitd.schemas import CAPTURE_REQUESTS, OUTBOX_STATES, SCHEMAS

SESSION_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

SESSION_PATHS: dict[str, Any] = {
    "/api/v1/sessions": {
        "post": {
            "summary": "Start a live capture session on a device",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("SessionRequest")}},
            },
            "responses": {
                "201": json_answer(
                    {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                    "Started",
                ),
                "400": error_answer("Malformed request, wrong modality for the device, unknown category"),
                "415": UNSUPPORTED_MEDIA_TYPE,
                "404": error_answer("Unknown device"),
                "409": error_answer("Device busy"),
                "503": error_answer("Device disconnected"),
            },
        }
    },
    "/api/v1/sessions/{id}": {
        "get": {
            "summary": "State, best score so far and result summary",
            "description": "A watching route: asking does not restart the sign-in's idle time.",
            "parameters": [SESSION_ID],
            "responses": {
                "200": json_answer(ref("Session"), "The session"),
                "404": error_answer("Unknown session"),
            },
        },
        "delete": {
            "summary": "Cancel the session",
            "parameters": [SESSION_ID],
            "responses": {
                "202": json_answer(ref("Session"), "Cancelling"),
                "404": error_answer("Unknown session"),
                "409": error_answer(
                    "The session has already ended (session_state; the message names its state)"
                ),
            },
        },
    },
    "/api/v1/sessions/{id}/confirm": {
        "post": {
            "summary": "The officer accepts the best capture (flagged forced if it did not pass)",
            "parameters": [SESSION_ID],
            "responses": {
                "200": json_answer(ref("Session"), "Confirmed"),
                "404": error_answer("Unknown session"),
                "409": error_answer("Already ended, or nothing to confirm yet"),
            },
        }
    },
    "/api/v1/sessions/{id}/capture": {
        "get": {
            "summary": "The session's capture (in memory only): a PNG for image modalities, the "
            "recording as JSON for a signature",
            "parameters": [SESSION_ID],
            "responses": {
                "200": {
                    "description": "The capture; X-Kit-Forced: true when it did not pass the gate",
                    "content": {
                        "image/png": {"schema": {"type": "string", "format": "binary"}},
                        "application/json": {"schema": ref("Signature")},
                    },
                },
                "404": error_answer("Unknown session"),
                "409": error_answer("No capture (yet)"),
            },
        }
    },
    "/api/v1/sessions/{id}/press": {
        "get": {
            "summary": "The latest press of a fingerprint session as the officer's screen shows it "
            "(in memory only, never cached)",
            "description": "A watching route: asking does not restart the sign-in's idle time.",
            "parameters": [SESSION_ID],
            "responses": {
                "200": {
                    "description": "The press; X-Kit-Press: its number in the session, X-Kit-Quality: "
                    "its score",
                    "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                },
                "404": error_answer("Unknown session"),
                "409": error_answer("No press yet (or not a fingerprint session)"),
            },
        }
    },
    "/api/v1/events": {
        "get": {
            "summary": "Server-sent events: assessment, capture, end, device, visit, panel, ink, pairing, "
            "order_withdrawn, clock, guided",
            "description": "Each event has `id` (increasing from 1 in each run of the daemon), `event` "
            "(its type) and `data` (JSON): assessment -> AssessmentEvent, capture -> CaptureEvent, "
            "end -> EndEvent, device -> DeviceEvent, visit -> VisitEvent, panel -> PanelEvent, pairing "
            "-> PairingEvent, order_withdrawn -> OrderWithdrawnEvent, clock -> Clock (a laptop confirmed "
            "or corrected the kit's clock), ink -> "
            "InkEvent (a signature session's new pen points, about every 50 ms; sent live only, never "
            "replayed: they are biometric), guided -> GuidedEvent (a guided test's state whenever it "
            "changes; one carrying `ink`, the pad test's new pen points, is sent live only, never "
            "replayed). While "
            "idle a comment line "
            "`: keepalive` comes "
            f"every {KEEPALIVE_S:g} s. A client reconnecting with `Last-Event-ID: N` first gets "
            "the events after N that the daemon still keeps (the last `api.replay_events`, "
            f"{REPLAY_EVENTS} by default), then live "
            "ones; when some after N are no longer kept, or N is not an id of this run, a `gap` "
            "event (GapEvent, no id) comes first and the kept events follow (none for an N that "
            "is not a number). A client without `Last-Event-ID` is first sent `id: N` alone "
            "(no event): the last event before its stream, for EventSource to send back if the "
            "stream drops before its first event.",
            "parameters": [
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "The id of the last event the client got (sent by EventSource)",
                    "schema": {"type": "string"},
                }
            ],
            "responses": {"200": {"description": "The stream", "content": {"text/event-stream": {}}}},
        }
    },
}


NIP = {"name": "nip", "in": "path", "required": True, "schema": {"type": "string"}}


def _officer_action(
    summary: str, body: str | None = None, refusal: dict[str, Any] | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [NIP],
        "responses": {
            "200": json_answer(ref("Officer"), "The officer now"),
            "404": error_answer("No such officer"),
        },
    }
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
        operation["responses"]["400"] = error_answer("Malformed request (the field named)")
        operation["responses"]["415"] = UNSUPPORTED_MEDIA_TYPE
    if refusal:
        operation["responses"]["409"] = refusal
    return {"post": operation}


SIGN_IN_PATHS: dict[str, Any] = {
    "/api/v1/auth/pin": {
        "post": {
            "summary": "The signed-in officer changes their own PIN; their credential is wrapped again",
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref("PinChange")}}},
            "responses": {
                "200": json_answer(
                    ref("PinChanged"), "Changed; the sign-in ends: sign in again with the new PIN"
                ),
                "400": error_answer("Malformed request, or the new PIN is not 6 digits (the field named)"),
                "403": error_answer(
                    "The current PIN is wrong (wrong_pin; counted like a sign-in), or the caller "
                    "is not an officer signed in with a NIP"
                ),  # fmt: skip
                "415": UNSUPPORTED_MEDIA_TYPE,
                "423": error_answer("Locked after too many wrong PINs: a supervisor must unlock (locked)"),
            },
        }
    },
    "/api/v1/auth/signin": {
        "post": {
            "summary": "Sign in with NIP and PIN; the token is also set as the kitd_token cookie",
            "security": [],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("SignInRequest")}},
            },
            "responses": {
                "200": json_answer(
                    ref("SignIn"), "Signed in (Set-Cookie: kitd_token, HttpOnly, SameSite=Strict)"
                ),
                "400": error_answer("Malformed request (the field named)"),
                "401": json_answer(
                    ref("SignInRefusedError"),
                    "NIP or PIN wrong, or the officer deactivated (unauthenticated), with how many wrong "
                    "PINs in a row lock an officer (the same for every NIP)",
                ),
                "415": UNSUPPORTED_MEDIA_TYPE,
                "423": error_answer("Locked after too many wrong PINs: a supervisor must unlock (locked)"),
            },
        }
    },
    "/api/v1/auth/signout": {
        "post": {
            "summary": "End this token (and clear the cookie)",
            "responses": {
                "200": json_answer(
                    {
                        "type": "object",
                        "required": ["signed_out"],
                        "properties": {"signed_out": {"const": True}},
                    },
                    "Signed out",
                )
            },
        }
    },
    "/api/v1/auth/me": {
        "get": {
            "summary": "Who this token signed in, and how long a sign-in lasts unused (asking is a use)",
            "responses": {"200": json_answer(ref("Me"), "The caller")},
        }
    },
    "/api/v1/auth/language": {
        "post": {
            "summary": "The touch screen's language for the signed-in officer, kept for their next sign-in",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("LanguageChoice")}},
            },
            "responses": {
                "200": json_answer(ref("Officer"), "The officer, with their language"),
                "400": error_answer("Not a language the kit speaks (id, en)"),
                "403": error_answer("The caller has no NIP (the kit's socket)"),
                "415": UNSUPPORTED_MEDIA_TYPE,
            },
        }
    },
    "/api/v1/officers": {
        "get": {
            "summary": "Every officer, active or not (supervisors)",
            "responses": {"200": json_answer({"type": "array", "items": ref("Officer")}, "Officers")},
        },
        "post": {
            "summary": "Add an officer (supervisors)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("NewOfficer")}},
            },
            "responses": {
                "201": json_answer(ref("Officer"), "Added"),
                "400": error_answer("Malformed request, or a NIP that is not a real NIP (the reason named)"),
                "409": error_answer("An officer with this NIP exists (officer_exists)"),
                "415": UNSUPPORTED_MEDIA_TYPE,
            },
        },
    },
    "/api/v1/officers/{nip}/unlock": _officer_action("Let a locked officer sign in again (supervisors)"),
    "/api/v1/officers/{nip}/pin": _officer_action(
        "Give an officer a new PIN; unlocks and ends their tokens (supervisors)", "NewPin"
    ),
    "/api/v1/officers/{nip}/deactivate": _officer_action(
        "Stop an officer signing in, ending their tokens; kept for the audit log (supervisors). The "
        "kit's last active supervisor is not deactivated (409 last_supervisor)",
        refusal=error_answer("The kit's last active supervisor: add another first (last_supervisor)"),
    ),
}

ORDER_PATHS: dict[str, Any] = {
    "/api/v1/orders": {
        "post": {
            "summary": "Import work orders (supervisors): every row checked, good rows stored",
            "requestBody": {
                "required": True,
                "description": "A JSON array of orders, or CSV whose header names nested fields with dots "
                "(address.rt), read as its Content-Type says (unlabelled: by what it holds). At most "
                "10 MB and 10,000 rows.",
                "content": {
                    "application/json": {"schema": {"type": "array", "items": {}}},
                    "text/csv": {"schema": {"type": "string"}},
                },
            },
            "responses": {
                "200": json_answer(
                    ref("OrderImport"), "What was imported, unchanged, rejected (by row) and warned"
                ),
                "400": error_answer("Not a JSON array or CSV with an order_id column: refused whole"),
                "413": error_answer("Over 10 MB or 10,000 rows: refused whole (too_large)"),
                "415": error_answer("A body that is neither JSON nor CSV"),
            },
        },
        "get": {
            "summary": "Pending orders: the day's appointments first (kit.timezone), then the rest",
            "parameters": [
                {
                    "name": "day",
                    "in": "query",
                    "required": False,
                    "description": "YYYY-MM-DD; default today",
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "200": json_answer({"type": "array", "items": {"type": "object"}}, "Orders as imported"),
                "400": error_answer("day is not YYYY-MM-DD"),
            },
        },
    },
    "/api/v1/schemas/work-order.json": {
        "get": {
            "summary": "The JSON Schema of a work order (the field laptop uses the same file)",
            "responses": {"200": json_answer({"type": "object"}, "JSON Schema, draft 2020-12")},
        }
    },
}


VISIT_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
ITEM = {
    "name": "item",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "finger:1 .. finger:10, iris:right, iris:left, signature, thumbprint",
}
VISIT_ANSWER = json_answer(ref("Visit"), "The visit now")
WRONG_STATE = json_answer(
    ref("WrongStateError"), "The visit's state does not allow it (wrong_state, naming the state)"
)


def _visit_action(
    summary: str, body: str | None = None, item: bool = False, devices: bool = False, anyone: bool = False
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": VISIT_ANSWER,
        "404": error_answer("Unknown visit" + (" or item" if item else "")),
        "409": WRONG_STATE,
    }
    if not anyone:  # work on a visit is its own officer's; ending it (anyone) is not
        responses["403"] = error_answer(
            "Signed in as another officer than the visit's (not_visits_officer): only they work on it"
        )
    operation: dict[str, Any] = {"summary": summary, "parameters": [VISIT_ID, *([ITEM] if item else [])]}
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(body)}}}
        responses["400"] = error_answer("Malformed request (the field named)")
        responses["415"] = UNSUPPORTED_MEDIA_TYPE
    if devices:
        responses["503"] = error_answer("The item's device is disconnected or not configured")
    operation["responses"] = responses
    return {"post": operation}


OUTCOME_REFUSED = error_answer(
    "Malformed request (the field named), or a new appointment that starts before the kit's clock "
    "says now (appointment_past, field reschedule.start)"
)


def _outcome(path: dict[str, Any]) -> dict[str, Any]:
    path["post"]["responses"]["400"] = OUTCOME_REFUSED
    return path


def _sealing(path: dict[str, Any]) -> dict[str, Any]:
    path["post"]["responses"]["409"] = json_answer(
        {"oneOf": [ref("WrongStateError"), ref("Error")]},
        "Not in review (wrong_state), or the visit's officer has no signing credential open "
        "(officer_cannot_sign: none installed, or locked until the officer signs in)",
    )
    path["post"]["responses"]["503"] = error_answer(
        "The visit could not be sealed or its bundle not written (cannot_seal: a missing key or "
        "certificate, or the disk's error, named); it stays in review with its captures"
    )
    return path


VISIT_PATHS: dict[str, Any] = {
    "/api/v1/visits": {
        "post": {
            "summary": "Start a visit from a pending work order (one active visit per kit)",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("VisitRequest")}},
            },
            "responses": {
                "201": json_answer(
                    {
                        "allOf": [
                            ref("Visit"),
                            {
                                "type": "object",
                                "required": ["precheck"],
                                "properties": {"precheck": ref("Precheck")},
                            },
                        ]
                    },
                    "Started, in state identity, with the pre-visit check's warnings to show",
                ),
                "400": error_answer("Malformed request (the field named)"),
                "404": error_answer("No pending order with that id (unknown_order)"),
                "409": json_answer(
                    {"oneOf": [ref("WrongStateError"), ref("PrecheckFailedError"), ref("Error")]},
                    "Another visit is active (wrong_state, naming its state), the kit could not seal "
                    "a visit (sealing_not_ready: its key, certificate or recipients, named), the free "
                    "disk is below the reserve of outbox.reserve_visits full visits (disk_reserve), or "
                    "the pre-visit check found a fault that would make the visit fail (precheck_failed, "
                    "with the failed checks: no fingerprint reader, say)",
                ),
                "415": UNSUPPORTED_MEDIA_TYPE,
            },
        },
        "get": {
            "summary": "The active visit, if any (state=active, the default)",
            "parameters": [
                {"name": "state", "in": "query", "required": False, "schema": {"enum": ["active"]}}
            ],
            "responses": {
                "200": json_answer({"type": "array", "items": ref("Visit")}, "Active visits (at most one)"),
                "400": error_answer("An unknown state"),
            },
        },
    },
    "/api/v1/visits/{id}": {
        "get": {
            "summary": "A visit: state, current item, every item with its score, forced flag and exception",
            "description": "A watching route: asking does not restart the sign-in's idle time.",
            "parameters": [VISIT_ID],
            "responses": {"200": VISIT_ANSWER, "404": error_answer("Unknown visit")},
        }
    },
    "/api/v1/visits/{id}/identity": _visit_action(
        "Who is present and who consents (a guardian for odgj); the capture items begin", "VisitIdentity"
    ),
    "/api/v1/visits/{id}/items/{item}/start": _visit_action(
        "Start a capture session for an item (also to revisit one from review)", item=True, devices=True
    ),
    "/api/v1/visits/{id}/items/{item}/retry": _visit_action(
        "A new session for the same item; the earlier one goes to its history", item=True, devices=True
    ),
    "/api/v1/visits/{id}/items/{item}/accept": _visit_action(
        "Keep the item's best capture as it is (forced if it did not pass, with its failing checks)",
        item=True,
    ),
    "/api/v1/visits/{id}/items/{item}/except": _visit_action(
        "The item cannot be captured: a reason, confirmed explicitly (cannot_sign brings a thumbprint)",
        "VisitException",
        item=True,
    ),
    "/api/v1/visits/{id}/items/{item}/capture": {
        "get": {
            "summary": "The item's capture: PNG for fingers and irises, JSON for the signature",
            "parameters": [VISIT_ID, ITEM],
            "responses": {
                "200": {
                    "description": "The capture (Cache-Control: no-store)",
                    "content": {
                        "image/png": {"schema": {"type": "string", "format": "binary"}},
                        "application/json": {"schema": ref("Signature")},
                    },
                },
                "403": error_answer(
                    "Signed in as another officer than the visit's (not_visits_officer): its captures "
                    "are shown to its own officer only"
                ),
                "404": error_answer("Unknown visit or item, or no capture kept for it (no_capture)"),
            },
        }
    },
    "/api/v1/visits/{id}/finish": _sealing(
        _visit_action(
            "Finish a visit in review: it is sealed into one bundle in the outbox (its id in the "
            "visit's bundle), then its captures are dropped"
        )
    ),
    "/api/v1/visits/{id}/outcome": _outcome(
        _visit_action(
            "End a visit that cannot finish: not_home, refused, unable, rescheduled (new time), cancelled "
            "(also by another officer than the visit's, for a visit left open)",
            "VisitOutcome",
            anyone=True,
        )
    ),
    "/api/v1/visits/{id}/cancel": _visit_action(
        "Stop capturing until an outcome is given (state ending)", anyone=True
    ),
    "/api/v1/orders/{id}/outcome": {
        "post": {
            "summary": "The order's visit ends at the door with an outcome, before any capture",
            "description": "Not at home, refused, unable, rescheduled (new time) or cancelled, said "
            "without starting a visit: no device, pre-visit check or sealing key is needed, so a kit "
            "with a device missing can still close or reschedule the order, while another order's visit is "
            "open too. Saved and sent to the "
            "office as a visit that started and ended at once (audit: visit_ended, at_door).",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("VisitOutcome")}},
            },
            "responses": {
                "201": json_answer(ref("Visit"), "Ended (state ended), with the outcome"),
                "400": OUTCOME_REFUSED,
                "404": error_answer("No pending order with that id (unknown_order)"),
                "409": json_answer(
                    ref("WrongStateError"), "This order's visit is active: give its outcome there"
                ),
                "415": UNSUPPORTED_MEDIA_TYPE,
            },
        }
    },
    "/api/v1/visits/{id}/carry-on": _visit_action(
        "Back from ending to the work (a Cancel by mistake): the identity, the next item or the review"
    ),
}


BUNDLE_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

OUTBOX_PATHS: dict[str, Any] = {
    "/api/v1/outbox": {
        "get": {
            "summary": "The outbox's bundles (supervisors, technicians), oldest first, with its summary",
            "parameters": [
                {
                    "name": "state",
                    "in": "query",
                    "required": False,
                    "description": "Only bundles in this state",
                    "schema": {"enum": list(OUTBOX_STATES)},
                }
            ],
            "responses": {
                "200": json_answer(
                    {
                        "type": "object",
                        "required": ["bundles", "summary"],
                        "properties": {
                            "bundles": {"type": "array", "items": ref("OutboxBundle")},
                            "summary": ref("OutboxSummary"),
                        },
                    },
                    "Bundles and the outbox's summary (as in the status)",
                ),
                "400": error_answer("An unknown state"),
            },
        }
    },
    "/api/v1/outbox/bundles/{id}": {
        "get": {
            "summary": "One bundle of the outbox: its state, times and receipts",
            "parameters": [BUNDLE_ID],
            "responses": {
                "200": json_answer(ref("OutboxBundle"), "The bundle"),
                "404": error_answer("No such bundle (unknown_bundle)"),
            },
        }
    },
    "/api/v1/outbox/receipts": {
        "post": {
            "summary": "Receipts from a laptop or the central office (supervisors): each checked and applied",
            "requestBody": {
                "required": True,
                "description": "One receipt, or a JSON array of at most 500",
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [ref("Receipt"), {"type": "array", "items": ref("Receipt")}]}
                    }
                },
            },
            "responses": {
                "200": json_answer(
                    ref("ReceiptResults"),
                    "Each receipt: accepted (the bundle moved on), duplicate (it had already) or refused "
                    "with its reason (a signature that does not verify, another file, an unknown or "
                    "revoked key)",
                ),
                "400": error_answer(
                    "Not JSON, neither a receipt (an object) nor an array, or an empty array"
                ),
                "413": error_answer(
                    "More than 500 receipts in one request, or a body over 1 MiB (too_large)"
                ),
                "415": UNSUPPORTED_MEDIA_TYPE,
                "422": json_answer(
                    ref("ReceiptResults"),
                    "Every receipt was refused (receipts_refused), each with its reason",
                ),
                "503": error_answer(
                    "The kit's database could not record a receipt (cannot_record): those before it are "
                    "taken, send the rest again"
                ),
            },
        }
    },
}


def _whole_parameter(name: str, description: str, required: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "integer", "minimum": 0},
    }


BASE64_HASHES = {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}}

AUDIT_PATHS: dict[str, Any] = {
    "/api/v1/audit/checkpoint": {
        "get": {
            "summary": "The audit log's latest checkpoint: a C2SP tlog-checkpoint in a C2SP signed note "
            "(Ed25519, the kit's note key; kitctl keys status prints its public key)",
            "responses": {
                "200": {
                    "description": "The signed note",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "503": error_answer("The note key cannot be read (audit_unavailable)"),
            },
        }
    },
    "/api/v1/audit/entries": {
        "get": {
            "summary": "Audit entries as they were hashed (RFC 8785 JSON of each is its Merkle leaf)",
            "parameters": [
                _whole_parameter("from", "The first sequence number (default 0)", required=False),
                _whole_parameter("count", "How many, 1-1000 (default 100)", required=False),
            ],
            "responses": {
                "200": json_answer(
                    {
                        "type": "object",
                        "required": ["from", "entries"],
                        "properties": {
                            "from": {"type": "integer"},
                            "entries": {"type": "array", "items": ref("AuditEntry")},
                        },
                    },
                    "The entries (fewer at the end of the log)",
                ),
                "400": error_answer("from or count out of range (the parameter named)"),
            },
        }
    },
    "/api/v1/audit/proof/inclusion": {
        "get": {
            "summary": "RFC 9162 inclusion proof of entry index in the tree of size entries",
            "parameters": [
                _whole_parameter("index", "The entry's sequence number"),
                _whole_parameter("size", "The tree's size (a checkpoint's)"),
            ],
            "responses": {
                "200": json_answer(
                    {
                        "type": "object",
                        "required": ["index", "size", "leaf_hash", "proof"],
                        "properties": {
                            "index": {"type": "integer"},
                            "size": {"type": "integer"},
                            "leaf_hash": {"type": "string", "contentEncoding": "base64"},
                            "proof": BASE64_HASHES,
                        },
                    },
                    "The leaf hash and its path, from the leaf up",
                ),
                "400": error_answer("A missing or bad parameter, or a size beyond the log (named)"),
            },
        }
    },
    "/api/v1/audit/proof/consistency": {
        "get": {
            "summary": "RFC 9162 consistency proof that the tree of new entries extends the one of old",
            "parameters": [
                _whole_parameter("old", "The older tree's size"),
                _whole_parameter("new", "The newer tree's size"),
            ],
            "responses": {
                "200": json_answer(
                    {
                        "type": "object",
                        "required": ["old", "new", "proof"],
                        "properties": {
                            "old": {"type": "integer"},
                            "new": {"type": "integer"},
                            "proof": BASE64_HASHES,
                        },
                    },
                    "The proof's hashes",
                ),
                "400": error_answer(
                    "A missing or bad parameter, or sizes out of order or beyond the log (named)"
                ),
            },
        }
    },
}


PAIRING_PATHS: dict[str, Any] = {
    "/api/v1/pairing": {
        "post": {
            "summary": "Open a pairing window for a field laptop (supervisors; kitctl laptops pair): a new "
            "6-digit code, the pairing port listening until the window closes",
            "description": "The laptop runs kitd-pairing/1 (kitformats.pairing: SPAKE2 keyed by the code, "
            "confirming both sides' TLS certificates) on the pairing port: `kit-sync pair HOST:PORT "
            "CODE`. A window allows 5 attempts; it closes when a laptop pairs, after the 5th wrong "
            "code, when its time is up, or when closed. Opening one while one is open replaces it "
            "and its code.",
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": ref("PairingRequest")}},
            },
            "responses": {
                "201": json_answer(ref("PairingWindow"), "Open (Cache-Control: no-store: it holds the code)"),
                "400": error_answer("Malformed request (the field named)"),
                "409": error_answer("The network API is off: network.enabled is false (network_disabled)"),
                "415": UNSUPPORTED_MEDIA_TYPE,
                "503": error_answer("The pairing port cannot listen (cannot_listen, the reason named)"),
            },
        },
        "get": {
            "summary": "The pairing window: open or not, its code and time left, and the laptop it paired",
            "responses": {"200": json_answer(ref("PairingWindow"), "The window (Cache-Control: no-store)")},
        },
        "delete": {
            "summary": "Close the pairing window (if open) and its port",
            "responses": {"200": json_answer(ref("PairingWindow"), "Closed")},
        },
    },
}


def _with_sign_in(paths: dict[str, Any]) -> None:
    """Every operation but the public ones answers 401 without a token; a role-limited one 403."""
    for path, operations in paths.items():
        for method, operation in operations.items():
            key = (method.upper(), path)
            if key in PUBLIC_ROUTES:
                operation["security"] = []  # no sign-in asked
                continue
            responses = operation["responses"]
            responses["401"] = error_answer("No token, or one that expired or was ended (unauthenticated)")
            if key in ROUTE_ROLES:
                only = ", ".join(sorted(ROUTE_ROLES[key]))
                responses["403"] = json_answer(
                    ref("ForbiddenError"), f"Signed in, but not as: {only} (forbidden)"
                )


DIAGNOSTICS_PATHS: dict[str, Any] = {
    "/api/v1/diagnostics": {
        "get": {
            "summary": "Run the kit's checks now (technicians; kitctl diag): every device, the unit, "
            "security and data; each under its own time limit, so the answer always comes. The run is "
            "stored and its summary audited",
            "parameters": [
                {
                    "name": "quick",
                    "in": "query",
                    "required": False,
                    "description": "1: only the quick subset a visit runs before it starts",
                    "schema": {"enum": ["0", "1", "true", "false"]},
                }
            ],
            "responses": {
                "200": json_answer(ref("DiagnosticsRun"), "The run, checks in the order a technician reads"),
                "400": error_answer("quick is not 0 or 1 (field quick)"),
            },
        }
    },
    "/api/v1/diagnostics/history": {
        "get": {
            "summary": "The stored runs, newest first; or, with check, that check's findings across "
            "them, oldest first (a trend: a sensor's uniformity sliding, dropped frames rising)",
            "parameters": [
                {
                    "name": "limit",
                    "in": "query",
                    "required": False,
                    "description": "How many runs, 1-500 (default 20)",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                },
                {
                    "name": "check",
                    "in": "query",
                    "required": False,
                    "description": "A check's id (e.g. fingerprint.present)",
                    "schema": {"type": "string"},
                },
            ],
            "responses": {
                "200": json_answer(ref("DiagnosticsHistory"), "The runs, or one check's findings"),
                "400": error_answer("limit out of range, or no such check (the parameter named)"),
            },
        }
    },
    "/api/v1/diagnostics/report": {
        "post": {
            "summary": "The signed report for the vendor (technicians; kitctl diag --out DIR): a run (a new "
            "one, or a stored one by run_id) with kitd's, Python's and the OS's versions, the configuration "
            "with secrets redacted, the devices' last statuses and the daemon's recent log lines; NIKs "
            "masked, nothing biometric. Signed by the kit's key (file or token) in the daemon; audited "
            "(diagnostics_report)",
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": ref("DiagnosticsReportRequest")}},
            },
            "responses": {
                "200": json_answer(ref("DiagnosticsReport"), "The report (Cache-Control: no-store)"),
                "400": error_answer("Malformed request (the field named)"),
                "404": error_answer("No stored run with that run_id (unknown_run)"),
                "415": UNSUPPORTED_MEDIA_TYPE,
            },
        }
    },
}

GUIDED_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
GUIDED_PATHS: dict[str, Any] = {
    "/api/v1/diagnostics/guided": {
        "post": {
            "summary": "Start a guided test (technicians; the touch screen's technician page): panel "
            "(each button pressed in turn, each LED lit alone and confirmed, the buzzer confirmed) or "
            "pad (the signature pad's four corners touched, then a straight line drawn)",
            "description": "The device is the test's until it ends: the panel's buttons go to the test, "
            "not the visit, and the pad is held; a visit cannot start meanwhile (precheck_failed). Its "
            "state comes as `guided` events on every change. It ends when every step is done, a step "
            "fails, 120 s pass (timed_out) or it is cancelled; its finding (check <device>.guided) is "
            "then stored as a diagnostics run of that one check, audited, in the history.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("GuidedTestRequest")}},
            },
            "responses": {
                "201": json_answer(ref("GuidedTest"), "Started: the first step waiting"),
                "400": error_answer("Malformed request (the field named)"),
                "404": error_answer("No such device of the test's kind (unknown_device)"),
                "409": error_answer(
                    "A guided test is running (guided_test_running), a visit is active (visit_active), "
                    "the device is busy with a capture (device_busy), or the kit has none (no_device)"
                ),
                "415": UNSUPPORTED_MEDIA_TYPE,
                "503": error_answer("The device is not ready, the reason named (device_not_ready)"),
            },
        },
        "get": {
            "summary": "The guided test running now, if any (a technician's page reloaded finds it "
            "again, to carry on or cancel it)",
            "responses": {
                "200": json_answer(
                    {
                        "type": "object",
                        "required": ["running"],
                        "properties": {"running": {"oneOf": [ref("GuidedTest"), {"type": "null"}]}},
                    },
                    "The running test, or null (Cache-Control: no-store)",
                ),
            },
        },
    },
    "/api/v1/diagnostics/guided/{id}": {
        "get": {
            "summary": "A guided test's state now (running, or one of the last 20 ended)",
            "parameters": [GUIDED_ID],
            "responses": {
                "200": json_answer(ref("GuidedTest"), "The test (Cache-Control: no-store)"),
                "404": error_answer("No such guided test (unknown_guided_test)"),
            },
        },
        "delete": {
            "summary": "Cancel the guided test: its device freed, the panel back to the visit; its "
            "finding (warning, cancelled) stored",
            "parameters": [GUIDED_ID],
            "responses": {
                "200": json_answer(ref("GuidedTest"), "Cancelled"),
                "404": error_answer("No such guided test (unknown_guided_test)"),
                "409": error_answer("It has already ended (not_running)"),
            },
        },
    },
    "/api/v1/diagnostics/guided/{id}/confirm": {
        "post": {
            "summary": "The technician's answer to the confirm step waiting (an LED lit alone, the buzzer "
            "heard); seen false fails the step and ends the test with what to do",
            "parameters": [GUIDED_ID],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("GuidedConfirm")}},
            },
            "responses": {
                "200": json_answer(ref("GuidedTest"), "Taken: the next step waiting, or the test ended"),
                "400": error_answer("Malformed request (the field named)"),
                "404": error_answer("No such guided test (unknown_guided_test)"),
                "409": error_answer(
                    "The test has ended (not_running), or that step is not the confirm step waiting "
                    "(wrong_step, naming the one that is)"
                ),
                "415": UNSUPPORTED_MEDIA_TYPE,
            },
        }
    },
}


SCREEN_PATHS: dict[str, Any] = {
    "/": {
        "get": {
            "summary": "The touch screen's web app (its page; public: it holds no data)",
            "description": "Shown by Chromium in kiosk mode on the kit. Sent with a Content-Security-"
            "Policy that allows nothing but the kit itself.",
            "responses": {
                "200": {
                    "description": "The app's page",
                    "content": {"text/html": {"schema": {"type": "string"}}},
                },
                "404": error_answer("This kitd was installed without its app"),
            },
        }
    },
    "/screen/{path}": {
        "get": {
            "summary": "One of the touch screen app's files (script, style, message catalogue; public)",
            "parameters": [{"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "The file", "content": {"*/*": {"schema": {"type": "string"}}}},
                "404": error_answer("The app has no such file"),
            },
        }
    },
    "/api/v1/messages": {
        "get": {
            "summary": "The officer-facing words the daemon owns, by code, in Bahasa Indonesia and English "
            "(public)",
            "description": "The quality assessors' feedback for each modality, and the reasons a visit "
            "cannot start; a client shows these and never retypes them.",
            "responses": {"200": json_answer(ref("Messages"), "The catalogue")},
        }
    },
    "/api/v1/summary": {
        "get": {
            "summary": "What a status bar shows and whether a visit can start now (and every reason why not)",
            "description": "Devices' readiness, bundles waiting for a laptop, free space against the "
            "visit reserve, battery, clock, the caller's active visit. A watching route: asking it "
            "does not restart the sign-in's idle time, so polling it never keeps an idle kit unlocked.",
            "responses": {"200": json_answer(ref("Summary"), "The summary")},
        }
    },
}


def openapi_document() -> dict[str, Any]:
    document = _base_document()
    document["paths"].update(SESSION_PATHS)
    document["paths"].update(SIGN_IN_PATHS)
    document["paths"].update(ORDER_PATHS)
    document["paths"].update(VISIT_PATHS)
    document["paths"].update(OUTBOX_PATHS)
    document["paths"].update(AUDIT_PATHS)
    document["paths"].update(DIAGNOSTICS_PATHS)
    document["paths"].update(GUIDED_PATHS)
    document["paths"].update(FIRMWARE_PATHS)
    document["paths"].update(PAIRING_PATHS)
    document["paths"].update(SCREEN_PATHS)
    _with_sign_in(document["paths"])
    with_body_limit(document["paths"])
    document["components"]["schemas"] = copy.deepcopy(SCHEMAS)
    document["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "The token from sign-in"},
        "cookie": {"type": "apiKey", "in": "cookie", "name": COOKIE, "description": "Set by sign-in"},
    }
    # Either scheme; the Unix socket in data_dir (kitctl on the kit) needs none.
    document["security"] = [{"bearer": []}, {"cookie": []}]
    return document


def _base_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kitd local API",
            "version": __version__,
            "description": "The e-KTP recording kit's daemon: devices, captures.",
        },
        "paths": {
            "/api/v1/status": {
                "get": {
                    "summary": "Daemon version, uptime and device counts by status",
                    "responses": {
                        "200": {
                            "description": "Status",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Status"}}
                            },
                        }
                    },
                }
            },
            "/api/v1/devices": {
                "get": {
                    "summary": "Configured devices and their state",
                    "responses": {
                        "200": {
                            "description": "Devices",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/DeviceList"}}
                            },
                        }
                    },
                }
            },
            "/api/v1/devices/{id}/capture": {
                "post": {
                    "summary": "Capture from a device",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                    ],
                    "requestBody": {
                        "required": False,
                        "description": "Which one depends on the device's kind: "
                        + ", ".join(f"{kind}: {name}" for kind, name in CAPTURE_REQUESTS.items())
                        + ". Another kind's fields are refused (400).",
                        "content": {
                            "application/json": {
                                "schema": {"oneOf": [ref(name) for name in CAPTURE_REQUESTS.values()]}
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "The capture: an 8-bit grey PNG for image devices, "
                            "the recording as JSON for a signature pad.",
                            "headers": {
                                "X-Kit-Quality": {
                                    "description": "Quality score 0-100 of the returned capture",
                                    "schema": {"type": "string"},
                                },
                                "X-Kit-Feedback": {
                                    "description": "Feedback codes, most important first, comma-separated",
                                    "schema": {"type": "string"},
                                },
                                "X-Kit-Forced": {
                                    "description": "true when the capture did not pass the gate",
                                    "schema": {"type": "string"},
                                },
                                "X-Kit-Forced-Because": {
                                    "description": "With X-Kit-Forced: why, e.g. 'failing: focus' or "
                                    "'its checks pass, but 1 frame passed but never 3 in a row within 20 s'",
                                    "schema": {"type": "string"},
                                },
                            },
                            "content": {
                                "image/png": {"schema": {"type": "string", "format": "binary"}},
                                "application/json": {"schema": {"$ref": "#/components/schemas/Signature"}},
                            },
                        },
                        "400": error_answer(
                            "Malformed request body (JSON `null` included; an empty body is {})"
                        ),
                        "415": UNSUPPORTED_MEDIA_TYPE,
                        "404": error_answer("Unknown device"),
                        "409": error_answer("Device busy"),
                        "422": {
                            "description": "No capture passed the quality gate (and force was not set): "
                            "`quality_gate` naming the failing checks, or `not_steady` when captures "
                            "passed but never `consecutive_passes` in a row within the time",
                            "content": {
                                "application/json": {
                                    "schema": {"oneOf": [ref("QualityGateError"), ref("NotSteadyError")]}
                                }
                            },
                        },
                        "502": error_answer("Protocol error talking to the device"),
                        "503": error_answer("Device disconnected"),
                        "504": error_answer("No finger, frame or pen input within the time"),
                    },
                }
            },
            "/api/v1/stream/iris.mjpg": {
                "get": {
                    "summary": "Live preview of the iris camera (MJPEG, scaled for the 7-inch screen)",
                    "description": "multipart/x-mixed-replace of JPEG parts, sent with Cache-Control: "
                    "no-store. A frame's part carries X-Frame-Seq (the driver's frame number), "
                    "X-Frame-Time, X-Frame-Missed (frames the camera lost before it, estimated), "
                    "X-Frame-Missed-Total, X-Frame-Flags and X-Frame-Skipped (frames this viewer "
                    "did not get because it was slower than the camera). While no frame comes, "
                    "a plain dark card is sent about once a second (no X-Frame-Seq). Frames carry only "
                    "the assessor's circles and eyelids, no words.",
                    "parameters": [
                        {
                            "name": "device",
                            "in": "query",
                            "required": False,
                            "description": "Camera id; needed only when several are configured",
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The stream, until the viewer disconnects",
                            "content": {"multipart/x-mixed-replace": {"schema": {"type": "string"}}},
                        },
                        "400": error_answer("Several iris cameras and no device named"),
                        "404": error_answer("No such iris camera"),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI document"}},
                }
            },
        },
        "components": {"schemas": {}},
    }
