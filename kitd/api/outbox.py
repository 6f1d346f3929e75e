"""The outbox endpoints: its bundles (supervisors, technicians) and receipts (supervisors).

Its one job: turn HTTP into kitd.services.outbox calls. ``GET /api/v1/outbox[?state=...]``
lists the bundles with the outbox's summary; ``GET /api/v1/outbox/bundles/{id}`` shows one;
``POST /api/v1/outbox/receipts`` takes one receipt (a signed statement) or a JSON array of
them and reports each: accepted, duplicate (nothing changes) or refused with its reason.
The field laptops' network API (kitd.api.network) takes receipts the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from kitd.api.requests import KIT_KEY, NO_BODY, bad_request, error_response, json_body
from kitd.api.sign_in import CALLER
from kitd.services.outbox import BundleNotFound, NotReceipts, OutboxError, receipt_batch
from kitd.store.outbox import STATES

log = logging.getLogger("kitd.outbox")

# At most this many receipts in one request (about 1.5 KB each).
MAX_RECEIPTS = 500


async def get_outbox(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    state = request.query.get("state")
    shown = STATES[1:]
    if state is not None:
        if state not in shown:
            return error_response(
                400, "bad_request", f"state {state!r} is not one of {', '.join(shown)}", "state"
            )
        shown = (state,)
    bundles = await kit.in_database(kit.outbox.bundles, kit.database, shown)
    summary = await kit.outbox_status()
    return web.json_response({"bundles": bundles, "summary": summary}, headers={"Cache-Control": "no-store"})


async def get_bundle(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    try:
        bundle = await kit.in_database(kit.outbox.bundle, kit.database, request.match_info["id"])
    except BundleNotFound as exc:
        return error_response(404, "unknown_bundle", str(exc))
    return web.json_response(bundle, headers={"Cache-Control": "no-store"})


async def post_receipts(request: web.Request) -> web.Response:
    return await take_receipts(request)


def _log_receipts(results: list[dict[str, Any]]) -> None:
    # Logged here, at the daemon's edge: kitctl receipts take prints its own results.
    for result in results:
        if result["result"] == "refused":
            log.warning("receipt %d refused: %s", result["index"], result["reason"])
        else:
            log.info("receipt for bundle %s: %s", result["bundle_id"], result["result"])


async def take_receipts(
    request: web.Request, kind: str | None = None, laptop: str | None = None
) -> web.Response:
    """The request's receipts (one, or an array) taken and each answered; only of type ``kind``
    and by ``laptop`` when given (a field laptop's connection, kitd.api.network)."""
    kit = request.app[KIT_KEY]
    try:
        body = await json_body(request)
    except ValueError as exc:
        return bad_request("receipts", exc)
    if body is NO_BODY:
        return error_response(400, "bad_request", "receipts: no body: a receipt or a JSON array of them")
    try:
        documents = receipt_batch(body)
    except NotReceipts as exc:
        return error_response(400, "bad_request", f"receipts: the body is {exc}")
    if len(documents) > MAX_RECEIPTS:
        return error_response(
            413, "too_large", f"receipts: {len(documents)} in one request, at most {MAX_RECEIPTS}"
        )
    try:
        results = await kit.in_database(
            kit.outbox.take_receipts, kit.database, documents, None, request[CALLER].actor, kind, laptop
        )
    except OutboxError as exc:
        _log_receipts(getattr(exc, "taken", []))
        return error_response(503, "cannot_record", str(exc))
    _log_receipts(results)
    counts = {
        name: sum(r["result"] == name for r in results) for name in ("accepted", "duplicate", "refused")
    }
    answer = {"results": results, **counts}
    if counts["refused"] == len(results):
        first = results[0]["reason"]
        answer.update(error="receipts_refused", message=f"no receipt was taken: {first}")
        return web.json_response(answer, status=422)
    return web.json_response(answer)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/outbox", get_outbox)
    app.router.add_post("/api/v1/outbox/receipts", post_receipts)
    app.router.add_get("/api/v1/outbox/bundles/{id}", get_bundle)
