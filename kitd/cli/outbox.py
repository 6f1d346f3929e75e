"""kitctl outbox and kitctl receipts: the sealed bundles waiting on the kit, and receipts.

``kitctl outbox list [--state S] [--json]`` and ``kitctl outbox show ID [--json]`` read the
outbox's rows and summary; ``kitctl receipts take FILE...`` applies receipts brought on a
stick (each file one receipt or a non-empty JSON array), one line for each naming its file
(``--json``: the API's results, each with its ``file``). Works on the
database in data_dir directly, whether or not the daemon runs (SQLite takes turns). Whose
receipts the kit takes is pairing's (kitctl laptops).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kitformats.named_files import read_named_file

from kitd.cli.inputs import InputUnreadable, json_document
from kitd.cli.options import add_config_option, config_from_args, kit_database
from kitd.clock import clock_of
from kitd.errors import KitError
from kitd.services.outbox import BundleNotFound, NotReceipts, Outbox, OutboxError, kit_outbox, receipt_batch
from kitd.services.sealing import kit_keys
from kitd.store.outbox import STATES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    outbox = subparsers.add_parser("outbox", help="the sealed bundles waiting for the office")
    sub = outbox.add_subparsers(dest="action", required=True, parser_class=type(outbox))
    listing = sub.add_parser("list", help="every bundle (oldest first) and the outbox's summary")
    listing.add_argument("--state", choices=STATES[1:], help="only bundles in this state")
    listing.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="one bundle: its state, times and receipts")
    show.add_argument("bundle_id")
    show.add_argument("--json", action="store_true")
    for child in sub.choices.values():
        add_config_option(child)
    outbox.set_defaults(func=run_outbox)

    receipts = subparsers.add_parser("receipts", help="take receipts brought on a stick")
    sub = receipts.add_subparsers(dest="action", required=True, parser_class=type(receipts))
    take = sub.add_parser("take", help="apply receipt files (each one receipt or a JSON array)")
    take.add_argument("files", nargs="+", type=Path)
    take.add_argument("--json", action="store_true")
    for child in sub.choices.values():
        add_config_option(child)
    receipts.set_defaults(func=run_receipts)


def _age(sealed_at: str, now: dt.datetime) -> str:
    seconds = (now - dt.datetime.fromisoformat(sealed_at)).total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    return f"{seconds / 3600:.1f} h"


def _print_summary(summary: dict[str, Any]) -> None:
    counts = ", ".join(f"{n} {state}" for state, n in summary["bundles"].items())
    free = summary["free_bytes"]
    room = "unknown" if free is None else f"{free / 2**20:.0f} MiB"
    reserve = "ok" if summary["reserve_ok"] else "BELOW the reserve: no visit can start"
    print(f"outbox: {counts}; free {room}, reserve {summary['reserve_bytes'] / 2**20:.1f} MiB ({reserve})")
    if summary["oldest_unacknowledged_age_s"] is not None:
        days = summary["oldest_unacknowledged_age_s"] / 86400
        print(
            f"oldest bundle the office does not have: sealed "
            f"{summary['oldest_unacknowledged_sealed_at']} ({days:.1f} d)"
        )
    for problem in summary["problems"]:
        print(f"PROBLEM: bundle {problem['bundle_id']} ({problem['state']}): file {problem['problem']} "
              f"since {problem['problem_since']}")  # fmt: skip


@contextmanager
def _kit_outbox(args: argparse.Namespace) -> Iterator[tuple[sqlite3.Connection, Outbox]]:
    """The kit's database and outbox, as configured; the database and the keys closed after."""
    config = config_from_args(args)
    conn = kit_database(config)
    try:
        keys = kit_keys(config)
        try:
            yield conn, kit_outbox(config, keys)
        finally:
            keys.close()
    finally:
        conn.close()


def run_outbox(args: argparse.Namespace) -> int:
    with _kit_outbox(args) as (conn, outbox):
        try:
            if args.action == "list":
                bundles = outbox.bundles(conn, (args.state,) if args.state else STATES[1:])
                summary = outbox.summary(conn)
                if args.json:
                    print(json.dumps({"bundles": bundles, "summary": summary}, indent=2))
                    return 0
                now = clock_of(conn).now()
                for b in bundles:
                    where = b["offered_to"] or b["acknowledged_by"] or ""
                    flag = f"  {b['problem'].upper()}" if b["problem"] else ""
                    print(f"{b['bundle_id']}  {b['state']:12s}  {b['size'] / 1024:6.0f} KiB  "
                          f"{b['sealed_at']}  {_age(b['sealed_at'], now):>7s}  {where}{flag}")  # fmt: skip
                _print_summary(summary)
            else:
                bundle = outbox.bundle(conn, args.bundle_id)
                if args.json:
                    print(json.dumps(bundle, indent=2))
                    return 0
                for name, value in bundle.items():
                    if value is None:
                        continue
                    if isinstance(value, dict):
                        value = json.dumps(value.get("statement", value), sort_keys=True)
                    print(f"{name}: {value}")
                print(f"file: {outbox.sealed_file(args.bundle_id)}")
        except BundleNotFound as exc:
            print(f"kitctl outbox show: {exc}", file=sys.stderr)
            return 1
    return 0


class ReceiptFileError(KitError):
    """A receipt file that cannot be read or holds no receipts (names the file)."""


def _read_receipts(path: Path) -> list[Any]:
    try:
        document = json_document(read_named_file(path))
    except OSError as exc:
        raise ReceiptFileError(f"{path}: cannot read: {exc.strerror}") from None
    except InputUnreadable as exc:
        raise ReceiptFileError(f"{path}: {exc}") from None
    try:
        return receipt_batch(document)
    except NotReceipts as exc:
        raise ReceiptFileError(f"{path}: holds {exc}") from None


def _receipt_line(result: dict[str, Any], source: str) -> str:
    bundle = result.get("bundle_id")
    named = f" (bundle {bundle})" if isinstance(bundle, str) else ""
    if result["result"] == "refused":
        return f"{source}{named}: refused: {result['reason']}"
    return f"{source}{named}: {result['result']} (now {result['state']})"


def run_receipts(args: argparse.Namespace) -> int:
    with _kit_outbox(args) as (conn, outbox):
        try:
            read = [(path, _read_receipts(path)) for path in args.files]
            # Where each receipt came from, as a technician would find it again: the file, and
            # its place in the file's array when the file holds more than one.
            sources = [
                f"{path}" if len(documents) == 1 else f"{path} [{n}]"
                for path, documents in read
                for n in range(len(documents))
            ]
            results = outbox.take_receipts(conn, [d for _, documents in read for d in documents])
            if args.json:
                print(json.dumps([{**r, "file": sources[r["index"]]} for r in results], indent=2))
            for r in [] if args.json else results:
                print(_receipt_line(r, sources[r["index"]]))
            if all(r["result"] == "refused" for r in results):
                return 1
        except (ReceiptFileError, OutboxError) as exc:
            for r in getattr(exc, "taken", []):  # the receipts before the one refused stand
                print(_receipt_line(r, sources[r["index"]]))
            print(f"kitctl receipts {args.action}: {exc}", file=sys.stderr)
            return 1
    return 0
