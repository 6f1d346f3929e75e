"""The guided tests' endpoints (technicians: the touch screen's technician page, or the API).

Its one job: turn HTTP into kitd.services.guided_desk calls. ``POST /api/v1/diagnostics/guided``
(``{"test": "panel" | "pad"}``, ``device`` to name one of several pads) starts a test: 201 with
its state; ``GET /api/v1/diagnostics/guided`` the one running (``{"running": ... | null}``);
``GET /api/v1/diagnostics/guided/{id}`` its state now; ``POST
/api/v1/diagnostics/guided/{id}/confirm`` (``{"step", "seen"}``) the technician's answer to the
confirm step waiting; ``DELETE /api/v1/diagnostics/guided/{id}`` cancels it. Every answer but the
running test's look-up is the test's state (the GuidedTest schema); a refusal is
``{"error", "message"}``: 409 a test already running, a visit active, the device busy, a step
not waiting; 503 the device not ready; 404 an unknown test or device. Changes between calls come
as ``guided`` events on the event stream.
"""

from __future__ import annotations

from aiohttp import web

from kitd.api.requests import KIT_KEY, checked_body, error_response
from kitd.api.sign_in import CALLER
from kitd.services.guided import GuidedRefused, GuidedTest


def _answer(test: GuidedTest, status: int = 200) -> web.Response:
    return web.json_response(test.to_json(), status=status, headers={"Cache-Control": "no-store"})


def _refused(exc: GuidedRefused) -> web.Response:
    return error_response(exc.status, exc.code, str(exc))


async def post_guided(request: web.Request) -> web.Response:
    body = await checked_body(request, "GuidedTestRequest", "guided test")
    kit = request.app[KIT_KEY]
    try:
        test = kit.guided.start(body["test"], request[CALLER].actor, body.get("device"))
    except GuidedRefused as exc:
        return _refused(exc)
    return _answer(test, 201)


async def get_running(request: web.Request) -> web.Response:
    test = request.app[KIT_KEY].guided.running()
    return web.json_response(
        {"running": None if test is None else test.to_json()}, headers={"Cache-Control": "no-store"}
    )


async def get_guided(request: web.Request) -> web.Response:
    try:
        return _answer(request.app[KIT_KEY].guided.get(request.match_info["id"]))
    except GuidedRefused as exc:
        return _refused(exc)


async def post_confirm(request: web.Request) -> web.Response:
    desk = request.app[KIT_KEY].guided
    # The body first, as every handler here: one over the limit is a 413 whatever the test.
    body = await checked_body(request, "GuidedConfirm", "guided test's answer")
    try:
        test = await desk.confirm(request.match_info["id"], body["step"], body["seen"])
    except GuidedRefused as exc:
        return _refused(exc)
    return _answer(test)


async def delete_guided(request: web.Request) -> web.Response:
    try:
        test = await request.app[KIT_KEY].guided.cancel(request.match_info["id"])
    except GuidedRefused as exc:
        return _refused(exc)
    return _answer(test)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/diagnostics/guided", post_guided)
    app.router.add_get("/api/v1/diagnostics/guided", get_running)
    app.router.add_get("/api/v1/diagnostics/guided/{id}", get_guided)
    app.router.add_post("/api/v1/diagnostics/guided/{id}/confirm", post_confirm)
    app.router.add_delete("/api/v1/diagnostics/guided/{id}", delete_guided)
