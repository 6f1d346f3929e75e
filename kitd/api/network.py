"""The network API for paired field laptops: who is connecting, and what a laptop may ask.

Its one job: the aiohttp app served on ``network.port`` behind the kit's mutual TLS
(kit.network_trust: only paired laptops' certificates finish a handshake). The
:func:`require_paired_laptop` middleware looks up every request's client certificate in the
kit's database, so that a laptop revoked by kitctl (another process) is refused at its next
request (403 ``laptop_revoked``; 403 ``not_paired`` for a certificate the kit does not know),
and names the laptop for the handlers (the audit log's actor ``laptop:NAME``). The routes:
status and devices (the local API's handlers), work orders (push as the local import does,
the list of every order, replace, withdraw), the visits' outcomes since a cursor, the
outbox's bundles (listed with their kit-signed statements, downloaded with HTTP Range),
receipts (a laptop's own, the central office's), the laptop's time for the kit's clock
(kitd.clock), and the audit log's latest signed checkpoint
and consistency proofs (the local API's handlers), with which a laptop checks at every sync
that the log only grew. Documented in kitd.api.network_openapi.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import os
import re
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from aiohttp import web

from kitd.api.audit import get_checkpoint, get_consistency
from kitd.api.network_openapi import DEFAULT_OUTCOMES, MAX_OUTCOMES, network_openapi_document
from kitd.api.orders import post_orders
from kitd.api.outbox import take_receipts
from kitd.api.requests import (
    KIT_KEY,
    NO_BODY,
    RequestRefused,
    bad_request,
    checked_body,
    error_response,
    json_body,
)
from kitd.api.routes import get_devices, get_status, json_errors
from kitd.api.sign_in import CALLER, Caller
from kitd.clock import KitClock, iso, plausible_time
from kitd.crypto.bundle import bundle_paths
from kitd.errors import shown_value
from kitd.kit import Kit
from kitd.store.database import database_path, open_database
from kitd.store.outbox import KEPT, bundle_row, laptop_by_tls_fingerprint, touch_laptop
from kitd.store.visits import outcomes_since
from kitd.store.work_orders import (
    ORDER_STATUSES,
    OrderConflict,
    UnknownOrder,
    all_orders,
    check_rows,
    replace_order,
)
from kitd.whole_numbers import digits_value, whole_number_in

log = logging.getLogger("kitd.network")

MAX_CURSOR = 2**62  # an audit sequence number; SQLite's integers end at 2**63
# A download is read in pieces of this many bytes: the first with its row and the opening of its
# file (a bundle of a few hundred kB is read whole there), the rest on the default executor.
# TLS allows no sendfile: every byte passes through Python anyway, so a larger piece costs only
# memory while it is on its way, and saves hops between threads.
DOWNLOAD_CHUNK = 1024 * 1024
# One range of bytes (RFC 9110, 14.1.2): first-last, first- (to the end), -suffix.
BYTE_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII | re.IGNORECASE)


_Read = TypeVar("_Read")


class NetworkReads:
    """The network API's reads of who is asking and of the bundle asked for (its row, and the
    first piece of its file), on a thread and a connection to the kit's database of their own
    (opened there when first used, as the kit opens it, then made read only).

    On the database's thread they would wait behind whatever it writes: a batch of receipts
    takes it for tens of milliseconds, and every download asked for meanwhile would stand
    still. The database is in WAL mode: a reader neither waits for a writer nor holds one
    up, and sees every change committed before it reads (a laptop revoked by kitctl included).
    """

    def __init__(self, path: Path, clock: KitClock) -> None:
        self.path = path
        self.clock = clock
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kitd-network-reads")
        self._connection: sqlite3.Connection | None = None

    def _read(self, job: Callable[..., _Read], *args: Any) -> _Read:
        if self._connection is None:
            connection = open_database(self.path, self.clock)
            connection.execute("PRAGMA query_only=ON")
            self._connection = connection
        return job(self._connection, *args)

    async def read(self, job: Callable[..., _Read], *args: Any) -> _Read:
        """``job(connection, *args)`` on the reads' thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._read, job, *args)

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        if self._connection is not None:
            self._connection.close()
            self._connection = None


READS_KEY = web.AppKey("network_reads", NetworkReads)


def _peer_fingerprint(request: web.Request) -> str | None:
    """SHA-256 (hex) of the client certificate this connection's handshake verified."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return hashlib.sha256(der).hexdigest() if der else None


@web.middleware
async def require_paired_laptop(request: web.Request, handler: Any) -> web.StreamResponse:
    fingerprint = _peer_fingerprint(request)
    laptop = None
    if fingerprint is not None:
        laptop = await request.app[READS_KEY].read(laptop_by_tls_fingerprint, fingerprint)
    if laptop is None:
        log.warning(
            "network request %s %s refused: certificate %s is not a paired laptop's",
            request.method, request.path, fingerprint, extra={"tls_fingerprint": fingerprint},
        )  # fmt: skip
        return error_response(
            403, "not_paired", "this laptop's certificate is not paired with this kit: pair it first"
        )
    if laptop["revoked_at"] is not None:
        log.warning(
            "network request %s %s refused: laptop %s is revoked",
            request.method, request.path, laptop["name"], extra={"laptop": laptop["name"]},
        )  # fmt: skip
        return error_response(
            403,
            "laptop_revoked",
            f"laptop '{laptop['name']}' was revoked on {laptop['revoked_at']}: "
            "pair it again under a new name",
        )
    request[CALLER] = Caller("laptop", laptop=laptop["name"])
    return await handler(request)


def _laptop(request: web.Request) -> str:
    return str(request[CALLER].laptop)


async def get_network_openapi(request: web.Request) -> web.Response:
    return web.json_response(network_openapi_document())


# --- work orders ---------------------------------------------------------------------------


def _order_error(exc: UnknownOrder | OrderConflict) -> web.Response:
    if isinstance(exc, UnknownOrder):
        return error_response(404, "unknown_order", str(exc))
    return error_response(409, exc.code, str(exc))


async def get_all_orders(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    status = request.query.get("status")
    if status is not None and status not in ORDER_STATUSES:
        return error_response(
            400, "bad_request", f"status {status!r} is not one of {', '.join(ORDER_STATUSES)}", "status"
        )
    orders = await kit.in_database(all_orders, kit.database, status)
    return web.json_response({"orders": orders}, headers={"Cache-Control": "no-store"})


async def put_order(request: web.Request) -> web.Response:
    """One order replaced whole: checked as an import checks a row (400 with the row's report)."""
    kit = request.app[KIT_KEY]
    order_id = request.match_info["id"]
    try:
        body = await json_body(request)
    except ValueError as exc:
        return bad_request("order", exc)
    if body is NO_BODY or not isinstance(body, dict):
        return error_response(400, "bad_request", "order: the body is one work order, a JSON object")
    if body.get("order_id") != order_id:
        return error_response(
            400,
            "bad_request",
            f"order: its order_id {body.get('order_id')!r} is not the order in the path ({order_id!r})",
            "order_id",
        )
    (row,) = await asyncio.get_running_loop().run_in_executor(
        None, check_rows, [body], kit.config["kit.region_code"]
    )
    warnings = [{"row": 1, "order_id": order_id, **w} for w in row.warnings]
    if row.errors:
        first = row.errors[0]
        return web.json_response(
            {
                "error": "bad_request",
                "message": f"order {order_id} refused: {first['field'] or 'the order'} {first['message']}",
                "field": first["field"],
                "rejected": [{"row": 1, "order_id": order_id, "errors": row.errors}],
                "warnings": warnings,
            },
            status=400,
        )
    try:
        changed = await kit.in_database(replace_order, kit.database, row, request[CALLER].actor)
    except (UnknownOrder, OrderConflict) as exc:
        return _order_error(exc)
    return web.json_response(
        {"order_id": order_id, "status": "pending", "changed": changed, "warnings": warnings}
    )


async def delete_order(request: web.Request) -> web.Response:
    """The office withdraws the order; a visit running on it is flagged and may finish."""
    kit = request.app[KIT_KEY]
    try:
        answer = await kit.visits.withdraw_order(request.match_info["id"], request[CALLER].actor)
    except (UnknownOrder, OrderConflict) as exc:
        return _order_error(exc)
    return web.json_response(answer)


def _whole_number(request: web.Request, name: str, default: int, lowest: int, highest: int) -> int:
    """Query parameter ``name``, a whole number from ``lowest`` to ``highest``; else 400 naming it."""
    text = request.query.get(name)
    if text is None:
        return default
    value = whole_number_in(text, lowest, highest)
    if value is None:
        message = f"{name} {shown_value(text)} is not a whole number from {lowest} to {highest}"
        raise RequestRefused(error_response(400, "bad_request", message, name))
    return value


async def get_outcomes(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    after = _whole_number(request, "after", 0, 0, MAX_CURSOR)
    limit = _whole_number(request, "limit", DEFAULT_OUTCOMES, 1, MAX_OUTCOMES)
    outcomes = await kit.in_database(outcomes_since, kit.database, after, limit)
    following = outcomes[-1]["cursor"] if outcomes else after
    return web.json_response({"outcomes": outcomes, "next": following}, headers={"Cache-Control": "no-store"})


# --- bundles -------------------------------------------------------------------------------


def _offered(kit: Kit, laptop: str, now: dt.datetime) -> list[dict[str, Any]]:
    """On the database's thread: every bundle not yet acknowledged, now offered to ``laptop``,
    with the kit's statement of it; the laptop synced now."""
    conn = kit.database
    listed = []
    for bundle in kit.outbox.offer(conn, laptop, now):
        _, statement_path = bundle_paths(kit.outbox.directory, bundle["bundle_id"])
        try:
            statement = json.loads(statement_path.read_bytes())
        except (OSError, ValueError) as exc:
            log.error("bundle %s is not listed: its statement cannot be read (%s)", bundle["bundle_id"], exc)
            continue
        listed.append(
            {
                "bundle_id": bundle["bundle_id"],
                "size": bundle["size"],
                "sha256": bundle["sha256"],
                "sealed_at": bundle["sealed_at"],
                "statement": statement,
            }
        )
    touch_laptop(conn, laptop, now)
    return listed


async def get_bundles(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    bundles = await kit.in_database(_offered, kit, _laptop(request), kit.clock.now())
    return web.json_response({"bundles": bundles}, headers={"Cache-Control": "no-store"})


class RangeRefused(ValueError):
    """A Range header the kit does not serve (416): says why."""


ONE_RANGE = "one range of bytes: bytes=FIRST-LAST, bytes=FIRST- or bytes=-SUFFIX"


def byte_range(header: str, size: int) -> tuple[int, int]:
    """The one range of bytes ``header`` asks of a ``size``-byte file, (first, last) inclusive;
    RangeRefused when it is malformed, several, or outside the file."""
    match = BYTE_RANGE.fullmatch(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeRefused(f"Range {shown_value(header)} is not {ONE_RANGE}")
    first_text, last_text = match.groups()
    if not first_text:
        suffix = digits_value(last_text)
        if not suffix or not size:
            raise RangeRefused(f"Range {shown_value(header)} asks for no byte of the {size}-byte file")
        return (max(0, size - suffix), size - 1)
    first = digits_value(first_text)
    if first >= size:
        raise RangeRefused(f"Range {shown_value(header)} starts past the end of the {size}-byte file")
    last = min(digits_value(last_text), size - 1) if last_text else size - 1
    if first > last:
        raise RangeRefused(f"Range {shown_value(header)} ends before it starts")
    return (first, last)


def _open_sealed(path: Path, size: int, first: int, count: int) -> tuple[BinaryIO, bytes]:
    """The sealed file, open, and its first ``count`` bytes from ``first`` on; OSError when it
    is gone or not the size registered."""
    source = path.open("rb")
    try:
        length = os.fstat(source.fileno()).st_size
        if length != size:
            raise OSError(f"its file is {length} bytes, {size} when it was sealed")
        if first:
            source.seek(first)
        return source, source.read(count)
    except BaseException:
        source.close()
        raise


def _kept_row(conn: sqlite3.Connection, bundle_id: str) -> dict[str, Any] | None:
    row = bundle_row(conn, bundle_id)
    return row if row is not None and row["state"] in KEPT else None


@dataclass
class _Answer:
    """A download's answer: its status and headers, and, when it has a body of ``length``
    bytes, the sealed file open after its first piece, ``chunk``."""

    status: int
    headers: dict[str, str]
    length: int = 0
    source: BinaryIO | None = None
    chunk: bytes = b""
    refused: str = ""  # why a range is not served (416)


def _download_answer(
    conn: sqlite3.Connection, path: Path, bundle_id: str, asked: str | None, if_range: str | None, head: bool
) -> _Answer | None:
    """On the network reads' thread, in one hop: the bundle's row, the range asked of it, and
    its file opened and read up to DOWNLOAD_CHUNK (a bundle of a few hundred kB is read whole
    with it); None when the kit keeps no such bundle, OSError when its file cannot be read."""
    row = _kept_row(conn, bundle_id)
    if row is None:
        return None
    size = row["size"]
    etag = f'"{row["sha256"]}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": "no-store"}
    first, last, status = 0, size - 1, 200
    # If-Range names the file the client has part of: another one gets the whole file. A
    # range in a unit other than bytes is ignored (RFC 9110, 14.2): the whole file too.
    if asked is not None and if_range in (None, etag) and asked.strip()[:6].lower() == "bytes=":
        try:
            (first, last), status = byte_range(asked, size), 206
        except RangeRefused as exc:
            headers["Content-Range"] = f"bytes */{size}"
            return _Answer(416, headers, refused=str(exc))
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = last - first + 1
    source, chunk = _open_sealed(path, size, first, 0 if head else min(DOWNLOAD_CHUNK, length))
    return _Answer(status, headers, length, source, chunk)


async def get_bundle_file(request: web.Request) -> web.StreamResponse:
    """The sealed file, or the range of it asked (206; 416 outside it). Its ETag is its SHA-256,
    so that a laptop resuming with ``If-Range`` gets the rest only of the same file."""
    kit = request.app[KIT_KEY]
    bundle_id = request.match_info["id"]
    head = request.method == "HEAD"
    try:
        answer = await request.app[READS_KEY].read(
            _download_answer,
            kit.outbox.sealed_file(bundle_id),
            bundle_id,
            request.headers.get("Range"),
            request.headers.get("If-Range"),
            head,
        )
    except OSError as exc:
        log.error("bundle %s cannot be sent: %s", bundle_id, exc.strerror or exc)
        return error_response(
            503, "bundle_unavailable", f"bundle {bundle_id} cannot be read on the kit: {exc.strerror or exc}"
        )
    if answer is None:
        return error_response(
            404, "unknown_bundle", f"no bundle {shown_value(bundle_id)} the kit still keeps"
        )
    if answer.source is None:  # a range not served
        refusal = error_response(answer.status, "range_not_satisfiable", answer.refused)
        refusal.headers.update(answer.headers)
        return refusal
    source, chunk = answer.source, answer.chunk
    try:
        response = web.StreamResponse(status=answer.status, headers=answer.headers)
        response.content_type = "application/octet-stream"
        response.content_length = answer.length
        await response.prepare(request)
        left = 0 if head else answer.length
        loop = asyncio.get_running_loop()
        while chunk:
            await response.write(chunk)
            left -= len(chunk)
            if left <= 0:
                break
            chunk = await loop.run_in_executor(None, source.read, min(DOWNLOAD_CHUNK, left))
        # A file cut short under us ends the loop early: the client sees a short body, never
        # wrong bytes.
        await response.write_eof()
        return response
    finally:
        source.close()


# --- receipts --------------------------------------------------------------------------------


async def post_receipts(request: web.Request) -> web.Response:
    """The laptop's own receipts: a receipt by any other laptop is refused."""
    return await take_receipts(request, "laptop_receipt", _laptop(request))


async def post_central_receipts(request: web.Request) -> web.Response:
    """The central office's receipts, brought back by the laptop."""
    return await take_receipts(request, "central_receipt")


# --- the kit's clock ------------------------------------------------------------------------


async def post_clock(request: web.Request) -> web.Response:
    """The laptop's time, sent at every sync: the kit's clock corrected beyond clock.max_skew_s,
    confirmed either way (kitd.clock)."""
    body = await checked_body(request, "ClockRequest", "clock")
    try:
        laptop_time = plausible_time(body["laptop_time"])
    except ValueError as exc:
        return error_response(400, "bad_request", f"laptop_time: {exc}", "laptop_time")
    kit = request.app[KIT_KEY]
    # A laptop's clock years ahead would put the kit past its own certificate: no visit could be
    # sealed until another laptop set it back. Refused, saying which is wrong.
    certificate = await asyncio.get_running_loop().run_in_executor(None, kit.keys.kit_certificate)
    if certificate is not None and laptop_time >= certificate.not_valid_after_utc:
        said = (
            f"laptop_time: {iso(laptop_time)} is after the kit's certificate expires "
            f"({iso(certificate.not_valid_after_utc)}): the laptop's clock is wrong (or, if it is "
            "right, the kit needs a new certificate)"
        )
        return error_response(400, "bad_request", said, "laptop_time")
    answer = await kit.confirm_clock(laptop_time, _laptop(request), request[CALLER].actor)
    return web.json_response(answer, headers={"Cache-Control": "no-store"})


async def _close_reads(app: web.Application) -> None:
    await asyncio.get_running_loop().run_in_executor(None, app[READS_KEY].close)


def make_network_app(kit: Kit) -> web.Application:
    """The network API's app (served with kit.network_trust.server_context)."""
    app = web.Application(middlewares=[json_errors, require_paired_laptop])
    app[KIT_KEY] = kit
    app[READS_KEY] = NetworkReads(database_path(kit.config.data_dir), kit.clock)
    app.on_cleanup.append(_close_reads)
    app.router.add_get("/api/v1/status", get_status)
    app.router.add_get("/api/v1/devices", get_devices)
    app.router.add_get("/api/v1/openapi.json", get_network_openapi)
    app.router.add_post("/api/v1/orders", post_orders)
    app.router.add_get("/api/v1/orders", get_all_orders)
    app.router.add_put("/api/v1/orders/{id}", put_order)
    app.router.add_delete("/api/v1/orders/{id}", delete_order)
    app.router.add_get("/api/v1/outcomes", get_outcomes)
    app.router.add_get("/api/v1/bundles", get_bundles)
    app.router.add_get("/api/v1/bundles/{id}", get_bundle_file)
    app.router.add_post("/api/v1/receipts", post_receipts)
    app.router.add_post("/api/v1/central-receipts", post_central_receipts)
    app.router.add_post("/api/v1/clock", post_clock)
    app.router.add_get("/api/v1/audit/checkpoint", get_checkpoint)
    app.router.add_get("/api/v1/audit/proof/consistency", get_consistency)
    return app
