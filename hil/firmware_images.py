"""Unsigned MCUboot images for the simulated peripheral and the tests: header, body, SHA-256 TLV.

What `imgtool create --version V` writes (no key): a 32-byte header padded to `header_size`,
the body, and a TLV area holding only the SHA256 TLV taken over header and body. The
simulator boots such images; a signed one (imgtool sign) works the same, for MCUboot in the
simulation checks the hash and not the signature (kitfw verify checks signatures). Reading
images is firmware_tools.mcuboot_image's job, not this module's.
"""

from __future__ import annotations

import hashlib
import struct

from firmware_tools.mcuboot_image import IMAGE_MAGIC, TLV_INFO_MAGIC, TLV_TYPES, parse_version

HEADER = struct.Struct("<IIHHIIBBHII")
TLV_INFO = struct.Struct("<HH")
TLV = struct.Struct("<HH")
DEFAULT_HEADER_SIZE = 0x200


def firmware_body(size: int, seed: int = 0) -> bytes:
    """`size` bytes standing for a firmware's code, different for each seed."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def build_image(version: str, body: bytes, header_size: int = DEFAULT_HEADER_SIZE) -> bytes:
    """An unsigned MCUboot image of `body` with version "major.minor.revision+build"."""
    v = parse_version(version)
    header = HEADER.pack(
        IMAGE_MAGIC, 0, header_size, 0, len(body), 0, v.major, v.minor, v.revision, v.build, 0
    )
    hashed = header.ljust(header_size, b"\0") + body
    digest = hashlib.sha256(hashed).digest()
    tlv = TLV.pack(TLV_TYPES["SHA256"], len(digest)) + digest
    return hashed + TLV_INFO.pack(TLV_INFO_MAGIC, TLV_INFO.size + len(tlv)) + tlv


def image_of_size(version: str, total: int, seed: int = 0) -> bytes:
    """An image of exactly `total` bytes (header, body and TLVs), for timing an upload."""
    overhead = len(build_image(version, b""))
    if total <= overhead:
        raise ValueError(f"an image needs more than {overhead} bytes")
    return build_image(version, firmware_body(total - overhead, seed))
