"""Decide whether an MCUboot image may go into the kit's peripheral: format, hash, signature,
version, allow-list, each a finding with a one-line reason in English.

What is checked is what MCUboot's bootutil checks at boot (the hash TLV over header, body and
protected TLVs; a signature TLV by a key its KEYHASH names among the built-in keys) plus the
office's own rules: not older than the running image, and on the allow-list when there is one.

Signatures as imgtool makes them (imgtool/image.py, Image.create): ECDSA P-256 signs the hashed
bytes with ECDSA-SHA256, which is a signature over the SHA-256 hash TLV's value, so it is
checked here as a prehashed signature over the computed hash; Ed25519 signs the 32-byte hash
value itself as its message. The KEYHASH TLV is the image hash algorithm's digest of the key's
DER SubjectPublicKeyInfo.

Allow-list file: one image hash per line, lowercase hex as `kitfw info` and `imgtool verify`
print it (uppercase is read too), `#` starts a comment, blank lines are ignored.

Pure: the standard library and cryptography, nothing of the kit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, utils
from kitformats.named_files import read_named_file

from firmware_tools.mcuboot_image import (
    HEADER_FLAGS,
    TLV_TYPES,
    ImageFormatError,
    ImageVersion,
    McubootImage,
    parse_image,
)

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey

CHECKS = ("format", "hash", "signature", "version", "allow_list")

_SIGNATURE_TLVS = {
    TLV_TYPES["ECDSASIG"]: "ECDSA",
    TLV_TYPES["ED25519"]: "Ed25519",
    TLV_TYPES["RSA2048"]: "RSA-2048",
    TLV_TYPES["RSA3072"]: "RSA-3072",
}
_ENCRYPTED = HEADER_FLAGS["ENCRYPTED_AES128"] | HEADER_FLAGS["ENCRYPTED_AES256"]


class KeyFileError(ValueError):
    """A pinned key file that cannot be used; the message is one line naming the file."""


class AllowListError(ValueError):
    """An allow-list that cannot be read; the message is one line naming the line."""


@dataclass(frozen=True)
class Finding:
    """One check's verdict: its name (one of CHECKS), accepted or refused, and why."""

    check: str
    ok: bool
    reason: str

    @property
    def refused(self) -> bool:
        return not self.ok

    def __str__(self) -> str:
        return f"{self.check}: {self.reason}"


@dataclass(frozen=True)
class PinnedKey:
    """A public key the office signs with, and where it came from (for messages)."""

    key: PublicKey
    source: str

    @property
    def der(self) -> bytes:
        return self.key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def key_hash(self, algorithm: str = "sha256") -> bytes:
        """The KEYHASH TLV imgtool writes for this key."""
        return hashlib.new(algorithm, self.der).digest()


def accepted(findings: Iterable[Finding]) -> bool:
    """True when no finding refuses the image."""
    return all(finding.ok for finding in findings)


def short_hex(value: bytes) -> str:
    return value.hex()[:8] + "..."


def load_public_key(pem: bytes, source: str = "key") -> PinnedKey:
    """An ECDSA P-256 or Ed25519 public key from PEM (`imgtool getpub --encoding pem`)."""
    if b"PRIVATE KEY" in pem:
        raise KeyFileError(
            f"{source} is a private key; pin its public half (imgtool getpub --encoding pem -k {source})"
        )
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise KeyFileError(f"{source} is not a PEM public key ({_first_line(error)})") from None
    if isinstance(key, ed25519.Ed25519PublicKey):
        return PinnedKey(key, source)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return PinnedKey(key, source)
    raise KeyFileError(
        f"{source} is not an ECDSA P-256 or Ed25519 key (the kit's peripheral takes only those)"
    )


def read_public_keys(paths: Iterable[str | Path]) -> list[PinnedKey]:
    """Load every pinned key file; the first unreadable one raises KeyFileError."""
    keys = []
    for path in paths:
        try:
            pem = read_named_file(path)
        except OSError as error:
            raise KeyFileError(f"cannot read key file {path}: {error.strerror or error}") from None
        keys.append(load_public_key(pem, str(path)))
    return keys


def parse_allow_list(text: str, source: str = "allow-list") -> frozenset[bytes]:
    """The hashes of an allow-list file's text (format in the module docstring)."""
    hashes_found = set()
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            value = bytes.fromhex(entry)
        except ValueError:
            value = b""
        if len(value) not in (32, 48, 64) or len(entry) != 2 * len(value):
            raise AllowListError(f"{source} line {number}: {entry[:80]!r} is not a hex image hash")
        hashes_found.add(value)
    return frozenset(hashes_found)


def read_allow_list(path: str | Path) -> frozenset[bytes]:
    """Read and parse an allow-list file; AllowListError when it cannot be read."""
    try:
        text = read_named_file(path).decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise AllowListError(
            f"cannot read allow-list {path}: {getattr(error, 'strerror', None) or error}"
        ) from None
    return parse_allow_list(text, str(path))


def verify_image(
    image: McubootImage | bytes,
    public_keys: Sequence[PinnedKey | PublicKey],
    allow_list: Collection[bytes] | None,
    running_version: ImageVersion | None = None,
    allow_downgrade: bool = False,
) -> list[Finding]:
    """Every check's finding, in the order of CHECKS; only format's when the bytes do not parse.

    allow_list None means none is configured (the check passes and says so); an empty
    collection refuses every image.
    """
    if not isinstance(image, McubootImage):
        try:
            image = parse_image(image)
        except ImageFormatError as error:
            return [Finding("format", False, str(error))]
    pinned = [
        key if isinstance(key, PinnedKey) else PinnedKey(key, f"key {index + 1}")
        for index, key in enumerate(public_keys)
    ]
    findings = [_check_format(image)]
    if findings[0].refused:
        return findings
    hash_finding = _check_hash(image)
    findings.append(hash_finding)
    findings.append(_check_signature(image, pinned, hash_ok=hash_finding.ok))
    findings.append(_check_version(image.version, running_version, allow_downgrade))
    findings.append(_check_allow_list(image, allow_list))
    return findings


def _check_format(image: McubootImage) -> Finding:
    if image.header.flags & _ENCRYPTED:
        return Finding("format", False, "the image is encrypted; the kit takes only plain images")
    if image.find("SIG_PURE"):
        return Finding(
            "format", False, "the image has a pure signature (--pure), which the kit does not take"
        )
    return Finding(
        "format",
        True,
        f"MCUboot image {image.version}, {image.body_size} bytes of body, "
        f"{len(image.tlvs)} TLV{'' if len(image.tlvs) == 1 else 's'}",
    )


def _check_hash(image: McubootImage) -> Finding:
    tlv = image.hash_tlv
    if tlv is None:
        return Finding("hash", False, "the image has no hash TLV (SHA256)")
    if tlv.value != image.computed_hash():
        return Finding("hash", False, f"the image's {tlv.name} TLV does not match its contents")
    return Finding("hash", True, f"{tlv.name} {tlv.value.hex()} matches the contents")


def _check_signature(image: McubootImage, pinned: list[PinnedKey], hash_ok: bool) -> Finding:
    signatures = [tlv for tlv in image.tlvs if tlv.type in _SIGNATURE_TLVS]
    if not signatures:
        return Finding("signature", False, "the image is not signed")
    if not pinned:
        return Finding("signature", False, "no public keys are pinned (firmware.public_keys or --key)")
    digest = image.computed_hash()
    algorithm = image.hash_algorithm
    # As bootutil does: a KEYHASH (or PUBKEY) record names the key for the signature after it.
    candidates: list[PinnedKey] = pinned
    named_by: str | None = None
    problems: list[str] = []
    for tlv in image.tlvs:
        if tlv.type == TLV_TYPES["KEYHASH"]:
            candidates = [key for key in pinned if key.key_hash(algorithm) == tlv.value]
            named_by = f"key hash {short_hex(tlv.value)}"
        elif tlv.type == TLV_TYPES["PUBKEY"]:
            candidates = [key for key in pinned if key.der == tlv.value]
            named_by = f"public key hash {short_hex(hashlib.sha256(tlv.value).digest())}"
        elif tlv.type in _SIGNATURE_TLVS:
            kind = _SIGNATURE_TLVS[tlv.type]
            if kind.startswith("RSA"):
                problems.append(f"{kind} signatures are not taken by the kit")
            elif not candidates:
                problems.append(f"made by a key that is not pinned ({named_by})")
            else:
                for key in candidates:
                    if _signature_holds(key.key, tlv.type, tlv.value, digest, algorithm):
                        return Finding("signature", True, f"{kind} signature by pinned key {key.source}")
                if not hash_ok:
                    problems.append(f"the {kind} signature does not cover these bytes (see hash)")
                elif named_by is None:
                    problems.append(f"the {kind} signature was not made by any pinned key")
                else:
                    problems.append(f"the {kind} signature does not verify with the pinned key ({named_by})")
            candidates, named_by = pinned, None
    return Finding("signature", False, "; ".join(dict.fromkeys(problems)))


def _signature_holds(key: PublicKey, tlv_type: int, signature: bytes, digest: bytes, algorithm: str) -> bool:
    try:
        if tlv_type == TLV_TYPES["ED25519"] and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, digest)
            return True
        if tlv_type == TLV_TYPES["ECDSASIG"] and isinstance(key, ec.EllipticCurvePublicKey):
            # imgtool --pad-sig pads the DER signature with zeros to 72 bytes.
            if len(signature) >= 2:
                signature = signature[: signature[1] + 2]
            hash_class = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[
                algorithm
            ]
            key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hash_class())))
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def _check_version(version: ImageVersion, running: ImageVersion | None, allow_downgrade: bool) -> Finding:
    if running is None:
        return Finding("version", True, f"{version} (no running version to compare with)")
    if version >= running:
        return Finding("version", True, f"{version} is not older than the running {running}")
    if allow_downgrade:
        return Finding(
            "version", True, f"{version} is older than the running {running}, allowed by --allow-downgrade"
        )
    return Finding(
        "version", False, f"{version} is older than the running {running} (--allow-downgrade to allow)"
    )


def _check_allow_list(image: McubootImage, allow_list: Collection[bytes] | None) -> Finding:
    image_hash = image.computed_hash()
    if allow_list is None:
        return Finding("allow_list", True, "no allow-list is configured")
    if image_hash in allow_list:
        return Finding("allow_list", True, f"hash {short_hex(image_hash)} is on the allow-list")
    return Finding("allow_list", False, f"hash {short_hex(image_hash)} is not on the allow-list")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
