"""The daemon's local HTTP API (aiohttp): request parsing and error mapping only.

Handlers call the `Kit` services and translate the kit's errors into HTTP:
404 unknown device, 409 busy, 503 disconnected, 504 no finger/frame in time,
502 protocol error, 400 malformed request.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kitd.capture.iris import close_feeds, stream_preview
from kitd.capture_service import CAPTURE_KINDS, validate_request
from kitd.errors import (
    DeviceBusy,
    DeviceGone,
    DeviceTimeout,
    EndOfStream,
    KitError,
    NoFinger,
    NoPenInput,
    ProtocolError,
    QualityGateFailed,
)
from kitd.openapi import openapi_document

if TYPE_CHECKING:
    from kitd.daemon import Kit

KIT_KEY = web.AppKey("kit", object)


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def kit_error_response(exc: KitError) -> web.Response:
    if isinstance(exc, QualityGateFailed):
        return web.json_response(
            {
                "error": "quality_gate",
                "message": str(exc),
                "score": round(exc.score, 1),
                "failed_checks": exc.failed_checks,
                "feedback": exc.feedback,
            },
            status=422,
        )
    if isinstance(exc, DeviceBusy):
        return error_response(409, "busy", str(exc))
    if isinstance(exc, EndOfStream):
        return error_response(503, "end_of_stream", str(exc))
    if isinstance(exc, DeviceGone):
        return error_response(503, "disconnected", str(exc))
    if isinstance(exc, NoFinger):
        return error_response(504, "no_finger", str(exc))
    if isinstance(exc, NoPenInput):
        return error_response(504, "no_pen_input", str(exc))
    if isinstance(exc, DeviceTimeout):
        return error_response(504, "timeout", str(exc))
    if isinstance(exc, ProtocolError):
        return error_response(502, "protocol_error", str(exc))
    return error_response(500, "error", str(exc))


def _kit(request: web.Request) -> Kit:
    return request.app[KIT_KEY]  # type: ignore[return-value]


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(_kit(request).status())


async def get_devices(request: web.Request) -> web.Response:
    return web.json_response(_kit(request).devices())


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def post_capture(request: web.Request) -> web.Response:
    kit = _kit(request)
    device_id = request.match_info["id"]
    slot = kit.slot(device_id)
    if slot is None:
        return error_response(404, "unknown_device", f"no device '{device_id}'")
    raw_body = await request.read()
    try:
        body = json.loads(raw_body) if raw_body.strip() else None
        options = validate_request(CAPTURE_KINDS[slot.kind], body)
    except ValueError as exc:
        return error_response(400, "bad_request", f"capture request: {exc}")
    try:
        capture = await kit.capture(slot, options)
    except KitError as exc:
        return kit_error_response(exc)
    headers = {"Cache-Control": "no-store", **capture.headers}
    return web.Response(body=capture.body, content_type=capture.content_type, headers=headers)


async def get_iris_stream(request: web.Request) -> web.StreamResponse:
    kit = _kit(request)
    wanted = request.query.get("device")
    cameras = [slot for slot in kit.slots.values() if slot.kind == "iris_camera"]
    if wanted:
        slot = kit.slot(wanted)
        if slot is None or slot.kind != "iris_camera":
            return error_response(404, "unknown_device", f"no iris camera '{wanted}'")
    elif not cameras:
        return error_response(404, "unknown_device", "no iris camera configured")
    elif len(cameras) > 1:
        names = ", ".join(slot.id for slot in cameras)
        return error_response(400, "bad_request", f"several iris cameras ({names}): name one with ?device=ID")
    else:
        slot = cameras[0]
    config = kit.config
    return await stream_preview(request, slot, config["iris.preview_width"], config["iris.preview_quality"])


async def _close_previews(app: web.Application) -> None:
    close_feeds()


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)


def make_app(kit: Kit) -> web.Application:
    app = web.Application(middlewares=[json_errors])
    app[KIT_KEY] = kit
    app.router.add_get("/api/v1/status", get_status)
    app.router.add_get("/api/v1/devices", get_devices)
    app.router.add_post("/api/v1/devices/{id}/capture", post_capture)
    app.router.add_get("/api/v1/openapi.json", get_openapi)
    app.router.add_get("/api/v1/stream/iris.mjpg", get_iris_stream)
    app.on_shutdown.append(_close_previews)
    return app
