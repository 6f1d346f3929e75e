"""Pairing over HTTP: the window on the local API, and the pairing port's own tiny app.

Its one job: turn HTTP into kitd.services.pairing calls. On the local API (supervisors, and
kitctl on the kit's socket): ``POST /api/v1/pairing`` opens a window (201, its code),
``GET`` shows it, ``DELETE`` closes it. On ``network.pairing_port`` — HTTPS with the kit's
TLS certificate, no client certificate, listening only while a window is open
(:class:`PairingListener`) — a laptop runs kitd-pairing/1: ``POST /pairing/v1/start`` and
``POST /pairing/v1/confirm``; ``GET /pairing/v1/openapi.json`` is that port's document
(kitd.api.pairing_openapi).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from kitformats.pairing import CONFIRM_PATH, START_PATH

from kitd.api.pairing_openapi import MAX_PAIRING_BODY, PAIRING_OPENAPI_PATH, pairing_openapi_document
from kitd.api.requests import KIT_KEY, NO_BODY, bad_request, error_response, http_refusal, json_body
from kitd.api.sign_in import CALLER
from kitd.kit import Kit
from kitd.schemas import check
from kitd.services.pairing import (
    BadPairingRequest,
    CannotListen,
    LaptopNameTaken,
    NetworkDisabled,
    PairingClosed,
    UnknownExchange,
    WrongCode,
)
from kitd.store.audit import SYSTEM

# How long a stopping pairing port waits for a request still being answered.
STOP_TIMEOUT_S = 2.0
NO_STORE = {"Cache-Control": "no-store"}


def _actor(request: web.Request) -> str:
    return request[CALLER].nip or SYSTEM


# --- the local API ---------------------------------------------------------------------------


async def post_pairing(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    try:
        body = await json_body(request)
        options = {} if body is NO_BODY else body
        check("PairingRequest", options)
    except ValueError as exc:
        return bad_request("pairing window", exc)
    try:
        state = await kit.pairing.open(_actor(request), options.get("seconds"))
    except NetworkDisabled as exc:
        return error_response(409, "network_disabled", str(exc))
    except CannotListen as exc:
        return error_response(503, "cannot_listen", str(exc))
    return web.json_response(state, status=201, headers=NO_STORE)


async def get_pairing(request: web.Request) -> web.Response:
    return web.json_response(request.app[KIT_KEY].pairing.state(), headers=NO_STORE)


async def delete_pairing(request: web.Request) -> web.Response:
    pairing = request.app[KIT_KEY].pairing
    await pairing.close("closed", _actor(request))
    return web.json_response(pairing.state(), headers=NO_STORE)


async def _attach_listener(app: web.Application) -> None:
    kit = app[KIT_KEY]
    kit.pairing.listener = PairingListener(kit)


async def _close_window(app: web.Application) -> None:
    await app[KIT_KEY].pairing.shutdown()


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/pairing", post_pairing)
    app.router.add_get("/api/v1/pairing", get_pairing)
    app.router.add_delete("/api/v1/pairing", delete_pairing)
    # The pairing port is the local API's: it exists while the API runs, and goes with it.
    app.on_startup.append(_attach_listener)
    app.on_shutdown.append(_close_window)


# --- the pairing port ------------------------------------------------------------------------


def _refusal(exc: Exception) -> web.Response:
    if isinstance(exc, BadPairingRequest):
        return error_response(400, "bad_request", str(exc), exc.field)
    if isinstance(exc, PairingClosed):
        return error_response(403, "pairing_closed", str(exc))
    if isinstance(exc, LaptopNameTaken):
        return error_response(409, "laptop_name_taken", str(exc), "laptop_name")
    if isinstance(exc, UnknownExchange):
        return error_response(404, "unknown_exchange", str(exc), "exchange")
    if isinstance(exc, WrongCode):
        body = {"error": "wrong_code", "message": str(exc), "attempts_left": exc.attempts_left}
        return web.json_response(body, status=401, headers=NO_STORE)
    raise exc


async def _laptop_body(request: web.Request) -> Any:
    try:
        body = await json_body(request)
    except ValueError as exc:
        raise BadPairingRequest(str(exc)) from None
    if body is NO_BODY:
        raise BadPairingRequest("no body: a JSON object is required")
    return body


async def post_start(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    try:
        answer = await kit.pairing.start(await _laptop_body(request))
    except (BadPairingRequest, PairingClosed, LaptopNameTaken) as exc:
        return _refusal(exc)
    return web.json_response(answer, headers=NO_STORE)


async def post_confirm(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    try:
        answer = await kit.pairing.confirm(await _laptop_body(request))
    except (BadPairingRequest, PairingClosed, LaptopNameTaken, UnknownExchange, WrongCode) as exc:
        return _refusal(exc)
    return web.json_response(answer, headers=NO_STORE)


async def get_pairing_openapi(request: web.Request) -> web.Response:
    return web.json_response(pairing_openapi_document())


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 413:
            return error_response(413, "too_large", f"a pairing message is at most {MAX_PAIRING_BODY} bytes")
        return http_refusal(exc)


def pairing_app(kit: Kit) -> web.Application:
    """The pairing port's app: the two steps of kitd-pairing/1 and their document, nothing else."""
    app = web.Application(middlewares=[_json_errors], client_max_size=MAX_PAIRING_BODY)
    app[KIT_KEY] = kit
    app.router.add_post(START_PATH, post_start)
    app.router.add_post(CONFIRM_PATH, post_confirm)
    app.router.add_get(PAIRING_OPENAPI_PATH, get_pairing_openapi)
    return app


class PairingListener:
    """The pairing port: HTTPS on network.host:network.pairing_port, made anew for each window
    (and gone, every connection with it, when the window closes)."""

    def __init__(self, kit: Kit) -> None:
        self.kit = kit
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        config = self.kit.config
        runner = web.AppRunner(
            pairing_app(self.kit), access_log=None, handle_signals=False, shutdown_timeout=STOP_TIMEOUT_S
        )
        await runner.setup()
        site = web.TCPSite(
            runner,
            str(config["network.host"]),
            int(config["network.pairing_port"]),
            ssl_context=self.kit.network_trust.pairing_context,
            reuse_address=True,
        )
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        return int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
