"""A sealed bundle: sealing a visit's container, and opening and checking one at the office.

Its one job: :func:`seal_bundle` packs the transaction and manifest into the container, has
it signed by the kit and the officer (CMS SignedData, signatures from the signing interface)
and encrypts that for the central office and the escrow (CMS AuthEnvelopedData), with the
kit's signed statement of the result; :func:`write_bundle` puts both into the outbox whole or
not at all; :func:`open_bundle` is the central office's side — decrypt, check both signers
and their chains, unpack, parse the transaction and check every record against the
manifest — each failure one :class:`BundleRejected` sentence saying what is wrong.

Who signed is read from the certificates: the kit's subject CN is ``kit <kit id>`` and an
officer's ``officer <NIP>`` (the simulation CA and the office's CA issue them so).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from kitformats.bundle_statements import (
    SEALED_SUFFIX,
    STATEMENT_SUFFIX,
    BundleRejected,
    bundle_statement,
    check_statement,
)
from kitformats.cms import SealBroken, SignatureInvalid, envelope, open_envelope, sign_content, verify_signed
from kitformats.signing import KIT_CN_PREFIX, OFFICER_CN_PREFIX, Signer, common_name
from kitformats.statements import sign_statement

from kitd.crypto.container import (
    MANIFEST_NAME,
    TRANSACTION_NAME,
    ContainerError,
    pack_container,
    unpack_container,
)
from kitd.crypto.manifest import ManifestError, manifest_bytes, read_manifest
from kitd.crypto.transaction import ParsedTransaction, TransactionError, read_transaction, record_digests
from kitd.durable_files import DISK, FileOps, remove_durably, write_atomically


@dataclass(frozen=True)
class SealingKeys:
    """Who signs a bundle and who can open it."""

    kit: Signer
    # None only where seal.require_officer_signature is false and the officer had no
    # credential: the manifest then says officer_signed false, and the office sees it.
    officer: Signer | None
    recipients: Sequence[x509.Certificate]
    # Certificates between the signers and the office's CA, carried in the SignedData.
    chain: Sequence[x509.Certificate] = ()


@dataclass(frozen=True)
class SealedBundle:
    bundle_id: str
    sealed: bytes
    statement: dict[str, Any]
    container_size: int


@dataclass(frozen=True)
class OpenedBundle:
    """What the central office finds in a bundle that passed every check."""

    manifest: dict[str, Any]
    transaction: ParsedTransaction
    files: dict[str, bytes]
    kit: x509.Certificate
    officer: x509.Certificate | None  # None: the manifest says the officer did not sign
    signing_times: list[dt.datetime | None]
    statement: dict[str, Any] | None


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def seal_bundle(
    bundle_id: str,
    transaction: bytes,
    manifest: dict[str, Any],
    keys: SealingKeys,
    created: dt.datetime,
    kit_id: str,
    visit_id: str | None = None,
) -> SealedBundle:
    """The sealed file (AuthEnvelopedData of SignedData of the container) and its statement."""
    container = pack_container({TRANSACTION_NAME: transaction, MANIFEST_NAME: manifest_bytes(manifest)})
    if manifest.get("officer_signed", True) != (keys.officer is not None):
        raise ValueError("the manifest's officer_signed must say whether the officer signs")
    signers = [keys.kit] if keys.officer is None else [keys.kit, keys.officer]
    signed = sign_content(container, signers, signing_time=created, extra_certificates=keys.chain)
    sealed = envelope(signed, keys.recipients)
    statement = sign_statement(
        bundle_statement(bundle_id, sealed, created, kit_id, visit_id), keys.kit, signing_time=created
    )
    return SealedBundle(bundle_id, sealed, statement, len(container))


def bundle_paths(outbox: Path, bundle_id: str) -> tuple[Path, Path]:
    return outbox / f"{bundle_id}{SEALED_SUFFIX}", outbox / f"{bundle_id}{STATEMENT_SUFFIX}"


def statement_bytes(statement: dict[str, Any]) -> bytes:
    return json.dumps(statement, indent=1).encode() + b"\n"


def write_bundle(outbox: Path, bundle: SealedBundle, ops: FileOps = DISK) -> Path:
    """The statement, then the sealed file, each whole or not at all; the sealed file's path.

    The sealed file comes last, so that a sealed file in the outbox always has its
    statement beside it. On a failure neither is left (as far as the disk lets them go)."""
    outbox.mkdir(parents=True, exist_ok=True, mode=0o700)
    sealed_path, statement_path = bundle_paths(outbox, bundle.bundle_id)
    try:
        write_atomically(statement_path, statement_bytes(bundle.statement), mode=0o600, ops=ops)
        write_atomically(sealed_path, bundle.sealed, mode=0o600, ops=ops)
    except BaseException:
        try:
            remove_durably([sealed_path, statement_path], ops)
        except OSError:
            pass  # the disk refuses even this: start-up removes what was left
        raise
    return sealed_path


# --- the central office's side ---------------------------------------------------------


def _signers_by_role(
    signers: Sequence[x509.Certificate], officer_signed: bool
) -> tuple[x509.Certificate, x509.Certificate | None]:
    """The kit's and the officer's certificates among the signers; the officer's is absent
    only when the (kit-signed) manifest says the officer did not sign."""
    kits = [c for c in signers if common_name(c).startswith(KIT_CN_PREFIX)]
    officers = [c for c in signers if common_name(c).startswith(OFFICER_CN_PREFIX)]
    if not kits:
        raise BundleRejected("the kit's signature is missing (no signer is a kit)")
    if officer_signed and not officers:
        raise BundleRejected("the officer's signature is missing (no signer is an officer)")
    expected = 2 if officer_signed else 1
    if len(signers) != expected or len(kits) != 1 or len(officers) != expected - 1:
        names = ", ".join(repr(common_name(c)) for c in signers)
        who = "one kit and one officer" if officer_signed else "the kit alone (the manifest says so)"
        raise BundleRejected(f"a bundle is signed by {who}, not by {names}")
    return kits[0], officers[0] if officers else None


def open_bundle(
    sealed: bytes,
    key: rsa.RSAPrivateKey,
    trust: Sequence[x509.Certificate],
    statement: Any = None,
    intermediates: Sequence[x509.Certificate] = (),
) -> OpenedBundle:
    """Decrypt and check a sealed bundle; BundleRejected names the first thing wrong."""
    try:
        content_type, signed = open_envelope(sealed, key)
    except SealBroken as exc:
        raise BundleRejected(f"envelope: {exc}") from None
    if content_type != "signed_data":
        raise BundleRejected(f"envelope: holds {content_type}, not a signed container")
    try:
        verified = verify_signed(signed, trust, intermediates=intermediates)
    except SignatureInvalid as exc:
        raise BundleRejected(f"signature: {exc}") from None
    try:
        files = unpack_container(verified.content)
        manifest = read_manifest(files[MANIFEST_NAME])
    except (ContainerError, ManifestError) as exc:
        raise BundleRejected(str(exc)) from None
    kit, officer = _signers_by_role(verified.signers, manifest.get("officer_signed", True))
    try:
        transaction = read_transaction(files[TRANSACTION_NAME])
        digests = record_digests(files[TRANSACTION_NAME])
    except TransactionError as exc:
        raise BundleRejected(str(exc)) from None
    if manifest["kit"]["id"] != common_name(kit)[len(KIT_CN_PREFIX) :]:
        raise BundleRejected(
            f"manifest: kit {manifest['kit']['id']!r} did not sign it ({common_name(kit)!r} did)"
        )
    if officer is not None and manifest["officer"] != common_name(officer)[len(OFFICER_CN_PREFIX) :]:
        raise BundleRejected(
            f"manifest: officer {manifest['officer']} did not sign it ({common_name(officer)!r} did)"
        )
    header = transaction.header
    for what, found, expected in (
        ("TCN (1.009)", header.transaction_id, manifest["bundle_id"]),
        ("kit (2.003)", header.kit_id, manifest["kit"]["id"]),
        ("officer (2.042)", header.visit.get("officer"), manifest["officer"]),
        ("visit (2.040)", header.visit.get("visit_id"), manifest["visit"]["id"]),
    ):
        if found != expected:
            raise BundleRejected(f"transaction: {what} is {found!r}, the manifest says {expected!r}")
    listed = manifest["records"]
    for name in sorted(set(listed) | set(digests)):
        if name not in digests:
            raise BundleRejected(f"record {name}: listed in the manifest, absent from the transaction")
        if name not in listed:
            raise BundleRejected(f"record {name}: in the transaction, not listed in the manifest")
        if listed[name] != digests[name]:
            raise BundleRejected(f"record {name}: SHA-256 does not match the manifest")
    checked = None if statement is None else check_statement(statement, sealed, trust, kit)
    if checked is not None and checked["bundle_id"] != manifest["bundle_id"]:
        raise BundleRejected("statement: names another bundle than the manifest")
    times = verified.signing_times
    return OpenedBundle(manifest, transaction, files, kit, officer, times, checked)


def statement_signature_der(document: dict[str, Any]) -> bytes:
    """The detached CMS of a statement, for ``openssl cms -verify``."""
    return base64.b64decode(document["signature"])
