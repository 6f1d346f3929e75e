"""The API's routes: request parsing and error mapping only.

Handlers call the `Kit` services and translate the kit's errors into HTTP:
404 unknown device, 409 busy, 503 disconnected, 504 no finger/frame in time,
502 protocol error, 400 malformed request, 415 a body that is not
application/json, 405 (with Allow) a method the route does not take.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from typing import Any

from aiohttp import web

from kitd.api import audit, diagnostics, firmware, guided, orders, outbox, pairing, screen, sign_in, visits
from kitd.api.event_stream import stream_events
from kitd.api.openapi import openapi_document
from kitd.api.preview_stream import stream_preview
from kitd.api.requests import (
    KIT_KEY,
    NO_BODY,
    RequestRefused,
    bad_request,
    capture_response,
    checked_body,
    error_response,
    http_refusal,
    json_body,
    kit_error_response,
)
from kitd.api.sign_in import StillSignedIn, require_sign_in
from kitd.errors import (
    ConfigError,
    KitError,
    QualityGateFailed,
    shown_value,
)
from kitd.kit import Kit
from kitd.schemas import CAPTURE_REQUESTS, check
from kitd.services.sessions import SessionConflict, SessionNotFound, latest_press

log = logging.getLogger("kitd.api")


def _kit(request: web.Request) -> Kit:
    return request.app[KIT_KEY]


async def get_status(request: web.Request) -> web.Response:
    # Off the event loop: the credentials' check reads files and may ask the token.
    kit = _kit(request)
    status = await asyncio.get_running_loop().run_in_executor(None, kit.status)
    status["outbox"] = await kit.outbox_status()
    status["audit"] = await kit.audit_status()
    return web.json_response(status)


async def get_devices(request: web.Request) -> web.Response:
    return web.json_response(_kit(request).devices())


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def post_capture(request: web.Request) -> web.Response:
    kit = _kit(request)
    device_id = request.match_info["id"]
    slot = kit.slot(device_id)
    if slot is None:
        return error_response(404, "unknown_device", f"no device {shown_value(device_id)}")
    if slot.kind not in CAPTURE_REQUESTS:  # the panel: buttons and lights, nothing to capture
        return error_response(
            400, "not_capturable", f"device {shown_value(device_id)} is a {slot.kind}: it takes no captures"
        )
    try:
        body = await json_body(request)
        options = {} if body is NO_BODY else body  # no body: no options; `null` is refused
        check(CAPTURE_REQUESTS[slot.kind], options)
    except ValueError as exc:
        return bad_request("capture request", exc)
    try:
        capture = await kit.capture(slot, options)
    except KitError as exc:
        response = kit_error_response(exc)
        _log_failed_capture(slot.id, exc, response)
        return response
    return capture_response(capture)


def _log_failed_capture(device_id: str, exc: KitError, response: web.Response) -> None:
    """One line for every failed capture: the device, why, and what the client was answered."""
    code = json.loads(response.body)["error"]
    # Refused by the gate is the applicant's press, not a fault: info; the rest is a fault.
    level = logging.INFO if isinstance(exc, QualityGateFailed) else logging.WARNING
    log.log(
        level,
        "capture from %s failed (%d %s): %s",
        device_id,
        response.status,
        code,
        exc,
        extra={"device": device_id, "reason": str(exc), "status": response.status, "error": code},
    )


async def get_iris_stream(request: web.Request) -> web.StreamResponse:
    kit = _kit(request)
    wanted = request.query.get("device")
    cameras = [slot for slot in kit.slots.values() if slot.kind == "iris_camera"]
    if wanted:
        slot = kit.slot(wanted)
        if slot is None or slot.kind != "iris_camera":
            return error_response(404, "unknown_device", f"no iris camera {shown_value(wanted)}")
    elif not cameras:
        return error_response(404, "unknown_device", "no iris camera configured")
    elif len(cameras) > 1:
        names = ", ".join(slot.id for slot in cameras)
        return error_response(400, "bad_request", f"several iris cameras ({names}): name one with ?device=ID")
    else:
        slot = cameras[0]
    config = kit.config
    feed = kit.iris_feed(slot.id)
    return await stream_preview(
        request, feed, config["iris.preview_width"], config["iris.preview_quality"], StillSignedIn(request)
    )


def session_error_response(exc: KitError) -> web.Response:
    if isinstance(exc, SessionNotFound):
        return error_response(404, "unknown_session", str(exc))
    if isinstance(exc, SessionConflict):
        return error_response(409, "session_state", str(exc))
    if isinstance(exc, ConfigError):
        return error_response(400, "bad_request", str(exc))
    return kit_error_response(exc)


async def post_session(request: web.Request) -> web.Response:
    kit = _kit(request)
    fields = await checked_body(request, "SessionRequest", "session request")
    slot = kit.slot(fields["device_id"])
    if slot is None:
        return error_response(404, "unknown_device", f"no device {shown_value(fields['device_id'])}")
    try:
        live = kit.sessions.start(slot, fields["modality"], fields.get("label", ""), fields["category"])
    except KitError as exc:
        return session_error_response(exc)
    return web.json_response({"id": live.id}, status=201, headers={"Location": f"/api/v1/sessions/{live.id}"})


async def get_session(request: web.Request) -> web.Response:
    try:
        live = _kit(request).sessions.get(request.match_info["id"])
    except KitError as exc:
        return session_error_response(exc)
    return web.json_response(live.summary(), headers={"Cache-Control": "no-store"})


async def post_session_confirm(request: web.Request) -> web.Response:
    try:
        live = _kit(request).sessions.confirm(request.match_info["id"])
    except KitError as exc:
        return session_error_response(exc)
    return web.json_response(live.summary())


async def delete_session(request: web.Request) -> web.Response:
    try:
        live = _kit(request).sessions.cancel(request.match_info["id"])
    except KitError as exc:
        return session_error_response(exc)
    return web.json_response(live.summary(), status=202)


async def get_session_capture(request: web.Request) -> web.Response:
    try:
        capture = _kit(request).sessions.result(request.match_info["id"])
    except KitError as exc:
        return session_error_response(exc)
    return capture_response(capture)


async def get_session_press(request: web.Request) -> web.Response:
    """The latest press of a fingerprint session, for the officer's screen (never cached)."""
    try:
        press = latest_press(_kit(request).sessions.get(request.match_info["id"]))
    except KitError as exc:
        return session_error_response(exc)
    return capture_response(press)


async def get_events(request: web.Request) -> web.StreamResponse:
    return await stream_events(request, _kit(request).events, allowed=StillSignedIn(request))


async def _close_streams(app: web.Application) -> None:
    app[KIT_KEY].close_streams()


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestRefused as refused:
        return refused.response
    except sqlite3.OperationalError as exc:
        # The database stayed locked past its busy timeout (kitctl writing beside us).
        log.warning("database busy: %s", exc)
        return error_response(503, "database_busy", f"the kit's database is busy ({exc}): try again")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return http_refusal(exc)


def make_app(kit: Kit) -> web.Application:
    app = web.Application(middlewares=[json_errors, require_sign_in])
    app[KIT_KEY] = kit
    sign_in.add_routes(app)
    orders.add_routes(app)
    visits.add_routes(app)
    outbox.add_routes(app)
    audit.add_routes(app)
    diagnostics.add_routes(app)
    guided.add_routes(app)
    firmware.add_routes(app)
    pairing.add_routes(app)
    screen.add_routes(app)
    app.router.add_get("/api/v1/status", get_status)
    app.router.add_get("/api/v1/devices", get_devices)
    app.router.add_post("/api/v1/devices/{id}/capture", post_capture)
    app.router.add_get("/api/v1/openapi.json", get_openapi)
    app.router.add_get("/api/v1/stream/iris.mjpg", get_iris_stream)
    app.router.add_post("/api/v1/sessions", post_session)
    app.router.add_get("/api/v1/sessions/{id}", get_session)
    app.router.add_post("/api/v1/sessions/{id}/confirm", post_session_confirm)
    app.router.add_delete("/api/v1/sessions/{id}", delete_session)
    app.router.add_get("/api/v1/sessions/{id}/capture", get_session_capture)
    app.router.add_get("/api/v1/sessions/{id}/press", get_session_press)
    app.router.add_get("/api/v1/events", get_events)
    app.on_shutdown.append(_close_streams)
    return app
