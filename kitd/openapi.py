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


def openapi_document() -> dict[str, Any]:
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
                            "description": "The capture; an 8-bit grey PNG for image devices.",
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
                            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
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
                        "504": _error("No finger or frame within the timeout"),
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
                    },
                },
            }
        },
    }
