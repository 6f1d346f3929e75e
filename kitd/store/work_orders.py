"""Work orders: the visits an office sends, checked row by row and kept while pending.

Its one job: read orders (a JSON array, or CSV whose header names nested fields with
dots: ``address.rt``), check each against ``work_order.schema.json`` and the rules of
Indonesian identity numbers, store the good ones in the kit's database and report
the bad ones by row and reason; list the pending ones for a day, and every one with its
status for a field laptop, which may also replace a pending order or withdraw it. A row is
numbered from 1 in the order the file gives them (a CSV's header is not a row).

Orders hold personal data in the clear: only pending ones keep it (a later issue
erases an order's personal fields when its visit ends).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jsonschema import Draft202012Validator
from kitformats.work_orders import MAX_FILE_BYTES, work_order_schema

from kitd.ansi_nist_text import text_problem
from kitd.clock import clock_of
from kitd.errors import KitError, shown_value
from kitd.identity_numbers import kk_problems, nik_problems
from kitd.store.audit import SYSTEM, append_entry
from kitd.store.database import transaction
from kitd.store.visits import ACTIVE_STATES, save_visit

MAX_ROWS = 10_000


class OrdersRefused(KitError):
    """A whole file refused (too big, too many rows, not JSON or CSV): says why."""


class OrdersTooLarge(OrdersRefused):
    """A whole file refused for its size: over MAX_FILE_BYTES or MAX_ROWS (413)."""


class UnknownOrder(KitError):
    """No work order with that id (404)."""


class OrderConflict(KitError):
    """The order cannot be changed now (409); ``code`` says why: ``order_closed`` (its visit
    ended), ``order_withdrawn``, ``visit_running``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# What a laptop may ask for in the list of every order, and how each is named there.
ORDER_STATUSES: tuple[str, ...] = ("pending", "closed", "withdrawn")


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(work_order_schema())


# An import's audit entry names this many of the orders it brought in (and counts the rest).
AUDITED_ORDER_IDS = 200


@dataclass
class ImportReport:
    """What an import did, in the API's shape (``to_json``)."""

    imported: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "warnings": self.warnings,
        }


# --- reading files -----------------------------------------------------------------------


def parse_orders(data: bytes, name: str = "", media_type: str | None = None) -> list[Any]:
    """The rows of a JSON array or a CSV file: as ``media_type`` says (an HTTP body's label,
    application/json or text/csv), else by content (a file); ``name`` only for messages."""
    label = f"{name}: " if name else ""
    if len(data) > MAX_FILE_BYTES:
        raise OrdersTooLarge(f"{label}{len(data)} bytes is over the {MAX_FILE_BYTES} byte limit (10 MB)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise OrdersRefused(f"{label}not UTF-8 text") from None
    # A label is what the body is: a JSON array sent as text/csv is CSV (with no order_id
    # column), never JSON read past what its sender said.
    as_json = text.lstrip().startswith(("[", "{")) if media_type is None else media_type == "application/json"
    if as_json:
        try:
            rows = json.loads(text, parse_constant=_no_constant)
        except RecursionError:
            raise OrdersRefused(f"{label}not JSON this kit reads: nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError, NaN, numbers of thousands of digits
            raise OrdersRefused(f"{label}not valid JSON: {exc}") from None
        if not isinstance(rows, list):
            raise OrdersRefused(f"{label}expected a JSON array of orders")
    else:
        rows = _csv_rows(text, label)
    if len(rows) > MAX_ROWS:
        raise OrdersTooLarge(f"{label}{len(rows)} rows is over the {MAX_ROWS} row limit")
    return rows


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# A CSV column names a field by its dotted path (address.rt): no order field is deeper than
# two, and a column of thousands of parts would nest a row past what the checks recurse into.
MAX_COLUMN_PARTS = 4


def _csv_rows(text: str, label: str) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise OrdersRefused(f"{label}empty file") from None
    except csv.Error as exc:
        raise OrdersRefused(f"{label}not valid CSV: {exc}") from None
    names = [h.strip() for h in header]
    deep = next((n for n in names if n.count(".") >= MAX_COLUMN_PARTS), None)
    if deep is not None:
        raise OrdersRefused(f"{label}CSV column {shown_value(deep)}: no order field is nested that deep")
    if "order_id" not in names:
        raise OrdersRefused(f"{label}CSV header has no order_id column (got: {', '.join(names)})")
    rows = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank line
            row: dict[str, Any] = {}
            for i, name in enumerate(names):
                value = cells[i].strip() if i < len(cells) else ""
                if value == "" or not name:
                    continue  # an empty cell is an absent field
                _put_dotted(row, name, value)
            if len(cells) > len(names):
                row["_extra_cells"] = len(cells) - len(names)
            rows.append(row)
    except csv.Error as exc:
        raise OrdersRefused(f"{label}not valid CSV at line {reader.line_num}: {exc}") from None
    return rows


def _put_dotted(row: dict[str, Any], dotted: str, value: str) -> None:
    *parents, leaf = dotted.split(".")
    node = row
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[leaf] = value


# --- checking one order ------------------------------------------------------------------


def _field(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


def _parse_date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


# Appointments are within a lifetime of the kit; beyond, a typo (and dates that overflow
# when moved to another time zone).
APPOINTMENT_YEARS = (2000, 2100)


def _parse_instant(value: str) -> dt.datetime | None:
    """An ISO 8601 instant with an offset, in APPOINTMENT_YEARS; None otherwise."""
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if instant.tzinfo is None or not APPOINTMENT_YEARS[0] <= instant.year <= APPOINTMENT_YEARS[1]:
        return None
    return instant


def check_order(
    order: Any, region_code: str = "", today: dt.date | None = None
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """``(errors, warnings)``, each ``{"field", "message"}``, for one order."""
    if not isinstance(order, Mapping):
        return [{"field": "", "message": "an order must be an object"}], []
    today = today or dt.date.today()
    errors = []
    if "_extra_cells" in order:
        errors.append({"field": "", "message": f"{order['_extra_cells']} more cells than the header has"})
        order = {k: v for k, v in order.items() if k != "_extra_cells"}
    for error in sorted(_validator().iter_errors(order), key=lambda e: list(e.absolute_path)):
        where = _field(error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            where = f"{where}.{missing}" if where else missing
            errors.append({"field": where, "message": "is required"})
        elif error.validator == "additionalProperties":
            errors.append({"field": where, "message": error.message})
        elif error.validator == "pattern":
            shown = shown_value(error.instance)
            errors.append({"field": where, "message": f"{shown} does not have the expected form"})
        elif error.validator == "maxLength":
            longest = error.validator_value
            errors.append({"field": where, "message": f"{len(error.instance)} characters, at most {longest}"})
        else:
            errors.append({"field": where, "message": error.message})
    bad = {e["field"] for e in errors}
    birth_date = None
    if isinstance(order.get("birth_date"), str) and "birth_date" not in bad:
        birth_date = _parse_date(order["birth_date"])
        if birth_date is None:
            errors.append({"field": "birth_date", "message": f"{order['birth_date']} is not a calendar date"})
        elif birth_date > today:
            errors.append({"field": "birth_date", "message": f"{order['birth_date']} is in the future"})
            birth_date = None
    sex = order.get("sex") if "sex" not in bad else None
    if isinstance(order.get("nik"), str) and "nik" not in bad:
        errors += [{"field": "nik", "message": m} for m in nik_problems(order["nik"], birth_date, sex)]
    if isinstance(order.get("kk"), str) and "kk" not in bad:
        errors += [{"field": "kk", "message": m} for m in kk_problems(order["kk"], today)]
    errors += _appointment_errors(order.get("appointment"), bad)
    errors += _transaction_text_errors(order, bad)
    warnings = []
    nik = order.get("nik")
    if region_code and isinstance(nik, str) and len(nik) >= 4 and nik[:4] != region_code:
        warnings.append(
            {
                "field": "nik",
                "message": f"NIK region {nik[:4]} is not this kit's region {region_code} "
                "(a NIK keeps the region of first registration; people move)",
            }
        )
    return errors, warnings


# Free notes stay out of the sealed bundle's transaction and may hold line breaks and tabs;
# every other text goes into its Type-2 record (kitd.ansi_nist_text).
_FREE_TEXT = ("needs", "note")


def _text_fields(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _text_fields(inner, f"{path}.{key}" if path else str(key))


def _transaction_text_errors(order: Mapping[str, Any], bad: set[str]) -> list[dict[str, str]]:
    errors = []
    for where, text in _text_fields(order, ""):
        problem = None if where in bad else text_problem(text, line_breaks=where in _FREE_TEXT)
        if problem is not None:
            errors.append({"field": where, "message": f"{problem}: a sealed bundle cannot carry it"})
    return errors


def _appointment_errors(appointment: Any, bad: set[str]) -> list[dict[str, str]]:
    if not isinstance(appointment, Mapping):
        return []
    errors = []
    instants = {}
    for key in ("start", "end"):
        value = appointment.get(key)
        if isinstance(value, str) and f"appointment.{key}" not in bad:
            instant = _parse_instant(value)
            if instant is None:
                errors.append(
                    {
                        "field": f"appointment.{key}",
                        "message": f"{value!r} is not ISO 8601 with a UTC offset "
                        f"(2026-12-01T09:00:00+07:00), in {APPOINTMENT_YEARS[0]}-{APPOINTMENT_YEARS[1]}",
                    }
                )
            else:
                instants[key] = instant
    if len(instants) == 2 and instants["end"] <= instants["start"]:
        errors.append({"field": "appointment.end", "message": "must be after appointment.start"})
    return errors


# --- storing ---------------------------------------------------------------------------


def _canonical(order: Mapping[str, Any]) -> str:
    return json.dumps(order, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _utc_start(order: Mapping[str, Any]) -> str | None:
    appointment = order.get("appointment")
    if not isinstance(appointment, Mapping):
        return None
    instant = _parse_instant(str(appointment.get("start", "")))
    return instant.astimezone(dt.UTC).isoformat() if instant else None


@dataclass
class CheckedRow:
    """One row and what its check found (no database needed to find it)."""

    number: int
    order: Any
    order_id: str | None
    errors: list[dict[str, str]]
    warnings: list[dict[str, str]]


def check_rows(rows: list[Any], region_code: str = "", today: dt.date | None = None) -> list[CheckedRow]:
    """Check every row (the slow part of an import: a few seconds for 10,000 rows)."""
    checked = []
    for number, order in enumerate(rows, start=1):
        order_id = order.get("order_id") if isinstance(order, Mapping) else None
        errors, warnings = check_order(order, region_code, today)
        if isinstance(order_id, str):
            # Half a UTF-16 pair (refused among the errors) has no UTF-8: the report shows it escaped.
            order_id = order_id.encode("utf-8", "backslashreplace").decode("utf-8")
        checked.append(
            CheckedRow(number, order, order_id if isinstance(order_id, str) else None, errors, warnings)
        )
    return checked


def store_rows(conn: sqlite3.Connection, checked: list[CheckedRow], actor: str = SYSTEM) -> ImportReport:
    """Store the good rows in one short transaction, with its audit entry; the report of the
    whole import."""
    report = ImportReport()
    now = clock_of(conn).now().isoformat(timespec="seconds")
    conn.execute("BEGIN IMMEDIATE")
    try:
        imported: list[str] = []
        for row in checked:
            report.warnings += [{"row": row.number, "order_id": row.order_id, **w} for w in row.warnings]
            before = report.imported
            errors = row.errors or _store_one(conn, row, now, report)
            if errors:
                report.rejected.append({"row": row.number, "order_id": row.order_id, "errors": errors})
            elif report.imported > before:
                imported.append(str(row.order_id))
        details = {
            "imported": report.imported,
            "unchanged": report.unchanged,
            "rejected": len(report.rejected),
            "order_ids": imported[:AUDITED_ORDER_IDS],
        }
        if len(imported) > AUDITED_ORDER_IDS:
            details["more_order_ids"] = len(imported) - AUDITED_ORDER_IDS
        append_entry(conn, actor, "orders_imported", details)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return report


def _store_one(
    conn: sqlite3.Connection, row: CheckedRow, now: str, report: ImportReport
) -> list[dict[str, str]]:
    """Insert a good row, or count it unchanged; the errors if its id is taken."""
    content = _canonical(row.order)
    kept = conn.execute(
        "SELECT status, content, outcome, withdrawn_at FROM work_orders WHERE order_id = ?", (row.order_id,)
    ).fetchone()
    if kept is None:
        conn.execute(
            "INSERT INTO work_orders (order_id, content, appointment_start, imported_at) VALUES (?, ?, ?, ?)",
            (row.order_id, content, _utc_start(row.order), now),
        )
        report.imported += 1
        return []
    if kept["content"] == content:
        report.unchanged += 1
        return []
    if kept["withdrawn_at"] is not None:
        message = f"order {row.order_id} was withdrawn by the office: a new visit needs a new order_id"
    elif kept["status"] == "done":
        message = (
            f"order {row.order_id} is done (outcome {kept['outcome']}): a new visit needs a new order_id"
        )
    else:
        message = f"order {row.order_id} was already imported with different content"
    return [{"field": "order_id", "message": message}]


def import_orders(
    conn: sqlite3.Connection,
    rows: list[Any],
    region_code: str = "",
    today: dt.date | None = None,
    actor: str = SYSTEM,
) -> ImportReport:
    """Check every row and store the good ones in one transaction."""
    return store_rows(conn, check_rows(rows, region_code, today), actor)


def pending_orders(conn: sqlite3.Connection, day: dt.date, timezone: str) -> list[dict[str, Any]]:
    """Pending orders: those with an appointment on ``day`` (the kit's day) first, by start,
    then the rest by appointment (orders without one last)."""
    zone = ZoneInfo(timezone)
    rows = conn.execute(
        "SELECT order_id, content, appointment_start FROM work_orders "
        "WHERE status = 'pending' AND withdrawn_at IS NULL"
    ).fetchall()

    def sort_key(row: sqlite3.Row) -> tuple[int, str, str]:
        start = row["appointment_start"]
        if start is None:
            return (2, "", row["order_id"])
        local_day = dt.datetime.fromisoformat(start).astimezone(zone).date()
        return (0 if local_day == day else 1, start, row["order_id"])

    return [json.loads(r["content"]) for r in sorted(rows, key=sort_key)]


# --- the laptop's view: every order, replaced, withdrawn --------------------------------


def _status(row: sqlite3.Row) -> str:
    if row["withdrawn_at"] is not None:
        return "withdrawn"
    return "pending" if row["status"] == "pending" else "closed"


def all_orders(conn: sqlite3.Connection, status: str | None = None) -> list[dict[str, Any]]:
    """Every order the kit holds, oldest import first, with its status (``pending``, ``closed``:
    its visit ended, ``withdrawn``), the last visit's outcome and its times; the order itself
    (personal data) only while it is pending."""
    rows = conn.execute(
        "SELECT order_id, status, content, outcome, imported_at, updated_at, ended_at, withdrawn_at "
        "FROM work_orders ORDER BY imported_at, order_id"
    ).fetchall()
    listed = []
    for row in rows:
        shown = _status(row)
        if status is not None and shown != status:
            continue
        listed.append(
            {
                "order_id": row["order_id"],
                "status": shown,
                "outcome": row["outcome"],
                "imported_at": row["imported_at"],
                "updated_at": row["updated_at"],
                "ended_at": row["ended_at"],
                "withdrawn_at": row["withdrawn_at"],
                "order": json.loads(row["content"]) if shown == "pending" and row["content"] else None,
            }
        )
    return listed


def _visit_running(conn: sqlite3.Connection, order_id: str) -> str | None:
    """The id of the order's visit that has not ended, if one has not."""
    marks = ", ".join("?" * len(ACTIVE_STATES))
    row = conn.execute(
        f"SELECT id FROM visits WHERE order_id = ? AND state IN ({marks}) ORDER BY started_at DESC",
        (order_id, *ACTIVE_STATES),
    ).fetchone()
    return None if row is None else str(row["id"])


def _order_row(conn: sqlite3.Connection, order_id: str) -> sqlite3.Row:
    row = conn.execute(
        "SELECT status, content, outcome, withdrawn_at FROM work_orders WHERE order_id = ?", (order_id,)
    ).fetchone()
    if row is None:
        raise UnknownOrder(f"no work order {shown_value(order_id)}")
    return row


def replace_order(conn: sqlite3.Connection, row: CheckedRow, actor: str = SYSTEM) -> bool:
    """Put ``row`` (checked, without errors) in place of the pending order with its id, audited
    ``order_replaced``; whether it changed anything. UnknownOrder; OrderConflict when the order
    is closed or withdrawn, or its visit is running (the officer has it in hand)."""
    order_id = str(row.order_id)
    with transaction(conn):
        kept = _order_row(conn, order_id)
        if kept["withdrawn_at"] is not None:
            raise OrderConflict(
                "order_withdrawn", f"order {order_id} was withdrawn on {kept['withdrawn_at']}"
            )
        if kept["status"] != "pending":
            raise OrderConflict(
                "order_closed", f"order {order_id} is closed (its visit ended: {kept['outcome']})"
            )
        visit = _visit_running(conn, order_id)
        if visit is not None:
            raise OrderConflict(
                "visit_running",
                f"order {order_id} is being visited now (visit {visit}): withdraw it, or change it after",
            )
        content = _canonical(row.order)
        if content == kept["content"]:
            return False
        now = clock_of(conn).now().isoformat(timespec="seconds")
        conn.execute(
            "UPDATE work_orders SET content = ?, appointment_start = ?, updated_at = ? WHERE order_id = ?",
            (content, _utc_start(row.order), now, order_id),
        )
        append_entry(conn, actor, "order_replaced", {"order": order_id})
    return True


def withdraw_order(
    conn: sqlite3.Connection,
    order_id: str,
    actor: str = SYSTEM,
    visit_record: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The office takes the order back, audited ``order_withdrawn``: with no visit running it is
    closed at once (personal fields erased); while its visit runs (``visit_record``: that visit
    flagged, saved in the same transaction) it stays for that visit, which may still be sealed,
    and closes when it ends. Withdrawing again changes nothing. UnknownOrder; OrderConflict
    when its visit has ended already."""
    stamp = (now or clock_of(conn).now()).isoformat(timespec="seconds")
    with transaction(conn):
        kept = _order_row(conn, order_id)
        running = _visit_running(conn, order_id)
        if visit_record is not None:
            running = str(visit_record["id"])
        if kept["withdrawn_at"] is None:
            if kept["status"] != "pending":
                raise OrderConflict(
                    "order_closed",
                    f"order {order_id} is closed (its visit ended: {kept['outcome']}): nothing to withdraw",
                )
            if running is None:
                conn.execute(
                    "UPDATE work_orders SET status = 'done', content = NULL, appointment_start = NULL, "
                    "withdrawn_at = ?, ended_at = ? WHERE order_id = ?",
                    (stamp, stamp, order_id),
                )
            else:
                conn.execute("UPDATE work_orders SET withdrawn_at = ? WHERE order_id = ?", (stamp, order_id))
            if visit_record is not None:
                save_visit(conn, visit_record)
            append_entry(conn, actor, "order_withdrawn", {"order": order_id, "visit": running})
    return {"order_id": order_id, "status": "withdrawn", "visit_running": running is not None}
