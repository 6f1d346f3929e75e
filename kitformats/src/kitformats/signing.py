"""The signing interface of the kit: who signs (a certificate) and a signature over a digest.

Its one job: :class:`Signer` is what sealing and signed statements ask of a key — its
certificate and an ECDSA P-256 signature over a SHA-256 digest, DER-encoded — so that a key
that never leaves a token (PKCS#11, a later issue) signs exactly like a file key. The file
backend keeps each key as a PEM file of mode 0600 beside its certificate in
``data_dir/keys/``; a key readable by others is refused, since a kit's SD card travels.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from kitformats.errors import KitError
from kitformats.named_files import read_named_file

# How certificates name who signs a bundle: the kit by its kit.id, an officer by NIP.
KIT_CN_PREFIX = "kit "
OFFICER_CN_PREFIX = "officer "


class KeyProblem(KitError):
    """A key or certificate is missing, unreadable, of the wrong kind or too open."""


@runtime_checkable
class Signer(Protocol):
    """A P-256 key that signs SHA-256 digests, and the certificate that names it."""

    certificate: x509.Certificate

    def sign_digest(self, digest: bytes) -> bytes:
        """The DER ECDSA-Sig-Value (r, s) over a 32-byte SHA-256 digest."""
        ...


@dataclass
class FileSigner:
    """A P-256 private key held in a 0600 PEM file (development and the simulation kit)."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def sign_digest(self, digest: bytes) -> bytes:
        if len(digest) != 32:
            raise ValueError("a SHA-256 digest is 32 bytes")
        return self.key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))


def read_certificate(path: Path) -> x509.Certificate:
    """A PEM or DER certificate; a missing or garbled file names itself."""
    try:
        data = read_named_file(path)
    except FileNotFoundError:
        raise KeyProblem(f"{path}: no such certificate") from None
    except OSError as exc:
        raise KeyProblem(f"{path}: cannot read: {exc.strerror}") from None
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise KeyProblem(f"{path}: not an X.509 certificate") from None


def read_file_signer(key_path: Path, certificate_path: Path) -> FileSigner:
    """The key at ``key_path`` (mode 0600 or stricter) with its certificate, checked to match.

    On Windows (a field laptop's receipt key) the mode says nothing: the user's profile
    folder's ACL guards the key, and it is not checked here."""
    try:
        mode = key_path.stat().st_mode
        data = read_named_file(key_path)
    except FileNotFoundError:
        raise KeyProblem(f"{key_path}: no such key") from None
    except OSError as exc:
        raise KeyProblem(f"{key_path}: cannot read: {exc.strerror}") from None
    if os.name != "nt" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyProblem(
            f"{key_path}: mode {stat.S_IMODE(mode):04o} lets others read the key; it must be 0600"
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyProblem(f"{key_path}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyProblem(f"{key_path}: not a P-256 key")
    certificate = read_certificate(certificate_path)
    if certificate.public_key() != key.public_key():
        raise KeyProblem(f"{certificate_path}: the certificate is not the one of {key_path.name}")
    return FileSigner(key, certificate)


def common_name(certificate: x509.Certificate) -> str:
    """The subject's CN (how a kit or an officer is named in a certificate), or ""."""
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def write_private_key(path: Path, key: PrivateKeyTypes) -> None:
    """Write a PEM key created 0600 from the start (never readable by others, even briefly)."""
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
