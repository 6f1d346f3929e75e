"""The diagnostics endpoints (technicians; kitctl diag over the kit's socket).

Its one job: turn HTTP into Kit.run_diagnostics and the stored runs. ``GET /api/v1/diagnostics
[?quick=1]`` runs the checks now (every check has its own time limit: the answer always comes)
and answers the run; ``GET /api/v1/diagnostics/history?limit=N[&check=ID]`` the last runs,
or one check's findings across them, oldest first, for its trend; ``POST
/api/v1/diagnostics/report`` (``{"quick": true}``, or ``{"run_id": ID}`` of a stored run) the
signed report for the vendor (kitd.services.diagnostics_report), signed here, where the kit's
key is. A bad parameter is a 400 naming it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from aiohttp import web

from kitd.api.requests import KIT_KEY, NO_BODY, bad_request, error_response, json_body
from kitd.api.sign_in import CALLER
from kitd.errors import KitError
from kitd.schemas import check
from kitd.services.diagnostics_report import report_statement, signed_report
from kitd.services.guided_desk import guided_check_ids
from kitd.services.kit_checks import kit_checks
from kitd.store.audit import append_entry
from kitd.store.diagnostics import (
    DEFAULT_HISTORY,
    MAX_HISTORY,
    check_history,
    history_limit,
    recent_runs,
    stored_run,
)

log = logging.getLogger("kitd.diagnostics")


def _flag(request: web.Request, name: str) -> bool | None:
    """A yes/no query parameter: absent, 0/1, false/true; None when it is neither."""
    text = request.query.get(name, "0").lower()
    return {"0": False, "false": False, "1": True, "true": True}.get(text)


async def get_diagnostics(request: web.Request) -> web.Response:
    quick = _flag(request, "quick")
    if quick is None:
        return error_response(400, "bad_request", "quick: 1 or 0 (true or false)", "quick")
    kit = request.app[KIT_KEY]
    run = await kit.run_diagnostics(quick, request[CALLER].actor)
    return web.json_response(run, headers={"Cache-Control": "no-store"})


async def get_history(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    text = request.query.get("limit", str(DEFAULT_HISTORY))
    limit = history_limit(text)
    if limit is None:
        return error_response(400, "bad_request", f"limit: a whole number from 1 to {MAX_HISTORY}", "limit")
    check_id = request.query.get("check")
    if check_id is None:
        runs = await kit.in_database(recent_runs, kit.database, limit)
        return web.json_response({"runs": runs}, headers={"Cache-Control": "no-store"})
    known = {c.id for c in kit_checks(kit)} | set(guided_check_ids(kit))
    if check_id not in known:
        listed = ", ".join(sorted(known))
        return error_response(
            400, "bad_request", f"check: no check {check_id!r} on this kit ({listed})", "check"
        )
    findings = await kit.in_database(check_history, kit.database, check_id, limit)
    return web.json_response({"check": check_id, "findings": findings}, headers={"Cache-Control": "no-store"})


async def post_report(request: web.Request) -> web.Response:
    try:
        body = await json_body(request)
        options = {} if body is NO_BODY else body
        check("DiagnosticsReportRequest", options)
    except ValueError as exc:
        return bad_request("diagnostics report", exc)
    kit = request.app[KIT_KEY]
    actor = request[CALLER].actor
    if "run_id" in options:
        run = await kit.in_database(stored_run, kit.database, options["run_id"])
        if run is None:
            return error_response(404, "unknown_run", f"no stored diagnostics run {options['run_id']!r}")
        run["stored"] = True
    else:
        run = await kit.run_diagnostics(bool(options.get("quick", False)), actor)
    statement = report_statement(kit, run)
    # Off the loop: a token signs slowly, and its session is shared with sealing.
    report = await asyncio.get_running_loop().run_in_executor(
        None, signed_report, kit.keys, kit.config.kit_id, statement
    )
    try:
        # Who took the kit's state away, and whether the kit vouched for it.
        details = {"run_id": run["run_id"], "signed": report["signature"] is not None}
        await kit.in_database(append_entry, kit.database, actor, "diagnostics_report", details)
    except (OSError, sqlite3.Error, KitError) as exc:
        # A full disk is a reason to send the report, not to withhold it.
        log.error("a diagnostics report could not be audited: %s", exc)
    return web.json_response(report, headers={"Cache-Control": "no-store"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/diagnostics", get_diagnostics)
    app.router.add_get("/api/v1/diagnostics/history", get_history)
    app.router.add_post("/api/v1/diagnostics/report", post_report)
