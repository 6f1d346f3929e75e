"""The JSON shapes the kit exchanges — requests to the API, the signature recording, sessions,
events, the daemon's answers — written once: the OpenAPI document publishes them
(kitd.api.openapi) and the API and kitctl check what they are given against them (`check`;
kitctl the daemon's answers too), so the two cannot disagree.

`check(name, value)` validates with jsonschema (draft 2020-12, the dialect of OpenAPI 3.1) and
raises ShapeError for the first thing wrong, in the kit's own words and naming the field:
"timeout_s must be above 0, not -1", "points[5].tip is missing". What a schema cannot say
(time running backwards, a value beyond the pad's own maxima) stays in the code that knows it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from kitd.errors import shown_value

COMPONENTS_URI = "urn:kitd:components"

SESSION_STATES = ["running", "captured", "confirmed", "forced", "cancelled", "failed"]
# What ended a session (kitd.capture.session.ENDED_BY, and "device": its device failed); null
# while it runs.
SESSION_ENDED_BY = ["passes", "officer", "time_limit", "attempt_limit", "end_of_input", "cancel", "device"]
_ENDED_BY = {
    "enum": [*SESSION_ENDED_BY, None],
    "description": "What ended the session: enough passes in a row, the officer's accept, the time "
    "or attempt limit, the end of a replayed input, a cancel, or its device's failure (null: running)",
}
DEVICE_STATUSES = ["ready", "busy", "disconnected", "error"]
# A bundle's states as the API shows them (kitd.store.outbox.STATES but the internal "sealing").
OUTBOX_STATES = ("sealed", "offered", "acknowledged", "delivered", "erased")
CATEGORIES = ["lansia", "disabilitas", "odgj", "lainnya"]
ROLES = ["officer", "supervisor", "technician"]
_NIP = {"type": "string", "pattern": "^[0-9]{18}$", "description": "18-digit NIP (civil servant number)."}
_PIN = {"type": "string", "pattern": "^[0-9]{6}$", "description": "6-digit PIN."}
# An officer named on the screen: the NIP, and the name (null for no officer of the roll:
# a visit started, or an outcome given, on the kit's socket).
_OFFICER_NAMED = {
    "type": "object",
    "required": ["nip", "name"],
    "properties": {"nip": {"type": "string"}, "name": {"type": ["string", "null"]}},
}


# A capture session's progress, in its JSON and in each of its assessment events.
_PROGRESS = {
    "passes": {"type": "integer", "description": "Passing frames in a row so far"},
    "passes_needed": {
        "type": ["integer", "null"],
        "description": "Passing frames in a row that capture the item; null when the officer "
        "ends the session (a signature)",
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


# The longest a client may hold a device: a capture left waiting on a silent device (its
# client gone, or a typo of 1e308) must not keep it from everyone else.
MAX_TIMEOUT_S = 120
MAX_RECORDING_S = 300
_SECONDS = {"type": "number", "exclusiveMinimum": 0}
_TIMEOUT = {
    **_SECONDS,
    "maximum": MAX_TIMEOUT_S,
    "description": f"How long to wait for a finger or an intact frame, in seconds (at most {MAX_TIMEOUT_S}).",
}
_RAW = {"type": "boolean", "description": "One frame, no quality gate."}
_FORCE = {"type": "boolean", "description": "Return the best capture even if it fails the gate."}
# raw (no gate) and force (the best capture despite the gate) contradict each other.
_RAW_AND_FORCE = {
    "description": "raw and force are not both true",
    "required": ["raw", "force"],
    "properties": {"raw": {"const": True}, "force": {"const": True}},
}
_PAD_FIELDS = ("max_x", "max_y", "max_pressure", "firmware", "points_per_mm")
# A pad's coordinates, pressure and firmware come in at most 16 bits (ISDV4: 7 + 7 + 2).
_PAD_WORD = 65535


def _image_capture_request(description: str) -> dict[str, Any]:
    """The request an image device takes (its own copy, so that one schema can never edit another)."""
    return {
        "type": "object",
        "description": description,
        "additionalProperties": False,
        "properties": {"timeout_s": _TIMEOUT, "raw": _RAW, "force": _FORCE},
        "not": _RAW_AND_FORCE,
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "Machine-readable code."},
            "message": {"type": "string", "description": "One line for a person."},
            "field": {"type": "string", "description": "The request field that was wrong, when one was."},
        },
    },
    "SignInRefusedError": {
        "type": "object",
        "required": ["error", "message", "max_pin_failures"],
        "properties": {
            "error": {"const": "unauthenticated"},
            "message": {"type": "string"},
            "max_pin_failures": {
                "type": "integer",
                "minimum": 1,
                "description": "Wrong PINs in a row that lock an officer (auth.max_pin_failures)",
            },
        },
    },
    "FingerprintCaptureRequest": _image_capture_request("A capture from a fingerprint reader."),
    "IrisCaptureRequest": _image_capture_request("A capture from an iris camera."),
    "SignatureCaptureRequest": {
        "type": "object",
        "description": "A recording from a signature pad.",
        "additionalProperties": False,
        "properties": {
            "seconds": {
                **_SECONDS,
                "maximum": MAX_RECORDING_S,
                "description": f"Record at most this long, at most {MAX_RECORDING_S} s (ends earlier once "
                "the pen has been lifted for signature.pen_lift_stop_s after the first tip-down).",
            }
        },
    },
    "Signature": {
        "type": "object",
        "description": "A signature pad's recording: every pen packet after start, hover included, in "
        "device units (ISO/IEC 19794-7 channels x, y, pressure, time, tip).",
        "required": ["device", "points"],
        "additionalProperties": False,
        "properties": {
            "device": {
                "type": "object",
                "required": list(_PAD_FIELDS),
                "properties": {
                    "max_x": {"type": "integer", "exclusiveMinimum": 0, "maximum": _PAD_WORD},
                    "max_y": {"type": "integer", "exclusiveMinimum": 0, "maximum": _PAD_WORD},
                    "max_pressure": {"type": "integer", "minimum": 0, "maximum": _PAD_WORD},
                    "firmware": {"type": "integer", "minimum": 0, "maximum": _PAD_WORD},
                    "points_per_mm": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000},
                },
            },
            "points": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["t_ms", "x", "y", "pressure", "tip", "proximity"],
                    "properties": {
                        "t_ms": {
                            "type": "number",
                            "minimum": 0,
                            # The recorder reads its last batch after the deadline: 5 s to spare.
                            "maximum": (MAX_RECORDING_S + 5) * 1000,
                            "description": "From the first packet",
                        },
                        "x": {"type": "integer"},
                        "y": {"type": "integer"},
                        "pressure": {"type": "integer"},
                        "tip": {"type": "boolean"},
                        "proximity": {"type": "boolean"},
                    },
                },
            },
            "strokes": {"type": "integer", "description": "Tip-down runs"},
        },
    },
    "QualityGateError": {
        "type": "object",
        "required": ["error", "message", "score", "failed_checks", "feedback"],
        "properties": {
            "error": {"const": "quality_gate"},
            "message": {"type": "string"},
            "score": {"type": "number", "description": "The best capture's score"},
            "failed_checks": {"type": "array", "items": {"type": "string"}},
            "feedback": {"type": "array", "items": {"type": "string"}},
        },
    },
    "NotSteadyError": {
        "type": "object",
        "description": "Captures passed the gate, but never `consecutive_passes` in a row in time.",
        "required": [
            "error",
            "message",
            "score",
            "failed_checks",
            "feedback",
            "passes",
            "consecutive_passes",
        ],
        "properties": {
            "error": {"const": "not_steady"},
            "message": {
                "type": "string",
                "description": "e.g. '3 presses passed but never 2 in a row within 20 s (best score 71)'",
            },
            "score": {"type": "number", "description": "The best capture's score"},
            "failed_checks": {"type": "array", "items": {"type": "string"}, "maxItems": 0},
            "feedback": {"type": "array", "items": {"type": "string"}},
            "passes": {"type": "integer", "description": "Captures that passed the gate"},
            "consecutive_passes": {"type": "integer", "description": "Passes in a row the gate needs"},
        },
    },
    "Clock": {
        "type": "object",
        "description": "The kit's clock (a Pi has none that survives power off): whether a paired "
        "laptop confirmed it since the machine started, and whether it ran backwards across a restart",
        "required": [
            "now",
            "confirmed",
            "confirmed_at",
            "confirmed_by",
            "last_confirmed_at",
            "offset_s",
            "set_system",
            "went_back",
            "problem",
        ],
        "properties": {
            "now": {"type": "string", "description": "The kit's time, UTC"},
            "confirmed": {"type": "boolean"},
            "confirmed_at": {"type": ["string", "null"], "description": "When, on the corrected clock"},
            "confirmed_by": {"type": ["string", "null"], "description": "The laptop that confirmed it"},
            "last_confirmed_at": {
                "type": ["string", "null"],
                "description": "The last confirmation, even one from before a reboot or a backwards step",
            },
            "offset_s": {"type": "number", "description": "Added to the system time (set_system off)"},
            "set_system": {"type": "boolean"},
            "went_back": {
                "description": "Set when a restart found the clock behind the latest time the kit had "
                "seen; cleared by the next confirmation",
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["from", "to", "behind_s"],
                        "properties": {
                            "from": {"type": "string"},
                            "to": {"type": "string"},
                            "behind_s": {"type": "number"},
                        },
                    },
                    {"type": "null"},
                ],
            },
            "problem": {"type": ["string", "null"], "description": "Why data_dir/clock.json failed"},
        },
    },
    "DiagnosticFinding": {
        "type": "object",
        "description": "One check's finding: a message (Bahasa Indonesia in id, English in en) says "
        "what to do whenever the status is not ok",
        "required": ["id", "device", "status", "values", "message", "duration_s"],
        "properties": {
            "id": {"type": "string", "description": "The check, e.g. fingerprint.present, unit.disk"},
            "device": {"type": ["string", "null"], "description": "The device's id, or null for the unit"},
            "status": {"enum": ["ok", "warning", "failed", "not_available"]},
            "values": {"type": "object", "description": "What it measured; timed_out when it hung"},
            "message": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["id", "en"],
                        "properties": {"id": {"type": "string"}, "en": {"type": "string"}},
                    },
                    {"type": "null"},
                ]
            },
            "duration_s": {"type": "number"},
        },
    },
    "Precheck": {
        "type": "object",
        "description": "The quick checks run as the visit started (a stored diagnostics run)",
        "required": ["run_id", "status", "duration_s", "critical", "findings"],
        "properties": {
            "run_id": {"type": "string"},
            "status": {"enum": ["ok", "warning", "failed"]},
            "duration_s": {"type": "number"},
            "critical": {"type": "array", "items": _ref("DiagnosticFinding")},
            "findings": {
                "type": "array",
                "items": _ref("DiagnosticFinding"),
                "description": "Every check not ok: warnings for the officer to see",
            },
        },
    },
    "PrecheckFailedError": {
        "type": "object",
        "required": ["error", "message", "checks"],
        "properties": {
            "error": {"const": "precheck_failed"},
            "message": {"type": "string"},
            "checks": {"type": "array", "items": _ref("DiagnosticFinding")},
        },
    },
    "DiagnosticsRun": {
        "type": "object",
        "required": ["run_id", "quick", "started_at", "duration_s", "kit", "status", "counts", "checks"],
        "properties": {
            "run_id": {"type": "string"},
            "quick": {"type": "boolean", "description": "Only the quick subset a visit runs first"},
            "started_at": {"type": "string"},
            "duration_s": {"type": "number"},
            "kit": {
                "type": "object",
                "required": ["id", "version"],
                "properties": {"id": {"type": "string"}, "version": {"type": "string"}},
            },
            "status": {"enum": ["ok", "warning", "failed"], "description": "The worst check's"},
            "counts": {
                "type": "object",
                "required": ["ok", "warning", "failed", "not_available"],
                "properties": {s: {"type": "integer"} for s in ("ok", "warning", "failed", "not_available")},
            },
            "checks": {"type": "array", "items": _ref("DiagnosticFinding")},
            "stored": {"type": "boolean", "description": "Kept in the history (false: it could not be)"},
        },
    },
    "DiagnosticsReportRequest": {
        "type": "object",
        "description": "Which run the report is of: a new one (no body: a full run; quick: the quick "
        "subset), or a stored one by its id; not both",
        "additionalProperties": False,
        "properties": {
            "quick": {"type": "boolean"},
            "run_id": {"type": "string", "minLength": 1, "maxLength": 64},
        },
        "not": {"required": ["quick", "run_id"]},
    },
    "DiagnosticsReportStatement": {
        "type": "object",
        "description": "What the kit states for the vendor (kitformats.report_statements): no full "
        "NIK, no credential, nothing biometric",
        "required": ["kind", "kit_id", "created_at", "run", "software", "configuration", "devices", "log"],
        "properties": {
            "kind": {"const": "kitd-diagnostics-report/1"},
            "kit_id": {"type": "string"},
            "created_at": {"type": "string"},
            "run": _ref("DiagnosticsRun"),
            "software": {
                "type": "object",
                "required": ["kitd", "python", "os"],
                "properties": {
                    "kitd": {"type": "string"},
                    "python": {"type": "string"},
                    "os": {"type": "string"},
                    "os_release": {"type": ["string", "null"]},
                    "machine": {"type": "string"},
                },
            },
            "configuration": {
                "type": "object",
                "required": ["values", "devices", "redacted", "redaction"],
                "properties": {
                    "source": {"type": ["string", "null"]},
                    "values": {"type": "object", "description": "Every key, secrets as [redacted]"},
                    "devices": {"type": "array", "items": {"type": "object", "required": ["id", "uri"]}},
                    "redacted": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "What was redacted, by key",
                    },
                    "redaction": {"type": "string", "description": "The rules, in words"},
                },
            },
            "devices": {
                "type": "array",
                "description": "Each device's last status and why (as /api/v1/devices)",
                "items": {
                    "type": "object",
                    "required": ["id", "kind", "status", "reason", "since"],
                    "properties": {
                        "id": {"type": "string"},
                        "kind": {"type": "string"},
                        "status": {"type": "string"},
                        "reason": {"type": ["string", "null"]},
                        "since": {"type": ["string", "null"]},
                    },
                },
            },
            "log": {
                "type": "object",
                "required": ["source", "lines", "note"],
                "properties": {
                    "source": {"type": ["string", "null"]},
                    "lines": {"type": "array", "items": {"type": "string"}},
                    "note": {"type": ["string", "null"], "description": "Why there are none"},
                },
            },
        },
    },
    "DiagnosticsHistory": {
        "description": "The last runs, newest first (without check), or one check's findings across them, "
        "oldest first (with check).",
        "oneOf": [_ref("DiagnosticsRuns"), _ref("CheckHistory")],
    },
    "DiagnosticsRuns": {
        "type": "object",
        "required": ["runs"],
        "properties": {"runs": {"type": "array", "items": _ref("DiagnosticsRun")}},
    },
    "CheckHistory": {
        "type": "object",
        "required": ["check", "findings"],
        "properties": {
            "check": {"type": "string"},
            "findings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["run_id", "started_at", "quick", "status", "values"],
                    "properties": {
                        "run_id": {"type": "string"},
                        "started_at": {"type": "string"},
                        "quick": {"type": "boolean"},
                        "status": {"type": "string"},
                        "values": {"type": "object"},
                        "message": {
                            "oneOf": [_ref("Words"), {"type": "null"}],
                            "description": "What to do, when it was not ok",
                        },
                    },
                },
            },
        },
    },
    "DiagnosticsReport": {
        "type": "object",
        "description": "A signed statement (kitformats.statements): a detached CMS signature, base64, "
        "over the RFC 8785 form of statement, made with the kit's key; null, with unsigned saying "
        "why, when the key could not sign (kitctl diag --verify checks it with the kit's certificate)",
        "required": ["statement", "signature"],
        "properties": {
            "statement": _ref("DiagnosticsReportStatement"),
            "signature": {"type": ["string", "null"]},
            "unsigned": {"type": "string"},
        },
    },
    # Guided tests (issue 31): a technician and the kit testing the panel or the pad step by step.
    "GuidedTestRequest": {
        "type": "object",
        "description": "Which guided test to start: panel (each button, LED and the buzzer) or pad "
        "(the signature pad's corners and a straight line); device names one of several pads",
        "additionalProperties": False,
        "required": ["test"],
        "properties": {
            "test": {"enum": ["panel", "pad"]},
            "device": {"type": "string", "minLength": 1, "maxLength": 64},
        },
    },
    "GuidedConfirm": {
        "type": "object",
        "description": "The technician's answer to the confirm step waiting: was the LED lit (alone), "
        "the buzzer heard",
        "additionalProperties": False,
        "required": ["step", "seen"],
        "properties": {
            "step": {"type": "string", "minLength": 1, "maxLength": 64},
            "seen": {"type": "boolean"},
        },
    },
    "GuidedStep": {
        "type": "object",
        "description": "One step: press a button, confirm what was seen or heard, touch a spot of the "
        "pad, draw on it. values: what it measured (a touch step's zone to touch and the point "
        "touched; the line's linearity, length_mm, deviation_mm; a press step's other_presses)",
        "required": ["id", "kind", "prompt", "status", "values"],
        "properties": {
            "id": {
                "type": "string",
                "description": "e.g. press_capture, led_ready, buzzer, corner_top_left, line",
            },
            "kind": {"enum": ["press", "confirm", "touch", "draw"]},
            "prompt": {
                "type": "object",
                "description": "What to do, Bahasa Indonesia (id) and English (en)",
                "required": ["id", "en"],
                "properties": {"id": {"type": "string"}, "en": {"type": "string"}},
            },
            "status": {"enum": ["waiting", "done", "failed", "skipped"]},
            "values": {"type": "object"},
        },
    },
    "GuidedTest": {
        "type": "object",
        "description": "A guided test's state: its steps in order, the one waiting now (current), and "
        "once it ended (every step done, a step failed, its time limit passed, cancelled) its finding, "
        "stored as a diagnostics run of that one check (run_id)",
        "required": ["guided_id", "test", "device", "state", "steps", "current", "finding"],
        "properties": {
            "guided_id": {"type": "string"},
            "test": {"enum": ["panel", "pad"]},
            "device": {"type": "string", "description": "The device's id"},
            "state": {"enum": ["running", "passed", "failed", "timed_out", "cancelled"]},
            "steps": {"type": "array", "items": _ref("GuidedStep")},
            "current": {"type": ["string", "null"], "description": "The step waiting now; null once ended"},
            "finding": {
                "description": "null while running; then the check <device>.guided (panel.guided, "
                "signature.guided) with what to do when not ok",
                "oneOf": [_ref("DiagnosticFinding"), {"type": "null"}],
            },
            "run_id": {"type": ["string", "null"], "description": "The stored run of its finding"},
            "started_at": {"type": "string"},
            "time_limit_s": {"type": "number"},
        },
    },
    "GuidedEvent": {
        "description": "The guided test's state whenever it changes; while the pad test runs, ink "
        "carries the pen's new points (such an event is sent live only, never replayed)",
        "allOf": [_ref("GuidedTest")],
        "properties": {
            "ink": {
                "type": "object",
                "required": ["points", "max_x", "max_y", "max_pressure"],
                "properties": {
                    "points": {
                        "type": "array",
                        "description": "Each [x, y, pressure, tip] in the pad's units (tip 1 on the surface)",
                        "items": {
                            "type": "array",
                            "items": {"type": "integer"},
                            "minItems": 4,
                            "maxItems": 4,
                        },
                    },
                    "max_x": {"type": "integer"},
                    "max_y": {"type": "integer"},
                    "max_pressure": {"type": "integer"},
                },
            }
        },
    },
    # The peripheral's firmware (issue 32): its MCUboot slots and the operations on them.
    "FirmwareSlot": {
        "type": "object",
        "required": ["slot", "version", "hash", "bootable", "pending", "confirmed", "active", "permanent"],
        "properties": {
            "slot": {"type": "integer", "description": "0 runs, 1 receives uploads (and keeps the previous)"},
            "version": {"type": "string", "description": "major.minor.revision+build"},
            "hash": {"type": "string", "description": "The image's SHA-256 (its hash TLV), hex"},
            "bootable": {"type": "boolean"},
            "pending": {"type": "boolean", "description": "Marked to boot (for test) at the next reset"},
            "confirmed": {"type": "boolean", "description": "Kept by MCUboot across resets"},
            "active": {"type": "boolean", "description": "The image running now"},
            "permanent": {"type": "boolean"},
        },
    },
    "FirmwareFinding": {
        "type": "object",
        "required": ["check", "ok", "reason"],
        "properties": {
            "check": {"enum": ["format", "hash", "signature", "version", "allow_list"]},
            "ok": {"type": "boolean"},
            "reason": {"type": "string", "description": "One line, in English"},
        },
    },
    "FirmwareVerification": {
        "type": "object",
        "required": ["ok", "findings", "running_version", "version", "image_hash", "image_size"],
        "properties": {
            "ok": {"type": "boolean", "description": "Every check passed: the image may go in"},
            "findings": {"type": "array", "items": _ref("FirmwareFinding")},
            "running_version": {
                "type": ["string", "null"],
                "description": "The running version the version check compared with (null: unknown)",
            },
            "version": {"type": ["string", "null"]},
            "image_hash": {"type": ["string", "null"]},
            "image_size": {"type": "integer"},
        },
    },
    "FirmwareStep": {
        "type": "object",
        "required": ["action", "at", "details"],
        "properties": {
            "action": {
                "type": "string",
                "description": "Its audit log action: firmware_verified, firmware_refused, "
                "firmware_rollback_started, firmware_upload_started, firmware_upload_interrupted, "
                "firmware_uploaded, firmware_marked_for_test, firmware_reset, firmware_back, "
                "firmware_self_test, firmware_confirmed, firmware_reverted, firmware_failed, "
                "firmware_erased, firmware_still_marked",
            },
            "at": {"type": "string", "description": "When, by the kit's clock"},
            "details": {"type": "object", "description": "Version, hash, offset, what ran, why"},
        },
    },
    "FirmwareOperation": {
        "type": "object",
        "required": [
            "operation_id", "kind", "device", "state", "bytes_done", "bytes_total", "steps", "outcome",
        ],
        "properties": {
            "operation_id": {"type": "string"},
            "kind": {"enum": ["upload", "rollback"]},
            "device": {"type": "string"},
            "state": {
                "enum": ["running", "confirmed", "rolled_back", "reverted", "refused", "failed"],
                "description": "confirmed: the new image runs, confirmed; rolled_back: the previous "
                "image runs again; reverted: the image from before runs (the new one was reverted); "
                "refused: nothing was sent; failed: the outcome says what runs",
            },
            "version": {"type": ["string", "null"], "description": "The image's version"},
            "image_hash": {"type": ["string", "null"]},
            "image_size": {"type": "integer"},
            "allow_downgrade": {"type": "boolean"},
            "bytes_done": {"type": "integer", "description": "Bytes the peripheral holds of the image"},
            "bytes_total": {"type": "integer"},
            "findings": {"type": "array", "items": _ref("FirmwareFinding")},
            "steps": {"type": "array", "items": _ref("FirmwareStep")},
            "old_version": {"type": ["string", "null"], "description": "What ran before"},
            "running_version": {"type": ["string", "null"], "description": "What runs after"},
            "running_hash": {"type": ["string", "null"]},
            "outcome": {"type": ["string", "null"], "description": "One line, once it has ended"},
            "started_at": {"type": "string"},
            "ended_at": {"type": ["string", "null"]},
        },
    },
    "Firmware": {
        "type": "object",
        "required": ["device", "status", "running_version", "slots", "read_now", "problem", "operation"],
        "properties": {
            "device": {"type": ["string", "null"], "description": "The peripheral's id (null: none)"},
            "status": {"type": ["string", "null"], "description": "Its device status"},
            "running_version": {"type": ["string", "null"]},
            "slots": {"type": "array", "items": _ref("FirmwareSlot")},
            "read_now": {
                "type": "boolean",
                "description": "false: the slots as last read (an operation holds the peripheral, or it "
                "did not answer: problem says why)",
            },
            "problem": {"type": ["string", "null"]},
            "operation": {"oneOf": [_ref("FirmwareOperation"), {"type": "null"}]},
        },
    },
    "ClockRequest": {
        "type": "object",
        "required": ["laptop_time"],
        "additionalProperties": False,
        "properties": {
            "laptop_time": {
                "type": "string",
                "description": "The laptop's time as it sends the request: ISO 8601 with its zone "
                "(2026-11-30T12:00:00.000Z, or +07:00)",
            }
        },
    },
    "ClockConfirmation": {
        "type": "object",
        "required": [
            "laptop_time",
            "kit_time_before",
            "kit_time",
            "skew_s",
            "corrected",
            "by_system",
            "confirmed_at",
            "max_skew_s",
        ],
        "properties": {
            "laptop_time": {"type": "string"},
            "kit_time_before": {"type": "string"},
            "kit_time": {"type": "string"},
            "skew_s": {"type": "number", "description": "The laptop's time minus the kit's, before"},
            "corrected": {"type": "boolean", "description": "The skew was beyond clock.max_skew_s"},
            "by_system": {"type": "boolean", "description": "The machine's clock was set"},
            "confirmed_at": {"type": "string"},
            "max_skew_s": {"type": "number"},
        },
    },
    "Status": {
        "type": "object",
        "required": ["version", "uptime_s", "devices", "sealing", "outbox", "audit", "clock"],
        "properties": {
            "version": {"type": "string"},
            "clock": _ref("Clock"),
            "audit": {
                "type": "object",
                "description": "The audit log: its entries, its latest signed checkpoint, and why the "
                "kit could not sign one (a log rewritten under its last checkpoint, a broken key)",
                "required": ["entries", "checkpoint_size", "checkpoint_at", "problem"],
                "properties": {
                    "entries": {"type": "integer"},
                    "checkpoint_size": {"type": ["integer", "null"]},
                    "checkpoint_at": {"type": ["string", "null"]},
                    "problem": {"type": ["string", "null"]},
                },
            },
            "outbox": {"$ref": "#/components/schemas/OutboxSummary"},
            "uptime_s": {"type": "number"},
            "sealing": {
                "type": "object",
                "description": "Whether finished visits can be sealed: the kit's key and the recipients' "
                "certificates in data_dir/keys (an officer's own key is checked at finish)",
                "required": ["ready", "problem", "warnings"],
                "properties": {
                    "ready": {"type": "boolean"},
                    "problem": {"type": ["string", "null"]},
                    "warnings": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Credentials within 30 days of their end: renew them",
                    },
                },
            },
            "devices": {
                "type": "object",
                "required": DEVICE_STATUSES,
                "properties": {s: {"type": "integer"} for s in DEVICE_STATUSES},
            },
        },
    },
    "OutboxSummary": {
        "type": "object",
        "description": "The outbox in data_dir/outbox: room on the disk, bundles by state, the oldest "
        "bundle the office does not have yet, and bundles whose files start-up found wrong",
        "required": [
            "free_bytes",
            "reserve_bytes",
            "reserve_ok",
            "bundles",
            "oldest_unacknowledged_sealed_at",
            "oldest_unacknowledged_age_s",
            "problems",
            "problem",
        ],
        "properties": {
            "free_bytes": {"type": ["integer", "null"]},
            "reserve_bytes": {
                "type": "integer",
                "description": "outbox.reserve_visits full visits: below it no visit starts",
            },
            "reserve_ok": {"type": "boolean"},
            "bundles": {
                "type": "object",
                "required": list(OUTBOX_STATES),
                "properties": {state: {"type": "integer"} for state in OUTBOX_STATES},
            },
            "oldest_unacknowledged_sealed_at": {"type": ["string", "null"]},
            "oldest_unacknowledged_age_s": {"type": ["integer", "null"]},
            "problems": {
                "type": "array",
                "description": "Bundles whose file is missing or damaged (kept on the list, never dropped)",
                "items": {
                    "type": "object",
                    "required": ["bundle_id", "state", "problem", "problem_since"],
                    "properties": {
                        "bundle_id": {"type": "string"},
                        "state": {"type": "string"},
                        "problem": {"enum": ["missing", "damaged"]},
                        "problem_since": {"type": "string"},
                    },
                },
            },
            "problem": {
                "type": ["string", "null"],
                "description": "What start-up's reconciliation could not do, if anything",
            },
        },
    },
    "OutboxBundle": {
        "type": "object",
        "required": ["bundle_id", "visit_id", "state", "sha256", "size", "sealed_at", "problem"],
        "properties": {
            "bundle_id": {"type": "string"},
            "visit_id": {"type": ["string", "null"]},
            "state": {"enum": list(OUTBOX_STATES)},
            "sha256": {"type": "string"},
            "size": {"type": "integer"},
            "sealed_at": {"type": "string"},
            "offered_at": {"type": ["string", "null"]},
            "offered_to": {"type": ["string", "null"]},
            "acknowledged_at": {"type": ["string", "null"]},
            "acknowledged_by": {"type": ["string", "null"]},
            "laptop_receipt": {"type": ["object", "null"]},
            "delivered_at": {"type": ["string", "null"]},
            "central_receipt": {"type": ["object", "null"]},
            "erased_at": {"type": ["string", "null"]},
            "problem": {"type": ["string", "null"]},
            "problem_since": {"type": ["string", "null"]},
        },
    },
    "AuditEntry": {
        "type": "object",
        "required": ["seq", "at", "clock_confirmed", "actor", "action", "details"],
        "properties": {
            "seq": {"type": "integer"},
            "at": {"type": "string"},
            "clock_confirmed": {"type": "boolean"},
            "actor": {"type": "string", "description": "An officer's NIP, or system"},
            "action": {"type": "string"},
            "details": {"type": "object", "description": "What the action did; a NIK masked to 6+2 digits"},
        },
    },
    "Receipt": {
        "type": "object",
        "description": "A signed statement (detached CMS over the RFC 8785 form of 'statement', base64)",
        "required": ["statement", "signature"],
        "properties": {
            "statement": {
                "type": "object",
                "required": ["type", "bundle_id", "sha256", "size", "received_at", "by"],
                "properties": {
                    "type": {"enum": ["laptop_receipt", "central_receipt"]},
                    "bundle_id": {"type": "string"},
                    "sha256": {"type": "string"},
                    "size": {"type": "integer"},
                    "received_at": {"type": "string"},
                    "by": {"type": "string"},
                },
            },
            "signature": {"type": "string"},
        },
    },
    "ReceiptResults": {
        "type": "object",
        "required": ["results", "accepted", "duplicate", "refused"],
        "properties": {
            "results": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "result"],
                    "properties": {
                        "index": {"type": "integer"},
                        "bundle_id": {},
                        "type": {},
                        "result": {"enum": ["accepted", "duplicate", "refused"]},
                        "state": {"type": "string"},
                        "reason": {"type": "string"},
                    },
                },
            },
            "accepted": {"type": "integer"},
            "duplicate": {"type": "integer"},
            "refused": {"type": "integer"},
            "error": {"type": "string"},
            "message": {"type": "string"},
        },
    },
    "DeviceList": {"type": "array", "items": _ref("Device"), "description": "The configured devices."},
    "Device": {
        "type": "object",
        "required": ["id", "uri", "kind", "model", "serial", "firmware", "status", "detail"],
        "properties": {
            "id": {"type": "string"},
            "uri": {"type": "string"},
            "kind": {"enum": ["fingerprint", "signature", "iris_camera", "panel", "peripheral"]},
            "model": {"type": ["string", "null"]},
            "serial": {"type": ["string", "null"]},
            "firmware": {"type": ["string", "null"]},
            "status": {"enum": DEVICE_STATUSES},
            "detail": {
                "type": "object",
                "description": "Kind-specific facts (a peripheral's: path, baud, buf_size and "
                "image_slots, its MCUboot slots as when it was last opened)",
            },
        },
    },
    "SessionRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["device_id", "modality", "category"],
        "properties": {
            "device_id": {"type": "string"},
            "modality": {"enum": ["fingerprint", "iris", "signature"]},
            "label": {
                "type": "string",
                "maxLength": 64,
                "pattern": "^[ -~]*$",
                "description": "Finger position or eye (e.g. finger:1, iris:right); printable ASCII",
            },
            "category": {"enum": CATEGORIES},
        },
    },
    "Session": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "device_id": {"type": "string"},
            "modality": {"type": "string"},
            "label": {"type": "string"},
            "category": {"type": "string"},
            "state": {"enum": SESSION_STATES},
            "attempts": {"type": "integer"},
            "timeout_s": {"type": "number"},
            "max_attempts": {"type": ["integer", "null"]},
            "best_score": {"type": ["number", "null"]},
            **_PROGRESS,
            "forced": {"type": "boolean"},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "ended_by": _ENDED_BY,
            "result": {
                "type": ["object", "null"],
                "properties": {
                    "frame": {"type": "integer"},
                    "score": {"type": "number"},
                    "feedback": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
    "AssessmentEvent": {
        "type": "object",
        "required": ["session", "frame", "score", "passed", "feedback"],
        "properties": {
            "session": {"type": "string"},
            "frame": {"type": "integer", "description": "1 for the session's first frame or press"},
            "score": {"type": "number"},
            "passed": {"type": "boolean"},
            "feedback": {"type": "array", "items": {"type": "string"}},
            "circles": {"type": "object", "description": "Iris only: pupil and iris circles in pixels"},
            "points": {
                "type": "integer",
                "description": "Signature only: pen packets in the signature judged",
            },
            **_PROGRESS,
        },
    },
    "InkEvent": {
        "type": "object",
        "description": "A signature session's pen points since the last ink event, for the screen "
        "to draw live: each [x, y, pressure, tip] in the pad's units (tip 1 on the surface).",
        "required": ["session", "from", "points", "read_at", "max_x", "max_y", "max_pressure"],
        "properties": {
            "session": {"type": "string"},
            "from": {"type": "integer", "description": "The index of the first point in the recording"},
            "read_at": {
                "type": "number",
                "description": "When the first of these points was read (UNIX time, seconds)",
            },
            "points": {
                "type": "array",
                "items": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4},
            },
            "max_x": {"type": "integer"},
            "max_y": {"type": "integer"},
            "max_pressure": {"type": "integer"},
        },
    },
    "CaptureEvent": {
        "type": "object",
        "required": ["session", "score", "forced"],
        "properties": {
            "session": {"type": "string"},
            "score": {"type": "number"},
            "forced": {"type": "boolean"},
        },
    },
    "EndEvent": {
        "type": "object",
        "required": ["session", "outcome", "reasons", "ended_by"],
        "properties": {
            "session": {"type": "string"},
            "outcome": {"enum": SESSION_STATES[1:]},
            "reasons": {"type": "array", "items": {"type": "string"}},
            "ended_by": _ENDED_BY,
        },
    },
    "GapEvent": {
        "type": "object",
        "description": "Sent first (without an id) to a client that reconnected with a Last-Event-ID "
        "whose following events the daemon no longer keeps, or that is not one of this run's ids.",
        "required": ["last_event_id", "first_id", "reason"],
        "properties": {
            "last_event_id": {"type": "string", "description": "The Last-Event-ID the client sent"},
            "first_id": {"type": "integer", "description": "The id of the first event that follows"},
            "reason": {"type": "string"},
        },
    },
    "SignInRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["nip", "pin"],
        "properties": {"nip": _NIP, "pin": _PIN},
    },
    "Officer": {
        "type": "object",
        "required": ["nip", "name", "role", "active", "locked", "language"],
        "properties": {
            "nip": _NIP,
            "name": {"type": "string"},
            "role": {"enum": ROLES},
            "active": {"type": "boolean", "description": "false once deactivated (never deleted)"},
            "locked": {"type": "boolean", "description": "true after too many wrong PINs, until unlocked"},
            "language": {
                "enum": ["id", "en"],
                "description": "The touch screen's language for this officer: id (Bahasa Indonesia, the "
                "default) or en",
            },
        },
    },
    "SignIn": {
        "type": "object",
        "required": ["token", "officer", "expires_at", "credential"],
        "properties": {
            "token": {"type": "string", "description": "Also set as the HttpOnly kitd_token cookie."},
            "officer": _ref("Officer"),
            "credential": {
                "type": "object",
                "required": ["state", "problem"],
                "description": "The officer's signing credential, opened by this sign-in until sign-out or "
                "lock: unlocked (an installed credential), file (a plain key: development), none, or "
                "unusable (problem says why); without one the officer cannot finish a visit",
                "properties": {
                    "state": {"enum": ["unlocked", "file", "none", "unusable"]},
                    "problem": {"type": ["string", "null"]},
                },
            },
            "expires_at": {
                "type": "string",
                "description": "When the token ends if unused (ISO 8601, UTC); each use moves it on.",
            },
        },
    },
    "NewOfficer": {
        "type": "object",
        "additionalProperties": False,
        "required": ["nip", "name", "role", "pin"],
        "properties": {
            "nip": _NIP,
            "name": {"type": "string", "minLength": 1, "maxLength": 200},  # officers.MAX_NAME
            "role": {"enum": ROLES},
            "pin": _PIN,
        },
    },
    "LanguageChoice": {
        "type": "object",
        "additionalProperties": False,
        "required": ["language"],
        "properties": {"language": {"enum": ["id", "en"]}},
    },
    "Me": {
        "type": "object",
        "required": ["officer", "role", "idle_lock_s"],
        "properties": {
            "officer": {
                "oneOf": [_ref("Officer"), {"type": "null"}],
                "description": "null on the kit's socket",
            },
            "role": {"enum": ROLES},
            "idle_lock_s": {"type": "number", "description": "A sign-in ends after this long unused"},
        },
    },
    "Words": {
        "type": "object",
        "required": ["id", "en"],
        "description": "One message in Bahasa Indonesia (id) and English (en)",
        "properties": {"id": {"type": "string"}, "en": {"type": "string"}},
    },
    "Messages": {
        "type": "object",
        "required": ["languages", "feedback", "reasons"],
        "properties": {
            "languages": {"type": "array", "items": {"enum": ["id", "en"]}},
            "feedback": {
                "type": "object",
                "description": "The quality assessors' feedback by modality, then by code",
                "additionalProperties": {"type": "object", "additionalProperties": _ref("Words")},
            },
            "reasons": {
                "type": "object",
                "description": "Why a visit cannot start, by code (device_missing:KIND per device kind)",
                "additionalProperties": _ref("Words"),
            },
        },
    },
    "Summary": {
        "type": "object",
        "required": [
            "kit",
            "officer",
            "role",
            "idle_lock_s",
            "devices",
            "outbox",
            "disk",
            "battery",
            "clock",
            "visit",
            "others_visit",
            "visit_start",
            "ended_by_others",
        ],
        "properties": {
            "kit": {
                "type": "object",
                "required": ["id", "timezone"],
                "properties": {"id": {"type": "string"}, "timezone": {"type": "string"}},
            },
            "officer": {"oneOf": [_ref("Officer"), {"type": "null"}]},
            "role": {"enum": ROLES},
            "idle_lock_s": {"type": "number"},
            "devices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "kind", "status", "ready", "reason"],
                    "properties": {
                        "id": {"type": "string"},
                        "kind": {"type": "string"},
                        "status": {"enum": ["ready", "busy", "disconnected", "error"]},
                        "ready": {"type": "boolean", "description": "ready or busy: there to capture with"},
                        "reason": {"type": "string"},
                    },
                },
            },
            "outbox": {
                "type": "object",
                "required": ["waiting", "problems"],
                "properties": {
                    "waiting": {"type": "integer", "description": "Sealed bundles no laptop has taken yet"},
                    "problems": {
                        "type": "integer",
                        "description": "Bundles whose files start-up found wrong",
                    },
                },
            },
            "disk": {
                "type": "object",
                "required": ["free_bytes", "reserve_bytes", "enough"],
                "properties": {
                    "free_bytes": {"type": ["integer", "null"]},
                    "reserve_bytes": {"type": "integer"},
                    "enough": {"type": "boolean"},
                },
            },
            "battery": {
                "description": "The peripheral's battery gauge as last read (every "
                "devices.battery_interval_s); null on a kit without one, or when no reading is "
                "fresher than three intervals",
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["percent", "charging"],
                        "properties": {
                            "percent": {"type": "number"},
                            "charging": {"type": "boolean"},
                            "millivolts": {"type": "integer"},
                            "read_at": {"type": "string", "description": "ISO 8601, the kit's clock"},
                        },
                    },
                    {"type": "null"},
                ],
            },
            "clock": {
                "type": "object",
                "required": ["now", "confirmed", "confirmed_at", "went_back"],
                "properties": {
                    "now": {"type": "string", "description": "The kit's time, UTC (its corrected clock)"},
                    "confirmed": {
                        "type": "boolean",
                        "description": "Whether a laptop has confirmed the clock since the kit started",
                    },
                    "confirmed_at": {"type": ["string", "null"]},
                    "went_back": {
                        "type": "boolean",
                        "description": "A restart found the clock behind the time the kit had seen",
                    },
                },
            },
            "visit": {
                "description": "The caller's active visit (kept across a lock), or null",
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["id", "state", "order_id"],
                        "properties": {
                            "id": {"type": "string"},
                            "state": {"type": "string"},
                            "order_id": {"type": "string"},
                        },
                    },
                    {"type": "null"},
                ],
            },
            "others_visit": {
                "description": "Another officer's active visit (the caller cannot start one until "
                "it ends: that officer continues it, or it is ended with an outcome), or null",
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["id", "state", "order_id", "officer"],
                        "properties": {
                            "id": {"type": "string"},
                            "state": {"type": "string"},
                            "order_id": {"type": "string"},
                            "officer": _OFFICER_NAMED,
                        },
                    },
                    {"type": "null"},
                ],
            },
            "visit_start": {
                "type": "object",
                "required": ["possible", "reasons"],
                "properties": {
                    "possible": {"type": "boolean"},
                    "reasons": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {
                                    "enum": [
                                        "no_credential",
                                        "disk_reserve",
                                        "sealing_not_ready",
                                        "visit_active",
                                        "visit_of_another",
                                        "device_missing",
                                    ]
                                },
                                "device": {"type": "string", "description": "For device_missing: the kind"},
                                "message": _ref("Words"),
                            },
                        },
                    },
                },
            },
            "ended_by_others": {
                "description": "The caller's visits ended today (the kit's day) with an outcome someone "
                "else gave (a supervisor, another officer), oldest first; empty for most sign-ins",
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "order_id", "code", "note", "reschedule", "ended_at", "by"],
                    "properties": {
                        "id": {"type": "string"},
                        "order_id": {"type": "string"},
                        "code": {"type": "string", "description": "The outcome"},
                        "note": {"type": ["string", "null"]},
                        "reschedule": {"type": ["object", "null"]},
                        "ended_at": {"type": "string"},
                        "by": _OFFICER_NAMED,
                    },
                },
            },
        },
    },
    "PinChange": {
        "type": "object",
        "additionalProperties": False,
        "required": ["pin", "new_pin"],
        "properties": {"pin": {**_PIN, "description": "The current PIN."}, "new_pin": _PIN},
    },
    "PinChanged": {
        "type": "object",
        "required": ["changed", "credential"],
        "properties": {
            "changed": {"const": True},
            "credential": {
                "enum": ["rewrapped", "none", "removed"],
                "description": "The installed signing credential, wrapped again under the new PIN; none "
                "installed; or removed (it was not open, so it could not be re-wrapped: install it again)",
            },
        },
    },
    "NewPin": {
        "type": "object",
        "additionalProperties": False,
        "required": ["pin"],
        "properties": {"pin": _PIN},
    },
    "OrderImport": {
        "type": "object",
        "required": ["imported", "unchanged", "rejected", "warnings"],
        "properties": {
            "imported": {"type": "integer"},
            "unchanged": {"type": "integer", "description": "Known order ids with the same content."},
            "rejected": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["row", "order_id", "errors"],
                    "properties": {
                        "row": {"type": "integer", "description": "From 1; a CSV header is not a row."},
                        "order_id": {"type": ["string", "null"]},
                        "errors": {"type": "array", "items": _ref("FieldMessage")},
                    },
                },
            },
            "warnings": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["row", "order_id", "field", "message"],
                    "properties": {
                        "row": {"type": "integer"},
                        "order_id": {"type": ["string", "null"]},
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    },
    "ForbiddenError": {
        "type": "object",
        "required": ["error", "message", "role"],
        "properties": {
            "error": {"const": "forbidden"},
            "message": {"type": "string"},
            "role": {"enum": ROLES, "description": "The caller's role"},
        },
    },
    "VisitRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["order_id"],
        "properties": {"order_id": {"type": "string", "minLength": 1}},
    },
    "VisitIdentity": {
        "type": "object",
        "additionalProperties": False,
        "required": ["present", "consent_by"],
        "properties": {
            "present": {
                "type": "array",
                "maxItems": 20,
                "items": {"type": "string", "maxLength": 200},
                "description": "Who is there, by name (a household's worth: at most 20)",
            },
            "consent_by": {"enum": ["applicant", "guardian"]},
            "guardian": {
                "type": "object",
                "required": ["name", "relation"],
                "properties": {
                    "name": {"type": "string", "maxLength": 200},
                    "relation": {"type": "string", "maxLength": 100},
                },
                "description": "Required when consent_by is guardian, and for an odgj applicant",
            },
        },
    },
    "VisitException": {
        "type": "object",
        "additionalProperties": False,
        "required": ["reason", "confirm"],
        "properties": {
            "reason": {
                "enum": [
                    "amputated",
                    "bandaged",
                    "unable_to_print",
                    "cannot_position",
                    "missing",
                    "blind_or_diseased",
                    "cannot_open",
                    "cannot_sign",
                ],
                "description": "A finger's (or thumbprint's): amputated, bandaged, unable_to_print, "
                "cannot_position; an eye's: missing, blind_or_diseased, cannot_open; the signature's: "
                "cannot_sign",
            },
            "confirm": {"const": True, "description": "The officer confirms the exception explicitly"},
        },
    },
    "VisitOutcome": {
        "type": "object",
        "additionalProperties": False,
        "required": ["code"],
        "properties": {
            "code": {"enum": ["not_home", "refused", "unable", "rescheduled", "cancelled"]},
            "note": {"type": "string", "maxLength": 1000, "description": "Required for unable and cancelled"},
            "reschedule": {
                "type": "object",
                "required": ["start", "end"],
                "properties": {"start": {"type": "string"}, "end": {"type": "string"}},
                "description": "The new appointment (ISO 8601 with offsets), for rescheduled only; it may "
                "not start before the kit's clock says now",
            },
        },
    },
    "VisitItem": {
        "type": "object",
        "required": ["item", "status", "score", "feedback", "attempts", "session_id", "exception", "history"],
        "properties": {
            "item": {
                "type": "string",
                "description": "finger:1 .. finger:10 (FGP), iris:right, iris:left, signature, thumbprint",
            },
            "status": {"enum": ["pending", "capturing", "captured", "forced", "excepted", "to_retake"]},
            "score": {"type": ["number", "null"]},
            "passed": {"type": ["boolean", "null"]},
            "feedback": {"type": "array", "items": {"type": "string"}},
            "failed_checks": {"type": "array", "items": {"type": "string"}},
            "attempts": {"type": "integer"},
            "session_id": {"type": ["string", "null"]},
            "exception": {
                "type": ["object", "null"],
                "properties": {
                    "reason": {"type": "string"},
                    "confirmed_by": {"type": "string"},
                    "at": {"type": "string"},
                },
            },
            "finger": {"type": ["integer", "null"], "description": "A thumbprint's FGP position"},
            "history": {
                "type": "array",
                "items": {"type": "object"},
                "description": "Earlier attempts, oldest first",
            },
        },
    },
    "Visit": {
        "type": "object",
        "required": [
            "id",
            "order_id",
            "officer",
            "category",
            "state",
            "current",
            "outcome",
            "identity",
            "items",
            "started_at",
            "updated_at",
            "resumed",
            "bundle",
            "order_withdrawn",
        ],
        "properties": {
            "id": {"type": "string"},
            "order_id": {"type": "string"},
            "officer": {"type": "string", "description": "NIP of the officer who started it"},
            "category": {"enum": CATEGORIES},
            "state": {"enum": ["identity", "capturing", "review", "ending", "finished", "ended"]},
            "current": {"type": ["string", "null"]},
            "outcome": {
                "type": ["object", "null"],
                "properties": {
                    "code": {"type": "string"},
                    "note": {"type": ["string", "null"]},
                    "reschedule": {"type": ["object", "null"]},
                    "by": {
                        "type": ["string", "null"],
                        "description": "Who gave the outcome: an officer's NIP, or system",
                    },
                },
            },
            "identity": {"type": ["object", "null"]},
            "items": {"type": "array", "items": _ref("VisitItem")},
            "started_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "resumed": {"type": "boolean", "description": "true once brought back after a restart"},
            "bundle": {
                "type": ["object", "null"],
                "description": "The sealed bundle a finished visit became (in data_dir/outbox); null before",
                "required": ["id", "size", "sealed_at"],
                "properties": {
                    "id": {"type": "string", "description": "The bundle's UUID"},
                    "size": {"type": "integer", "description": "Bytes of the sealed file"},
                    "sealed_at": {"type": "string"},
                },
            },
            "order_withdrawn": {
                "type": "boolean",
                "description": "The office withdrew the order while this visit ran (a field laptop's "
                "DELETE /api/v1/orders/{id}); the visit may still finish, the office decides",
            },
        },
    },
    "OrderWithdrawnEvent": {
        "type": "object",
        "description": "The office withdrew a work order (through a field laptop); visit: its visit "
        "running now, which is flagged and may still finish, or null.",
        "required": ["order_id", "visit", "visit_running"],
        "properties": {
            "order_id": {"type": "string"},
            "visit": {"type": ["string", "null"]},
            "visit_running": {"type": "boolean"},
        },
    },
    "WrongStateError": {
        "type": "object",
        "required": ["error", "message", "state"],
        "properties": {
            "error": {"const": "wrong_state"},
            "message": {"type": "string"},
            "state": {"type": "string"},
        },
    },
    "VisitEvent": {
        "type": "object",
        "required": ["visit", "change", "state", "current"],
        "properties": {
            "visit": {"type": "string"},
            "change": {"type": "string"},
            "state": {"type": "string"},
            "current": {"type": ["string", "null"]},
            "item": {"type": "string"},
            "status": {"type": "string"},
            "score": {"type": ["number", "null"]},
        },
    },
    "FieldMessage": {
        "type": "object",
        "required": ["field", "message"],
        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
    },
    "DeviceEvent": {
        "type": "object",
        "required": ["device", "status", "reason"],
        "properties": {
            "device": {"type": "string"},
            "status": {"enum": DEVICE_STATUSES},
            "reason": {"type": "string"},
        },
    },
    "PanelEvent": {
        "type": "object",
        "description": "A button of the physical panel changed something, or meant nothing (the "
        "low tone). The screen shows it; action exception_reasons asks it to open the item's "
        "exception reasons.",
        "required": ["button", "action", "outcome", "visit", "item", "message"],
        "properties": {
            "button": {"enum": ["capture", "retry", "skip", "cancel"]},
            "action": {
                "enum": [
                    "accept",
                    "start",
                    "retry",
                    "exception_reasons",
                    "hold_cancel",
                    "cancel",
                    "meaningless",
                ]
            },
            "outcome": {"enum": ["done", "failed", "meaningless"]},
            "visit": {"type": ["string", "null"]},
            "item": {"type": ["string", "null"]},
            "message": {"type": "string"},
        },
    },
    # Pairing a field laptop (issue 29): the window a supervisor opens, and its events.
    "PairingRequest": {
        "type": "object",
        "description": "Open a pairing window (no body: for network.pairing_window_s).",
        "additionalProperties": False,
        "properties": {
            "seconds": {
                "type": "number",
                "minimum": 1,  # a shorter window could not be used; 1e-300 opened a closed one
                "description": "How long the window stays open, 1 s or more; at most "
                "network.pairing_window_s (longer asks are cut to it).",
            }
        },
    },
    "PairingWindow": {
        "type": "object",
        "description": "The pairing window: while open, its code, time and attempts left; the laptop "
        "the latest window paired (null until one did).",
        "required": ["open", "paired"],
        "if": {"properties": {"open": {"const": True}}},
        "then": {
            "required": ["code", "expires_at", "seconds_left", "attempts_left", "port", "kit_tls_fingerprint"]
        },
        "properties": {
            "open": {"type": "boolean"},
            "code": {"type": "string", "pattern": "^[0-9]{6}$", "description": "What the laptop types."},
            "expires_at": {"type": "string", "format": "date-time"},
            "seconds_left": {"type": "number", "minimum": 0},
            "attempts_left": {"type": "integer", "minimum": 0, "maximum": 5},
            "port": {"type": "integer", "description": "The pairing port (kit-sync pair HOST:PORT CODE)."},
            "kit_tls_fingerprint": {
                "type": "string",
                "pattern": "^[0-9a-f]{64}$",
                "description": "SHA-256 of the kit's TLS certificate: what the laptop will pin.",
            },
            "paired": {"type": ["string", "null"]},
        },
    },
    "PairingEvent": {
        "type": "object",
        "description": "The pairing window opened (or an attempt was used), closed (why: closed, "
        "expired, wrong_codes, paired, shutdown) or paired a laptop. Never the code.",
        "required": ["state"],
        "properties": {
            "state": {"enum": ["open", "closed", "paired"]},
            "expires_at": {"type": "string"},
            "seconds_left": {"type": "number"},
            "attempts_left": {"type": "integer"},
            "port": {"type": "integer"},
            "kit_tls_fingerprint": {"type": "string"},
            "why": {"type": "string"},
            "laptop_name": {"type": "string"},
        },
    },
}

# The request body a capture takes, per device kind.
CAPTURE_REQUESTS: Mapping[str, str] = {
    "fingerprint": "FingerprintCaptureRequest",
    "iris_camera": "IrisCaptureRequest",
    "signature": "SignatureCaptureRequest",
}


class ShapeError(ValueError):
    """A value is not of the shape a schema says; `field` names where (top-level key), if anywhere."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _validator(name: str) -> Draft202012Validator:
    # The components live in one resource, so that a schema's $ref to another resolves as in
    # the OpenAPI document itself.
    resource = Resource.from_contents({"components": {"schemas": SCHEMAS}}, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(COMPONENTS_URI, resource)
    return Draft202012Validator({"$ref": f"{COMPONENTS_URI}#/components/schemas/{name}"}, registry=registry)


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type (what the document holds, not Python's word for it)."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    names = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _where(path: list[Any]) -> str:
    """`device.max_x`, `points[5].tip`; top-level keys alone are quoted: 'points'."""
    if not path:
        return "the JSON"
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return f"'{text}'" if len(path) == 1 else text


def _plain(path: list[Any]) -> str:
    text = _where(path)
    return text.strip("'")


def _json_word(value: Any) -> str:
    """A value as the caller wrote it: true and null as JSON has them (not Python's True and
    None), others quoted and cut as a refused value is (kitd.errors.shown_value)."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return shown_value(value)


def describe(error: ValidationError) -> ShapeError:
    """One ValidationError in the kit's words, naming the field."""
    path = list(error.absolute_path)
    field = str(path[0]) if path else None
    value = error.instance
    kind = error.validator
    if kind == "required":
        missing = next(k for k in error.validator_value if k not in value)
        where = f"no '{missing}'" if not path else f"{_plain(path)}.{missing} is missing"
        return ShapeError(where, field or missing)
    if kind == "additionalProperties":
        allowed = error.schema.get("properties", {})
        extra = next(k for k in value if k not in allowed)
        accepted = f" (accepted: {', '.join(allowed)})" if allowed else ""
        at = f" in {_plain(path)}" if path else ""
        return ShapeError(f"unknown field '{extra}'{at}{accepted}", field or extra)
    if kind == "type":
        expected = error.validator_value
        expected = expected if isinstance(expected, list) else [expected]
        if expected in (["object"], ["array"]):
            container = "an object" if expected == ["object"] else "an array"
            return ShapeError(f"{_where(path)} is {json_type(value)}, not {container}", field)
        words = {"integer": "an integer", "number": "a number", "boolean": "true/false", "string": "a string"}
        wanted = " or ".join(words.get(t, t) for t in expected)
        return ShapeError(f"{_plain(path)} is not {wanted}: {shown_value(value)}", field)
    if kind in ("exclusiveMinimum", "maximum", "minimum"):
        limit = error.validator_value
        bounds = {
            "exclusiveMinimum": f"above {limit}",
            "maximum": f"{limit} or less",
            "minimum": f"{limit} or more",
        }
        bound = bounds[kind]
        return ShapeError(f"{_plain(path)} must be {bound}, not {shown_value(value)}", field)
    if kind in ("enum", "const"):
        allowed = error.validator_value if kind == "enum" else [error.validator_value]
        named = ", ".join(a if isinstance(a, str) else _json_word(a) for a in allowed)
        if kind == "const":
            return ShapeError(f"{_plain(path)} must be {named}, not {_json_word(value)}", field)
        return ShapeError(f"{_plain(path)} must be one of {named}, not {_json_word(value)}", field)
    if kind == "pattern":
        pattern = error.validator_value
        return ShapeError(f"{_plain(path)} {shown_value(value)} does not match {pattern}", field)
    if kind in ("maxLength", "minLength"):
        bound = "at most" if kind == "maxLength" else "at least"
        return ShapeError(f"{_plain(path)}: {len(value)} characters, {bound} {error.validator_value}", field)
    if kind in ("maxItems", "minItems"):
        bound = "at most" if kind == "maxItems" else "at least"
        return ShapeError(f"{_plain(path)}: {len(value)} items, {bound} {error.validator_value}", field)
    if kind in ("oneOf", "anyOf"):
        # jsonschema's own words quote the whole value, however long. With no sub-error the
        # value fits several of oneOf's shapes, not none.
        fits = "fits more than one" if not error.context else "has none"
        return ShapeError(f"{_where(path)} {fits} of the shapes it may take", field)
    if kind == "not" and error.validator_value == _RAW_AND_FORCE:
        return ShapeError(
            f"{_plain(path + ['raw'])} and force cannot both be true: raw takes one frame without the "
            "quality gate, force the best capture despite it",
            "force" if not path else field,
        )
    return ShapeError(f"{_plain(path)}: {error.message}", field)


def _order(error: ValidationError) -> tuple[Any, ...]:
    # The first thing wrong in document order: shallower first, then by position.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path)


# Built once: the schemas never change while the kit runs.
VALIDATORS: Mapping[str, Draft202012Validator] = {name: _validator(name) for name in SCHEMAS}


def first_problem(validator: Draft202012Validator, value: Any) -> ShapeError | None:
    """The first way (in document order) ``value`` breaks ``validator``'s schema, in words."""
    errors = sorted(validator.iter_errors(value), key=_order)
    return describe(errors[0]) if errors else None


def check(name: str, value: Any) -> None:
    """ShapeError for the first way `value` is not a SCHEMAS[name]."""
    problem = first_problem(VALIDATORS[name], value)
    if problem is not None:
        raise problem
