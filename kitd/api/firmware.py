"""The peripheral's firmware endpoints (technicians and supervisors; kitfw over the kit's socket).

Its one job: turn HTTP into kitd.services.firmware_desk calls. ``GET /api/v1/firmware`` the
peripheral's image slots, running version and last (or current) operation; ``POST
/api/v1/firmware/verify`` an image's findings (body: the image, application/octet-stream);
``POST /api/v1/firmware/upload[?allow_downgrade=1]`` starts an update with the image in the
body: 202 with the operation, its steps and progress then at ``GET
/api/v1/firmware/operations/{id}``; ``POST /api/v1/firmware/rollback`` starts a rollback. A
refusal is ``{"error", "message"}``: 409 another operation running, a visit active, no
peripheral; 422 an image that is not one; 503 the peripheral not ready; 413 over 1 MiB.
"""

from __future__ import annotations

from aiohttp import web

from kitd.api.requests import KIT_KEY, RequestRefused, error_response
from kitd.api.sign_in import CALLER
from kitd.services.firmware import FirmwareOperation
from kitd.services.firmware_desk import FirmwareRefused

IMAGE_TYPE = "application/octet-stream"


def _refused(exc: FirmwareRefused) -> web.Response:
    return error_response(exc.status, exc.code, str(exc))


def _allow_downgrade(request: web.Request) -> bool:
    text = request.query.get("allow_downgrade", "0").lower()
    flag = {"0": False, "false": False, "1": True, "true": True}.get(text)
    if flag is None:
        raise RequestRefused(
            error_response(400, "bad_request", "allow_downgrade: 1 or 0 (true or false)", "allow_downgrade")
        )
    return flag


async def _image(request: web.Request) -> bytes | web.Response:
    """The image in the body, or the refusal: read first, so that a body over the app's limit is
    a 413 whatever it is labelled."""
    data = await request.read()
    if "Content-Type" in request.headers and request.content_type != IMAGE_TYPE:
        return error_response(
            415, "unsupported_media_type", f"a body of {request.content_type}: the image goes as {IMAGE_TYPE}"
        )
    if not data:
        return error_response(400, "bad_request", "no image: send the image file's bytes as the body")
    return data


async def get_firmware(request: web.Request) -> web.Response:
    described = await request.app[KIT_KEY].firmware.describe()
    return web.json_response(described, headers={"Cache-Control": "no-store"})


async def post_verify(request: web.Request) -> web.Response:
    data = await _image(request)
    if isinstance(data, web.Response):
        return data
    allow_downgrade = _allow_downgrade(request)
    try:
        answer = await request.app[KIT_KEY].firmware.verify(data, allow_downgrade)
    except FirmwareRefused as exc:
        return _refused(exc)
    return web.json_response(answer)


async def post_upload(request: web.Request) -> web.Response:
    data = await _image(request)
    if isinstance(data, web.Response):
        return data
    allow_downgrade = _allow_downgrade(request)
    try:
        operation = request.app[KIT_KEY].firmware.start_upload(data, allow_downgrade, request[CALLER].actor)
    except FirmwareRefused as exc:
        return _refused(exc)
    return _started(operation)


async def post_rollback(request: web.Request) -> web.Response:
    try:
        operation = await request.app[KIT_KEY].firmware.start_rollback(request[CALLER].actor)
    except FirmwareRefused as exc:
        return _refused(exc)
    return _started(operation)


def _started(operation: FirmwareOperation) -> web.Response:
    body = operation.to_json()
    location = f"/api/v1/firmware/operations/{body['operation_id']}"
    return web.json_response(body, status=202, headers={"Location": location, "Cache-Control": "no-store"})


async def get_operation(request: web.Request) -> web.Response:
    try:
        operation = request.app[KIT_KEY].firmware.get(request.match_info["id"])
    except FirmwareRefused as exc:
        return _refused(exc)
    return web.json_response(operation.to_json(), headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/firmware", get_firmware)
    app.router.add_post("/api/v1/firmware/verify", post_verify)
    app.router.add_post("/api/v1/firmware/upload", post_upload)
    app.router.add_post("/api/v1/firmware/rollback", post_rollback)
    app.router.add_get("/api/v1/firmware/operations/{id}", get_operation)
