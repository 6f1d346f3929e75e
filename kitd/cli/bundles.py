"""kitctl bundle: a sealed bundle checked and opened at the office, or checked by a laptop.

    kitctl bundle verify FILE --key CENTRAL_KEY --ca CA.pem [--statement S | --no-statement] [--json]
    kitctl bundle open FILE --key CENTRAL_KEY --ca CA.pem --out DIR [--statement S | --no-statement]
    kitctl bundle statement STATEMENT --kit-cert KIT.crt [--file FILE] [--json]

``verify`` decrypts the bundle with the office's RSA key, checks the kit's and the
officer's signatures and their chains to the CA, parses the ANSI/NIST-ITL transaction,
checks every record against the manifest's SHA-256 and checks the kit's statement of the
file (``<id>.statement.json`` beside it, or ``--statement``; its SHA-256 covers every byte,
the other recipient's part of the envelope included, which no key of the office can);
then prints a summary (``--json``: the same as one JSON object). ``open`` does the same
checks and writes what is inside as files (mode 0600 in a 0700 folder: it is biometric
data in the clear). ``statement`` is what a laptop can check with no key at all: that the
statement was made by the kit whose certificate it holds and, with ``--file``, that it
matches that sealed file. Exit 0: passed; 1: failed (one line saying why); 2: bad usage (a
missing file, a key that is not an RSA private key, a CA file with no certificate, no
statement found). Runs anywhere: it needs no kit, no daemon and no configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from kitformats.bundle_statements import SEALED_SUFFIX, STATEMENT_SUFFIX, BundleRejected, check_statement
from kitformats.named_files import read_named_file
from kitformats.signing import KeyProblem, common_name, read_certificate

from kitd.cli.inputs import InputUnreadable, json_document
from kitd.crypto.bundle import OpenedBundle, open_bundle
from kitd.crypto.transaction import transaction_files
from kitd.durable_files import write_atomically


class UsageProblem(Exception):
    """A file given on the command line cannot be used (exit 2)."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bundle", help="verify or open a sealed bundle (the central office's side)"
    )
    sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    for action, text in (
        ("verify", "decrypt and check a sealed bundle, print a summary"),
        ("open", "check a sealed bundle and write its records as files"),
    ):
        one = sub.add_parser(action, help=text)
        one.add_argument("file", type=Path, help="the sealed bundle (<id>.p7m)")
        one.add_argument(
            "--key", type=Path, required=True, help="the central office's (or escrow's) RSA key, PEM"
        )
        one.add_argument("--ca", type=Path, required=True, help="the CA certificate(s) to trust, PEM")
        given = one.add_mutually_exclusive_group()
        given.add_argument(
            "--statement",
            type=Path,
            help=f"the kit's statement of the file (default: <id>{STATEMENT_SUFFIX} beside it)",
        )
        given.add_argument(
            "--no-statement",
            action="store_true",
            help="check without the statement (the other recipient's part of the envelope goes unchecked)",
        )
        if action == "verify":
            one.add_argument("--json", action="store_true", help="the summary as one JSON object")
        else:
            one.add_argument("--out", type=Path, required=True, help="folder to write the records into")
        one.set_defaults(func=run_verify if action == "verify" else run_open)
    laptop = sub.add_parser("statement", help="check a kit's statement with the kit's certificate alone")
    laptop.add_argument("statement", type=Path, help=f"the statement (<id>{STATEMENT_SUFFIX})")
    laptop.add_argument("--kit-cert", type=Path, required=True, help="the kit's certificate, PEM")
    laptop.add_argument(
        "--file", type=Path, help="the sealed file it speaks of, to check its SHA-256 and size"
    )
    laptop.add_argument("--json", action="store_true", help="the statement as one JSON object")
    laptop.set_defaults(func=run_statement)


def _read(path: Path, what: str) -> bytes:
    try:
        return read_named_file(path)
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no such {what}") from None
    except OSError as exc:
        raise UsageProblem(f"{path}: cannot read the {what}: {exc.strerror}") from None


def read_office_key(path: Path) -> rsa.RSAPrivateKey:
    data = _read(path, "key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise UsageProblem(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise UsageProblem(f"{path}: not an RSA key (the office opens bundles with its RSA key)")
    return key


def read_trusted(path: Path) -> list[x509.Certificate]:
    data = _read(path, "CA certificate")
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise UsageProblem(f"{path}: holds no PEM certificate") from None
    return certificates


def _read_statement(path: Path) -> Any:
    try:
        return json_document(_read(path, "statement"))
    except InputUnreadable as exc:
        raise BundleRejected(f"statement {path}: {exc}") from None


def _statement(args: argparse.Namespace) -> Any:
    if args.no_statement:
        return None
    path = args.statement
    if path is None:
        name = args.file.name.removesuffix(SEALED_SUFFIX)
        path = args.file.with_name(f"{name}{STATEMENT_SUFFIX}")
        if not path.exists():
            raise UsageProblem(
                f"{path}: no statement beside the bundle (give --statement S, or --no-statement)"
            )
    return _read_statement(path)


def summary(opened: OpenedBundle) -> dict[str, Any]:
    """What `kitctl bundle verify` reports of a bundle that passed (documented in the README)."""
    manifest = opened.manifest
    items = manifest["items"]
    return {
        "bundle_id": manifest["bundle_id"],
        "order_id": manifest["order"]["order_id"],
        "kit": {"id": manifest["kit"]["id"], "version": manifest["kit"]["version"]},
        "signers": {
            "kit": common_name(opened.kit),
            "officer": common_name(opened.officer) if opened.officer is not None else None,
            "signed_at": [t.isoformat() if t else None for t in opened.signing_times],
        },
        "visit": manifest["visit"],
        "created_at": manifest["created_at"],
        "clock_confirmed": manifest["clock"]["confirmed"],
        "items": {
            status: sum(1 for i in items if i["status"] == status)
            for status in ("captured", "forced", "excepted")
        },
        "exceptions": [
            {
                "item": i["item"],
                "reason": i["exception"]["reason"],
                "confirmed_by": i["exception"]["confirmed_by"],
            }
            for i in items
            if i["exception"]
        ],
        "records": len(manifest["records"]),
        "statement": "checked" if opened.statement is not None else "not checked (--no-statement)",
    }


def _print_summary(facts: dict[str, Any]) -> None:
    counts = facts["items"]
    lines = [
        f"bundle {facts['bundle_id']}: OK",
        f"order {facts['order_id']}, visit {facts['visit']['id']} "
        f"({facts['visit']['started_at']} .. {facts['visit']['finished_at']})",
        f"signed by {facts['signers']['kit']!r} and {facts['signers']['officer']!r}, chains to the CA"
        if facts["signers"]["officer"]
        else f"signed by {facts['signers']['kit']!r} alone: NOT by the officer (the kit's "
        "seal.require_officer_signature was false), chains to the CA",
        f"items: {counts['captured']} captured, {counts['forced']} forced, {counts['excepted']} excepted",
    ]
    lines += [
        f"  exception {e['item']}: {e['reason']} (confirmed by {e['confirmed_by']})"
        for e in facts["exceptions"]
    ]
    lines.append(f"records: {facts['records']}, every SHA-256 matches the manifest")
    lines.append(f"kit's clock confirmed: {'yes' if facts['clock_confirmed'] else 'no'}")
    lines.append(f"statement: {facts['statement']}")
    print("\n".join(lines))


def _checked(args: argparse.Namespace) -> OpenedBundle:
    key = read_office_key(args.key)
    trust = read_trusted(args.ca)
    sealed = _read(args.file, "bundle")
    return open_bundle(sealed, key, trust, _statement(args))


def _run(args: argparse.Namespace, then: Any) -> int:
    try:
        opened = _checked(args)
    except UsageProblem as exc:
        sys.stderr.write(f"kitctl: {exc}\n")
        return 2
    except BundleRejected as exc:
        sys.stderr.write(f"kitctl: {args.file}: rejected: {exc}\n")
        return 1
    return int(then(args, opened))


def run_verify(args: argparse.Namespace) -> int:
    def report(args: argparse.Namespace, opened: OpenedBundle) -> int:
        facts = summary(opened)
        if args.json:
            print(json.dumps(facts, indent=1))
        else:
            _print_summary(facts)
        return 0

    return _run(args, report)


def run_open(args: argparse.Namespace) -> int:
    def write(args: argparse.Namespace, opened: OpenedBundle) -> int:
        out: Path = args.out
        try:
            out.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            sys.stderr.write(f"kitctl: {out}: cannot make the folder: {exc.strerror}\n")
            return 2
        files = dict(opened.files)
        files.update(transaction_files(opened.transaction))
        for name, data in sorted(files.items()):
            write_atomically(out / name, data)
        print(f"bundle {opened.manifest['bundle_id']}: OK, {len(files)} files written to {out}")
        for name in sorted(files):
            print(f"  {name}")
        return 0

    return _run(args, write)


def run_statement(args: argparse.Namespace) -> int:
    """A laptop's check of a statement: the kit's certificate is all it needs."""
    try:
        kit = read_certificate(args.kit_cert)
    except KeyProblem as exc:
        sys.stderr.write(f"kitctl: {exc}\n")
        return 2
    try:
        document = _read_statement(args.statement)
        sealed = _read(args.file, "bundle") if args.file is not None else None
        statement = check_statement(document, sealed, [], kit, pinned=kit)
    except UsageProblem as exc:
        sys.stderr.write(f"kitctl: {exc}\n")
        return 2
    except BundleRejected as exc:
        sys.stderr.write(f"kitctl: {args.statement}: rejected: {exc}\n")
        return 1
    if args.json:
        print(json.dumps(statement, indent=1))
    else:
        matched = f", matches {args.file}" if args.file is not None else ""
        print(f"statement of bundle {statement.get('bundle_id')}: signed by {common_name(kit)!r}{matched}")
    return 0
