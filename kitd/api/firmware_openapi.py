"""The firmware endpoints' part of the local API's OpenAPI document (kitd.api.openapi adds it).

Its one job: :data:`FIRMWARE_PATHS`, the operations of kitd.api.firmware with their answers;
their schemas (Firmware, FirmwareOperation, ...) are kitd.schemas'.
"""

from __future__ import annotations

from typing import Any

from kitd.api.openapi_parts import error_answer, json_answer, ref

OPERATION_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
ALLOW_DOWNGRADE = {
    "name": "allow_downgrade",
    "in": "query",
    "required": False,
    "description": "1: an image older than the running one passes the version check",
    "schema": {"enum": ["0", "1", "true", "false"]},
}
IMAGE_BODY = {
    "required": True,
    "description": "The MCUboot image file (imgtool sign's output), at most 1 MiB",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}
NOT_AN_IMAGE_TYPE = error_answer("The body is labelled as something else than application/octet-stream")
CANNOT_START = error_answer(
    "Another firmware operation is running (firmware_operation_running), a visit is active "
    "(visit_active), the peripheral is busy (device_busy), the kit has none (no_device), or its "
    "firmware keys or allow-list cannot be read (firmware_config)"
)
CANNOT_ROLL_BACK = error_answer(
    "As for an upload (firmware_operation_running, visit_active, device_busy, no_device), or slot 1 "
    "holds an image the audit log never saw run confirmed on this peripheral (never_ran_here: after "
    "an update that failed past its upload it is the new, untried image)"
)
NOT_READY = error_answer("The peripheral is not ready, the reason named (device_not_ready)")
STARTED = json_answer(
    ref("FirmwareOperation"),
    "Started (Location: /api/v1/firmware/operations/{id}); follow it there until its state is not running",
)

FIRMWARE_PATHS: dict[str, Any] = {
    "/api/v1/firmware": {
        "get": {
            "summary": "The peripheral's MCUboot image slots, its running version, and the last or current "
            "firmware operation (technicians and supervisors; kitfw list)",
            "description": "The slots are read from the peripheral now when it is free; while an operation "
            "holds it, or when it does not answer, they are the last ones read (read_now false).",
            "responses": {"200": json_answer(ref("Firmware"), "The slots and the operation (no-store)")},
        }
    },
    "/api/v1/firmware/verify": {
        "post": {
            "summary": "Check an image without installing it: format, hash, signature by a pinned key "
            "(firmware.public_keys), not older than the running version, on the allow-list",
            "parameters": [ALLOW_DOWNGRADE],
            "requestBody": IMAGE_BODY,
            "responses": {
                "200": json_answer(ref("FirmwareVerification"), "The findings; ok says whether it may go in"),
                "400": error_answer("No image in the body, or allow_downgrade not 0 or 1 (bad_request)"),
                "409": error_answer("The kit's firmware keys or allow-list cannot be read (firmware_config)"),
                "415": NOT_AN_IMAGE_TYPE,
            },
        }
    },
    "/api/v1/firmware/upload": {
        "post": {
            "summary": "Update the peripheral's firmware: verify, upload (resumed after a cut link), mark "
            "for test, reset, wait for it, check the new image runs, self-test, confirm; else revert",
            "description": "The operation runs on the peripheral's device slot, which it holds until it "
            "ends; a visit cannot start meanwhile. A refused image sends nothing (state refused). The new "
            "image is only marked for test: if it does not come back or fails its self-test it is left "
            "unconfirmed and the peripheral reset again, so that MCUboot boots the old one (state "
            "reverted). Every step is in the audit log (firmware_*).",
            "parameters": [ALLOW_DOWNGRADE],
            "requestBody": IMAGE_BODY,
            "responses": {
                "202": STARTED,
                "400": error_answer("No image in the body, or allow_downgrade not 0 or 1 (bad_request)"),
                "409": CANNOT_START,
                "415": NOT_AN_IMAGE_TYPE,
                "422": error_answer("Not an MCUboot image the kit takes (image_refused)"),
                "503": NOT_READY,
            },
        }
    },
    "/api/v1/firmware/rollback": {
        "post": {
            "summary": "Go back to the previous image: a test boot not yet confirmed is reset away; a "
            "confirmed image is replaced by the previous one in the secondary slot, tested and confirmed",
            "responses": {"202": STARTED, "409": CANNOT_ROLL_BACK, "503": NOT_READY},
        }
    },
    "/api/v1/firmware/operations/{id}": {
        "get": {
            "summary": "A firmware operation: its state, bytes uploaded of the total, steps with their "
            "times, and its outcome (the running one, or one of the last 20 ended)",
            "parameters": [OPERATION_ID],
            "responses": {
                "200": json_answer(ref("FirmwareOperation"), "The operation (no-store)"),
                "404": error_answer("No such operation (unknown_operation)"),
            },
        }
    },
}
