"""The OpenAPI document of the daemon's local HTTP API; it grows with every endpoint."""

from __future__ import annotations

from typing import Any

from kitd import __version__

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "Machine-readable code."},
        "message": {"type": "string", "description": "One line for a person."},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SESSION_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}

SESSION_PATHS: dict[str, Any] = {
    "/api/v1/sessions": {
        "post": {
            "summary": "Start a live capture session on a device",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("SessionRequest")}},
            },
            "responses": {
                "201": _json(
                    {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
                    "Started",
                ),
                "400": _error("Malformed request, wrong modality for the device, unknown category"),
                "404": _error("Unknown device"),
                "409": _error("Device busy"),
                "503": _error("Device disconnected"),
            },
        }
    },
    "/api/v1/sessions/{id}": {
        "get": {
            "summary": "State, best score so far and result summary",
            "parameters": [SESSION_ID],
            "responses": {"200": _json(_ref("Session"), "The session"), "404": _error("Unknown session")},
        },
        "delete": {
            "summary": "Cancel the session",
            "parameters": [SESSION_ID],
            "responses": {"202": _json(_ref("Session"), "Cancelling"), "404": _error("Unknown session")},
        },
    },
    "/api/v1/sessions/{id}/confirm": {
        "post": {
            "summary": "The officer accepts the best capture (flagged forced if it did not pass)",
            "parameters": [SESSION_ID],
            "responses": {
                "200": _json(_ref("Session"), "Confirmed"),
                "404": _error("Unknown session"),
                "409": _error("Already ended, or nothing to confirm yet"),
            },
        }
    },
    "/api/v1/sessions/{id}/capture": {
        "get": {
            "summary": "The session's capture (in memory only); a PNG for image modalities",
            "parameters": [SESSION_ID],
            "responses": {
                "200": {
                    "description": "The capture; X-Kit-Forced: true when it did not pass the gate",
                    "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
                },
                "404": _error("Unknown session"),
                "409": _error("No capture (yet)"),
            },
        }
    },
    "/api/v1/events": {
        "get": {
            "summary": "Server-sent events: assessment, capture, end, device",
            "description": "Each event has `id` (increasing), `event` (its type) and `data` (JSON): "
            "assessment -> AssessmentEvent, capture -> CaptureEvent, end -> EndEvent, device -> DeviceEvent.",
            "responses": {"200": {"description": "The stream", "content": {"text/event-stream": {}}}},
        }
    },
}

SESSION_SCHEMAS: dict[str, Any] = {
    "SessionRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["device_id", "modality", "category"],
        "properties": {
            "device_id": {"type": "string"},
            "modality": {"enum": ["fingerprint", "iris", "signature"]},
            "label": {"type": "string", "description": "Finger position or eye"},
            "category": {"enum": ["lansia", "disabilitas", "odgj", "lainnya"]},
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
            "state": {"enum": ["running", "captured", "confirmed", "forced", "cancelled", "failed"]},
            "attempts": {"type": "integer"},
            "timeout_s": {"type": "number"},
            "max_attempts": {"type": ["integer", "null"]},
            "best_score": {"type": ["number", "null"]},
            "forced": {"type": "boolean"},
            "reasons": {"type": "array", "items": {"type": "string"}},
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
        "required": ["session", "outcome", "reasons"],
        "properties": {
            "session": {"type": "string"},
            "outcome": {"enum": ["captured", "confirmed", "forced", "cancelled", "failed"]},
            "reasons": {"type": "array", "items": {"type": "string"}},
        },
    },
    "DeviceEvent": {
        "type": "object",
        "required": ["device", "status", "reason"],
        "properties": {
            "device": {"type": "string"},
            "status": {"enum": ["ready", "busy", "disconnected", "error"]},
            "reason": {"type": "string"},
        },
    },
}


def openapi_document() -> dict[str, Any]:
    document = _base_document()
    document["paths"].update(SESSION_PATHS)
    document["components"]["schemas"].update(SESSION_SCHEMAS)
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
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Device"},
                                    }
                                }
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
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/CaptureRequest"}}
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
                            },
                            "content": {
                                "image/png": {"schema": {"type": "string", "format": "binary"}},
                                "application/json": {"schema": {"$ref": "#/components/schemas/Signature"}},
                            },
                        },
                        "400": _error("Malformed request body"),
                        "404": _error("Unknown device"),
                        "409": _error("Device busy"),
                        "422": {
                            "description": "No capture passed the quality gate (and force was not set)",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/QualityGateError"}
                                }
                            },
                        },
                        "502": _error("Protocol error talking to the device"),
                        "503": _error("Device disconnected"),
                        "504": _error("No finger, frame or pen input within the time"),
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
                    "a card saying why is sent about once a second (no X-Frame-Seq).",
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
                        "400": _error("Several iris cameras and no device named"),
                        "404": _error("No such iris camera"),
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
        "components": {
            "schemas": {
                "Error": _ERROR,
                "Signature": {
                    "type": "object",
                    "description": "A signature pad's recording: every pen packet after start, hover "
                    "included, in device units (ISO/IEC 19794-7 channels x, y, pressure, time, tip).",
                    "required": ["device", "points", "strokes"],
                    "additionalProperties": False,
                    "properties": {
                        "device": {
                            "type": "object",
                            "required": ["max_x", "max_y", "max_pressure", "firmware", "points_per_mm"],
                            "properties": {
                                k: {"type": "integer"}
                                for k in ("max_x", "max_y", "max_pressure", "firmware", "points_per_mm")
                            },
                        },
                        "points": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["t_ms", "x", "y", "pressure", "tip", "proximity"],
                                "properties": {
                                    "t_ms": {"type": "number", "description": "From the first packet"},
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
                "Status": {
                    "type": "object",
                    "required": ["version", "uptime_s", "devices"],
                    "properties": {
                        "version": {"type": "string"},
                        "uptime_s": {"type": "number"},
                        "devices": {
                            "type": "object",
                            "required": ["ready", "busy", "disconnected", "error"],
                            "properties": {
                                s: {"type": "integer"} for s in ("ready", "busy", "disconnected", "error")
                            },
                        },
                    },
                },
                "Device": {
                    "type": "object",
                    "required": ["id", "uri", "kind", "model", "serial", "firmware", "status", "detail"],
                    "properties": {
                        "id": {"type": "string"},
                        "uri": {"type": "string"},
                        "kind": {"enum": ["fingerprint", "signature", "iris_camera"]},
                        "model": {"type": ["string", "null"]},
                        "serial": {"type": ["string", "null"]},
                        "firmware": {"type": ["string", "null"]},
                        "status": {"enum": ["ready", "busy", "disconnected", "error"]},
                        "detail": {"type": "object", "description": "Kind-specific facts"},
                    },
                },
                "CaptureRequest": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "timeout_s": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "description": "How long to wait for a finger or frame.",
                        },
                        "raw": {"type": "boolean", "description": "One frame, no quality gate."},
                        "force": {
                            "type": "boolean",
                            "description": "Return the best capture even if it fails the gate.",
                        },
                        "seconds": {
                            "type": "number",
                            "exclusiveMinimum": 0,
                            "description": "Signature pad: record at most this long (ends earlier once the "
                            "pen has been lifted for signature.pen_lift_stop_s after the first tip-down).",
                        },
                    },
                },
            }
        },
    }
