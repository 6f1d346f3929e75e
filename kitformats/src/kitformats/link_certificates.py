"""The certificates of the laptop link, as the kit and kit-sync make them for themselves.

Its one job: :func:`self_signed` makes a new ECDSA P-256 key and its self-signed certificate
(CA:FALSE, valid 2020-01-01 to 2100-01-01) for one of the link's uses: the kit's TLS server
certificate, a laptop's TLS client certificate, a laptop's receipt-signing certificate. No CA
issues them: each side pins or trusts the other's certificate itself (by the SHA-256 of its
DER, :func:`kitformats.pairing.fingerprint`), so the dates say nothing to either; they are
wide so that a kit whose clock is wrong (no battery-backed clock, days offline) neither
serves nor refuses one that looks expired.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)

Use = Literal["tls-server", "tls-client", "signing"]
USES: tuple[Use, ...] = ("tls-server", "tls-client", "signing")


def _key_usage(*, content_commitment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def self_signed(common_name: str, use: Use) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new P-256 key and its self-signed certificate named ``common_name``, for ``use``:

    - "tls-server" (the kit's): keyUsage digitalSignature, extendedKeyUsage serverAuth;
    - "tls-client" (a laptop's): extendedKeyUsage clientAuth and no keyUsage, since the kit
      trusts it as its own anchor and OpenSSL takes a self-signed certificate whose keyUsage
      lacks keyCertSign for not self-issued;
    - "signing" (a laptop's receipts): keyUsage digitalSignature and nonRepudiation.
    """
    if use not in USES:
        raise ValueError(f"a link certificate's use is one of {', '.join(USES)}, not {use!r}")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if use == "tls-server":
        builder = builder.add_extension(_key_usage(content_commitment=False), critical=True)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    elif use == "tls-client":
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    else:
        builder = builder.add_extension(_key_usage(content_commitment=True), critical=True)
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    return key, builder.sign(key, hashes.SHA256())


def private_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The key as its file holds it: unencrypted PKCS#8 PEM (the file's 0600 mode guards it)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
