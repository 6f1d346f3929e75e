"""The visit endpoints: start a visit from an order and drive it item by item, or end an
order's visit at the door with an outcome (``POST /api/v1/orders/{id}/outcome``).

Its one job: turn HTTP into kitd.services.visits calls and the visit's errors into
answers: 400 ``bad_request`` naming the field, 409 ``wrong_state`` naming the state,
404 for an unknown visit, item or order; device errors as for captures. Every action
answers the visit in the shape ``GET /api/v1/visits/{id}`` returns.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kitd.api.requests import (
    KIT_KEY,
    capture_response,
    checked_body,
    error_response,
    kit_error_response,
)
from kitd.api.sign_in import CALLER
from kitd.errors import KitError
from kitd.services.outbox import DiskReserve
from kitd.services.sealing import SealingFailed, SealingNotReady
from kitd.services.visit_machine import BadVisitRequest, UnknownItem, WrongState
from kitd.services.visits import (
    NoCapture,
    NotVisitsOfficer,
    OfficerCannotSign,
    PrecheckFailed,
    VisitNotFound,
)
from kitd.store.audit import SYSTEM
from kitd.store.visits import OrderNotPending

# The visit's own errors (status, code); the rest of the kit's errors as for captures.
VISIT_ERRORS: tuple[tuple[type[KitError], int, str], ...] = (
    (VisitNotFound, 404, "unknown_visit"),
    (UnknownItem, 404, "unknown_item"),
    (OrderNotPending, 404, "unknown_order"),
    (NoCapture, 404, "no_capture"),
    (NotVisitsOfficer, 403, "not_visits_officer"),
    (OfficerCannotSign, 409, "officer_cannot_sign"),
    (SealingNotReady, 409, "sealing_not_ready"),
    (SealingFailed, 503, "cannot_seal"),
    (DiskReserve, 409, "disk_reserve"),
)


def visit_error(exc: KitError) -> web.Response:
    if isinstance(exc, WrongState):
        return web.json_response(
            {"error": "wrong_state", "message": str(exc), "state": exc.state}, status=409
        )
    if isinstance(exc, PrecheckFailed):
        return web.json_response(
            {"error": "precheck_failed", "message": str(exc), "checks": exc.checks}, status=409
        )
    if isinstance(exc, BadVisitRequest):
        return error_response(400, exc.code, str(exc), exc.field)
    for error_type, status, code in VISIT_ERRORS:
        if isinstance(exc, error_type):
            return error_response(status, code, str(exc))
    return kit_error_response(exc)


def _who(request: web.Request) -> str:
    caller = request[CALLER]
    return caller.nip or f"{caller.role} on the kit's socket"


def _actor(request: web.Request) -> str:
    """Who acts, for the audit log: the signed-in officer's NIP, or ``system`` (the socket)."""
    return request[CALLER].nip or SYSTEM


async def _answer(action: Any, created: bool = False) -> web.Response:
    """The visit ``action`` answers (201 with its Location when it ``created`` one), or the error."""
    try:
        visit = await action
    except KitError as exc:
        return visit_error(exc)
    headers = {"Cache-Control": "no-store"}
    if created:
        headers["Location"] = f"/api/v1/visits/{visit.id}"
    return web.json_response(visit.to_json(), status=201 if created else 200, headers=headers)


async def post_visit(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    body = await checked_body(request, "VisitRequest", "visit")
    try:
        visit = await kit.visits.start(body["order_id"], _who(request), _actor(request))
    except KitError as exc:
        return visit_error(exc)
    answer = {**visit.to_json(), "precheck": kit.visits.precheck_of(visit.id)}
    return web.json_response(answer, status=201, headers={"Location": f"/api/v1/visits/{visit.id}"})


async def get_visits(request: web.Request) -> web.Response:
    state = request.query.get("state", "active")
    if state != "active":
        return error_response(400, "bad_request", "state: only 'active' is listed", "state")
    return web.json_response([v.to_json() for v in request.app[KIT_KEY].visits.active()])


async def get_visit(request: web.Request) -> web.Response:
    return await _answer(request.app[KIT_KEY].visits.get(request.match_info["id"]))


async def post_identity(request: web.Request) -> web.Response:
    body = await checked_body(request, "VisitIdentity", "identity")
    visits = request.app[KIT_KEY].visits
    return await _answer(visits.record_identity(request.match_info["id"], body, _actor(request)))


async def post_item_start(request: web.Request) -> web.Response:
    desk = request.app[KIT_KEY].visits
    return await _answer(
        desk.start_item(request.match_info["id"], request.match_info["item"], actor=_actor(request))
    )


async def post_item_retry(request: web.Request) -> web.Response:
    desk = request.app[KIT_KEY].visits
    visit_id, item = request.match_info["id"], request.match_info["item"]
    return await _answer(desk.start_item(visit_id, item, retry=True, actor=_actor(request)))


async def post_item_accept(request: web.Request) -> web.Response:
    desk = request.app[KIT_KEY].visits
    return await _answer(
        desk.accept_item(request.match_info["id"], request.match_info["item"], _actor(request))
    )


async def post_item_except(request: web.Request) -> web.Response:
    body = await checked_body(request, "VisitException", "exception")
    desk = request.app[KIT_KEY].visits
    action = desk.except_item(
        request.match_info["id"],
        request.match_info["item"],
        body["reason"],
        body["confirm"],
        _who(request),
        _actor(request),
    )
    return await _answer(action)


async def post_finish(request: web.Request) -> web.Response:
    kit, caller = request.app[KIT_KEY], request[CALLER]
    credential = kit.signed_in.credential(caller.token) if caller.token else None
    return await _answer(kit.visits.finish(request.match_info["id"], caller.nip, credential))


async def _outcome(request: web.Request) -> tuple[str, Any, Any]:
    """An outcome's body, checked: (code, note, reschedule)."""
    body = await checked_body(request, "VisitOutcome", "outcome")
    return body["code"], body.get("note"), body.get("reschedule")


async def post_outcome(request: web.Request) -> web.Response:
    outcome = await _outcome(request)
    desk = request.app[KIT_KEY].visits
    return await _answer(desk.set_outcome(request.match_info["id"], *outcome, _actor(request)))


async def post_order_outcome(request: web.Request) -> web.Response:
    outcome = await _outcome(request)
    desk = request.app[KIT_KEY].visits
    action = desk.outcome_at_door(request.match_info["id"], _who(request), *outcome, _actor(request))
    return await _answer(action, created=True)


async def post_cancel(request: web.Request) -> web.Response:
    return await _answer(request.app[KIT_KEY].visits.cancel(request.match_info["id"], _actor(request)))


async def post_carry_on(request: web.Request) -> web.Response:
    return await _answer(request.app[KIT_KEY].visits.carry_on(request.match_info["id"], _actor(request)))


async def get_item_capture(request: web.Request) -> web.Response:
    try:
        visits = request.app[KIT_KEY].visits
        capture = visits.capture(request.match_info["id"], request.match_info["item"], _actor(request))
    except KitError as exc:
        return visit_error(exc)
    return capture_response(capture)


def add_routes(app: web.Application) -> None:
    base = "/api/v1/visits"
    app.router.add_post(base, post_visit)
    app.router.add_get(base, get_visits)
    app.router.add_get(base + "/{id}", get_visit)
    app.router.add_post(base + "/{id}/identity", post_identity)
    app.router.add_post(base + "/{id}/items/{item}/start", post_item_start)
    app.router.add_post(base + "/{id}/items/{item}/retry", post_item_retry)
    app.router.add_post(base + "/{id}/items/{item}/accept", post_item_accept)
    app.router.add_post(base + "/{id}/items/{item}/except", post_item_except)
    app.router.add_get(base + "/{id}/items/{item}/capture", get_item_capture)
    app.router.add_post(base + "/{id}/finish", post_finish)
    app.router.add_post(base + "/{id}/outcome", post_outcome)
    app.router.add_post(base + "/{id}/cancel", post_cancel)
    app.router.add_post(base + "/{id}/carry-on", post_carry_on)
    # The order's visit ended at the door (not at home, ...): no device asked.
    app.router.add_post("/api/v1/orders/{id}/outcome", post_order_outcome)
