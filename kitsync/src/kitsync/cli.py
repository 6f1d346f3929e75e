"""The ``kit-sync`` command line: pair, push-orders, pull, push-receipts, status.

Its one job: read the command line, find the kit (named, or the only one paired), run the
command — every one that talks to a kit checks its audit log first (kitsync.audit) — and end
with its exit code: 0 ok, 1 a transfer or check failed, 2 usage, 3 not paired or revoked, 4 the
kit's certificate does not match the pinned one, 5 a kit's audit log is inconsistent with the
checkpoint this laptop trusted. Every error is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from kitformats.errors import KitError
from kitformats.pairing import fingerprint
from kitformats.signing import read_certificate, read_file_signer

from kitsync.audit import INCONSISTENT, AuditCheck, check_audit_log
from kitsync.central_receipts import gathered_receipts, push_receipts, summary
from kitsync.errors import DISK_FULL, EXIT_AUDIT_INCONSISTENT, EXIT_FAILED, EXIT_OK, EXIT_USAGE, SyncError
from kitsync.kit_clock import clock_warning, send_laptop_time
from kitsync.ledger import Ledger, one_at_a_time
from kitsync.link import TIMEOUT_S, KitLink, client_context
from kitsync.orders import push_orders, read_orders_file, report_lines
from kitsync.places import KitFiles, KitRecord, choose_kit, default_data_dir, read_kit_record
from kitsync.pull import Pull
from kitsync.status import all_status, is_inconsistent, status_lines

PROG = "kit-sync"

EXIT_CODES = """exit codes:
  0  ok
  1  a transfer or a check failed (the kit unreachable, a download cut, a bundle refused)
  2  usage: a wrong command line, an unknown kit, a missing file
  3  not paired with the kit, or revoked by it (or the kit refused to pair)
  4  the kit's certificate is not the one pinned at pairing
  5  a kit's audit log is INCONSISTENT with the checkpoint this laptop trusted (it was
     rewritten): found by this pull, push-orders or push-receipts (which still did their
     work), or shown by status for any kit
"""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (usage problems exit 2 as argparse's do)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {PROG} --help)\n")


def version() -> str:
    """The installed distribution's version."""
    import importlib.metadata  # here: a tenth of kit-sync's start, for an option rarely asked

    try:
        return importlib.metadata.version("kitsync")
    except importlib.metadata.PackageNotFoundError:  # run from a copy of the source, not installed
        return "(not installed)"


class VersionAction(argparse.Action):
    """``--version``, its version looked up only when it is asked for."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **_: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        parser.exit(0, f"{PROG} {version()}\n")


def _seconds(text: str) -> float:
    """A --timeout: a number of seconds above 0 (argparse names the option when it is not)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return seconds


def _parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="The field laptop's link to e-KTP recording kits: pair, push work orders, "
        "pull sealed bundles, push central receipts.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=VersionAction)
    common = Parser(add_help=False)
    common.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the laptop keeps its kits (default: $KIT_SYNC_HOME, else the user's data folder)",
    )
    common.add_argument(
        "--timeout", type=_seconds, default=TIMEOUT_S, metavar="SECONDS", help="network timeout (default 30)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = commands.add_parser("pair", parents=[common], help="pair with a kit showing a pairing code")
    p.add_argument("address", metavar="HOST[:PORT]", help="the kit's address (pairing port 8444 by default)")
    p.add_argument("code", metavar="CODE", help="the 6-digit code the kit shows")
    p.add_argument("--name", help="this laptop's name on the kit (default: its host name)")

    p = commands.add_parser("push-orders", parents=[common], help="send a JSON or CSV file of work orders")
    p.add_argument(
        "kit", nargs="?", metavar="KIT", help="the kit's id (may be left out when one kit is paired)"
    )
    p.add_argument("file", metavar="FILE", type=Path)
    p.add_argument("--json", action="store_true", help="print the kit's report as JSON")

    p = commands.add_parser("pull", parents=[common], help="fetch new sealed bundles and outcomes")
    p.add_argument(
        "kit", nargs="?", metavar="KIT", help="the kit's id (may be left out when one kit is paired)"
    )
    p.add_argument("dir", metavar="DIR", type=Path, help="the folder for the bundles (made if missing)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bars (default: when stderr is a terminal)",
    )

    p = commands.add_parser("push-receipts", parents=[common], help="send the central office's receipts")
    p.add_argument(
        "kit", nargs="?", metavar="KIT", help="the kit's id (may be left out when one kit is paired)"
    )
    p.add_argument("dir", metavar="DIR", type=Path, help="the folder of receipt files (*.json)")

    p = commands.add_parser(
        "status", parents=[common], help="each paired kit: last sync, bundles pending, its audit log"
    )
    p.add_argument("--json", action="store_true", help="as JSON")
    return parser


def kit_link(files: KitFiles, record: KitRecord, timeout: float) -> KitLink:
    """The pinned, mutually authenticated link to a paired kit."""
    pinned = fingerprint(read_certificate(files.kit_tls_certificate))
    read_certificate(files.laptop_tls_certificate)  # a damaged one names itself, not the key
    try:
        context = client_context(files.laptop_tls_certificate, files.laptop_tls_key)
    except (OSError, ValueError) as exc:
        raise SyncError(f"{files.laptop_tls_key}: cannot load this laptop's TLS key: {exc}") from None
    return KitLink(record.kit_id, record.host, record.port, context, pinned, timeout)


def start_sync(link: KitLink, files: KitFiles, ledger: Ledger, command: str) -> AuditCheck:
    """Every sync with a kit first gives it this laptop's time, then checks its audit log; what
    the technician must see of either is one line on stderr (the sync goes on whatever it found)."""
    clock_line = clock_warning(send_laptop_time(link, ledger))
    if clock_line is not None:
        print(f"{PROG} {command}: {clock_line}", file=sys.stderr)
    check = check_audit_log(link, files, ledger)
    warning = check.warning()
    if warning is not None:
        print(f"{PROG} {command}: {warning}", file=sys.stderr)
    return check


def _exit_code(check: AuditCheck, failed: bool) -> int:
    """A rewritten audit log outranks a failed transfer: the next sync retries the transfer."""
    if check.result == INCONSISTENT:
        return EXIT_AUDIT_INCONSISTENT
    return EXIT_FAILED if failed else EXIT_OK


def _pair(args: argparse.Namespace, home: Path) -> int:
    from kitsync.pair import pair  # here: SPAKE2's library is needed by this command only

    record, kit_fingerprint = pair(home, args.address, args.code, args.name, args.timeout)
    print(
        f"paired with kit {record.kit_id} as {record.laptop_name}; its network API is at {record.address}; "
        f"kit certificate SHA-256 {kit_fingerprint} pinned"
    )
    return EXIT_OK


def _push_orders(args: argparse.Namespace, home: Path) -> int:
    files = choose_kit(home, args.kit)
    record = read_kit_record(files)
    data = read_orders_file(args.file)  # a missing or oversized file: said before the kit is asked
    with kit_link(files, record, args.timeout) as link, Ledger(files.ledger) as ledger:
        audit = start_sync(link, files, ledger, "push-orders")
        report = push_orders(link, args.file, data)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print("\n".join(report_lines(f"{args.file} -> kit {record.kit_id}", report)))
    return _exit_code(audit, bool(report.get("rejected")))


def _pull(args: argparse.Namespace, home: Path) -> int:
    files = choose_kit(home, args.kit)
    record = read_kit_record(files)
    signer = read_file_signer(files.laptop_receipts_key, files.laptop_receipts_certificate)
    with (
        one_at_a_time(files.pull_lock, f"kit {record.kit_id}"),
        kit_link(files, record, args.timeout) as link,
        Ledger(files.ledger) as ledger,
    ):
        audit = start_sync(link, files, ledger, "pull")
        report = Pull(files, record, link, args.dir, signer).run(ledger, args.progress)
    print(report.summary())
    return _exit_code(audit, bool(report.failures))


def _push_receipts(args: argparse.Namespace, home: Path) -> int:
    files = choose_kit(home, args.kit)
    record = read_kit_record(files)
    receipts = gathered_receipts(args.dir)  # no such folder: said before the kit is asked
    with kit_link(files, record, args.timeout) as link, Ledger(files.ledger) as ledger:
        audit = start_sync(link, files, ledger, "push-receipts")
        receipts = push_receipts(link, receipts, ledger)
    for receipt in receipts:
        print(receipt.line())
    if not receipts:
        print(f"{args.dir}: no receipt files (*.json) to push")
    else:
        print(f"kit {record.kit_id}: {summary(receipts)}")
    return _exit_code(audit, any(r.result == "refused" for r in receipts))


def _status(args: argparse.Namespace, home: Path) -> int:
    statuses = all_status(home)
    if args.json:
        print(json.dumps(statuses, indent=2))
    elif not statuses:
        print(f"no kit is paired with this laptop (data in {home}): kit-sync pair HOST CODE")
    else:
        for status in statuses:
            if "problem" not in status:
                print("\n".join(status_lines(status)))
    # A kit whose files cannot be read is an error, said on stderr, not a status line.
    unreadable = [status for status in statuses if "problem" in status]
    for status in unreadable:
        print(f"{PROG} status: {status_lines(status)[0]}", file=sys.stderr)
    rewritten = [status for status in statuses if is_inconsistent(status)]
    for status in rewritten:
        print(
            f"{PROG} status: WARNING: kit {status['kit_id']}'s audit log is INCONSISTENT: "
            f"{status['audit']['reason']}",
            file=sys.stderr,
        )
    if rewritten:
        return EXIT_AUDIT_INCONSISTENT
    return EXIT_FAILED if unreadable else EXIT_OK


COMMANDS = {
    "pair": _pair,
    "push-orders": _push_orders,
    "pull": _pull,
    "push-receipts": _push_receipts,
    "status": _status,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    home = default_data_dir(args.data_dir)
    try:
        return COMMANDS[args.command](args, home)
    except SyncError as exc:
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KitError as exc:  # a key or certificate of the laptop's own (kitformats.KeyProblem)
        print(f"{PROG} {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # the laptop's own disk: full, read-only, a folder in the way
        where = f"{exc.filename}: " if exc.filename else ""
        said = exc.strerror or str(exc)
        if exc.errno in DISK_FULL:
            said = "this laptop's disk is full: free some space and run it again (nothing is lost)"
        print(f"{PROG} {args.command}: {where}{said}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted (a pull resumes where it stopped)", file=sys.stderr)
        return 130


def run() -> NoReturn:
    """The console script's entry point."""
    sys.exit(main())
