"""The touch screen's part of the API: its web app's files, the status summary, the messages.

Its one job: serve the app in ``kitd/screen/`` at ``/`` (public: it holds no data, and the
kiosk's browser loads it before anyone signs in), answer ``GET /api/v1/summary`` (what the
status bar and the start-visit button show; a watching route, see kitd.api.sign_in) and
``GET /api/v1/messages`` (the officer-facing words the daemon owns, in both languages). The
app is a client of the API like any other: it has no way in that the buttons or a laptop lack.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

from aiohttp import web

from kitd.api.requests import KIT_KEY, error_response
from kitd.api.sign_in import CALLER
from kitd.errors import shown_value
from kitd.services.kit_summary import can_sign, device_readiness, message_catalogue, start_reasons
from kitd.store.officers import UnknownOfficer
from kitd.store.visits import visits_ended_by_others

SCREEN_DIR = Path(__file__).resolve().parent.parent / "screen"
# The app loads nothing from elsewhere, runs no inline script, and is framed by nobody.
APP_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidated on every load: a kit updated in the field shows its new app at once.
    "Cache-Control": "no-cache",
}
# The kinds of file the app is made of, and what they are sent as.
APP_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
MAX_NAME = 200  # far longer than any of the app's own names
# Bundles sealed on the kit and not yet taken by a laptop.
WAITING_STATES = ("sealed", "offered")


def screen_file(name: str) -> Path | None:
    """The app's file called ``name`` (a path under kitd/screen/ of a kind the app is made of),
    or None if there is none; nothing outside the folder, nor its README, is ever served."""
    if not name or len(name) > MAX_NAME or "\\" in name or "\x00" in name:
        return None
    if any(part in ("", ".", "..") for part in name.split("/")):
        return None
    path = (SCREEN_DIR / name).resolve()
    if path.suffix not in APP_TYPES or not path.is_relative_to(SCREEN_DIR) or not path.is_file():
        return None
    return path


def _file_response(path: Path) -> web.FileResponse:
    headers = dict(APP_HEADERS, **{"Content-Type": APP_TYPES[path.suffix]})
    return web.FileResponse(path, headers=headers)


async def get_app(request: web.Request) -> web.StreamResponse:
    path = screen_file("index.html")
    if path is None:
        return error_response(404, "no_app", "this kitd was installed without its touch-screen app")
    return _file_response(path)


async def get_screen_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["path"]
    path = screen_file(name)
    if path is None:
        return error_response(404, "unknown_file", f"the touch-screen app has no file {shown_value(name)}")
    return _file_response(path)


async def get_messages(request: web.Request) -> web.Response:
    return web.json_response(message_catalogue())


def _officer_name(kit: Any, nip: str) -> str | None:
    """On the database's thread: the officer's name (None: a visit started on the kit's socket
    has no officer of the roll)."""
    try:
        return kit.officers.get(nip).name
    except UnknownOfficer:
        return None


def _ended_by_others(kit: Any, nip: str | None) -> list[dict[str, Any]]:
    """On the database's thread: the officer's visits ended today (the kit's day) with an
    outcome someone else gave (a supervisor at the kit's screen, another officer), oldest
    first: the officer signing in finds their visit gone and is told by whom and how."""
    if nip is None:
        return []
    since = kit.clock.day_start(kit.config["kit.timezone"]).astimezone(dt.UTC).isoformat(timespec="seconds")
    ended = []
    for record in visits_ended_by_others(kit.database, nip, since):
        outcome = record["outcome"]
        ended.append(
            {
                "id": record["id"],
                "order_id": record["order_id"],
                "code": outcome["code"],
                "note": outcome["note"],
                "reschedule": outcome["reschedule"],
                "ended_at": record["updated_at"],
                "by": {"nip": outcome["by"], "name": _officer_name(kit, outcome["by"])},
            }
        )
    return ended


async def get_summary(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    caller = request[CALLER]
    credential = kit.signed_in.credential(caller.token) if caller.token else None
    outbox = await kit.in_database(kit.outbox.summary, kit.database)
    officer = await kit.in_database(kit.officers.get, caller.nip) if caller.nip else None

    def ask_devices_and_keys() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        # Off the event loop: the credentials' checks read files and may ask the token.
        devices = device_readiness(kit)
        signs = caller.nip is not None and can_sign(kit, caller.nip, credential)
        return devices, start_reasons(kit, devices, signs, bool(outbox["reserve_ok"]), caller.nip)

    devices, reasons = await asyncio.get_running_loop().run_in_executor(None, ask_devices_and_keys)
    active = kit.visits.active()
    own = [v for v in active if v.officer == caller.nip]
    # Another officer's open visit: who, so that the caller knows whom to call, or ends it.
    others = [v for v in active if v.officer != caller.nip]
    other_name = await kit.in_database(_officer_name, kit, others[0].officer) if others else None
    ended_by_others = await kit.in_database(_ended_by_others, kit, caller.nip)
    summary = {
        "kit": {"id": kit.config.kit_id, "timezone": kit.config["kit.timezone"]},
        "officer": None if officer is None else officer.to_json(),
        "role": caller.role,
        "idle_lock_s": kit.signed_in.idle_lock_s,
        "devices": devices,
        "outbox": {
            "waiting": sum(outbox["bundles"].get(state, 0) for state in WAITING_STATES),
            "problems": len(outbox["problems"]),
        },
        "disk": {
            "free_bytes": outbox["free_bytes"],
            "reserve_bytes": outbox["reserve_bytes"],
            "enough": bool(outbox["reserve_ok"]),
        },
        "battery": kit.battery.describe(),
        "clock": {
            # The page's own clock may differ from the kit's (corrected by a laptop, the system's
            # clock left as it was): the page shows and schedules on this one.
            "now": kit.clock.now().isoformat(timespec="milliseconds"),
            "confirmed": kit.clock.confirmed,
            "confirmed_at": kit.clock.describe()["confirmed_at"],
            "went_back": kit.clock.state.went_back is not None,
        },
        "visit": None if not own else {"id": own[0].id, "state": own[0].state, "order_id": own[0].order_id},
        "others_visit": None
        if not others
        else {
            "id": others[0].id,
            "state": others[0].state,
            "order_id": others[0].order_id,
            "officer": {
                "nip": others[0].officer,
                "name": other_name,
            },
        },
        "visit_start": {"possible": not reasons, "reasons": reasons},
        "ended_by_others": ended_by_others,
    }
    return web.json_response(summary, headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", get_app)
    # Any character, a newline included: every name under /screen/ is this route's to refuse.
    app.router.add_get(r"/screen/{path:[\s\S]+}", get_screen_file)
    app.router.add_get("/api/v1/messages", get_messages)
    app.router.add_get("/api/v1/summary", get_summary)
