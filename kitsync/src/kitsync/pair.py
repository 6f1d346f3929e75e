"""``kit-sync pair HOST[:PORT] CODE``: this laptop paired with a kit, the kit's certificate pinned.

Its one job: the laptop's side of kitd-pairing/1 (kitformats.pairing). It makes the laptop's
two keys for this kit, connects to the kit's pairing port (TLS 1.3, no client certificate),
runs the SPAKE2 exchange keyed by the code over the fingerprint of the certificate *this
handshake* showed, checks the kit's confirmation, and only then keeps the kit's certificate
(pinned), its signing certificate and audit note key, and ``kit.json`` in ``kits/<kit_id>/``.
A pairing that fails leaves nothing behind; pairing a kit again replaces its keys and pin
and keeps its ledger.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shutil
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from kitformats.audit.note import MalformedKey, parse_verifier_key
from kitformats.pairing import (
    CONFIRM_PATH,
    DEFAULT_PORT,
    START_PATH,
    ConfirmationFailed,
    LaptopExchange,
    Paired,
    PairingError,
    check_code,
    check_laptop_name,
    confirm_body,
    fingerprint,
    read_paired,
    read_start_answer,
    start_body,
)

from kitsync.durable_files import fsync_directory, make_directory, write_atomically
from kitsync.errors import KitCertificateChanged, NotPaired, TransferFailed, UsageProblem
from kitsync.laptop_keys import make_credentials
from kitsync.link import TIMEOUT_S, KitLink, client_context
from kitsync.places import KIT_ID, KITS, KitFiles, KitRecord, kit_files, split_address, write_kit_record

# What a kit's pairing files are in a kit directory (a new pairing replaces all of them).
PAIRING_FILES = (
    "laptop-tls.key",
    "laptop-tls.crt",
    "laptop-receipts.key",
    "laptop-receipts.crt",
    "kit-tls.crt",
    "kit-signing.crt",
    "audit-note-key.txt",
    "kit.json",  # last: a kit directory is paired once its kit.json is there
)


def default_laptop_name(hostname: str | None = None) -> str:
    """The laptop's host name, cut to what a pairing name may hold (letters, digits, . _ -)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", hostname if hostname is not None else socket.gethostname())
    return name.strip("-.")[:64] or "laptop"


def _answer_message(answer: object, fallback: str) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("message"), str):
        return answer["message"]
    return fallback


def _refused(status: int, answer: object, address: str, stage: str) -> Exception:
    error = answer.get("error") if isinstance(answer, dict) else None
    message = _answer_message(answer, f"HTTP {status}")
    if error == "pairing_closed":
        return NotPaired(
            f"kit at {address}: no pairing window is open (expired, closed or used up): open one on the kit"
        )
    if error == "wrong_code":
        left = answer.get("attempts_left") if isinstance(answer, dict) else None
        return NotPaired(f"kit at {address}: wrong code ({left} attempts left in this window)")
    if error == "laptop_name_taken":
        return UsageProblem(f"kit at {address}: {message}: choose another name with --name")
    return TransferFailed(f"pairing {stage}: kit at {address} answered: {message} ({error or status})")


def pair(
    home: Path,
    address: str,
    code: str,
    name: str | None = None,
    timeout: float = TIMEOUT_S,
    now: dt.datetime | None = None,
) -> tuple[KitRecord, str]:
    """Pair with the kit at ``address`` using ``code``: its record and the pinned certificate's
    SHA-256 (hex); the error of kit-sync's exit code when it does not pair."""
    try:
        code = check_code(code)
        laptop_name = check_laptop_name(name if name is not None else default_laptop_name())
    except PairingError as exc:
        raise UsageProblem(str(exc)) from None
    host, port = split_address(address, DEFAULT_PORT)
    kits = home / KITS
    make_directory(kits)
    staging = kits / f".pairing-{secrets.token_hex(4)}"
    make_directory(staging)
    try:
        files = KitFiles(staging)
        tls, receipts = make_credentials(staging, laptop_name)
        kit_der, paired = _exchange(host, port, code, laptop_name, tls, receipts, timeout)
        _keep(files, kit_der, paired)
        record = KitRecord(
            paired.kit_id,
            host,
            paired.network_port,
            laptop_name,
            (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds"),
            port,
        )
        write_kit_record(files, record)
        _move_into_place(staging, kit_files(home, paired.kit_id).root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record, fingerprint(kit_der).hex()


def _exchange(
    host: str,
    port: int,
    code: str,
    laptop_name: str,
    tls: x509.Certificate,
    receipts: x509.Certificate,
    timeout: float,
) -> tuple[bytes, Paired]:
    """The two requests of kitd-pairing/1: the kit's certificate (DER) and its answer."""
    exchange = LaptopExchange(code)
    pem = serialization.Encoding.PEM
    body = start_body(
        laptop_name, tls.public_bytes(pem).decode(), receipts.public_bytes(pem).decode(), exchange
    )
    with KitLink("", host, port, client_context(), pinned=None, timeout=timeout) as link:
        try:
            link.connect()
        except TransferFailed as exc:
            # The pairing port listens only while the kit's pairing window is open: a machine
            # that refuses the connection is most likely the kit with its window closed.
            if isinstance(exc.__context__, ConnectionRefusedError):
                raise NotPaired(
                    f"{exc}: no pairing window is open there; ask a supervisor to open one "
                    "(kitctl laptops pair) and pair again with its new code"
                ) from None
            raise TransferFailed(f"{exc} (is a pairing window open on the kit?)") from None
        status, answer = link.call("POST", START_PATH, body)
        kit_der = link.peer_certificate
        assert kit_der is not None
        # The confirm must go to the same certificate the start went to (were the connection
        # closed in between, the new one is held to it).
        link.pinned = fingerprint(kit_der)
        if status != 200:
            raise _refused(status, answer, link.address, "start")
        try:
            started = read_start_answer(answer)
            if not KIT_ID.fullmatch(started.kit_id):
                raise PairingError(f"kit_id {started.kit_id!r} is not a kit id this laptop keeps")
            confirmation = exchange.confirm(
                started.message, fingerprint(kit_der), fingerprint(tls), fingerprint(receipts), laptop_name
            )
        except PairingError as exc:
            raise TransferFailed(f"pairing: the kit's answer to the start: {exc}") from None
        try:
            status, answer = link.call("POST", CONFIRM_PATH, confirm_body(started.exchange, confirmation))
        except KitCertificateChanged:
            raise KitCertificateChanged(
                f"kit at {link.address}: the confirmation went to another certificate than the start: "
                "someone may be between this laptop and the kit"
            ) from None
        if status != 200:
            raise _refused(status, answer, link.address, "confirm")
        try:
            paired = read_paired(answer)
            exchange.check_kit(paired.confirmation)
        except ConfirmationFailed as exc:
            raise KitCertificateChanged(f"kit at {link.address}: {exc}") from None
        except PairingError as exc:
            raise TransferFailed(f"pairing: the kit's answer to the confirmation: {exc}") from None
        if paired.kit_id != started.kit_id or paired.laptop_name != laptop_name:
            raise TransferFailed("pairing: the kit's confirmation names another kit or laptop than its start")
    return kit_der, paired


def _keep(files: KitFiles, kit_der: bytes, paired: Paired) -> None:
    """The kit's certificate as the handshake showed it, and what the confirmed kit gave."""
    kit_certificate = x509.load_der_x509_certificate(kit_der)
    write_atomically(
        files.kit_tls_certificate, kit_certificate.public_bytes(serialization.Encoding.PEM), 0o644
    )
    if paired.kit_signing_certificate:
        try:
            signing = x509.load_pem_x509_certificate(paired.kit_signing_certificate.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise TransferFailed("pairing: the kit's signing certificate is not a PEM certificate") from None
        write_atomically(
            files.kit_signing_certificate, signing.public_bytes(serialization.Encoding.PEM), 0o644
        )
    if paired.audit_note_key:
        # Pinned only as a key it is: every sync opens the kit's checkpoints with it.
        try:
            parse_verifier_key(paired.audit_note_key.strip())
        except MalformedKey as exc:
            raise TransferFailed(f"pairing: the kit's audit note key: {exc}") from None
        write_atomically(files.audit_note_key, paired.audit_note_key.strip().encode() + b"\n", 0o644)


def _move_into_place(staging: Path, root: Path) -> None:
    """The staged pairing becomes the kit's directory; a kit paired before keeps its ledger
    (the bundles it records are still on this laptop) and loses its old keys and pin."""
    if not root.exists():
        os.rename(staging, root)
        fsync_directory(root.parent)
        return
    for name in PAIRING_FILES:
        source, target = staging / name, root / name
        if source.exists():
            os.replace(source, target)
        else:
            target.unlink(missing_ok=True)
    fsync_directory(root)
