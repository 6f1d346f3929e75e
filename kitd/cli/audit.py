"""kitctl audit: check the kit's audit log, read it, and prove it only grew.

    kitctl audit verify [--json]                 recompute every entry's leaf and the tree at
                                                 every checkpoint; name the first that fails
    kitctl audit show [--since T] [--actor NIP] [--action A] [--json]
    kitctl audit checkpoint                      the latest signed checkpoint (a C2SP note)
    kitctl audit prove --old CHECKPOINT_FILE     the log now extends that older checkpoint

Works on the database in data_dir and the kit's note key directly, whether or not the
daemon runs. Exit 0: holds; 1: it does not (one line naming the first bad entry or
checkpoint, or why the older checkpoint is refused); 2: bad usage or configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from kitformats.named_files import read_named_file

from kitd.cli.options import add_config_option, config_from_args, kit_database
from kitd.services.audit import AuditLog, AuditProblem, CheckpointRefused
from kitd.store.audit import find_entries


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("audit", help="check, read and prove the kit's audit log")
    sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    verify = sub.add_parser("verify", help="recompute the log and check every checkpoint")
    verify.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="entries, oldest first")
    show.add_argument(
        "--since",
        type=_since,
        help="from this time on (ISO 8601, e.g. 2026-11-30 or 2026-11-30T08:00+07:00; a time "
        "without a zone is kit.timezone's)",
    )
    show.add_argument("--actor", help="only this officer's NIP (or system)")
    show.add_argument("--action", dest="what", help="only this action (e.g. sign_in, visit_started)")
    show.add_argument("--json", action="store_true")
    sub.add_parser("checkpoint", help="print the latest signed checkpoint (a C2SP signed note)")
    prove = sub.add_parser("prove", help="check that the log extends an older checkpoint")
    prove.add_argument("--old", type=Path, required=True, metavar="CHECKPOINT_FILE")
    for child in sub.choices.values():
        add_config_option(child)
    parser.set_defaults(func=run)


def _since(text: str) -> dt.datetime:
    """The moment --since names; one without a zone stays so until the kit's zone is known."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time") from None
    # 0001-01-01 east of UTC, 9999-12-31 west of it: no UTC time (a zone is at most 14 h off).
    if not dt.datetime(1, 1, 2) <= moment.replace(tzinfo=None) <= dt.datetime(9999, 12, 30):
        raise argparse.ArgumentTypeError(f"{text!r} is outside the years a UTC time can have")
    return moment


def since_utc(moment: dt.datetime, timezone: str) -> str:
    """`moment` as the audit log's UTC times are written; one without a zone is the kit's, as
    `kitctl orders --day` takes its day (a technician in WITA means 08.00 WITA)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    conn = kit_database(config)
    audit = AuditLog(config.data_dir / "keys", config.kit_id)
    try:
        if args.action == "verify":
            check = audit.verify(conn)
            if args.json:
                print(json.dumps(check.to_json(), indent=1))
            elif check.ok:
                print(f"audit log holds: {check.entries} entries, {check.checkpoints} checkpoints verified")
            else:
                print(f"kitctl audit verify: FAILED: {check.problem}", file=sys.stderr)
            return 0 if check.ok else 1
        if args.action == "show":
            since = None if args.since is None else since_utc(args.since, config["kit.timezone"])
            found = find_entries(conn, since, args.actor, args.what)
            if args.json:
                print(json.dumps(found, indent=1, ensure_ascii=False))
            for entry in [] if args.json else found:
                details = json.dumps(entry["details"], ensure_ascii=False, sort_keys=True)
                clock = "" if entry["clock_confirmed"] else " (clock unconfirmed)"
                who = f"{entry['actor']:18s}  {entry['action']:24s}"
                print(f"{entry['seq']:>7}  {entry['at']}{clock}  {who}  {details}")
            return 0
        if args.action == "checkpoint":
            sys.stdout.write(audit.latest(conn)["note"])
            return 0
        try:
            old = read_named_file(args.old)  # the note's own check says if it is not UTF-8
        except OSError as exc:
            raise AuditProblem(f"{args.old}: cannot read: {exc.strerror}") from None
        proved = audit.prove_extends(conn, old)
        print(
            f"the log ({proved['new_size']} entries) extends the checkpoint of {proved['old_size']} "
            f"(consistency proof of {proved['proof_hashes']} hashes verified)"
        )
        return 0
    except (AuditProblem, CheckpointRefused) as exc:
        print(f"kitctl audit {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
