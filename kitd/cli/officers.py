"""kitctl officers: the kit's officers, managed on the kit itself.

The first supervisor is made here (nobody can sign in before one exists); later a
supervisor does the same through the API. Works on the database in data_dir
directly, whether or not the daemon runs (SQLite takes turns). A PIN is asked twice
on the terminal; ``--pin-stdin`` reads it from one line of standard input instead
(for scripts), and without it a PIN is never read from a pipe.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path

from kitformats.named_files import read_named_file
from kitformats.signing import KeyProblem

from kitd.cli.options import add_config_option, config_from_args, kit_database
from kitd.config import KitConfig
from kitd.services.sealing import kit_keys
from kitd.store.audit import SYSTEM, append_entry
from kitd.store.database import database_path, open_database
from kitd.store.officers import (
    ROLES,
    OfficerError,
    OfficerInactive,
    OfficerLocked,
    OfficerRoll,
    WrongPin,
    pin_problem,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("officers", help="add, list, unlock, reset PINs of, deactivate officers")
    sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    add = sub.add_parser("add", help="add an officer (the first supervisor too)")
    add.add_argument("--nip", required=True, help="18-digit NIP")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--pin-stdin", action="store_true", help="read the PIN from one line of stdin")
    listing = sub.add_parser("list", help="every officer, active or not")
    listing.add_argument("--json", action="store_true")
    for action, text in (
        ("unlock", "let a locked officer sign in again"),
        ("reset-pin", "give an officer a new PIN (also unlocks)"),
        ("deactivate", "stop an officer signing in (kept for the audit log)"),
    ):
        one = sub.add_parser(action, help=text)
        one.add_argument("nip")
        if action == "reset-pin":
            one.add_argument("--pin-stdin", action="store_true", help="read the PIN from one line of stdin")
    credential = sub.add_parser(
        "credential", help="install an officer's signing credential (PKCS#12), wrapped under their PIN"
    )
    credential.add_argument("nip")
    credential.add_argument("file", type=Path, help="the officer's PKCS#12 file from the office")
    credential.add_argument(
        "--stdin",
        action="store_true",
        help="read the file's password, then the officer's PIN, one line each from stdin",
    )
    for child in sub.choices.values():
        add_config_option(child)
    parser.set_defaults(func=run)


def read_pin(from_stdin: bool) -> str:
    """A new PIN: one stdin line with --pin-stdin, else asked twice on the terminal."""
    if from_stdin:
        pin = sys.stdin.readline().strip()
    else:
        if not sys.stdin.isatty():
            raise OfficerError("stdin is not a terminal: type the PIN on one, or pass --pin-stdin")
        pin = getpass.getpass("PIN (6 digits): ")
        if getpass.getpass("PIN again: ") != pin:
            raise OfficerError("the two PINs differ")
    problem = pin_problem(pin)
    if problem:
        raise OfficerError(problem)
    return pin


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    # Adding an officer may be a kit's first command (it makes the database); the rest work on
    # officers a kit already holds, so a data_dir with no kit is a mistake said as one.
    conn = open_database(database_path(config.data_dir)) if args.action == "add" else kit_database(config)
    roll = OfficerRoll(conn, config["auth.max_pin_failures"])
    try:
        if args.action == "add":
            roll.check_new(args.nip, args.name, args.role)  # before asking for a PIN
            officer = roll.add(args.nip, args.name, args.role, read_pin(args.pin_stdin))
            print(f"added {officer.role} {officer.name} ({officer.nip})")
        elif args.action == "list":
            officers = roll.list()
            if args.json:
                print(json.dumps([o.to_json() for o in officers], indent=2))
            for o in [] if args.json else officers:
                state = "inactive" if not o.active else "locked" if o.locked else "active"
                print(f"{o.nip}  {o.role:10s}  {state:8s}  {o.name}")
        elif args.action == "unlock":
            print(f"unlocked {roll.unlock(args.nip).nip}")
        elif args.action == "reset-pin":
            roll.get(args.nip)
            print(f"new PIN set for {roll.reset_pin(args.nip, read_pin(args.pin_stdin)).nip}")
            if kit_keys(config).drop_officer_credential(args.nip):
                append_entry(conn, SYSTEM, "credential_removed", {"nip": args.nip, "why": "pin_reset"})
                print("their installed signing credential was wrapped under the old PIN and is removed: "
                      "install it again with them (kitctl officers credential)")  # fmt: skip
        elif args.action == "credential":
            return install_credential(args, config, roll)
        elif args.action == "deactivate":
            print(f"deactivated {roll.deactivate(args.nip).nip}")
    except (OfficerError, KeyProblem) as exc:
        print(f"kitctl officers {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    return 0


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def install_credential(args: argparse.Namespace, config: KitConfig, roll: OfficerRoll) -> int:
    """The officer is there: their PIN (checked, and counted like a sign-in) wraps the key."""
    officer = roll.get(args.nip)
    if not officer.active:
        raise OfficerError(f"officer {args.nip} is deactivated")
    try:
        data = read_named_file(args.file)
    except OSError as exc:
        raise OfficerError(f"{args.file}: cannot read: {exc.strerror}") from None
    if args.stdin:
        password, pin = sys.stdin.readline().rstrip("\n"), sys.stdin.readline().strip()
    else:
        if not sys.stdin.isatty():
            raise OfficerError("stdin is not a terminal: type on one, or pass --stdin")
        password = getpass.getpass(f"password of {args.file.name}: ")
        pin = getpass.getpass(f"PIN of officer {args.nip} (the officer types it): ")
    # Bytes that are not UTF-8 on stdin (a terminal set to Latin-1) read as surrogates: a
    # PKCS#12 password is UTF-8 text, and no such file opens with them.
    if not _is_utf8(password):
        raise OfficerError(
            f"the password of {args.file.name} is not UTF-8 text: type it where the terminal is UTF-8"
        )
    problem = pin_problem(pin)
    if problem:
        raise OfficerError(f"PIN: {problem}")  # never counted against the officer
    if config["keys.backend"] == "file":
        print(
            "kitctl officers credential: warning: keys.backend is 'file': the kit's secret lies on the "
            "SD card beside the credential, so a copy of the card could be tried against PINs "
            "(use a token, keys.backend = 'pkcs11', in the field)",
            file=sys.stderr,
        )
    try:
        roll.check_pin(args.nip, pin, "pin_check")
    except OfficerLocked as exc:
        raise OfficerError(str(exc)) from None
    except (WrongPin, OfficerInactive) as exc:
        raise OfficerError(f"{exc}: the credential is wrapped under the officer's own PIN") from None
    with kit_keys(config) as keys:
        certificate = keys.install_officer_credential(args.nip, data, password.encode() or None, pin)
    until = f"{certificate.not_valid_after_utc:%Y-%m-%d}"
    append_entry(
        roll.conn,
        SYSTEM,
        "credential_installed",
        {"nip": args.nip, "serial": f"{certificate.serial_number:x}", "not_after": until},
    )
    print(f"signing credential of {officer.name} ({args.nip}) installed, valid until {until}; "
          "it opens when they sign in")  # fmt: skip
    return 0
