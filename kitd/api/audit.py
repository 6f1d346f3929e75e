"""The audit endpoints: checkpoints, entries and proofs (supervisors; the checkpoint and the
consistency proofs are paired laptops' too, on the network API).

Its one job: turn HTTP into kitd.services.audit calls. ``GET /api/v1/audit/checkpoint`` is
the latest signed checkpoint (a C2SP signed note, text/plain); ``GET /api/v1/audit/entries
?from=N&count=M`` the entries as they were hashed; ``GET /api/v1/audit/proof/inclusion
?index=I&size=S`` and ``GET /api/v1/audit/proof/consistency?old=A&new=B`` RFC 9162 proofs,
their hashes in base64. A bad parameter is a 400 naming it.
"""

from __future__ import annotations

import base64

from aiohttp import web

from kitd.api.requests import KIT_KEY, error_response
from kitd.errors import shown_value
from kitd.services.audit import AuditProblem, proof_json
from kitd.whole_numbers import whole_number_in

# The largest row number SQLite keeps (a signed 64-bit integer).
LARGEST_ROW = 2**63 - 1


class BadParameter(ValueError):
    """A query parameter that is missing or not a whole number (``name`` says which)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _whole(request: web.Request, name: str, default: int | None = None) -> int:
    text = request.query.get(name)
    if text is None:
        if default is None:
            raise BadParameter(name, f"{name}: required (a whole number)")
        return default
    value = whole_number_in(text, 0, LARGEST_ROW)
    if value is None:
        raise BadParameter(name, f"{name} {shown_value(text)} is not a whole number from 0 to {LARGEST_ROW}")
    return value


def _refused(exc: BadParameter | AuditProblem) -> web.Response:
    name = exc.name if isinstance(exc, BadParameter) else exc.field
    return error_response(400, "bad_request", str(exc), name)


async def get_checkpoint(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    try:
        latest = await kit.in_database(kit.audit.latest, kit.database)
    except AuditProblem as exc:
        return error_response(503, "audit_unavailable", str(exc))
    return web.Response(
        text=latest["note"], content_type="text/plain", charset="utf-8", headers={"Cache-Control": "no-store"}
    )


async def get_entries(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    try:
        start, count = _whole(request, "from", 0), _whole(request, "count", 100)
        entries = await kit.in_database(kit.audit.entries, kit.database, start, count)
    except (BadParameter, AuditProblem) as exc:
        return _refused(exc)
    return web.json_response({"from": start, "entries": entries}, headers={"Cache-Control": "no-store"})


async def get_inclusion(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    try:
        index, size = _whole(request, "index"), _whole(request, "size")
        proof = await kit.in_database(kit.audit.inclusion, kit.database, index, size)
    except (BadParameter, AuditProblem) as exc:
        return _refused(exc)
    proof["leaf_hash"] = base64.b64encode(proof["leaf_hash"]).decode("ascii")
    proof["proof"] = proof_json(proof["proof"])
    return web.json_response(proof)


async def get_consistency(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    try:
        old, new = _whole(request, "old"), _whole(request, "new")
        proof = await kit.in_database(kit.audit.consistency, kit.database, old, new)
    except (BadParameter, AuditProblem) as exc:
        return _refused(exc)
    proof["proof"] = proof_json(proof["proof"])
    return web.json_response(proof)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/audit/checkpoint", get_checkpoint)
    app.router.add_get("/api/v1/audit/entries", get_entries)
    app.router.add_get("/api/v1/audit/proof/inclusion", get_inclusion)
    app.router.add_get("/api/v1/audit/proof/consistency", get_consistency)
