"""kitctl orders: import the office's work orders and list the pending ones.

``import FILE`` reads a JSON array or a CSV file (nested fields as dotted header
names: ``address.rt``), checks every row and stores the good ones in the database in
data_dir; it prints what it imported, what was already there, and each rejected row
with its reasons. Exit 0 when every row was imported or unchanged, 1 when a row was
rejected or the file refused, 2 for bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import errno
import json
import sys
from pathlib import Path

from kitformats.named_files import read_named_file
from kitformats.work_orders import MAX_FILE_BYTES, file_too_large

from kitd.cli.options import add_config_option, config_from_args, kit_database
from kitd.clock import KitClock
from kitd.store.database import database_path, open_database
from kitd.store.work_orders import OrdersRefused, import_orders, parse_orders, pending_orders


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("orders", help="import work orders, list pending ones")
    sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    imp = sub.add_parser("import", help="check and store the orders of a JSON or CSV file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--json", action="store_true", help="the API's report object")
    listing = sub.add_parser("list", help="pending orders, the day's appointments first")
    listing.add_argument("--day", help="YYYY-MM-DD (default: today, in kit.timezone)")
    listing.add_argument("--json", action="store_true")
    for child in (imp, listing):
        add_config_option(child)
    parser.set_defaults(func=run)


def _import(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    try:
        data = read_named_file(args.file, MAX_FILE_BYTES)
    except OSError as exc:
        if exc.errno == errno.EFBIG:
            print(f"kitctl orders import: refused: {file_too_large(args.file)}", file=sys.stderr)
        else:
            print(f"kitctl orders import: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        rows = parse_orders(data, str(args.file))
    except OrdersRefused as exc:
        print(f"kitctl orders import: refused: {exc}", file=sys.stderr)
        return 1
    if len(rows) >= 1000:  # a few seconds of checking: say so before going quiet
        print(f"{args.file}: checking {len(rows)} rows ...", file=sys.stderr, flush=True)
    conn = open_database(database_path(config.data_dir))
    try:
        report = import_orders(conn, rows, config["kit.region_code"])
    finally:
        conn.close()
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        print(
            f"{args.file}: {len(rows)} rows: imported {report.imported}, unchanged {report.unchanged}, "
            f"rejected {len(report.rejected)}, warnings {len(report.warnings)}"
        )
        for entry in report.rejected:
            reasons = "; ".join(f"{e['field'] or 'row'}: {e['message']}" for e in entry["errors"])
            print(f"  row {entry['row']} ({entry['order_id'] or 'no order_id'}) rejected: {reasons}")
        for entry in report.warnings:
            print(f"  row {entry['row']} ({entry['order_id']}) warning: {entry['field']}: {entry['message']}")
    return 1 if report.rejected else 0


def _list(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    zone = config["kit.timezone"]
    if args.day:
        try:
            day = dt.date.fromisoformat(args.day)
        except ValueError:
            print(f"kitctl orders list: --day {args.day!r} is not YYYY-MM-DD", file=sys.stderr)
            return 2
    else:
        day = KitClock.for_config(config).day_start(zone).date()
    conn = kit_database(config)
    try:
        orders = pending_orders(conn, day, zone)
    finally:
        conn.close()
    if args.json:
        print(json.dumps(orders, indent=2, ensure_ascii=False))
        return 0
    print(f"{len(orders)} pending orders (day {day.isoformat()}, {zone})")
    for order in orders:
        when = order.get("appointment", {}).get("start", "no appointment")
        print(f"  {order['order_id']}  {when}  {order['category']}  {order['name']}")
    return 0


def run(args: argparse.Namespace) -> int:
    return _import(args) if args.action == "import" else _list(args)
