"""The MCUboot image parser and the checks on bytes built by hand (no imgtool): versions,
malformed headers and TLV areas, the allow-list file and pinned key files."""

from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from firmware_tools.image_checks import (
    AllowListError,
    KeyFileError,
    PinnedKey,
    accepted,
    load_public_key,
    parse_allow_list,
    verify_image,
)
from firmware_tools.mcuboot_image import ImageFormatError, ImageVersion, parse_image, parse_version


def build_image(
    body: bytes,
    version: tuple[int, int, int, int] = (1, 2, 3, 4),
    *,
    protected: bytes = b"",
    key: ed25519.Ed25519PrivateKey | None = None,
) -> bytes:
    """An image laid out as imgtool lays it out (0x200 header, little-endian)."""
    prot_area = struct.pack("<HH", 0x6908, 4 + len(protected)) + protected if protected else b""
    header = struct.pack("<IIHHIIBBHII", 0x96F3B83D, 0, 0x200, len(prot_area), len(body), 0, *version, 0)
    signed = header.ljust(0x200, b"\0") + body + prot_area
    digest = hashlib.sha256(signed).digest()
    records = struct.pack("<HH", 0x10, 32) + digest
    if key is not None:
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        records += struct.pack("<HH", 0x01, 32) + hashlib.sha256(der).digest()
        records += struct.pack("<HH", 0x24, 64) + key.sign(digest)
    return signed + struct.pack("<HH", 0x6907, 4 + len(records)) + records


def test_versions_read_print_and_order() -> None:
    assert str(parse_version("1.2.3+4")) == "1.2.3+4"
    assert parse_version("2") == ImageVersion(2, 0, 0, 0)
    assert parse_version("1.10.0") > parse_version("1.9.255")
    assert parse_version("1.2.3+5") > parse_version("1.2.3+4") > parse_version("1.2.2+99")
    for text in ("1.2.3.4", "01.2", "v1", "", "256.0.0", "1.2.3+"):
        with pytest.raises(ImageFormatError):
            parse_version(text)


def test_a_hand_built_image_parses_and_verifies() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    data = build_image(
        b"firmware" * 100, protected=struct.pack("<HH", 0x50, 4) + struct.pack("<I", 9), key=key
    )
    image = parse_image(data)
    assert image.version == ImageVersion(1, 2, 3, 4) and image.body_size == 800
    assert [t.name for t in image.protected_tlvs] == ["SEC_CNT"]
    assert [t.name for t in image.tlvs] == ["SHA256", "KEYHASH", "ED25519"]
    assert image.image_hash == image.computed_hash() == hashlib.sha256(image.signed_region).digest()
    assert len(image.signed_region) == 0x200 + 800 + 12
    findings = verify_image(image, [key.public_key()], {image.computed_hash()}, ImageVersion(1, 2, 3, 4))
    assert accepted(findings), findings
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    assert [f.check for f in verify_image(data, [other], None) if f.refused] == ["signature"]
    assert [f.check for f in verify_image(data, [key.public_key()], set()) if f.refused] == ["allow_list"]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda d: d[:31], "shorter than the 32-byte image header"),
        (lambda d: b"\0" * 4 + d[4:], "bad image magic 0x00000000"),
        (lambda d: bytes(reversed(d[:4])) + d[4:], "big-endian images are not supported"),
        (lambda d: d[: 0x200 + 100], "truncated: the header promises"),
        (lambda d: d[: 0x200 + 800], "the file ends where the TLV area should start"),
        (lambda d: d[: 0x200 + 800] + b"\x07\x70" + d[0x200 + 802 :], "bad TLV area magic 0x7007"),
        (lambda d: d[:-1], "truncated: the TLV area needs"),
        (
            lambda d: d[: 0x200 + 800] + struct.pack("<HH", 0x6907, 4 + 36 + 10) + d[0x200 + 804 :],
            "record KEYHASH at offset",
        ),
    ],
)
def test_malformed_images_say_what_is_wrong(mangle, reason: str) -> None:  # noqa: ANN001
    data = mangle(build_image(b"firmware" * 100, key=ed25519.Ed25519PrivateKey.generate()))
    with pytest.raises(ImageFormatError, match=reason):
        parse_image(data)
    findings = verify_image(data, [], None)
    assert [(f.check, f.ok) for f in findings] == [("format", False)]
    assert "\n" not in findings[0].reason


def test_the_allow_list_format() -> None:
    digest = hashlib.sha256(b"x").digest()
    text = f"# released 2025-01\n\n{digest.hex()}   # peripheral 1.2.3\n  {digest.hex().upper()}\n"
    assert parse_allow_list(text) == {digest}
    with pytest.raises(AllowListError, match="allow-list line 2: 'abc' is not a hex image hash"):
        parse_allow_list("# ok\nabc\n")


def test_pinned_keys_are_p256_or_ed25519_public_pems() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    pem = p256.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert isinstance(load_public_key(pem, "office.pem"), PinnedKey)
    private = p256.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFileError, match="office.pem is a private key"):
        load_public_key(private, "office.pem")
    p384 = (
        ec.generate_private_key(ec.SECP384R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFileError, match="not an ECDSA P-256 or Ed25519 key"):
        load_public_key(p384, "p384.pem")
    with pytest.raises(KeyFileError, match="junk.pem is not a PEM public key"):
        load_public_key(b"junk", "junk.pem")
