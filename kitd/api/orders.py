"""The work-order endpoints: import (supervisors), the pending list, and the order schema.

Its one job: turn HTTP into kitd.store.work_orders calls. ``POST /api/v1/orders`` takes
a JSON array (``application/json``) or CSV (``text/csv``, dotted header names for
nested fields) of at most 10 MB and 10,000 rows and answers the import report;
``GET /api/v1/orders?day=YYYY-MM-DD`` lists pending orders, that day's (the kit's
day, kit.timezone) first; ``GET /api/v1/schemas/work-order.json`` is the schema the
field laptop checks orders with too.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re

from aiohttp import web
from kitformats.work_orders import work_order_schema

from kitd.api.requests import KIT_KEY, error_response
from kitd.api.sign_in import CALLER
from kitd.errors import shown_value
from kitd.store.work_orders import (
    MAX_FILE_BYTES,
    OrdersRefused,
    OrdersTooLarge,
    check_rows,
    parse_orders,
    pending_orders,
    store_rows,
)

ORDER_MEDIA_TYPES = ("application/json", "text/csv")


async def _read_limited(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is over ``limit`` bytes (read no further than that)."""
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def post_orders(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    if "Content-Type" in request.headers and request.content_type not in ORDER_MEDIA_TYPES:
        return error_response(
            415, "unsupported_media_type", f"orders: a body of {request.content_type}: send JSON or CSV"
        )
    data = await _read_limited(request, MAX_FILE_BYTES)
    if data is None:
        return error_response(413, "too_large", "orders: the body is over the 10 MB limit: refused whole")
    try:
        rows = parse_orders(
            data, media_type=request.content_type if "Content-Type" in request.headers else None
        )
    except OrdersRefused as exc:
        status, code = (413, "too_large") if isinstance(exc, OrdersTooLarge) else (400, "bad_request")
        return error_response(status, code, f"orders refused whole: {exc}")
    # Checking takes seconds for a big file: off the database's thread, which signs people in.
    checked = await asyncio.get_running_loop().run_in_executor(
        None, check_rows, rows, kit.config["kit.region_code"]
    )
    report = await kit.in_database(store_rows, kit.database, checked, request[CALLER].actor)
    return web.json_response(report.to_json())


DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


async def get_orders(request: web.Request) -> web.Response:
    kit = request.app[KIT_KEY]
    zone = kit.config["kit.timezone"]
    day_text = request.query.get("day")
    if day_text is None:
        day = kit.clock.day_start(zone).date()
    else:
        # fromisoformat also reads 20261201 and 2026-W49-4; the parameter is documented as one form.
        try:
            if not DAY.fullmatch(day_text) or len(request.query.getall("day")) > 1:
                raise ValueError
            day = dt.date.fromisoformat(day_text)
        except ValueError:
            said = f"day {shown_value(day_text)} is not one YYYY-MM-DD"
            return error_response(400, "bad_request", said, "day")
    orders = await kit.in_database(pending_orders, kit.database, day, zone)
    return web.json_response(orders, headers={"Cache-Control": "no-store"})


async def get_work_order_schema(request: web.Request) -> web.Response:
    return web.json_response(work_order_schema())


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/orders", post_orders)
    app.router.add_get("/api/v1/orders", get_orders)
    app.router.add_get("/api/v1/schemas/work-order.json", get_work_order_schema)
