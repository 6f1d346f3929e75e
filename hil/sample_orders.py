"""Made-up work orders for the simulation rig and the tests, as an office would send them.

Its one job: :func:`sample_order` builds a well-formed order (a woman of Kota
Mojokerto born in 1948, her daughter as companion), with any field changed,
:func:`orders_csv` writes orders as the office's CSV (dotted header names for
nested fields), and :func:`appointment_in_days` gives a new appointment that is
still to come (the kit refuses one already past). The people are invented; the
numbers follow the NIK and KK rules.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from kitd.config import dotted_keys


def sample_order(order_id: str = "MJK-001", **changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "order_id": order_id,
        "kind": "new",
        "nik": "3576014703480001",
        "kk": "3576012005150003",
        "name": "Sumiati",
        "birth_date": "1948-03-07",
        "sex": "P",
        "address": {
            "street": "Jl. Empunala 12",
            "rt": "002",
            "rw": "003",
            "kelurahan": "Balongsari",
            "kecamatan": "Magersari",
            "kabupaten_kota": "Kota Mojokerto",
        },
        "category": "lansia",
        "needs": "bedridden; deaf",
        "companion": {"name": "Rina", "relation": "anak", "phone": "081234567890"},
        "appointment": {"start": "2026-12-01T09:00:00+07:00", "end": "2026-12-01T10:00:00+07:00"},
    }
    order.update(changes)
    return order


def appointment_in_days(days: int = 1, offset_hours: int = 7) -> dict[str, str]:
    """A new appointment ``{"start", "end"}``, 09.00-10.00 `days` from today (UTC+`offset_hours`)."""
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    day = dt.datetime.now(zone).date() + dt.timedelta(days=days)
    start = dt.datetime.combine(day, dt.time(9, 0), zone)
    return {"start": start.isoformat(), "end": (start + dt.timedelta(hours=1)).isoformat()}


def orders_csv(orders: list[dict[str, Any]]) -> bytes:
    """The orders as CSV bytes, one column per (dotted) field any of them has."""
    flats = [dotted_keys(o) for o in orders]
    header = sorted({key for flat in flats for key in flat})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, header)
    writer.writeheader()
    writer.writerows(flats)
    return buffer.getvalue().encode()
