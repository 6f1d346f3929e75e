"""The laptop's two keys for one kit: its TLS client key and its receipt-signing key.

Its one job: make them (ECDSA P-256, self-signed, CA:FALSE, valid 2020-01-01 to 2100-01-01
so that a kit whose clock is wrong does not refuse them), keep each key in a 0600 PEM file
beside its certificate, read the receipt key back as a kitformats Signer, and compute the
SHA-256 fingerprint of a certificate's DER that pairing and pinning compare.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kitformats.signing import FileSigner, KeyProblem, read_certificate

from kitsync.durable_files import write_atomically

NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def fingerprint(certificate: x509.Certificate | bytes) -> bytes:
    """SHA-256 of the certificate's DER (32 raw bytes)."""
    der = (
        certificate
        if isinstance(certificate, bytes)
        else certificate.public_bytes(serialization.Encoding.DER)
    )
    return hashlib.sha256(der).digest()


def self_signed(name: str, purpose: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new P-256 key and its self-signed certificate for ``purpose`` "tls" or "receipts".

    The TLS certificate carries no keyUsage: OpenSSL takes a self-signed certificate whose
    keyUsage lacks keyCertSign for not self-issued, and the kit trusts it as its own anchor.
    The receipt certificate says digitalSignature and nonRepudiation, what a signer's may."""
    if purpose not in ("tls", "receipts"):
        raise ValueError(f"purpose {purpose!r} is not tls or receipts")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"laptop {name} {purpose}")])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if purpose == "tls":
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    return key, builder.sign(key, hashes.SHA256())


def write_credential(
    key_path: Path, certificate_path: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
) -> None:
    """The key (0600 from the start) and its certificate, each written whole."""
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomically(key_path, key_pem, mode=0o600)
    write_atomically(certificate_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)


def make_credentials(directory: Path, laptop_name: str) -> tuple[x509.Certificate, x509.Certificate]:
    """New TLS and receipt credentials in ``directory``: their certificates."""
    certificates = []
    for purpose in ("tls", "receipts"):
        key, certificate = self_signed(laptop_name, purpose)
        write_credential(
            directory / f"laptop-{purpose}.key", directory / f"laptop-{purpose}.crt", key, certificate
        )
        certificates.append(certificate)
    return certificates[0], certificates[1]


def read_signer(key_path: Path, certificate_path: Path) -> FileSigner:
    """The receipt key with its certificate, checked to match; on POSIX a key others can read
    is refused (on Windows the user's profile folder's ACL guards it: st_mode says nothing)."""
    try:
        mode = key_path.stat().st_mode
        data = key_path.read_bytes()
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
