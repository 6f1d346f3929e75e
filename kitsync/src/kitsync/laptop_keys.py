"""The laptop's two keys for one kit: its TLS client key and its receipt-signing key.

Its one job: make them in the link's certificate profile (kitformats.link_certificates:
ECDSA P-256, self-signed, CA:FALSE, valid 2020-01-01 to 2100-01-01 so that a kit whose clock
is wrong does not refuse them) and keep each key in a 0600 PEM file beside its certificate.
kitformats.signing.read_file_signer reads the receipt key back; kitformats.pairing.fingerprint
is the SHA-256 that pairing and pinning compare.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from kitformats.link_certificates import Use, private_key_pem
from kitformats.link_certificates import self_signed as link_certificate

from kitsync.durable_files import write_atomically

Purpose = Literal["tls", "receipts"]
USES: dict[Purpose, Use] = {"tls": "tls-client", "receipts": "signing"}


def self_signed(name: str, purpose: Purpose) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key and its certificate, CN "laptop <name> <purpose>", for ``purpose`` "tls" or
    "receipts"."""
    if purpose not in USES:
        raise ValueError(f"purpose {purpose!r} is not tls or receipts")
    return link_certificate(f"laptop {name} {purpose}", USES[purpose])


def write_credential(
    key_path: Path, certificate_path: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate
) -> None:
    """The key (0600 from the start) and its certificate, each written whole."""
    write_atomically(key_path, private_key_pem(key), mode=0o600)
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
