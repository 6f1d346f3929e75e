"""kitctl keys: the kit's own credentials — make the key, install certificates, see how they stand.

    kitctl keys trust ca CA.pem [--replace]  the office's CA: every certificate must chain to it
    kitctl keys init                         a new kit key in the backend, and its request (kit.csr)
    kitctl keys install CERT [CHAIN ...]     the kit's certificate (and the CAs between it and the CA)
    kitctl keys recipients CENTRAL ESCROW    who can open bundles: RSA encryption certificates
    kitctl keys trust central-signing CERT   the office's signing certificate (for receipts)
    kitctl keys status [--json]              every credential: subject, issuer, validity, days left

Works on ``data_dir/keys/`` and the configured key backend (``[keys]``) directly, whether or
not the daemon runs: it reads the keys at every seal, so a new certificate or recipient
takes effect for the next bundle, and bundles sealed before stay as they were. Each
certificate is checked as sealing will use it before it replaces anything. Exit 0: done (for
``status``: every credential usable); 1: refused or a credential unusable, one line saying
why; 2: bad usage or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cryptography import x509
from kitformats.named_files import read_named_file
from kitformats.signing import KeyProblem

from kitd.cli.options import add_config_option, config_from_args
from kitd.config import KitConfig
from kitd.services.audit import AuditLog
from kitd.services.sealing import kit_keys
from kitd.store.audit import SYSTEM, append_entry
from kitd.store.database import database_path, open_database


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="the kit's key, certificates and recipients")
    sub = parser.add_subparsers(dest="action", required=True, parser_class=type(parser))
    init = sub.add_parser("init", help="make the kit's key in the backend and a certificate request")
    install = sub.add_parser("install", help="install the kit's certificate, checked against its key and CA")
    install.add_argument("certificate", type=Path, help="the kit's certificate, PEM")
    install.add_argument("chain", type=Path, nargs="*", help="its CA certificates, the office's root last")
    recipients = sub.add_parser(
        "recipients", help="install the central office's and the escrow's certificates"
    )
    recipients.add_argument("central", type=Path)
    recipients.add_argument("escrow", type=Path)
    trust = sub.add_parser("trust", help="trust the office's CA, or the central office's signing certificate")
    trust.add_argument("what", choices=["ca", "central-signing"])
    trust.add_argument("certificate", type=Path)
    trust.add_argument("--replace", action="store_true", help="with ca: replace the CA the kit trusts")
    status = sub.add_parser("status", help="every credential and how it stands")
    status.add_argument("--json", action="store_true")
    runs = ((init, run_init), (install, run_install), (recipients, run_recipients), (trust, run_trust))
    for one, run in (*runs, (status, run_status)):
        add_config_option(one)
        one.set_defaults(func=run)


def _certificates(path: Path) -> list[x509.Certificate]:
    try:
        data = read_named_file(path)
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return (
            x509.load_pem_x509_certificates(data)
            if b"-----BEGIN" in data
            else [x509.load_der_x509_certificate(data)]
        )
    except ValueError:
        raise KeyProblem(f"{path}: not an X.509 certificate") from None


def _one(path: Path) -> x509.Certificate:
    found = _certificates(path)
    if len(found) != 1:
        raise KeyProblem(f"{path}: holds {len(found)} certificates, one expected")
    return found[0]


def _refused(exc: KeyProblem | OSError) -> int:
    if isinstance(exc, OSError):
        sys.stderr.write(f"kitctl: {exc.filename or 'a key file'}: {exc.strerror}\n")
        return 1
    sys.stderr.write(f"kitctl: refused: {exc}\n")
    return 1


def _audited(
    config: KitConfig, action: str, certificate: x509.Certificate | None = None, **details: Any
) -> None:
    """The key change in the audit log (kitctl acts on the kit: actor ``system``)."""
    if certificate is not None:
        details.update(
            subject=certificate.subject.rfc4514_string(),
            serial=f"{certificate.serial_number:x}",
            not_after=f"{certificate.not_valid_after_utc:%Y-%m-%d}",
        )
    conn = open_database(database_path(config.data_dir))
    try:
        append_entry(conn, SYSTEM, action, details)
    finally:
        conn.close()


def run_init(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    try:
        with kit_keys(config) as keys:
            request = keys.init(config.kit_id)
    except (KeyProblem, OSError) as exc:
        return _refused(exc)
    where = "in the token" if keys.settings.backend == "pkcs11" else f"in {keys.dir / 'kit.key'}"
    _audited(config, "kit_key_made", backend=keys.settings.backend)
    print(f"kit key for 'kit {config.kit_id}' made {where}; request: {request}")
    print("have the office's CA sign the request, then: kitctl keys install CERT [INTERMEDIATE ...]")
    return 0


def run_install(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    try:
        certificate = _one(args.certificate)
        chain = [c for path in args.chain for c in _certificates(path)]
        with kit_keys(config) as keys:
            keys.install(certificate, chain, config.kit_id)
    except (KeyProblem, OSError) as exc:
        return _refused(exc)
    _audited(config, "kit_certificate_installed", certificate, chain=len(chain))
    print(f"kit certificate installed: {certificate.subject.rfc4514_string()}, valid until "
          f"{certificate.not_valid_after_utc:%Y-%m-%d}; bundles sealed from now on use it")  # fmt: skip
    return 0


def run_recipients(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    keys = kit_keys(config)
    try:
        central, escrow = _one(args.central), _one(args.escrow)
        keys.install_recipients(central, escrow)
    except (KeyProblem, OSError) as exc:
        return _refused(exc)
    _audited(config, "recipients_installed", central, escrow=escrow.subject.rfc4514_string())
    print("recipients installed: bundles sealed from now on open with their keys")
    return 0


def run_trust(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    keys = kit_keys(config)
    try:
        certificate = _one(args.certificate)
        if args.what == "ca":
            keys.trust_ca(certificate, args.replace)
        else:
            keys.trust_central_signing(certificate)
    except (KeyProblem, OSError) as exc:
        return _refused(exc)
    _audited(config, "ca_trusted" if args.what == "ca" else "central_signing_trusted", certificate)
    print(f"trusted: {certificate.subject.rfc4514_string()}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    with kit_keys(config) as keys:
        found = keys.status(config.kit_id)
    note_key = AuditLog(config.data_dir / "keys", config.kit_id).verifier_if_any()
    if args.json:
        print(
            json.dumps(
                [*(entry.to_json() for entry in found), {"name": "audit note", "verifier_key": note_key}],
                indent=1,
            )
        )
    else:
        for entry in found:
            state = "FAILED" if entry.problem else "warning" if entry.warning else "ok"
            facts = (
                f"{entry.subject}, until {entry.not_after} ({entry.days_left} days)" if entry.subject else ""
            )
            print(f"{entry.name:20s} {state:8s} {facts}")
            for note in (entry.problem, entry.warning):
                if note:
                    print(f"{'':29s}{note}")
        shown = note_key or "made at the first start of kitd"
        print(f"{'audit note':20s} {'ok' if note_key else 'none yet':8s} {shown}")
    return 1 if any(entry.problem for entry in found) else 0
