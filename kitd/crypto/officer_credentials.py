"""An officer's signing credential on the kit: installed from PKCS#12, kept wrapped, opened
with the officer's PIN and the kit's secret together.

Its one job: :func:`read_pkcs12` takes the office's PKCS#12 file apart (a P-256 key and
the officer's certificate); :func:`wrap_credential` seals the key for the kit's disk and
:func:`unwrap_credential` opens it again. The wrapping key is

    S   = Argon2id(PIN, salt)
    KEK = HKDF-SHA256(S || HMAC-SHA256(kit secret, "kitd officer credential" || salt || S),
                      info = "kitd officer credential v1" || NIP)

and the key is AES-256-GCM encrypted under it, the NIP and the certificate's SHA-256 as
associated data. The kit's secret never leaves the key backend (inside the token for
``keys.backend = "pkcs11"``), and the HMAC takes the stretched PIN: a copy of the SD card
alone holds nothing to try PINs against, and on a stolen kit every guess costs an Argon2id
and an operation of the token itself, none of it offline; at sign-in,
``auth.max_pin_failures`` wrong PINs lock the officer. (With the file backend the secret is
a 0600 file beside the keys: fine for development and the simulation, not for the field.)
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import pkcs12
from kitformats.signing import OFFICER_CN_PREFIX, FileSigner, KeyProblem, common_name

FORMAT = "kitd-officer-credential/1"
# Lighter than the sign-in hash (which runs first, on every sign-in): the kit's secret is
# what defeats a copied card; this only slows guessing on a stolen kit.
ARGON2 = {"time_cost": 1, "memory_cost": 16 * 1024, "parallelism": 1}
SECRET_CONTEXT = b"kitd officer credential"

# The kit's part of the wrapping key: HMAC-SHA256 under its secret, of the given bytes.
KitMac = Callable[[bytes], bytes]


class CredentialLocked(KeyProblem):
    """The credential does not open: a wrong PIN, another kit's secret, or a changed file."""


def read_pkcs12(
    data: bytes, password: bytes | None, nip: str
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The officer's key and certificate from a PKCS#12 file; KeyProblem says what is wrong."""
    try:
        key, certificate, _others = pkcs12.load_key_and_certificates(data, password)
    except ValueError:
        raise KeyProblem("not a PKCS#12 file, or a wrong password for it") from None
    if key is None or certificate is None:
        raise KeyProblem("the PKCS#12 file holds no key with its certificate")
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise KeyProblem("the officer's key is not an ECDSA P-256 key")
    if certificate.public_key() != key.public_key():
        raise KeyProblem("the certificate in the PKCS#12 file is for another key")
    expected = f"{OFFICER_CN_PREFIX}{nip}"
    if common_name(certificate) != expected:
        raise KeyProblem(f"the certificate names '{common_name(certificate)}', not '{expected}'")
    return key, certificate


def _wrapping_key(pin: str, salt: bytes, nip: str, kit_mac: KitMac, params: dict[str, int]) -> bytes:
    stretched = hash_secret_raw(pin.encode(), salt, hash_len=32, type=Type.ID, **params)
    kit_part = kit_mac(SECRET_CONTEXT + salt + stretched)
    info = b"kitd officer credential v1" + nip.encode()
    return HKDF(hashes.SHA256(), 32, salt=salt, info=info).derive(stretched + kit_part)


def _associated(nip: str, certificate_pem: bytes) -> bytes:
    return nip.encode() + b"\x00" + hashlib.sha256(certificate_pem).digest()


def wrap_credential(
    nip: str, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate, pin: str, kit_mac: KitMac
) -> dict[str, Any]:
    """The credential as the kit keeps it (JSON): nothing in it opens without PIN and secret."""
    salt, nonce = os.urandom(16), os.urandom(12)
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM)
    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    kek = _wrapping_key(pin, salt, nip, kit_mac, ARGON2)
    sealed = AESGCM(kek).encrypt(nonce, plain, _associated(nip, certificate_pem))
    encode = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return {
        "format": FORMAT,
        "nip": nip,
        "argon2id": dict(ARGON2),
        "salt": encode(salt),
        "nonce": encode(nonce),
        "wrapped_key": encode(sealed),
        "certificate": certificate_pem.decode("ascii"),
    }


def credential_certificate(document: dict[str, Any]) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(document["certificate"].encode("ascii"))
    except (KeyError, AttributeError, ValueError):
        raise KeyProblem("the credential file holds no readable certificate") from None


def unwrap_credential(document: dict[str, Any], nip: str, pin: str, kit_mac: KitMac) -> FileSigner:
    """The officer's signer, in memory only; CredentialLocked when it does not open."""
    try:
        if document["format"] != FORMAT or document["nip"] != nip:
            raise KeyProblem(f"not {nip}'s credential in the {FORMAT} format")
        salt, nonce, sealed = (
            base64.b64decode(document[k], validate=True) for k in ("salt", "nonce", "wrapped_key")
        )
        params = {k: int(document["argon2id"][k]) for k in ARGON2}
    except (KeyError, TypeError, ValueError):
        raise KeyProblem("the credential file is damaged") from None
    if params != ARGON2 or len(salt) != 16 or len(nonce) != 12:
        # Never the file's word for how much memory to take: a changed file must not stall
        # or exhaust a sign-in.
        raise KeyProblem("the credential file is damaged (not the kit's own parameters)")
    certificate = credential_certificate(document)
    kek = _wrapping_key(pin, salt, nip, kit_mac, params)
    try:
        plain = AESGCM(kek).decrypt(nonce, sealed, _associated(nip, document["certificate"].encode("ascii")))
    except InvalidTag:
        raise CredentialLocked(
            f"officer {nip}'s credential does not open: wrong PIN, another kit's secret, or a changed file"
        ) from None
    key = serialization.load_der_private_key(plain, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyProblem("the credential holds no EC key")
    return FileSigner(key, certificate)
