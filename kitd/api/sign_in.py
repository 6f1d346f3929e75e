"""Sign-in for every caller of the API, who may call what, and the officer endpoints.

Its one job: the ``require_sign_in`` middleware names the caller of each request
(``request[CALLER]``) and refuses those who may not call the route; the handlers
sign officers in and out and let supervisors manage officers.

* A caller on the Unix socket in data_dir (kitctl on the kit) is a technician with no
  token: access to the socket is access to the kit's shell.
* Any other caller presents the token from sign-in, as the ``kitd_token`` cookie (the
  touch screen's browser: ``<img>`` and ``EventSource`` send it by themselves) or as
  ``Authorization: Bearer TOKEN``.
* Roles: officers run visits; supervisors also manage officers and orders;
  technicians also use the direct device endpoints. :data:`ROUTE_ROLES` lists the
  routes that not every role may call; every other route needs only a sign-in, and
  :data:`PUBLIC_ROUTES` none.

401 ``unauthenticated``, 403 ``forbidden`` (with the caller's ``role``), 423 ``locked``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kitd.api.requests import KIT_KEY, checked_body, error_response
from kitd.services.sign_in import open_credential
from kitd.store.audit import SYSTEM, append_entry
from kitd.store.officers import (
    LastSupervisor,
    OfficerError,
    OfficerInactive,
    OfficerLocked,
    UnknownOfficer,
    WrongPin,
    pin_problem,
)

COOKIE = "kitd_token"
EVERY_ROLE = frozenset({"officer", "supervisor", "technician"})
PUBLIC_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("POST", "/api/v1/auth/signin"),
        # The touch screen's app (no data in it) and the words it shows before a sign-in.
        ("GET", "/"),
        ("GET", "/screen/{path}"),
        ("GET", "/api/v1/messages"),
    }
)
# Routes that watch rather than use: asking them does not restart a sign-in's idle time, so
# that a status bar polling, or an event stream held open, never keeps an idle kit unlocked.
# The screen reads the visit on every visit event, a running session's latest press on every
# assessment and the session itself once (an end it missed): a capture going on by itself is
# not the officer using the kit.
WATCHING_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/api/v1/summary"),
        ("GET", "/api/v1/events"),
        ("GET", "/api/v1/visits/{id}"),
        ("GET", "/api/v1/sessions/{id}"),
        ("GET", "/api/v1/sessions/{id}/press"),
    }
)
ROUTE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    ("POST", "/api/v1/devices/{id}/capture"): frozenset({"technician"}),
    ("GET", "/api/v1/officers"): frozenset({"supervisor"}),
    ("POST", "/api/v1/officers"): frozenset({"supervisor"}),
    ("POST", "/api/v1/officers/{nip}/unlock"): frozenset({"supervisor"}),
    ("POST", "/api/v1/officers/{nip}/pin"): frozenset({"supervisor"}),
    ("POST", "/api/v1/officers/{nip}/deactivate"): frozenset({"supervisor"}),
    ("POST", "/api/v1/orders"): frozenset({"supervisor"}),
    ("GET", "/api/v1/outbox"): frozenset({"supervisor", "technician"}),
    ("GET", "/api/v1/outbox/bundles/{id}"): frozenset({"supervisor", "technician"}),
    ("POST", "/api/v1/outbox/receipts"): frozenset({"supervisor"}),
    ("GET", "/api/v1/audit/checkpoint"): frozenset({"supervisor"}),
    ("GET", "/api/v1/audit/entries"): frozenset({"supervisor"}),
    ("GET", "/api/v1/audit/proof/inclusion"): frozenset({"supervisor"}),
    ("GET", "/api/v1/audit/proof/consistency"): frozenset({"supervisor"}),
    # Diagnostics read every device and the kit's state: technicians (kitctl diag on the socket).
    ("GET", "/api/v1/diagnostics"): frozenset({"technician"}),
    ("GET", "/api/v1/diagnostics/history"): frozenset({"technician"}),
    ("POST", "/api/v1/diagnostics/report"): frozenset({"technician"}),
    # Guided tests take the panel or the pad over and drive its LEDs and buzzer: technicians.
    ("POST", "/api/v1/diagnostics/guided"): frozenset({"technician"}),
    ("GET", "/api/v1/diagnostics/guided"): frozenset({"technician"}),
    ("GET", "/api/v1/diagnostics/guided/{id}"): frozenset({"technician"}),
    ("POST", "/api/v1/diagnostics/guided/{id}/confirm"): frozenset({"technician"}),
    ("DELETE", "/api/v1/diagnostics/guided/{id}"): frozenset({"technician"}),
    # The peripheral's firmware (kitfw on the socket): what goes into the kit's hardware.
    ("GET", "/api/v1/firmware"): frozenset({"supervisor", "technician"}),
    ("POST", "/api/v1/firmware/verify"): frozenset({"supervisor", "technician"}),
    ("POST", "/api/v1/firmware/upload"): frozenset({"supervisor", "technician"}),
    ("POST", "/api/v1/firmware/rollback"): frozenset({"supervisor", "technician"}),
    ("GET", "/api/v1/firmware/operations/{id}"): frozenset({"supervisor", "technician"}),
    # A pairing window lets a laptop in: supervisors, and technicians (kitctl on the socket).
    ("POST", "/api/v1/pairing"): frozenset({"supervisor", "technician"}),
    ("GET", "/api/v1/pairing"): frozenset({"supervisor", "technician"}),
    ("DELETE", "/api/v1/pairing"): frozenset({"supervisor", "technician"}),
}


@dataclass(frozen=True)
class Caller:
    """Who is asking: a role, and the officer and token when signed in over TCP; or a paired
    field laptop on the network API (role ``laptop``, its name)."""

    role: str
    nip: str | None = None
    token: str | None = None
    laptop: str | None = None

    @property
    def actor(self) -> str:
        """Who acts, for the audit log: the officer's NIP, ``laptop:NAME``, or ``system``."""
        if self.nip:
            return self.nip
        return f"laptop:{self.laptop}" if self.laptop else SYSTEM


CALLER = web.RequestKey("caller", Caller)


def roles_for(method: str, route: str) -> frozenset[str]:
    """Who may call ``method route``; HEAD is a GET that sends no body, and is ruled as one."""
    if method == "HEAD":
        method = "GET"
    return ROUTE_ROLES.get((method, route), EVERY_ROLE)


def _on_unix_socket(request: web.Request) -> bool:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    return sock is not None and sock.family == socket.AF_UNIX


def request_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.cookies.get(COOKIE) or None


@web.middleware
async def require_sign_in(request: web.Request, handler: Any) -> web.StreamResponse:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    method = "GET" if request.method == "HEAD" else request.method
    if (method, route) in PUBLIC_ROUTES:
        return await handler(request)
    if _on_unix_socket(request):
        caller = Caller("technician")
    else:
        kit = request.app[KIT_KEY]
        token = request_token(request)
        look_up = kit.signed_in.watching if (method, route) in WATCHING_ROUTES else kit.signed_in.officer
        officer = look_up(token) if token else None
        if officer is not None and not await _standing_holds(kit, token, officer.nip):
            officer = None
        if officer is None:
            message = "token expired or unknown: sign in again" if token else "sign in first"
            message += " (POST /api/v1/auth/signin)"
            return error_response(401, "unauthenticated", message)
        caller = Caller(officer.role, officer.nip, token)
    allowed = roles_for(request.method, route)
    if caller.role not in allowed:
        only = ", ".join(sorted(allowed))
        body = {
            "error": "forbidden",
            "message": f"a {caller.role} may not {request.method} {route} (only: {only})",
            "role": caller.role,
        }
        return web.json_response(body, status=403)
    request[CALLER] = caller
    return await handler(request)


async def _standing_holds(kit: Any, token: str, nip: str) -> bool:
    """Whether the officer is still as when the token was issued (not deactivated, locked
    or given a new PIN, by the API or by kitctl on the database); ends the token if not."""
    issued = kit.signed_in.standing(token)
    now = await kit.in_database(kit.officers.standing, nip)
    if issued is None or now != issued:
        kit.signed_in.forget_officer(nip)
        return False
    return True


# An open stream (the preview, the events) asks again this often whether its caller is
# still signed in, and ends when not.
STREAM_CHECK_S = 2.0


class StillSignedIn:
    """For a stream: is its caller still signed in? (Asked at most every STREAM_CHECK_S.)"""

    def __init__(self, request: web.Request) -> None:
        self.kit = request.app[KIT_KEY]
        self.caller = request[CALLER]
        self._checked = time.monotonic()
        self._holds = True

    async def __call__(self) -> bool:
        if self.caller.token is None or not self._holds:
            return self._holds  # the socket's technician has no token to end
        if time.monotonic() - self._checked >= STREAM_CHECK_S:
            self._checked = time.monotonic()
            token, nip = self.caller.token, self.caller.nip or ""
            # Not officer(): watching is not using; an idle officer's stream ends with the token.
            self._holds = self.kit.signed_in.standing(token) is not None and await _standing_holds(
                self.kit, token, nip
            )
        return self._holds


def _expires_at(unix_s: float) -> str:
    return dt.datetime.fromtimestamp(unix_s, dt.UTC).isoformat(timespec="seconds")


async def post_sign_in(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    body = await checked_body(request, "SignInRequest", "sign-in")
    try:
        officer = await kit.in_database(kit.officers.check_pin, body["nip"], body["pin"])
    except OfficerLocked as exc:
        kit.signed_in.forget_officer(body["nip"])
        return error_response(423, "locked", str(exc))
    except (UnknownOfficer, WrongPin, OfficerInactive) as exc:
        # How many wrong PINs in a row lock an officer: the same for every NIP, known or not
        # (a count of this NIP's failures would tell which NIPs exist).
        refused = {
            "error": "unauthenticated",
            "message": str(exc),
            "max_pin_failures": kit.officers.max_pin_failures,
        }
        return web.json_response(refused, status=401)
    standing = await kit.in_database(kit.officers.standing, officer.nip)
    credential, state = await asyncio.get_running_loop().run_in_executor(
        None, open_credential, kit.keys, officer.nip, body["pin"]
    )
    token = kit.signed_in.issue(officer, standing or "", credential)
    response = web.json_response(
        {
            "token": token,
            "officer": officer.to_json(),
            "expires_at": _expires_at(kit.signed_in.expires_at(token)),
            "credential": state,
        },
        headers={"Cache-Control": "no-store"},
    )
    response.set_cookie(COOKIE, token, path="/api/", httponly=True, samesite="Strict")
    return response


async def post_own_pin(request: web.Request) -> web.Response:
    """The officer's own new PIN: the current one checked (and counted), the credential re-wrapped."""
    kit = request.app[KIT_KEY]
    caller = request[CALLER]
    if not caller.nip:
        return error_response(403, "forbidden", "only an officer signed in with a NIP changes their own PIN")
    body = await checked_body(request, "PinChange", "PIN change")
    try:
        await kit.in_database(kit.officers.check_pin, caller.nip, body["pin"], "pin_check")
    except OfficerLocked as exc:
        kit.signed_in.forget_officer(caller.nip)
        return error_response(423, "locked", str(exc))
    except (UnknownOfficer, WrongPin, OfficerInactive) as exc:
        return error_response(403, "wrong_pin", str(exc))
    problem = pin_problem(body["new_pin"])
    if problem:
        return error_response(400, "bad_request", problem, "new_pin")
    loop = asyncio.get_running_loop()
    # The credential is wrapped under the new PIN before the PIN is stored, and put in place
    # after: a failure between leaves the old PIN and the old credential, both working.
    state = await loop.run_in_executor(
        None, kit.keys.prepare_pin_change, caller.nip, body["pin"], body["new_pin"]
    )
    try:
        await kit.in_database(kit.officers.reset_pin, caller.nip, body["new_pin"], caller.nip, "pin_changed")
    except OfficerError as exc:
        kit.keys.abandon_pin_change(caller.nip)
        return error_response(400, "bad_request", str(exc), "new_pin")
    await loop.run_in_executor(None, kit.keys.commit_pin_change, caller.nip, state)
    return web.json_response({"changed": True, "credential": state})


async def get_me(request: web.Request) -> web.Response:
    """Who is signed in with this token, and how long a sign-in lasts unused. Asking is a use:
    the touch screen asks when the officer touches it, so that reading a screen keeps it open."""
    kit = request.app[KIT_KEY]
    caller = request[CALLER]
    officer = await kit.in_database(kit.officers.get, caller.nip) if caller.nip else None
    return web.json_response(
        {
            "officer": None if officer is None else officer.to_json(),
            "role": caller.role,
            "idle_lock_s": kit.signed_in.idle_lock_s,
        },
        headers={"Cache-Control": "no-store"},
    )


async def post_own_language(request: web.Request) -> web.Response:
    """The touch screen's language for the signed-in officer, remembered for their next sign-in."""
    kit = request.app[KIT_KEY]
    caller = request[CALLER]
    if not caller.nip:
        return error_response(403, "forbidden", "only an officer signed in with a NIP has a language")
    body = await checked_body(request, "LanguageChoice", "language")
    try:
        officer = await kit.in_database(kit.officers.set_language, caller.nip, body["language"])
    except OfficerError as exc:
        return _officer_error(exc)
    return web.json_response(officer.to_json())


async def post_sign_out(request: web.Request) -> web.Response:
    caller = request[CALLER]
    kit = request.app[KIT_KEY]
    if caller.token and kit.signed_in.sign_out(caller.token):
        await kit.in_database(append_entry, kit.database, caller.nip or SYSTEM, "sign_out", {})
    response = web.json_response({"signed_out": True})
    response.del_cookie(COOKIE, path="/api/")
    return response


# --- officers (supervisors) ---------------------------------------------------------


def _actor(request: web.Request) -> str:
    """Who acts, for the audit log: the signed-in officer's NIP, or ``system`` (kitctl on the
    kit's socket, a technician at the kit itself)."""
    return request[CALLER].nip or SYSTEM


def _officer_error(exc: OfficerError) -> web.Response:
    if isinstance(exc, UnknownOfficer):
        return error_response(404, "unknown_officer", str(exc))
    if isinstance(exc, LastSupervisor):
        return error_response(409, "last_supervisor", str(exc))
    return error_response(400, "bad_request", str(exc), exc.field)


async def get_officers(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    officers = await kit.in_database(kit.officers.list)
    return web.json_response([o.to_json() for o in officers])


async def post_officer(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    body = await checked_body(request, "NewOfficer", "new officer")
    try:
        officer = await kit.in_database(
            kit.officers.add, body["nip"], body["name"], body["role"], body["pin"], _actor(request)
        )
    except OfficerError as exc:
        if "already exists" in str(exc):
            return error_response(409, "officer_exists", str(exc))
        return _officer_error(exc)
    return web.json_response(
        officer.to_json(), status=201, headers={"Location": f"/api/v1/officers/{officer.nip}"}
    )


async def post_officer_unlock(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    try:
        officer = await kit.in_database(kit.officers.unlock, request.match_info["nip"], _actor(request))
    except OfficerError as exc:
        return _officer_error(exc)
    return web.json_response(officer.to_json())


async def post_officer_pin(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    nip = request.match_info["nip"]
    body = await checked_body(request, "NewPin", "new PIN")
    try:
        officer = await kit.in_database(kit.officers.reset_pin, nip, body["pin"], _actor(request))
    except OfficerError as exc:
        return _officer_error(exc)
    kit.signed_in.forget_officer(nip)
    # An installed credential is wrapped under the old PIN, which nobody here knows: it goes,
    # and a supervisor installs it again with the officer (kitctl officers credential).
    if kit.keys.drop_officer_credential(nip):
        await kit.in_database(
            append_entry,
            kit.database,
            _actor(request),
            "credential_removed",
            {"nip": nip, "why": "pin_reset"},
        )
    return web.json_response(officer.to_json())


async def post_officer_deactivate(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    nip = request.match_info["nip"]
    try:
        officer = await kit.in_database(kit.officers.deactivate, nip, _actor(request))
    except OfficerError as exc:
        return _officer_error(exc)
    kit.signed_in.forget_officer(nip)
    return web.json_response(officer.to_json())


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/auth/signin", post_sign_in)
    app.router.add_post("/api/v1/auth/signout", post_sign_out)
    app.router.add_get("/api/v1/auth/me", get_me)
    app.router.add_post("/api/v1/auth/language", post_own_language)
    app.router.add_get("/api/v1/officers", get_officers)
    app.router.add_post("/api/v1/officers", post_officer)
    app.router.add_post("/api/v1/officers/{nip}/unlock", post_officer_unlock)
    app.router.add_post("/api/v1/auth/pin", post_own_pin)
    app.router.add_post("/api/v1/officers/{nip}/pin", post_officer_pin)
    app.router.add_post("/api/v1/officers/{nip}/deactivate", post_officer_deactivate)
