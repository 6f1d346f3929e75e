"""C2SP signed notes with Ed25519 keys: key strings, signing a note text, opening a signed note.

Its one job: the format of c2sp.org/signed-note, byte for byte as Go's
golang.org/x/mod/sumdb/note writes it, so that a laptop with Go's tools or with ours checks
the kit's checkpoints alike. A note is a text ending in a newline, a blank line, and one
signature line per key: em dash (U+2014), space, key name, space, base64(key ID || signature).

Keys travel as Go's strings: the verifier key ``name+hash+base64(0x01 || public key)`` and the
signer key ``PRIVATE+KEY+name+hash+base64(0x01 || private seed)``, where hash is the key ID
in hex and the key ID is the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key).

Opening follows the spec: a signature by an unknown key (name and ID not both known) is set
aside, a bad signature by a known key refuses the whole note, and a note with no good
signature by a known key is refused. Base64 must be canonical (we write nothing else, and a
second spelling of the same bytes is only room for confusion).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from kitformats.errors import KitError

ED25519 = 0x01
ED25519_KEY_SIZE = 32
ED25519_SIGNATURE_SIZE = 64

# The spec asks verifiers to cap the count (at no less than 16); Go's note caps it at 100.
MAX_SIGNATURES = 100

SIGNATURE_PREFIX = "\u2014 "

_HASH_HEX = re.compile(r"[0-9a-fA-F]{8}")


class MalformedKey(KitError):
    """A verifier or signer key string is not well formed (the message says which part)."""


class MalformedNote(KitError):
    """A note or a note text breaks the signed-note format (the message says where)."""


class NoteRefused(KitError):
    """A well-formed note that no known key vouches for, or that a known key's bad signature spoils."""


@dataclass(frozen=True)
class VerifierKey:
    """A named Ed25519 public key that may vouch for notes."""

    name: str
    public_key: bytes

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.public_key)

    def __str__(self) -> str:
        return format_verifier_key(self.name, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's Ed25519 signature of ``message``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SignerKey:
    """A named Ed25519 private key (its 32-byte seed), kept out of reprs and logs."""

    name: str
    seed: bytes = field(repr=False)

    @property
    def public_key(self) -> bytes:
        return _private_key(self.seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.public_key)

    @property
    def verifier(self) -> VerifierKey:
        return VerifierKey(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        """This key's Ed25519 signature of ``message``."""
        return _private_key(self.seed).sign(message)


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: who (name and key ID) and the signature bytes."""

    name: str
    key_id: int
    signature: bytes

    @property
    def line(self) -> str:
        """The signature line, without its newline."""
        packed = self.key_id.to_bytes(4, "big") + self.signature
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(packed).decode('ascii')}"

    @property
    def key(self) -> str:
        """``name+hash``: how Go names the key in its messages."""
        return f"{self.name}+{self.key_id:08x}"


@dataclass(frozen=True)
class Note:
    """An opened note: its text, the signatures that verified, and those of unknown keys."""

    text: str
    signatures: tuple[Signature, ...]
    unverified: tuple[Signature, ...] = ()


def key_id(name: str, public_key: bytes) -> int:
    """The key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ED25519]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def is_valid_key_name(name: str) -> bool:
    """Whether ``name`` can name a key: non-empty, no '+', no space, no control character."""
    return (
        bool(name)
        and "+" not in name
        and not any(char.isspace() or char < " " for char in name)
        and _is_utf8(name)
    )


def format_verifier_key(name: str, public_key: bytes) -> str:
    """The verifier key string ``name+hash+base64(0x01 || public key)``."""
    _check_key(name, public_key, "public key")
    encoded = base64.b64encode(bytes([ED25519]) + public_key).decode("ascii")
    return f"{name}+{key_id(name, public_key):08x}+{encoded}"


def format_signer_key(name: str, seed: bytes) -> str:
    """The signer key string ``PRIVATE+KEY+name+hash+base64(0x01 || seed)``, as Go writes it."""
    _check_key(name, seed, "private seed")
    signer = SignerKey(name, seed)
    encoded = base64.b64encode(bytes([ED25519]) + seed).decode("ascii")
    return f"PRIVATE+KEY+{name}+{signer.key_id:08x}+{encoded}"


def generate_signer_key(name: str) -> str:
    """A new signer key string for ``name``, from the system's random source."""
    return format_signer_key(name, os.urandom(ED25519_KEY_SIZE))


def parse_verifier_key(text: str) -> VerifierKey:
    """A verifier key from its string; :class:`MalformedKey` names what is wrong."""
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise MalformedKey("malformed verifier key: expected name+hash+key")
    name, hash_hex, encoded = parts
    public_key = _key_bytes("verifier key", name, hash_hex, encoded)
    if int(hash_hex, 16) != key_id(name, public_key):
        raise MalformedKey(f"malformed verifier key: its hash {hash_hex} does not match its key")
    return VerifierKey(name, public_key)


def parse_signer_key(text: str) -> SignerKey:
    """A signer key from its ``PRIVATE+KEY+...`` string; the message never repeats the string."""
    parts = text.split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise MalformedKey("malformed signer key: expected PRIVATE+KEY+name+hash+key")
    name, hash_hex, encoded = parts[2:]
    signer = SignerKey(name, _key_bytes("signer key", name, hash_hex, encoded))
    if int(hash_hex, 16) != signer.key_id:
        raise MalformedKey(f"malformed signer key: its hash {hash_hex} does not match its key")
    return signer


def check_note_text(text: str) -> None:
    """Raise :class:`MalformedNote` unless ``text`` can be a note's text."""
    if not text.endswith("\n"):
        raise MalformedNote("malformed note: the text does not end in a newline")
    _check_characters(text)


def sign_note(text: str, signers: Sequence[SignerKey], keep: Sequence[Signature] = ()) -> str:
    """The signed note of ``text``: its lines of ``keep`` (other keys' signatures) then the signers'."""
    check_note_text(text)
    message = text.encode("utf-8")
    fresh = [Signature(s.name, s.key_id, s.sign(message)) for s in signers]
    for signature in [*keep, *fresh]:
        if not is_valid_key_name(signature.name):
            raise MalformedNote(f"malformed note: {signature.name!r} cannot name a key")
    signing = {(s.name, s.key_id) for s in fresh}
    # A signer's old signature is replaced, not repeated, as Go's note.Sign does.
    kept = [s for s in keep if (s.name, s.key_id) not in signing]
    return text + "\n" + "".join(s.line + "\n" for s in [*kept, *fresh])


def parse_note(note: str | bytes) -> tuple[str, tuple[Signature, ...]]:
    """Split a signed note into its text and signature lines, checking only the syntax."""
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNote(f"malformed note: not UTF-8 (byte {exc.start})") from None
    _check_characters(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNote("malformed note: no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block:
        raise MalformedNote("malformed note: no signature lines after the blank line")
    if not block.endswith("\n"):
        raise MalformedNote("malformed note: the signatures do not end in a newline")
    first_line = text.count("\n") + 2
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNote(f"malformed note: more than {MAX_SIGNATURES} signatures")
    return text, tuple(_parse_signature(line, first_line + i) for i, line in enumerate(lines))


def open_note(note: str | bytes, known: Iterable[VerifierKey]) -> Note:
    """The note, once a known key's signature verifies; :class:`NoteRefused` otherwise."""
    text, signatures = parse_note(note)
    by_id: dict[tuple[str, int], VerifierKey] = {}
    for verifier in known:
        slot = (verifier.name, verifier.key_id)
        if by_id.setdefault(slot, verifier) != verifier:
            raise NoteRefused(f"note refused: two different known keys are both {slot[0]}+{slot[1]:08x}")
    message = text.encode("utf-8")
    verified: list[Signature] = []
    unverified: list[Signature] = []
    for signature in signatures:
        verifier = by_id.get((signature.name, signature.key_id))
        if verifier is None:
            if signature not in unverified:
                unverified.append(signature)
        elif signature not in verified:
            if not verifier.verify(message, signature.signature):
                raise NoteRefused(f"note refused: the signature of known key {signature.key} does not verify")
            verified.append(signature)
    if not verified:
        signed_by = ", ".join(s.key for s in unverified)
        raise NoteRefused(f"note refused: no signature by a known key (signed by {signed_by})")
    return Note(text, tuple(verified), tuple(unverified))


def _parse_signature(line: str, number: int) -> Signature:
    where = f"malformed note: line {number}"
    if not line.startswith(SIGNATURE_PREFIX):
        raise MalformedNote(f"{where} is not a signature line ('\u2014 name signature')")
    name, space, encoded = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not space or " " in encoded:
        raise MalformedNote(f"{where} is not '\u2014 name signature' with one space between them")
    if not is_valid_key_name(name):
        raise MalformedNote(f"{where}: {name!r} cannot name a key")
    packed = _strict_base64(encoded)
    if packed is None:
        raise MalformedNote(f"{where}: the signature is not canonical base64")
    if len(packed) < 5:
        raise MalformedNote(f"{where}: the signature is shorter than a key ID and one byte")
    return Signature(name, int.from_bytes(packed[:4], "big"), packed[4:])


def _key_bytes(what: str, name: str, hash_hex: str, encoded: str) -> bytes:
    if not is_valid_key_name(name):
        raise MalformedKey(f"malformed {what}: {name!r} cannot name a key")
    if not _HASH_HEX.fullmatch(hash_hex):
        raise MalformedKey(f"malformed {what}: its hash is not 8 hex digits")
    raw = _strict_base64(encoded)
    if raw is None or not raw:
        raise MalformedKey(f"malformed {what}: its key is not canonical base64")
    if raw[0] != ED25519:
        raise MalformedKey(f"malformed {what}: unknown algorithm {raw[0]:#04x} (only Ed25519, 0x01)")
    if len(raw) != 1 + ED25519_KEY_SIZE:
        raise MalformedKey(
            f"malformed {what}: an Ed25519 key is {ED25519_KEY_SIZE} bytes, not {len(raw) - 1}"
        )
    return raw[1:]


def _check_key(name: str, key: bytes, what: str) -> None:
    if not is_valid_key_name(name):
        raise MalformedKey(f"{name!r} cannot name a key")
    if len(key) != ED25519_KEY_SIZE:
        raise MalformedKey(f"an Ed25519 {what} is {ED25519_KEY_SIZE} bytes, not {len(key)}")


def _check_characters(text: str) -> None:
    if not _is_utf8(text):
        raise MalformedNote("malformed note: not UTF-8 (a lone surrogate)")
    for number, line in enumerate(text.split("\n"), start=1):
        bad = next((char for char in line if char < " "), None)
        if bad is not None:
            raise MalformedNote(f"malformed note: line {number} has control character U+{ord(bad):04X}")


def _strict_base64(encoded: str) -> bytes | None:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if base64.b64encode(raw).decode("ascii") == encoded else None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _private_key(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)
