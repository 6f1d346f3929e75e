"""kitctl laptops: the field laptops paired with the kit, their revocation, and pairing one.

``kitctl laptops list [--json]`` shows every laptop the kit knows (paired with its code, or
trusted for receipts only), with its certificates' SHA-256, when it paired, last synced and
was revoked; ``kitctl laptops revoke NAME`` refuses it from the next request on (its TLS
connections and its receipts; audited ``laptop_revoked``). Both work on the database in
data_dir directly, whether or not the daemon runs. ``kitctl laptops pair`` asks the running
daemon (over its socket) to open a pairing window, prints the code, the port and the kit's
TLS fingerprint for ``kit-sync pair``, and waits, showing the time left, until a laptop has
paired (exit 0) or the window closed (exit 1); Ctrl-C closes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from kitd.cli.daemon_client import DaemonClient, DaemonError, DaemonUnreachable
from kitd.cli.options import (
    add_api_option,
    add_config_option,
    client_from_args,
    config_from_args,
    kit_database,
)
from kitd.clock import clock_of
from kitd.store.outbox import LaptopError, laptops, revoke_laptop

# How often `pair` asks the daemon how the window stands.
POLL_S = 1.0
SHOWN = ("name", "paired_at", "tls_fingerprint", "fingerprint", "revoked_at", "last_sync_at", "trusted_at")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("laptops", help="field laptops: list, revoke, pair one")
    sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    listing = sub.add_parser("list", help="every laptop the kit knows, paired or revoked")
    listing.add_argument("--json", action="store_true")
    revoke = sub.add_parser("revoke", help="refuse this laptop from now on (its connections and receipts)")
    revoke.add_argument("name")
    pair = sub.add_parser("pair", help="open a pairing window on the running kit and wait for a laptop")
    pair.add_argument("--seconds", type=float, help="how long (default and at most network.pairing_window_s)")
    add_api_option(pair, pair)
    for child in sub.choices.values():
        add_config_option(child)
    parser.set_defaults(func=run)


def _row(row: dict[str, Any]) -> dict[str, Any]:
    """A laptop's row as shown: no certificates, the receipts fingerprint named as such."""
    shown = {name: row.get(name) for name in SHOWN}
    shown["receipt_fingerprint"] = shown.pop("fingerprint")
    return shown


def _list(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    conn = kit_database(config)
    try:
        known = [_row(r) for r in laptops(conn)]
    finally:
        conn.close()
    if args.json:
        print(json.dumps(known, indent=2))
        return 0
    if not known:
        print("no laptop is paired with this kit (kitctl laptops pair)")
    for row in known:
        if row["revoked_at"]:
            state = f"REVOKED {row['revoked_at']}"
        elif row["paired_at"]:
            state = f"paired {row['paired_at']}"
        else:
            state = f"receipts only, trusted {row['trusted_at']}"
        print(f"{row['name']}  {state}  last sync {row['last_sync_at'] or 'never'}")
        if row["tls_fingerprint"]:
            print(f"  TLS      SHA-256 {row['tls_fingerprint']}")
        print(f"  receipts SHA-256 {row['receipt_fingerprint']}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    conn = kit_database(config)
    try:
        again = revoke_laptop(conn, args.name, clock_of(conn).now())
    except LaptopError as exc:
        print(f"kitctl laptops revoke: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    print(f"revoked laptop {args.name}: the kit refuses its connections and its receipts from now on")
    if again:
        print(
            f"{len(again)} bundle(s) it had taken that the office has not confirmed will be offered "
            "to the next laptop that syncs"
        )
    return 0


def _pair(args: argparse.Namespace) -> int:
    client = client_from_args(args)
    if args.seconds is not None and not args.seconds > 0:
        print(f"kitctl laptops pair: --seconds must be above 0, not {args.seconds:g}", file=sys.stderr)
        return 2
    body = None if args.seconds is None else {"seconds": args.seconds}
    # Ctrl-C may come the moment the window opens, before the wait has begun: it closes
    # the window all the same, so that no code is left open for anyone in reach.
    try:
        try:
            window = client.checked_json("POST", "/api/v1/pairing", body, shape="PairingWindow")
        except (DaemonError, DaemonUnreachable) as exc:
            print(f"kitctl laptops pair: {exc}", file=sys.stderr)
            return 1
        print(f"pairing code: {window['code']}", flush=True)
        print(f"on the laptop: kit-sync pair <this kit's address>:{window['port']} {window['code']}")
        print(f"the kit's TLS fingerprint (SHA-256): {window['kit_tls_fingerprint']}")
        print(f"the window closes at {window['expires_at']} or after {window['attempts_left']} attempts")
        return _wait(client, window)
    except KeyboardInterrupt:
        try:
            client.request("DELETE", "/api/v1/pairing")
        except DaemonUnreachable:
            pass
        print("\nkitctl laptops pair: interrupted: the pairing window is closed", file=sys.stderr)
        return 130


def _wait(client: DaemonClient, window: dict[str, Any]) -> int:
    """Until the window closes: the seconds left on a terminal (one line, rewritten)."""
    live = sys.stdout.isatty()
    while True:
        try:
            window = client.checked_json("GET", "/api/v1/pairing", shape="PairingWindow")
        except (DaemonError, DaemonUnreachable) as exc:
            print(f"\nkitctl laptops pair: {exc}", file=sys.stderr)
            return 1
        if not window["open"]:
            break
        if live:
            print(
                f"\rwaiting for the laptop: {window['seconds_left']:4.0f} s left, "
                f"{window['attempts_left']} attempts left ",
                end="",
                flush=True,
            )
        time.sleep(POLL_S)
    if live:
        print()
    if window["paired"]:
        print(f"paired laptop {window['paired']}")
        return 0
    print("kitctl laptops pair: the pairing window closed and no laptop paired", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args)
    if args.action == "revoke":
        return _revoke(args)
    return _pair(args)
