"""kitd-pairing/1: a field laptop and a kit pair with the 6-digit code the kit shows.

Its one job: the protocol's pure parts, the same on both sides. SPAKE2 (PyPI ``spake2``: the
laptop is side A with identity ``kit-sync``, the kit side B with ``kitd``; the password is
the code's ASCII) gives both a key K only if both used the same code. Each side then proves
K over a transcript hash T of what it saw: the kit's TLS certificate (as the laptop saw it in
the handshake, as the kit knows its own), the laptop's two certificates, its name and both
SPAKE2 messages. A relay that terminates TLS between them shows the laptop another kit
certificate, and one that swaps the laptop's certificates shows the kit others: T differs
on the two sides, so neither confirmation verifies, and the code itself never travels.

    T = SHA-256(lp(b"kitd-pairing/1") || lp(kit_tls_fp) || lp(laptop_tls_fp)
                || lp(laptop_receipt_fp) || lp(laptop_name UTF-8) || lp(msg_A) || lp(msg_B))
    lp(x) = 4-byte big-endian length of x, then x;  fp = SHA-256 of a certificate's DER
    laptop confirmation = HMAC-SHA256(K, b"laptop" || T);  kit's = HMAC-SHA256(K, b"kit" || T)

Over HTTPS on the kit's pairing port (:data:`DEFAULT_PORT`): ``POST`` :data:`START_PATH` with
:func:`start_body`, answered :class:`StartAnswer`; ``POST`` :data:`CONFIRM_PATH` with
:func:`confirm_body`, answered the kit's confirmation and what the laptop keeps
(:class:`Paired`). :class:`LaptopExchange` and :class:`KitExchange` hold each side's state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kitformats.errors import KitError

if TYPE_CHECKING:
    from spake2 import SPAKE2_A, SPAKE2_B

PROTOCOL = "kitd-pairing/1"
LAPTOP_IDENTITY = b"kit-sync"
KIT_IDENTITY = b"kitd"
DEFAULT_PORT = 8444
START_PATH = "/pairing/v1/start"
CONFIRM_PATH = "/pairing/v1/confirm"
# Starts a window allows (each start uses one, confirmed or not): a guess of the code has
# 5 chances in a million.
ATTEMPTS = 5
CODE_DIGITS = 6
CODE = re.compile(r"[0-9]{6}")
# A laptop's name: what its receipts say they are "by", and kitctl laptops list shows.
LAPTOP_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
# A PEM certificate longer than this is not one a laptop made for itself.
MAX_PEM_CHARS = 16384
# A SPAKE2 message: its side byte and an Ed25519 group element (33 bytes); room to spare.
MAX_MESSAGE_BYTES = 256
FINGERPRINT_BYTES = 32


class PairingError(KitError):
    """A pairing message that is not as the protocol says (names the field when there is one)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ConfirmationFailed(PairingError):
    """The other side's confirmation does not verify: another code, or someone in between."""


def new_code() -> str:
    """A fresh pairing code: 6 decimal digits from the system's cryptographic randomness."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def check_code(code: str) -> str:
    """``code`` without the spaces a person may type; PairingError unless it is 6 digits."""
    cleaned = "".join(str(code).split())
    if not CODE.fullmatch(cleaned):
        raise PairingError("the pairing code is 6 digits, as the kit shows it", "code")
    return cleaned


def fingerprint(certificate: x509.Certificate | bytes) -> bytes:
    """SHA-256 of a certificate's DER (a certificate, or its DER bytes): 32 raw bytes."""
    der = (
        certificate
        if isinstance(certificate, bytes)
        else certificate.public_bytes(serialization.Encoding.DER)
    )
    return hashlib.sha256(der).digest()


def _length_prefixed(part: bytes) -> bytes:
    return struct.pack(">I", len(part)) + part


@dataclass(frozen=True)
class Transcript:
    """What one side saw of an exchange; both sides' hashes agree only if they saw the same."""

    kit_tls_fingerprint: bytes
    laptop_tls_fingerprint: bytes
    laptop_receipt_fingerprint: bytes
    laptop_name: str
    message_a: bytes
    message_b: bytes

    def digest(self) -> bytes:
        """T: SHA-256 over every part, each length-prefixed, the protocol's name first."""
        for name in ("kit_tls_fingerprint", "laptop_tls_fingerprint", "laptop_receipt_fingerprint"):
            if len(getattr(self, name)) != FINGERPRINT_BYTES:
                raise PairingError(f"{name} is a SHA-256 (32 bytes), not {len(getattr(self, name))} bytes")
        parts = (
            PROTOCOL.encode("ascii"),
            self.kit_tls_fingerprint,
            self.laptop_tls_fingerprint,
            self.laptop_receipt_fingerprint,
            self.laptop_name.encode("utf-8"),
            self.message_a,
            self.message_b,
        )
        return hashlib.sha256(b"".join(_length_prefixed(p) for p in parts)).digest()


def laptop_confirmation(key: bytes, transcript: Transcript) -> bytes:
    """The laptop's proof that it holds K and saw ``transcript``."""
    return hmac.new(key, b"laptop" + transcript.digest(), hashlib.sha256).digest()


def kit_confirmation(key: bytes, transcript: Transcript) -> bytes:
    """The kit's proof that it holds K and saw ``transcript``."""
    return hmac.new(key, b"kit" + transcript.digest(), hashlib.sha256).digest()


def _spake2_key(side: SPAKE2_A | SPAKE2_B, inbound: bytes) -> bytes:
    from spake2.spake2 import SPAKEError

    try:
        return side.finish(inbound)
    except (SPAKEError, ValueError):
        # The library's own words ("invalid literal for int() with base 16") say nothing to a
        # person; what went wrong is the message.
        raise PairingError(
            f"the SPAKE2 message ({len(inbound)} bytes) is not one for this side of kitd-pairing/1", "message"
        ) from None


class LaptopExchange:
    """The laptop's side of one exchange: SPAKE2 side A keyed by the code it was given."""

    def __init__(self, code: str) -> None:
        # Imported when a pairing begins: the library takes a tenth of kit-sync's start, and
        # only pairing needs it (a pull imports this module for its fingerprints).
        from spake2 import SPAKE2_A

        self._spake2 = SPAKE2_A(check_code(code).encode("ascii"), idA=LAPTOP_IDENTITY, idB=KIT_IDENTITY)
        self.message = self._spake2.start()
        self._key: bytes | None = None
        self._transcript: Transcript | None = None

    def confirm(
        self,
        kit_message: bytes,
        kit_tls_fingerprint: bytes,
        laptop_tls_fingerprint: bytes,
        laptop_receipt_fingerprint: bytes,
        laptop_name: str,
    ) -> bytes:
        """The laptop's confirmation, once the kit's message is in. ``kit_tls_fingerprint`` is
        the SHA-256 of the certificate the TLS handshake showed, never one the kit sent."""
        self._key = _spake2_key(self._spake2, kit_message)
        self._transcript = Transcript(
            kit_tls_fingerprint,
            laptop_tls_fingerprint,
            laptop_receipt_fingerprint,
            laptop_name,
            self.message,
            kit_message,
        )
        return laptop_confirmation(self._key, self._transcript)

    def check_kit(self, confirmation: bytes) -> None:
        """ConfirmationFailed unless the kit proved the same key over the same transcript."""
        if self._key is None or self._transcript is None:
            raise PairingError("the kit's confirmation came before the laptop's")
        expected = kit_confirmation(self._key, self._transcript)
        if not hmac.compare_digest(expected, confirmation):
            raise ConfirmationFailed(
                "the kit's confirmation does not match: someone between this laptop and the kit, "
                "or not the kit that showed the code"
            )


class KitExchange:
    """The kit's side of one exchange: SPAKE2 side B keyed by the window's code, over what the
    laptop's start said and the kit's own TLS certificate."""

    def __init__(
        self,
        code: str,
        laptop_message: bytes,
        kit_tls_fingerprint: bytes,
        laptop_tls_fingerprint: bytes,
        laptop_receipt_fingerprint: bytes,
        laptop_name: str,
    ) -> None:
        from spake2 import SPAKE2_B  # imported when a pairing begins, as the laptop's side does

        spake2 = SPAKE2_B(check_code(code).encode("ascii"), idA=LAPTOP_IDENTITY, idB=KIT_IDENTITY)
        self.message = spake2.start()
        self._key = _spake2_key(spake2, laptop_message)
        self._transcript = Transcript(
            kit_tls_fingerprint,
            laptop_tls_fingerprint,
            laptop_receipt_fingerprint,
            laptop_name,
            laptop_message,
            self.message,
        )

    def check_laptop(self, confirmation: bytes) -> bytes:
        """The kit's confirmation, if the laptop's verifies; ConfirmationFailed if not (a wrong
        code, or a relay: the kit cannot tell them apart, and counts both)."""
        expected = laptop_confirmation(self._key, self._transcript)
        if not hmac.compare_digest(expected, confirmation):
            raise ConfirmationFailed("the confirmation does not match: wrong code")
        return kit_confirmation(self._key, self._transcript)


# --- the messages on the wire --------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _text(body: dict[str, Any], name: str, what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise PairingError(f"'{name}' is missing or not a string: {what}", name)
    return value


def _unb64(body: dict[str, Any], name: str) -> bytes:
    text = _text(body, name, "base64")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PairingError(f"'{name}' is not base64", name) from None
    if not 0 < len(data) <= MAX_MESSAGE_BYTES:
        raise PairingError(f"'{name}' is {len(data)} bytes: not a SPAKE2 message", name)
    return data


def _unhex(body: dict[str, Any], name: str) -> bytes:
    text = _text(body, name, "64 hex digits")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise PairingError(f"'{name}' is not 64 hex digits", name)
    return bytes.fromhex(text)


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise PairingError(f"{what} is a JSON object")
    return body


def read_certificate(text: str, field: str) -> x509.Certificate:
    """One PEM certificate of an ECDSA P-256 key, or PairingError naming ``field``."""
    if len(text) > MAX_PEM_CHARS:
        raise PairingError(f"'{field}' is longer than any certificate a laptop makes", field)
    try:
        certificate = x509.load_pem_x509_certificate(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise PairingError(f"'{field}' is not a PEM certificate", field) from None
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise PairingError(f"'{field}' is not an ECDSA P-256 certificate", field)
    return certificate


def check_laptop_name(name: Any) -> str:
    if not isinstance(name, str) or not LAPTOP_NAME.fullmatch(name):
        raise PairingError(
            f"laptop_name {name!r}: 1-64 letters, digits, '.', '_' or '-'",
            "laptop_name",
        )
    return name


def start_body(laptop_name: str, tls_pem: str, receipt_pem: str, exchange: LaptopExchange) -> dict[str, Any]:
    """The laptop's ``POST /pairing/v1/start`` body."""
    return {
        "laptop_name": check_laptop_name(laptop_name),
        "tls_certificate": tls_pem,
        "receipt_certificate": receipt_pem,
        "message": _b64(exchange.message),
    }


@dataclass(frozen=True)
class StartRequest:
    """A laptop's start as the kit read it: its name, two certificates and SPAKE2 message."""

    laptop_name: str
    tls_certificate: x509.Certificate
    tls_pem: str
    receipt_certificate: x509.Certificate
    receipt_pem: str
    message: bytes

    @property
    def tls_fingerprint(self) -> bytes:
        return fingerprint(self.tls_certificate)

    @property
    def receipt_fingerprint(self) -> bytes:
        return fingerprint(self.receipt_certificate)


def read_start(body: Any) -> StartRequest:
    """The kit's reading of a start; PairingError naming the first field that is wrong."""
    body = _object(body, "the start")
    name = check_laptop_name(body.get("laptop_name"))
    tls_pem = _text(body, "tls_certificate", "the laptop's TLS certificate (PEM)")
    receipt_pem = _text(body, "receipt_certificate", "the laptop's receipts certificate (PEM)")
    tls = read_certificate(tls_pem, "tls_certificate")
    receipt = read_certificate(receipt_pem, "receipt_certificate")
    return StartRequest(name, tls, tls_pem, receipt, receipt_pem, _unb64(body, "message"))


def start_answer(exchange_id: str, exchange: KitExchange, kit_id: str) -> dict[str, Any]:
    """The kit's answer to a start."""
    return {"exchange": exchange_id, "message": _b64(exchange.message), "kit_id": kit_id}


@dataclass(frozen=True)
class StartAnswer:
    exchange: str
    message: bytes
    kit_id: str


def read_start_answer(body: Any) -> StartAnswer:
    """The laptop's reading of the kit's answer to its start."""
    body = _object(body, "the kit's answer")
    return StartAnswer(
        _text(body, "exchange", "the exchange's id"), _unb64(body, "message"), _text(body, "kit_id", "")
    )


def confirm_body(exchange_id: str, confirmation: bytes) -> dict[str, Any]:
    """The laptop's ``POST /pairing/v1/confirm`` body."""
    return {"exchange": exchange_id, "confirmation": confirmation.hex()}


def read_confirm(body: Any) -> tuple[str, bytes]:
    """The kit's reading of a confirm: the exchange's id and the laptop's confirmation."""
    body = _object(body, "the confirmation")
    return _text(body, "exchange", "the exchange's id"), _unhex(body, "confirmation")


@dataclass(frozen=True)
class Paired:
    """What the kit answers a right confirmation: its own confirmation, then what the laptop
    keeps (trusted only once the confirmation verified)."""

    confirmation: bytes
    kit_id: str
    laptop_name: str
    network_port: int
    kit_signing_certificate: str | None
    audit_note_key: str | None


def read_paired(body: Any) -> Paired:
    """The laptop's reading of the kit's answer to a right confirmation."""
    body = _object(body, "the kit's answer")
    port = body.get("network_port")
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise PairingError(f"'network_port' is not a port: {port!r}", "network_port")
    signing = body.get("kit_signing_certificate")
    note_key = body.get("audit_note_key")
    for name, value in (("kit_signing_certificate", signing), ("audit_note_key", note_key)):
        if value is not None and not isinstance(value, str):
            raise PairingError(f"'{name}' is neither text nor null", name)
    return Paired(
        _unhex(body, "confirmation"),
        _text(body, "kit_id", ""),
        check_laptop_name(body.get("laptop_name")),
        port,
        signing,
        note_key,
    )
