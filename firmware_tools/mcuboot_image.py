"""Parse an MCUboot image as imgtool writes it: header, protected TLVs, TLVs, the hashed bytes.

The layout (MCUboot's docs/design.md, "Image format", and imgtool's image.py):

    header (32 bytes, padded to hdr_size) | body (img_size) |
    protected TLV area (info 0x6908 + TLVs, protect_tlv_size bytes in all, optional) |
    TLV area (info 0x6907 + TLVs) | [padding and the swap trailer when signed with --pad]

The image hash (the SHA256 TLV) is taken over header + body + protected TLV area, and the
signature TLV signs that hash. Only little-endian images are read: the kit's peripheral is
a Cortex-M, and imgtool's own `verify` assumes the host's byte order anyway.

Pure: the standard library only, so the daemon, the simulator and a technician's laptop
read images the same way.
"""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass, field

IMAGE_MAGIC = 0x96F3B83D
IMAGE_HEADER_SIZE = 32
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
TLV_INFO_SIZE = 4
TLV_HEADER_SIZE = 4

# imgtool's TLV_VALUES (image.py); MCUboot's bootutil/image.h names them IMAGE_TLV_<name>.
TLV_TYPES: dict[str, int] = {
    "KEYHASH": 0x01,
    "PUBKEY": 0x02,
    "SHA256": 0x10,
    "SHA384": 0x11,
    "SHA512": 0x12,
    "RSA2048": 0x20,
    "ECDSASIG": 0x22,
    "RSA3072": 0x23,
    "ED25519": 0x24,
    "SIG_PURE": 0x25,
    "ENCRSA2048": 0x30,
    "ENCKW": 0x31,
    "ENCEC256": 0x32,
    "ENCX25519": 0x33,
    "ENCX25519_SHA512": 0x34,
    "DEPENDENCY": 0x40,
    "SEC_CNT": 0x50,
    "BOOT_RECORD": 0x60,
    "DECOMP_SIZE": 0x70,
    "DECOMP_SHA": 0x71,
    "DECOMP_SIGNATURE": 0x72,
    "COMP_DEC_SIZE": 0x73,
    "UUID_VID": 0x74,
    "UUID_CID": 0x75,
}
TLV_NAMES: dict[int, str] = {value: name for name, value in TLV_TYPES.items()}
# Types imgtool lets a vendor use for --custom-tlv.
VENDOR_TLV_RANGE = range(0x00A0, 0xFFFF)

HASH_TLV_ALGORITHMS: dict[int, str] = {0x10: "sha256", 0x11: "sha384", 0x12: "sha512"}

# imgtool's IMAGE_F (image.py).
HEADER_FLAGS: dict[str, int] = {
    "PIC": 0x0000001,
    "ENCRYPTED_AES128": 0x0000004,
    "ENCRYPTED_AES256": 0x0000008,
    "NON_BOOTABLE": 0x0000010,
    "RAM_LOAD": 0x0000020,
    "ROM_FIXED": 0x0000100,
    "COMPRESSED_LZMA1": 0x0000200,
    "COMPRESSED_LZMA2": 0x0000400,
    "COMPRESSED_ARM_THUMB": 0x0000800,
}

_HEADER = struct.Struct("<IIHHIIBBHII")
_TLV_INFO = struct.Struct("<HH")
_TLV = struct.Struct("<HH")
# imgtool's version.py: maj.min.rev+build, the later parts optional.
_VERSION_TEXT = re.compile(r"^(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:\.(0|[1-9]\d*)(?:\+(0|[1-9]\d*))?)?)?$")


class ImageFormatError(ValueError):
    """The bytes are not an MCUboot image this module can read; the message is one line."""


@dataclass(frozen=True, order=True)
class ImageVersion:
    """major.minor.revision+build as the header holds it; orders field by field, build last."""

    major: int
    minor: int = 0
    revision: int = 0
    build: int = 0

    def __str__(self) -> str:
        return version_text(self)


def version_text(version: ImageVersion) -> str:
    """A version as the kit shows it everywhere (the API, the audit log, kitfw): imgtool's
    --version form, "1.2.3", or "1.2.3+4" with a build number."""
    text = f"{version.major}.{version.minor}.{version.revision}"
    return f"{text}+{version.build}" if version.build else text


def parse_version(text: str) -> ImageVersion:
    """Read "1.2.3+4" (later parts optional, as imgtool's --version takes it)."""
    match = _VERSION_TEXT.match(text.strip())
    if match is None:
        raise ImageFormatError(f"version {text!r} is not major.minor.revision+build")
    major, minor, revision, build = (int(part) if part else 0 for part in match.groups())
    if major > 0xFF or minor > 0xFF or revision > 0xFFFF or build > 0xFFFFFFFF:
        raise ImageFormatError(f"version {text!r} does not fit the image header (255.255.65535+4294967295)")
    return ImageVersion(major, minor, revision, build)


@dataclass(frozen=True)
class ImageHeader:
    """The 32-byte header at the start of the image."""

    magic: int
    load_addr: int
    hdr_size: int
    protect_tlv_size: int
    img_size: int
    flags: int
    version: ImageVersion

    @property
    def flag_names(self) -> list[str]:
        return [name for name, bit in HEADER_FLAGS.items() if self.flags & bit]


@dataclass(frozen=True)
class Tlv:
    """One type-length-value record; offset is where its 4-byte header starts in the file."""

    type: int
    value: bytes
    offset: int

    @property
    def name(self) -> str:
        return tlv_name(self.type)


def tlv_name(tlv_type: int) -> str:
    """imgtool's name for a TLV type, VENDOR_0x.... or UNKNOWN_0x.... otherwise."""
    if tlv_type in TLV_NAMES:
        return TLV_NAMES[tlv_type]
    if tlv_type in VENDOR_TLV_RANGE:
        return f"VENDOR_0x{tlv_type:04x}"
    return f"UNKNOWN_0x{tlv_type:04x}"


@dataclass(frozen=True)
class McubootImage:
    """A parsed image. signed_region is the bytes the hash TLV is taken over."""

    header: ImageHeader
    protected_tlvs: list[Tlv]
    tlvs: list[Tlv]
    body_size: int
    signed_region: bytes = field(repr=False)
    # Header + body + both TLV areas: what goes into a slot, without --pad's trailer.
    total_size: int = 0
    trailing_size: int = 0

    @property
    def version(self) -> ImageVersion:
        return self.header.version

    @property
    def hash_tlv(self) -> Tlv | None:
        """The first SHA256/SHA384/SHA512 TLV (imgtool writes exactly one)."""
        return next((tlv for tlv in self.tlvs if tlv.type in HASH_TLV_ALGORITHMS), None)

    @property
    def image_hash(self) -> bytes | None:
        """The hash TLV's value as the image claims it (SHA-256 for every key the kit takes)."""
        tlv = self.hash_tlv
        return tlv.value if tlv is not None else None

    @property
    def hash_algorithm(self) -> str:
        tlv = self.hash_tlv
        return HASH_TLV_ALGORITHMS[tlv.type] if tlv is not None else "sha256"

    def computed_hash(self) -> bytes:
        """The hash of signed_region with the hash TLV's algorithm (SHA-256 if it has none)."""
        return hashlib.new(self.hash_algorithm, self.signed_region).digest()

    def find(self, name: str) -> list[Tlv]:
        """Every TLV of the named type, protected ones first."""
        tlv_type = TLV_TYPES[name]
        return [tlv for tlv in self.protected_tlvs + self.tlvs if tlv.type == tlv_type]


def parse_image(data: bytes) -> McubootImage:
    """Parse imgtool's output (a .bin, padded or not); ImageFormatError says what is wrong."""
    data = bytes(data)
    if len(data) < IMAGE_HEADER_SIZE:
        raise ImageFormatError(f"{len(data)} bytes is shorter than the 32-byte image header")
    fields = _HEADER.unpack_from(data, 0)
    magic, load_addr, hdr_size, protect_tlv_size, img_size, flags = fields[:6]
    major, minor, revision, build = fields[6:10]
    if magic != IMAGE_MAGIC:
        if magic == int.from_bytes(IMAGE_MAGIC.to_bytes(4, "little"), "big"):
            raise ImageFormatError("big-endian images are not supported (the peripheral is little-endian)")
        raise ImageFormatError(
            f"bad image magic 0x{magic:08x} (expected 0x{IMAGE_MAGIC:08x}): not an MCUboot image"
        )
    if hdr_size < IMAGE_HEADER_SIZE:
        raise ImageFormatError(f"header size {hdr_size} is smaller than the 32-byte header")
    header = ImageHeader(
        magic=magic,
        load_addr=load_addr,
        hdr_size=hdr_size,
        protect_tlv_size=protect_tlv_size,
        img_size=img_size,
        flags=flags,
        version=ImageVersion(major, minor, revision, build),
    )
    body_end = hdr_size + img_size
    if body_end > len(data):
        raise ImageFormatError(
            f"truncated: the header promises {body_end} bytes of header and body, the file has {len(data)}"
        )

    offset = body_end
    protected: list[Tlv] = []
    if protect_tlv_size:
        protected = _read_tlv_area(data, offset, TLV_PROT_INFO_MAGIC, "protected TLV area")
        area_size = _TLV_INFO.unpack_from(data, offset)[1]
        if area_size != protect_tlv_size:
            raise ImageFormatError(
                f"protected TLV area is {area_size} bytes but the header says {protect_tlv_size}"
            )
        offset += protect_tlv_size
    elif _peek_magic(data, offset) == TLV_PROT_INFO_MAGIC:
        raise ImageFormatError("a protected TLV area follows the body but the header says it has none")
    signed_end = offset

    tlvs = _read_tlv_area(data, offset, TLV_INFO_MAGIC, "TLV area")
    total_size = offset + _TLV_INFO.unpack_from(data, offset)[1]
    return McubootImage(
        header=header,
        protected_tlvs=protected,
        tlvs=tlvs,
        body_size=img_size,
        signed_region=data[:signed_end],
        total_size=total_size,
        trailing_size=len(data) - total_size,
    )


def _peek_magic(data: bytes, offset: int) -> int | None:
    if offset + TLV_INFO_SIZE > len(data):
        return None
    return _TLV_INFO.unpack_from(data, offset)[0]


def _read_tlv_area(data: bytes, start: int, magic: int, what: str) -> list[Tlv]:
    """The records of one TLV area; its info header's length counts the info header too."""
    if start + TLV_INFO_SIZE > len(data):
        raise ImageFormatError(f"truncated: the file ends where the {what} should start (offset {start})")
    found_magic, area_size = _TLV_INFO.unpack_from(data, start)
    if found_magic != magic:
        raise ImageFormatError(
            f"bad {what} magic 0x{found_magic:04x} at offset {start} (expected 0x{magic:04x})"
        )
    end = start + area_size
    if area_size < TLV_INFO_SIZE:
        raise ImageFormatError(f"{what} claims {area_size} bytes, less than its own 4-byte header")
    if end > len(data):
        raise ImageFormatError(
            f"truncated: the {what} needs {area_size} bytes, the file has {len(data) - start}"
        )
    records: list[Tlv] = []
    offset = start + TLV_INFO_SIZE
    while offset < end:
        if offset + TLV_HEADER_SIZE > end:
            raise ImageFormatError(f"{what}: a record header at offset {offset} runs past the area's end")
        tlv_type, length = _TLV.unpack_from(data, offset)
        value_end = offset + TLV_HEADER_SIZE + length
        if value_end > end:
            raise ImageFormatError(
                f"{what}: record {tlv_name(tlv_type)} at offset {offset} ({length} bytes) "
                "runs past the area's end"
            )
        records.append(Tlv(type=tlv_type, value=data[offset + TLV_HEADER_SIZE : value_end], offset=offset))
        offset = value_end
    return records
