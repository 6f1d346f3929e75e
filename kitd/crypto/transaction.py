"""One recording visit as one ANSI/NIST-ITL 1-2011 Update:2015 transaction (traditional encoding).

Its one job: :func:`build_transaction` turns a visit's order data, fingers, irises and
signature into the transaction's bytes, after checking every mandatory field and value
table itself (PyPI ``nistitl`` builds and parses records but validates nothing);
:func:`read_transaction` parses one back, decoding every image, :func:`record_digests`
names each record and gives the SHA-256 of its bytes, and :func:`transaction_files` lays a
parsed one out as files (WSQ, JP2, PNG, JSON) for a person to look at.

Layout (domain ``IDN-KTP-KIT`` version ``1.0`` in field 1.013):

- Type-1: VER ``0502`` (1-2011 Update:2015), CNT, TOT ``EKTPREC``, DAT, DAI (the central
  office), ORI (the kit's region code), TCN (the bundle id), NSR and NTR ``00.00`` (no
  Type-3 to Type-7 fixed-resolution records; Type-8 says its own resolution by ISR), DOM,
  GMT, DCS ``003`` UTF-8 (Type-2 text is UTF-8).
- Type-2 (IDC 0): the order data and the visit's facts, by the numbers of
  :data:`TYPE2_FIELDS` (where the FBI's EBTS has a like field the number is EBTS's: 2.018
  name, 2.022 date of birth, 2.024 sex, 2.084 amputated or bandaged).
- Type-14, one per captured finger: IMP 0 (live-scan plain), FGP, the image scaled from the
  sensor's ppi to 500 ppi (SLC 1, THPS = TVPS = 500, the sensor's in SHPS/SVPS), WSQ at
  0.75 bit/pixel (CGA ``WSQ20``), BPX 8, FQM (FGP, score, vendor ``0000``, product 1: the
  kit's own score, not registered with IBIA), DMM ``ASSISTED``. A thumbprint taken in place
  of the signature is a further Type-14 with COM ``in place of signature`` (and 2.085).
- Type-14 without an image, one per excepted finger: FGP and AMP (FRAP = that FGP, ABC
  ``XX`` amputated or ``UP`` unable to print). 1-2011 makes a record's image fields
  conditional on an image being present (as Type-15 does for a missing hand and Type-17
  for a missing eye); an AMP entry inside another finger's record would describe that
  record's image, which for single-finger records is wrong. The same list is in 2.084, as
  EBTS transactions carry it, for readers that skip image-less records.
- Type-17, one per eye: ELR 1 right / 2 left, lossless JPEG 2000 (JP2 file, reversible 5/3
  wavelet, CGA ``JP2L``), SLC 0 with THPS = TVPS = 1 (square pixels, no known density),
  BPX 8, CSP ``GRAY``, IQS (score, ``0000``, product 2), IRD, and the located circles in
  17.033 IPB and 17.034 ISB: boundary code ``C``, two points, the centre first and then a
  point on the circle (integer pixels, so circles come back rounded to the pixel).
- Type-8 (binary): SIG 0 (subject), SRT 0 (scanned, uncompressed), ISR 0 (19.69 ppmm): the
  rendered signature resampled to 19.69 px/mm and made bilevel, 1 bit per pixel, 1 = ink,
  rows padded to whole bytes.
- Type-99: the pen's time series as an ISO/IEC 19794-7 full-format record in the 2007
  edition's layout (see :func:`encode_sign_time_series`; times to the millisecond, the
  samples out of proximity listed in 2.086 as the format has no channel for it), HDV
  ``0101``, BTY ``00000080`` (signature dynamics), BFO ``0101`` (ISO/IEC JTC 1 SC 37), BFT
  :data:`SIGN_TIME_SERIES_FORMAT_TYPE` (unconfirmed, see there).

Text that contains ``999:`` is refused anywhere: nistitl finds a record's image field by
searching for that string, and cuts a record with a text field holding it short without an
error. ANSI/NIST separators (0x1C-0x1F) and other control characters are refused too.

Record names (:func:`record_digests`): ``type-1``, ``type-2``, ``type-14:fgp-N``,
``type-14:fgp-N:signature`` (in place of the signature), ``type-14:fgp-N:excepted``,
``type-17:right``, ``type-17:left``, ``type-8``, ``type-99``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import nistitl
import numpy as np
import wsq  # noqa: F401 - registers Pillow's WSQ codec
from PIL import Image

from kitd.ansi_nist_text import text_problem
from kitd.capture.signature import RENDER_PX_PER_MM
from kitd.errors import KitError
from kitd.grey_image import encode_png

VERSION = "0502"  # ANSI/NIST-ITL 1-2011 Update:2015
TYPE_OF_TRANSACTION = "EKTPREC"
DOMAIN = ("IDN-KTP-KIT", "1.0")
DESTINATION_AGENCY = "DUKCAPIL"
UTF8_CHARACTER_SET = ("003", "UTF-8")
TRANSMITTED_PPI = 500
PPMM_500_PPI = TRANSMITTED_PPI / 25.4  # 19.69 px/mm, Type-8's "minimum scanning resolution"
WSQ_COMPRESSION = "WSQ20"
LOSSLESS_JP2 = "JP2L"
IN_PLACE_OF_SIGNATURE = "in place of signature"
DEVICE_MONITORING = "ASSISTED"  # an officer guides every capture at the applicant's home
# Quality: vendor 0x0000 belongs to no registered organisation, so no reader can take the
# kit's score for a registered algorithm's; the products are the kit's own scores.
QUALITY_VENDOR = "0000"
FINGER_QUALITY_PRODUCT = 1  # kitd.capture.fingerprint_quality's score, 0-100
IRIS_QUALITY_PRODUCT = 2  # kitd.capture.iris_quality's score, 0-100
MISSING_CODES = {"XX": "amputated", "UP": "unable to print"}
EYES = {"right": 1, "left": 2}  # ELR
CBEFF_HEADER_VERSION = "0101"
SIGNATURE_DYNAMICS = "00000080"  # CBEFF biometric type
SC37_FORMAT_OWNER = 0x0101  # ISO/IEC JTC 1 SC 37
# The CBEFF format type of a 19794-7 full-format record. NOT confirmed against the IBIA
# registry (no copy of it was at hand): check it before another reader relies on it. This
# module's own reader knows the record by its "SDI" identifier, not by this number.
SIGN_TIME_SERIES_FORMAT_TYPE = 0x0019

_GMT = "%Y%m%d%H%M%SZ"
_DIGITS16 = re.compile(r"[0-9]{16}")
_RT_RW = re.compile(r"[0-9]{1,3}")


class TransactionError(KitError):
    """A transaction that cannot be built or read; the message names the record and field."""


# ---- inputs and outputs ---------------------------------------------------------------------


@dataclass(frozen=True)
class FingerImpression:
    """One finger as the sensor gave it."""

    position: int  # FGP 1-10
    pixels: np.ndarray  # 2-D uint8
    ppi: float  # the sensor's (385 for the NB-1010, 500 for optical readers)
    quality: int  # the kit's score, 0-100
    in_place_of_signature: bool = False


@dataclass(frozen=True)
class MissingFinger:
    """A finger that could not be printed: code ``XX`` (amputated) or ``UP`` (unable to print)."""

    position: int
    code: str


@dataclass(frozen=True)
class IrisImage:
    """One eye and its located circles (x, y, r in pixels)."""

    eye: str  # "right" or "left"
    pixels: np.ndarray  # 2-D uint8
    pupil: tuple[float, float, float]
    iris: tuple[float, float, float]
    quality: int  # 0-100


@dataclass(frozen=True)
class SignatureSample:
    """The rendered signature and the pen's time series in device units."""

    image: np.ndarray  # 2-D uint8, white background, black ink
    points: list[dict[str, Any]]  # {"t_ms", "x", "y", "pressure", "tip", "proximity"}
    max_x: int
    max_y: int
    max_pressure: int
    points_per_mm: float
    px_per_mm: float = RENDER_PX_PER_MM  # the image's resolution


@dataclass(frozen=True)
class TransactionHeader:
    """Who, where and when: Type-1 and the order and visit facts of Type-2.

    ``applicant``: nik, kk, name, birth_date (YYYY-MM-DD), sex (L/P), address {street, rt,
    rw, kelurahan, kecamatan, kabupaten_kota}, category, kind; an order's other keys stay
    out (the manifest has them). ``visit``: visit_id, order_id, officer (NIP), started_at,
    finished_at (ISO 8601), consent_by (applicant/guardian), and optionally present (names)
    and guardian {name, relation}; other keys and None values stay out.
    """

    transaction_id: str
    kit_id: str
    agency: str
    created: dt.datetime
    applicant: Mapping[str, Any]
    visit: Mapping[str, Any]
    destination: str = DESTINATION_AGENCY


@dataclass(frozen=True)
class ParsedFinger:
    position: int
    quality: int
    wsq: bytes
    pixels: np.ndarray  # as decoded, at `ppi`
    ppi: float  # transmitted, 500
    scan_ppi: float  # the sensor's
    in_place_of_signature: bool


@dataclass(frozen=True)
class ParsedIris:
    eye: str
    quality: int
    jp2: bytes
    pixels: np.ndarray
    pupil: tuple[float, float, float]
    iris: tuple[float, float, float]


@dataclass(frozen=True)
class ParsedSignature:
    image: np.ndarray  # 0 ink / 255 paper, at px_per_mm
    px_per_mm: float
    points: list[dict[str, Any]]
    max_x: int
    max_y: int
    max_pressure: int
    points_per_mm: float
    bdb: bytes  # the ISO/IEC 19794-7 record


@dataclass(frozen=True)
class ParsedTransaction:
    header: TransactionHeader  # created to the second
    fingers: tuple[ParsedFinger, ...]
    missing: tuple[MissingFinger, ...]
    irises: tuple[ParsedIris, ...]
    signature: ParsedSignature | None
    records: dict[str, bytes] = field(repr=False)  # record name -> its bytes in the transaction


# ---- Type-2 layout --------------------------------------------------------------------------

ADDRESS_KEYS = ("street", "rt", "rw", "kelurahan", "kecamatan", "kabupaten_kota")
SEX = ("L", "P")
CATEGORIES = ("lansia", "disabilitas", "odgj", "lainnya")
KINDS = ("new", "update")
CONSENT_BY = ("applicant", "guardian")

# Our Type-2 fields, by number (2.001 LEN and 2.002 IDC are the standard's).
TYPE2_FIELDS: dict[int, str] = {
    3: "kit_id",  # the kit that recorded
    10: "nik",  # 16 digits
    11: "kk",  # family card number, 16 digits
    18: "name",
    22: "birth_date",  # YYYYMMDD (read back as YYYY-MM-DD)
    24: "sex",  # L / P
    30: "address",  # one subfield, items: street, rt, rw, kelurahan, kecamatan, kabupaten_kota
    31: "category",  # lansia / disabilitas / odgj / lainnya
    32: "kind",  # new / update
    40: "visit_id",
    41: "order_id",
    42: "officer",  # NIP
    43: "started_at",  # ISO 8601
    44: "finished_at",  # ISO 8601
    45: "consent_by",  # applicant / guardian
    46: "present",  # optional; one subfield per person present
    47: "guardian",  # optional; items: name, relation
    84: "amputated_or_bandaged",  # one subfield per excepted finger, items: FGP, XX|UP
    85: "signature_by_fgp",  # the FGP of the impression taken in place of the signature
    86: "pen_out_of_proximity",  # one subfield per pen sample (its index) with proximity false
}
_T2 = {name: number for number, name in TYPE2_FIELDS.items()}
_APPLICANT_TEXT = ("nik", "kk", "name", "sex", "category", "kind")
_VISIT_TEXT = ("visit_id", "order_id", "officer", "started_at", "finished_at", "consent_by")


# ---- checks ---------------------------------------------------------------------------------


def _where(record: int, number: int, name: str) -> str:
    return f"Type-{record} field {record}.{number:03d} ({name})"


def _text(record: int, number: int, name: str, value: Any) -> str:
    """A text value nistitl will carry intact, or TransactionError naming the field."""
    where = _where(record, number, name)
    if not isinstance(value, str):
        raise TransactionError(f"{where}: {value!r} is not text")
    if not value.strip():
        raise TransactionError(f"{where}: empty")
    problem = text_problem(value)
    if problem is not None:
        raise TransactionError(f"{where}: {problem}")
    return value


def _ascii(record: int, number: int, name: str, value: Any, limit: int = 40) -> str:
    text = _text(record, number, name, value)
    if not text.isascii() or len(text) > limit:
        raise TransactionError(f"{_where(record, number, name)}: {text!r} is not 1-{limit} ASCII characters")
    return text


def _utf8(text: str) -> str:
    # nistitl writes text as Latin-1: pass it the UTF-8 bytes as Latin-1 characters.
    return text.encode("utf-8").decode("latin-1")


def _from_utf8(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TransactionError(f"{where}: not a single value")
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise TransactionError(f"{where}: not UTF-8 text") from None


def _int_in(record: int, number: int, name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise TransactionError(f"{_where(record, number, name)}: {value!r} is not an integer {low}-{high}")
    return int(value)


def _grey(where: str, pixels: Any, low: int = 10) -> np.ndarray:
    if not isinstance(pixels, np.ndarray) or pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise TransactionError(f"{where}: the image must be a 2-D uint8 array")
    if min(pixels.shape) < low or max(pixels.shape) > 99999:
        raise TransactionError(f"{where}: {pixels.shape[1]} x {pixels.shape[0]} pixels is out of range")
    return np.ascontiguousarray(pixels)


def _positive(record: int, number: int, name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.integer | np.floating)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise TransactionError(f"{_where(record, number, name)}: {value!r} is not a positive number")
    return float(value)


def _iso_time(number: int, name: str, value: Any) -> str:
    text = _ascii(2, number, name, value, 64)
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        raise TransactionError(f"{_where(2, number, name)}: {text!r} is not an ISO 8601 time") from None
    return text


# ---- Type-2 ---------------------------------------------------------------------------------


def _type2_values(
    header: TransactionHeader,
    fingers: Sequence[FingerImpression],
    missing: Sequence[MissingFinger],
    signature: SignatureSample | None,
) -> dict[int, Any]:
    """Type-2 field number -> nistitl value, every value checked."""
    applicant, visit = header.applicant, header.visit
    if not isinstance(applicant, Mapping) or not isinstance(visit, Mapping):
        raise TransactionError("Type-2: applicant and visit must be mappings")
    values: dict[int, Any] = {_T2["kit_id"]: _text(2, _T2["kit_id"], "kit_id", header.kit_id)}

    def need(source: Mapping[str, Any], key: str) -> Any:
        number = _T2[key]
        if source.get(key) is None:
            raise TransactionError(f"{_where(2, number, key)}: missing (mandatory)")
        return source[key]

    for key in _APPLICANT_TEXT:
        values[_T2[key]] = _text(2, _T2[key], key, need(applicant, key))
    for key in ("nik", "kk"):
        if not _DIGITS16.fullmatch(values[_T2[key]]):
            raise TransactionError(f"{_where(2, _T2[key], key)}: {values[_T2[key]]!r} is not 16 digits")
    for key, table in (("sex", SEX), ("category", CATEGORIES), ("kind", KINDS)):
        if values[_T2[key]] not in table:
            raise TransactionError(
                f"{_where(2, _T2[key], key)}: {values[_T2[key]]!r} is not one of {', '.join(table)}"
            )
    born = _text(2, _T2["birth_date"], "birth_date", need(applicant, "birth_date"))
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", born):
            raise ValueError
        values[_T2["birth_date"]] = dt.date.fromisoformat(born).strftime("%Y%m%d")
    except ValueError:
        raise TransactionError(
            f"{_where(2, _T2['birth_date'], 'birth_date')}: {born!r} is not YYYY-MM-DD"
        ) from None
    address = need(applicant, "address")
    if not isinstance(address, Mapping):
        raise TransactionError(f"{_where(2, _T2['address'], 'address')}: not a mapping")
    items = []
    for key in ADDRESS_KEYS:
        if address.get(key) is None:
            raise TransactionError(f"{_where(2, _T2['address'], 'address')}: {key} missing (mandatory)")
        items.append(_text(2, _T2["address"], f"address {key}", address[key]))
        if key in ("rt", "rw") and not _RT_RW.fullmatch(items[-1]):
            raise TransactionError(
                f"{_where(2, _T2['address'], 'address')}: {key} {items[-1]!r} is not 1-3 digits"
            )
    values[_T2["address"]] = [items]

    for key in _VISIT_TEXT:
        values[_T2[key]] = _text(2, _T2[key], key, need(visit, key))
    for key in ("started_at", "finished_at"):
        _iso_time(_T2[key], key, values[_T2[key]])
    if values[_T2["consent_by"]] not in CONSENT_BY:
        raise TransactionError(
            f"{_where(2, _T2['consent_by'], 'consent_by')}: {values[_T2['consent_by']]!r} "
            f"is not one of {', '.join(CONSENT_BY)}"
        )
    present = visit.get("present")
    if present is not None:
        if isinstance(present, str) or not isinstance(present, Sequence) or not present:
            raise TransactionError(f"{_where(2, _T2['present'], 'present')}: not a list of names")
        values[_T2["present"]] = [_text(2, _T2["present"], "present", p) for p in present]
    guardian = visit.get("guardian")
    if guardian is not None:
        if not isinstance(guardian, Mapping):
            raise TransactionError(f"{_where(2, _T2['guardian'], 'guardian')}: not a mapping")
        values[_T2["guardian"]] = [
            [_text(2, _T2["guardian"], f"guardian {k}", guardian.get(k)) for k in ("name", "relation")]
        ]
    elif values[_T2["consent_by"]] == "guardian":
        raise TransactionError(f"{_where(2, _T2['guardian'], 'guardian')}: missing (consent by a guardian)")

    if missing:
        values[_T2["amputated_or_bandaged"]] = [[str(m.position), m.code] for m in missing]
    for finger in fingers:
        if finger.in_place_of_signature:
            values[_T2["signature_by_fgp"]] = str(finger.position)
    if signature is not None:
        away = [str(i) for i, p in enumerate(signature.points) if not p["proximity"]]
        if away:
            values[_T2["pen_out_of_proximity"]] = away
    return {n: (_utf8(v) if isinstance(v, str) else [_utf8_all(x) for x in v]) for n, v in values.items()}


def _utf8_all(value: Any) -> Any:
    return _utf8(value) if isinstance(value, str) else [_utf8(v) for v in value]


def _subfields(value: Any) -> list[list[str]]:
    """A parsed field as subfields of items (nistitl returns one lone item as a plain string)."""
    if isinstance(value, str):
        return [[value]] if value else []
    return [[v] if isinstance(v, str) else list(v) for v in value]


def _read_type2(record: Any) -> tuple[str, dict[str, Any], dict[str, Any], dict[int, Any]]:
    def text(name: str, optional: bool = False) -> str | None:
        number = _T2[name]
        got = record[number]
        if got is None or got.value in ("", []):
            if optional:
                return None
            raise TransactionError(f"{_where(2, number, name)}: missing (mandatory)")
        return _from_utf8(got.value, _where(2, number, name))

    def items(name: str, count: int) -> list[list[str]]:
        number = _T2[name]
        got = record[number]
        rows = [] if got is None else _subfields(got.value)
        where = _where(2, number, name)
        if any(len(row) != count for row in rows):
            raise TransactionError(f"{where}: each subfield must have {count} items")
        return [[_from_utf8(v, where) for v in row] for row in rows]

    kit_id = text("kit_id")
    applicant: dict[str, Any] = {key: text(key) for key in _APPLICANT_TEXT}
    born = text("birth_date")
    try:
        applicant["birth_date"] = dt.datetime.strptime(born or "", "%Y%m%d").date().isoformat()
    except ValueError:
        raise TransactionError(
            f"{_where(2, _T2['birth_date'], 'birth_date')}: {born!r} is not YYYYMMDD"
        ) from None
    address = items("address", len(ADDRESS_KEYS))
    if len(address) != 1:
        raise TransactionError(f"{_where(2, _T2['address'], 'address')}: missing (mandatory)")
    applicant["address"] = dict(zip(ADDRESS_KEYS, address[0], strict=True))
    visit: dict[str, Any] = {key: text(key) for key in _VISIT_TEXT}
    present = items("present", 1)
    if present:
        visit["present"] = [row[0] for row in present]
    guardian = items("guardian", 2)
    if guardian:
        visit["guardian"] = {"name": guardian[0][0], "relation": guardian[0][1]}
    extra = {
        84: items("amputated_or_bandaged", 2),
        85: text("signature_by_fgp", optional=True),
        86: [row[0] for row in items("pen_out_of_proximity", 1)],
    }
    return kit_id or "", applicant, visit, extra


# ---- images ---------------------------------------------------------------------------------


def scale_to_500_ppi(pixels: np.ndarray, ppi: float) -> np.ndarray:
    """The finger image resampled to 500 ppi: new size = round(size * 500 / ppi)."""
    if ppi == TRANSMITTED_PPI:
        return np.ascontiguousarray(pixels)
    factor = TRANSMITTED_PPI / ppi
    size = (max(1, round(pixels.shape[1] * factor)), max(1, round(pixels.shape[0] * factor)))
    # Bicubic to enlarge (it keeps the ridges' shape); area averaging to shrink (no aliasing).
    method = cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA
    return cv2.resize(pixels, size, interpolation=method)


def _encode(pixels: np.ndarray, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt, **options)
    return out.getvalue()


def _decode(data: bytes, fmt: str, where: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != fmt:
                raise ValueError(f"holds {image.format}")
            image.load()
            if image.mode != "L":
                raise ValueError(f"is {image.mode}, not 8-bit grey")
            return np.array(image)
    except Exception as exc:  # Pillow and the codecs raise many kinds on a broken image
        raise TransactionError(f"{where}: not a readable {fmt} image ({exc})") from None


def signature_raster(image: np.ndarray, px_per_mm: float) -> np.ndarray:
    """The signature as Type-8 carries it: 19.69 px/mm, bilevel (0 ink, 255 paper)."""
    factor = PPMM_500_PPI / px_per_mm
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    scaled = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR if factor > 1 else cv2.INTER_AREA)
    return np.where(scaled < 128, 0, 255).astype(np.uint8)


def _pack_bilevel(raster: np.ndarray) -> bytes:
    return np.packbits(raster == 0, axis=1).tobytes()


def _unpack_bilevel(data: bytes, width: int, height: int) -> np.ndarray:
    row = (width + 7) // 8
    if len(data) != row * height:
        raise TransactionError(f"Type-8 field 8.008 (DATA): {len(data)} bytes for {width} x {height} pixels")
    bits = np.unpackbits(np.frombuffer(data, np.uint8).reshape(height, row), axis=1)[:, :width]
    return np.where(bits == 1, 0, 255).astype(np.uint8)


def _circle_points(where: str, circle: Any, width: int, height: int) -> list[str]:
    """Boundary code C: the centre, then a point on the circle inside the image."""
    try:
        x, y, r = (float(v) for v in circle)
    except (TypeError, ValueError):
        raise TransactionError(f"{where}: {circle!r} is not (x, y, r)") from None
    if not all(math.isfinite(v) for v in (x, y, r)) or r <= 0:
        raise TransactionError(f"{where}: {circle!r} is not a circle")
    cx, cy, rr = round(x), round(y), round(r)
    if not (0 <= cx < width and 0 <= cy < height) or rr < 1:
        raise TransactionError(f"{where}: centre ({x:.1f}, {y:.1f}) or radius {r:.1f} is off the image")
    for px, py in ((cx + rr, cy), (cx - rr, cy), (cx, cy + rr), (cx, cy - rr)):
        if 0 <= px < width and 0 <= py < height:
            return ["C", "2", str(cx), str(cy), str(px), str(py)]
    raise TransactionError(f"{where}: the circle has no point inside the image")


def _read_circle(where: str, value: Any) -> tuple[float, float, float]:
    rows = _subfields(value)
    if len(rows) != 1 or len(rows[0]) != 6 or rows[0][0] != "C" or rows[0][1] != "2":
        raise TransactionError(f"{where}: not a circle given by its centre and one point")
    try:
        cx, cy, px, py = (int(v) for v in rows[0][2:])
    except ValueError:
        raise TransactionError(f"{where}: points are not integers") from None
    return float(cx), float(cy), math.hypot(px - cx, py - cy)


# ---- ISO/IEC 19794-7 ------------------------------------------------------------------------
#
# The full format of ISO/IEC 19794-7:2007 (version " 10"), laid out as the sample record in
# Wacom's Signature SDK documentation is (the 2014 edition's structure could not be
# confirmed here, nor the name of the two zero bytes before the extended-data flag):
#   "SDI\0", " 10\0", channel inclusion (u16: X 0x8000, Y 0x4000, T 0x0100, F 0x0040,
#   S 0x0020), one description per channel in that order (a preamble byte: 0x80 scaling
#   value follows, 0x40 minimum, 0x20 maximum; each u16), two zero bytes, a zero byte (no
#   extended data), the number of samples (u16), then per sample X, Y (u16, value +
#   0x8000), T (u16, ms since the first sample), F (u16), S (u8, 1 tip down).
# A scaling value is 2^(E-16) * (1 + M/2048), E the top 5 bits and M the low 11: X and Y in
# units per mm, T in units per second (1000: milliseconds).

_SDI = b"SDI\x00"
_SDI_VERSION = b" 10\x00"
_CH_X, _CH_Y, _CH_T, _CH_F, _CH_S = 0x8000, 0x4000, 0x0100, 0x0040, 0x0020
_CHANNELS = _CH_X | _CH_Y | _CH_T | _CH_F | _CH_S
_HAS_SCALE, _HAS_MIN, _HAS_MAX = 0x80, 0x40, 0x20
_SAMPLE = struct.Struct(">HHHHB")
_OFFSET = 0x8000


def scaling_value(value: float) -> int:
    """The 16-bit code of a positive scaling value (mantissa rounded to 11 bits)."""
    if not 2.0**-16 <= value < 2.0**16:
        raise ValueError(f"scaling value {value} is out of range")
    exponent = math.floor(math.log2(value))
    mantissa = round((value / 2.0**exponent - 1.0) * 2048)
    if mantissa == 2048:
        exponent, mantissa = exponent + 1, 0
    return (exponent + 16) << 11 | mantissa


def scaling_of(code: int) -> float:
    return 2.0 ** ((code >> 11) - 16) * (1.0 + (code & 0x7FF) / 2048)


def encode_sign_time_series(
    points: Sequence[Mapping[str, Any]], max_x: int, max_y: int, max_pressure: int, points_per_mm: float
) -> bytes:
    """The pen's samples as a 19794-7 full-format record (t_ms rounded to the millisecond)."""
    if len(points) > 0xFFFF:
        raise TransactionError(f"Type-99 (signature): {len(points)} pen samples, at most 65535 fit")
    for name, limit in (("max_x", max_x), ("max_y", max_y)):
        _int_in(99, 999, f"signature {name}", limit, 1, 0x7FFF)
    _int_in(99, 999, "signature max_pressure", max_pressure, 1, 0xFFFF)
    head = bytearray(_SDI + _SDI_VERSION + struct.pack(">H", _CHANNELS))
    scale = scaling_value(points_per_mm)
    for limit in (max_x, max_y):
        head += struct.pack(">BHHH", _HAS_SCALE | _HAS_MIN | _HAS_MAX, scale, _OFFSET, limit + _OFFSET)
    head += struct.pack(">BH", _HAS_SCALE, scaling_value(1000.0))
    head += struct.pack(">BHH", _HAS_MIN | _HAS_MAX, 0, max_pressure)
    head += b"\x00"  # S: a switch, nothing to describe
    head += struct.pack(">HBH", 0, 0, len(points))
    body = bytearray()
    for index, p in enumerate(points):
        where = f"Type-99 (signature): pen sample {index}"
        try:
            t = round(float(p["t_ms"]))
            x, y, pressure = int(p["x"]), int(p["y"]), int(p["pressure"])
            tip = bool(p["tip"])
        except (KeyError, TypeError, ValueError):
            raise TransactionError(f"{where}: needs t_ms, x, y, pressure, tip and proximity") from None
        if not (
            0 <= t <= 0xFFFF
            and -_OFFSET <= x < _OFFSET
            and -_OFFSET <= y < _OFFSET
            and 0 <= pressure <= 0xFFFF
        ):
            raise TransactionError(f"{where}: t_ms {t}, x {x}, y {y} or pressure {pressure} is out of range")
        body += _SAMPLE.pack(x + _OFFSET, y + _OFFSET, t, pressure, 1 if tip else 0)
    return bytes(head + body)


def decode_sign_time_series(bdb: bytes) -> tuple[list[dict[str, Any]], int, int, int, float]:
    """Samples (proximity left True), max_x, max_y, max_pressure and points_per_mm of a record."""
    where = "Type-99 field 99.999 (DATA)"
    if bdb[:8] != _SDI + _SDI_VERSION:
        raise TransactionError(f"{where}: not an ISO/IEC 19794-7 full-format record")
    try:
        (channels,) = struct.unpack_from(">H", bdb, 8)
        if channels != _CHANNELS:
            raise TransactionError(f"{where}: channels 0x{channels:04X}, this reader knows X, Y, T, F, S")
        at, described = 10, []
        for _ in range(4):
            preamble = bdb[at]
            if preamble & 0x1F:
                raise TransactionError(f"{where}: channel description 0x{preamble:02X} is not supported")
            at += 1
            values = {}
            for flag in (_HAS_SCALE, _HAS_MIN, _HAS_MAX):
                if preamble & flag:
                    (values[flag],) = struct.unpack_from(">H", bdb, at)
                    at += 2
            described.append(values)
        if bdb[at] != 0:
            raise TransactionError(f"{where}: the S channel has a description")
        _reserved, extended, count = struct.unpack_from(">HBH", bdb, at + 1)
        at += 6
        if extended:
            raise TransactionError(f"{where}: extended data is not supported")
        if len(bdb) != at + count * _SAMPLE.size:
            raise TransactionError(f"{where}: {len(bdb) - at} bytes for {count} samples")
        x_desc, y_desc, t_desc, f_desc = described
        points_per_mm = scaling_of(x_desc[_HAS_SCALE])
        max_x, max_y = x_desc[_HAS_MAX] - _OFFSET, y_desc[_HAS_MAX] - _OFFSET
        if scaling_of(t_desc[_HAS_SCALE]) != 1000.0:
            raise TransactionError(f"{where}: T is not in milliseconds")
        points = [
            {"t_ms": t, "x": x - _OFFSET, "y": y - _OFFSET, "pressure": f, "tip": bool(s), "proximity": True}
            for x, y, t, f, s in _SAMPLE.iter_unpack(bdb[at:])
        ]
        return points, max_x, max_y, f_desc[_HAS_MAX], points_per_mm
    except (IndexError, KeyError, struct.error):
        raise TransactionError(f"{where}: the 19794-7 record is cut short or malformed") from None


# ---- building -------------------------------------------------------------------------------


def _field(record: Any, number: int, value: Any) -> None:
    record += nistitl.Field(record.type, number, value)


def _check_inputs(
    header: TransactionHeader,
    fingers: Sequence[FingerImpression],
    missing: Sequence[MissingFinger],
    irises: Sequence[IrisImage],
    signature: SignatureSample | None,
) -> None:
    _ascii(1, 9, "TCN", header.transaction_id)
    _ascii(1, 8, "ORI", header.agency)
    _ascii(1, 7, "DAI", header.destination)
    if not isinstance(header.created, dt.datetime) or header.created.utcoffset() is None:
        raise TransactionError("Type-1 field 1.014 (GMT): created must be a datetime with a time zone")
    captured: set[int] = set()
    in_place = 0
    for finger in fingers:
        position = finger.position
        if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= 10:
            raise TransactionError(
                f"Type-14 field 14.013 (FGP): {position!r} is not a finger position (1-10)"
            )
        _grey(f"Type-14 field 14.999 (DATA), FGP {position}", finger.pixels, low=16)
        _positive(14, 16, f"FGP {position} sensor ppi", finger.ppi)
        _int_in(14, 24, f"FGP {position} quality", finger.quality, 0, 100)
        if finger.in_place_of_signature:
            in_place += 1
        elif position in captured:
            raise TransactionError(f"Type-14 field 14.013 (FGP): finger {position} is given twice")
        else:
            captured.add(position)
    if in_place > 1:
        raise TransactionError(
            "Type-14 field 14.020 (COM): more than one impression in place of the signature"
        )
    if in_place and signature is not None:
        raise TransactionError(
            "Type-14 field 14.020 (COM): a thumbprint in place of a signature that was given"
        )
    seen: set[int] = set()
    for gone in missing:
        position = gone.position
        if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= 10:
            raise TransactionError(
                f"Type-14 field 14.018 (AMP): {position!r} is not a finger position (1-10)"
            )
        if gone.code not in MISSING_CODES:
            raise TransactionError(
                f"Type-14 field 14.018 (AMP): code {gone.code!r} for FGP {position} is not XX or UP"
            )
        if position in seen or any(f.position == position for f in fingers):
            raise TransactionError(f"Type-14 field 14.018 (AMP): finger {position} is both missing and given")
        seen.add(position)
    eyes: set[str] = set()
    for eye in irises:
        if eye.eye not in EYES:
            raise TransactionError(f"Type-17 field 17.003 (ELR): eye {eye.eye!r} is not 'right' or 'left'")
        if eye.eye in eyes:
            raise TransactionError(f"Type-17 field 17.003 (ELR): the {eye.eye} eye is given twice")
        eyes.add(eye.eye)
        pixels = _grey(f"Type-17 field 17.999 (DATA), {eye.eye} eye", eye.pixels)
        _int_in(17, 24, f"{eye.eye} eye quality", eye.quality, 0, 100)
        height, width = pixels.shape
        _circle_points(_where(17, 33, f"IPB, {eye.eye} eye"), eye.pupil, width, height)
        _circle_points(_where(17, 34, f"ISB, {eye.eye} eye"), eye.iris, width, height)
    if signature is not None:
        _grey("Type-8 field 8.008 (DATA)", signature.image, low=1)
        _positive(8, 8, "signature image px/mm", signature.px_per_mm)
        _positive(99, 999, "signature points_per_mm", signature.points_per_mm)
        if not isinstance(signature.points, Sequence) or not signature.points:
            raise TransactionError("Type-99 field 99.999 (DATA): the signature has no pen samples")
        for index, p in enumerate(signature.points):
            if not isinstance(p, Mapping) or "proximity" not in p:
                raise TransactionError(f"Type-99 (signature): pen sample {index} has no proximity")


def build_transaction(
    header: TransactionHeader,
    fingers: Sequence[FingerImpression],
    missing: Sequence[MissingFinger],
    irises: Sequence[IrisImage],
    signature: SignatureSample | None,
) -> bytes:
    """The visit's transaction; every field is checked (TransactionError) before any image is encoded."""
    _check_inputs(header, fingers, missing, irises, signature)
    type2 = _type2_values(header, fingers, missing, signature)
    created = header.created.astimezone(dt.UTC)
    capture_date = _capture_date(created, header.visit)
    agency = header.agency
    sign_bdb = raster = None
    if signature is not None:
        sign_bdb = encode_sign_time_series(
            signature.points,
            signature.max_x,
            signature.max_y,
            signature.max_pressure,
            signature.points_per_mm,
        )
        raster = signature_raster(signature.image, signature.px_per_mm)
        if max(raster.shape) > 0xFFFF:
            raise TransactionError(f"Type-8 field 8.006 (HLL): {raster.shape[1]} x {raster.shape[0]} pixels")

    message = nistitl.Message()
    r1 = message[0]
    r1.VER = VERSION
    r1.TOT = TYPE_OF_TRANSACTION
    r1.DAT = created.strftime("%Y%m%d")
    r1.DAI = header.destination
    r1.ORI = agency
    r1.TCN = header.transaction_id
    r1.NSR = "00.00"
    r1.NTR = "00.00"
    r1.DOM = [list(DOMAIN)]
    r1.GMT = created.strftime(_GMT)
    r1.DCS = [list(UTF8_CHARACTER_SET)]

    r2 = nistitl.AsciiRecord(2)
    for number, value in sorted(type2.items()):
        _field(r2, number, value)
    message += r2

    idc = iter(range(1, 100))
    excepted = {m.position: m for m in missing}
    for position in sorted({f.position for f in fingers if not f.in_place_of_signature} | set(excepted)):
        if position in excepted:
            message += _excepted_record(next(idc), excepted[position], agency, capture_date)
        else:
            finger = next(f for f in fingers if f.position == position and not f.in_place_of_signature)
            message += _finger_record(next(idc), finger, agency, capture_date)
    for finger in fingers:
        if finger.in_place_of_signature:
            message += _finger_record(next(idc), finger, agency, capture_date)
    for eye in sorted(irises, key=lambda e: EYES[e.eye]):
        message += _iris_record(next(idc), eye, agency, capture_date)
    if sign_bdb is not None and raster is not None:
        height, width = raster.shape
        r8 = nistitl.BinaryRecord(8)
        r8.IDC = next(idc)
        # SIG 0 the subject's, SRT 0 scanned and uncompressed, ISR 0 at 19.69 ppmm.
        r8.value = struct.pack(">BBBHH", 0, 0, 0, width, height) + _pack_bilevel(raster)
        message += r8
        r99 = nistitl.AsciiRecord(99)
        r99.IDC = next(idc)
        _field(r99, 4, agency)
        _field(r99, 5, capture_date)
        _field(r99, 100, CBEFF_HEADER_VERSION)
        _field(r99, 101, SIGNATURE_DYNAMICS)
        _field(r99, 103, f"{SC37_FORMAT_OWNER:04X}")
        _field(r99, 104, f"{SIGN_TIME_SERIES_FORMAT_TYPE:04X}")
        r99 += nistitl.BinaryField(99, 999, sign_bdb)
        message += r99
    return message.NIST


def _capture_date(created: dt.datetime, visit: Mapping[str, Any]) -> str:
    """The local date of capture (1-2011 dates are local): the visit's own UTC offset if it has one."""
    try:
        finished = dt.datetime.fromisoformat(str(visit.get("finished_at")))
    except ValueError:
        finished = None
    if finished is not None and finished.tzinfo is not None:
        return created.astimezone(finished.tzinfo).strftime("%Y%m%d")
    return created.strftime("%Y%m%d")


def _finger_record(idc: int, finger: FingerImpression, agency: str, date: str) -> Any:
    scaled = scale_to_500_ppi(finger.pixels, float(finger.ppi))
    try:
        data = _encode(scaled, "WSQ")  # the codec's bit rate is fixed at 0.75 bit/pixel
    except Exception as exc:  # the NBIS codec raises a bare Exception("WSQ Error: n")
        raise TransactionError(
            f"Type-14 field 14.999 (DATA): FGP {finger.position} would not encode ({exc})"
        ) from None
    height, width = scaled.shape
    record = nistitl.AsciiRecord(14)
    record.IDC = idc
    scan = str(round(finger.ppi))
    for number, value in (
        (3, "0"),
        (4, agency),
        (5, date),
        (6, str(width)),
        (7, str(height)),
        (8, "1"),
        (9, str(TRANSMITTED_PPI)),
        (10, str(TRANSMITTED_PPI)),
        (11, WSQ_COMPRESSION),
        (12, "8"),
        (13, str(finger.position)),
        (16, scan),
        (17, scan),
        (24, [[str(finger.position), str(finger.quality), QUALITY_VENDOR, str(FINGER_QUALITY_PRODUCT)]]),
        (30, DEVICE_MONITORING),
    ):
        _field(record, number, value)
    if finger.in_place_of_signature:
        _field(record, 20, IN_PLACE_OF_SIGNATURE)
    record += nistitl.BinaryField(14, 999, data)
    return record


def _excepted_record(idc: int, gone: MissingFinger, agency: str, date: str) -> Any:
    record = nistitl.AsciiRecord(14)
    record.IDC = idc
    for number, value in ((3, "0"), (4, agency), (5, date), (13, str(gone.position))):
        _field(record, number, value)
    _field(record, 18, [[str(gone.position), gone.code]])
    return record


def _iris_record(idc: int, eye: IrisImage, agency: str, date: str) -> Any:
    pixels = np.ascontiguousarray(eye.pixels)
    height, width = pixels.shape
    try:
        data = _encode(pixels, "JPEG2000", irreversible=False, no_jp2=False)
    except Exception as exc:  # OpenJPEG's failures come as OSError or ValueError
        raise TransactionError(
            f"Type-17 field 17.999 (DATA): the {eye.eye} eye would not encode ({exc})"
        ) from None
    record = nistitl.AsciiRecord(17)
    record.IDC = idc
    for number, value in (
        (3, str(EYES[eye.eye])),
        (4, agency),
        (5, date),
        (6, str(width)),
        (7, str(height)),
        (8, "0"),
        (9, "1"),
        (10, "1"),
        (11, LOSSLESS_JP2),
        (12, "8"),
        (13, "GRAY"),
        (24, [[str(eye.quality), QUALITY_VENDOR, str(IRIS_QUALITY_PRODUCT)]]),
        (26, str(max(1, round(2 * float(eye.iris[2]))))),
        (30, DEVICE_MONITORING),
        (33, [_circle_points("", eye.pupil, width, height)]),
        (34, [_circle_points("", eye.iris, width, height)]),
    ):
        _field(record, number, value)
    record += nistitl.BinaryField(17, 999, data)
    return record


# ---- reading --------------------------------------------------------------------------------

_TAGGED_LEN = re.compile(rb"(\d{1,2})\.0*1:(\d{1,10})\x1d")
_MANDATORY_1 = {
    1: "LEN",
    2: "VER",
    3: "CNT",
    4: "TOT",
    5: "DAT",
    7: "DAI",
    8: "ORI",
    9: "TCN",
    11: "NSR",
    12: "NTR",
}
_MANDATORY_14 = {3: "IMP", 4: "SRC", 5: "FCD", 13: "FGP"}
_IMAGE_14 = {6: "HLL", 7: "VLL", 8: "SLC", 9: "THPS", 10: "TVPS", 11: "CGA", 12: "BPX"}
_MANDATORY_17 = {
    3: "ELR",
    4: "SRC",
    5: "ICD",
    6: "HLL",
    7: "VLL",
    8: "SLC",
    9: "THPS",
    10: "TVPS",
    11: "CGA",
    12: "BPX",
    999: "DATA",
}
_MANDATORY_99 = {4: "SRC", 5: "BCD", 100: "HDV", 101: "BTY", 103: "BFO", 104: "BFT", 999: "DATA"}


@dataclass(frozen=True)
class _Record:
    name: str
    parsed: Any  # nistitl's record
    raw: bytes


def _value(record: Any, number: int, mnemonic: str) -> Any:
    got = record[number]
    if got is None or got.value in ("", [], b""):
        raise TransactionError(f"{_where(record.type, number, mnemonic)}: missing (mandatory)")
    return got.value


def _single(record: Any, number: int, mnemonic: str) -> str:
    value = _value(record, number, mnemonic)
    if not isinstance(value, str):
        raise TransactionError(f"{_where(record.type, number, mnemonic)}: not a single value")
    return value


def _number(record: Any, number: int, mnemonic: str) -> int:
    text = _single(record, number, mnemonic)
    if not text.isdigit():
        raise TransactionError(f"{_where(record.type, number, mnemonic)}: {text!r} is not a number")
    return int(text)


def _records(data: Any) -> list[_Record]:
    """Parse with nistitl, cut the bytes into records by their lengths, name each record."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TransactionError(f"a transaction is bytes, not {type(data).__name__}")
    data = bytes(data)
    if not data.startswith(b"1.001:"):
        raise TransactionError("not an ANSI/NIST-ITL transaction: it does not start with a Type-1 record")
    message = nistitl.Message()
    try:
        message.parse(data)
    except Exception as exc:  # nistitl raises NistException, and IndexError/ValueError on junk
        raise TransactionError(f"not a readable ANSI/NIST-ITL transaction: {exc}") from None
    out: list[_Record] = []
    offset = 0
    names: set[str] = set()
    for parsed in message:
        if parsed.type == 8:
            if offset + 5 > len(data):
                raise TransactionError("Type-8: the transaction ends inside the record")
            (length,) = struct.unpack_from(">I", data, offset)
        else:
            match = _TAGGED_LEN.match(data, offset)
            if match is None or int(match.group(1)) != parsed.type:
                raise TransactionError(f"Type-{parsed.type}: the record does not start with its LEN field")
            length = int(match.group(2))
        if length < 5 or offset + length > len(data):
            raise TransactionError(f"Type-{parsed.type}: LEN {length} runs past the transaction")
        name = _record_name(parsed)
        if name in names:
            raise TransactionError(f"{name}: the transaction holds this record twice")
        names.add(name)
        out.append(_Record(name, parsed, data[offset : offset + length]))
        offset += length
    if offset != len(data):
        raise TransactionError(
            f"the records' lengths add up to {offset} bytes, the transaction has {len(data)}"
        )
    if [r.parsed.type for r in out[:2]] != [1, 2]:
        raise TransactionError("Type-2: the transaction has no Type-2 record after its Type-1")
    return out


def _record_name(record: Any) -> str:
    kind = record.type
    if kind in (1, 2, 8, 99):
        return f"type-{kind}"
    if kind == 14:
        position = _number(record, 13, "FGP")
        if record[999] is None:
            return f"type-14:fgp-{position}:excepted"
        comment = record[20]
        if comment is not None and comment.value == IN_PLACE_OF_SIGNATURE:
            return f"type-14:fgp-{position}:signature"
        return f"type-14:fgp-{position}"
    if kind == 17:
        label = _single(record, 3, "ELR")
        for eye, code in EYES.items():
            if label == str(code):
                return f"type-17:{eye}"
        raise TransactionError(f"Type-17 field 17.003 (ELR): {label!r} is not 1 (right) or 2 (left)")
    raise TransactionError(f"Type-{kind}: this transaction layout has no such record")


def record_digests(data: bytes) -> dict[str, str]:
    """Record name -> SHA-256 (hex) of that record's bytes within the transaction."""
    try:
        return {r.name: hashlib.sha256(r.raw).hexdigest() for r in _records(data)}
    except TransactionError:
        raise
    except Exception as exc:  # a malformed field nistitl let through; callers see one error type
        raise TransactionError(f"not a readable transaction: {type(exc).__name__} {exc}") from None


def read_transaction(data: bytes) -> ParsedTransaction:
    """Parse and decode a transaction; TransactionError says what is wrong with it."""
    try:
        return _read(data)
    except TransactionError:
        raise
    except Exception as exc:  # a malformed field nistitl let through; callers see one error type
        raise TransactionError(f"not a readable transaction: {type(exc).__name__} {exc}") from None


def _read(data: bytes) -> ParsedTransaction:
    records = _records(data)
    r1 = records[0].parsed
    for number, mnemonic in _MANDATORY_1.items():
        _value(r1, number, mnemonic)
    if _single(r1, 2, "VER") != VERSION:
        raise TransactionError(f"Type-1 field 1.002 (VER): {r1.VER!r}, this reader reads {VERSION}")
    domain = _subfields(_value(r1, 13, "DOM"))
    if not domain or tuple(domain[0][:2]) != DOMAIN:
        raise TransactionError(f"Type-1 field 1.013 (DOM): {domain!r} is not {DOMAIN[0]} {DOMAIN[1]}")
    try:
        created = dt.datetime.strptime(_single(r1, 14, "GMT"), _GMT).replace(tzinfo=dt.UTC)
    except ValueError:
        raise TransactionError("Type-1 field 1.014 (GMT): not YYYYMMDDhhmmssZ") from None
    kit_id, applicant, visit, extra = _read_type2(records[1].parsed)
    header = TransactionHeader(
        transaction_id=_single(r1, 9, "TCN"),
        kit_id=kit_id,
        agency=_single(r1, 8, "ORI"),
        created=created,
        applicant=applicant,
        visit=visit,
        destination=_single(r1, 7, "DAI"),
    )
    fingers: list[ParsedFinger] = []
    missing: list[MissingFinger] = []
    irises: list[ParsedIris] = []
    raster = None
    bdb = None
    for record in records[2:]:
        kind = record.parsed.type
        if kind == 14:
            finger = _read_finger(record.parsed)
            if isinstance(finger, MissingFinger):
                missing.append(finger)
            else:
                fingers.append(finger)
        elif kind == 17:
            irises.append(_read_iris(record.parsed))
        elif kind == 8:
            raster = _read_signature_image(record.parsed)
        elif kind == 99:
            bdb = _read_cbeff(record.parsed)
    listed = sorted((int(p), c) for p, c in extra[84])
    if listed != sorted((m.position, m.code) for m in missing):
        raise TransactionError(
            "Type-2 field 2.084 (amputated_or_bandaged): does not match the Type-14 records"
        )
    in_place = [f.position for f in fingers if f.in_place_of_signature]
    if [str(p) for p in in_place] != ([extra[85]] if extra[85] else []):
        raise TransactionError("Type-2 field 2.085 (signature_by_fgp): does not match the Type-14 records")
    signature = None
    if (raster is None) != (bdb is None):
        raise TransactionError("Type-8 and Type-99: the signature needs both its image and its pen samples")
    if raster is not None and bdb is not None:
        points, max_x, max_y, max_pressure, per_mm = decode_sign_time_series(bdb)
        try:
            for index in map(int, extra[86]):
                points[index]["proximity"] = False
        except (ValueError, IndexError):
            raise TransactionError(
                "Type-2 field 2.086 (pen_out_of_proximity): not indices of pen samples"
            ) from None
        signature = ParsedSignature(raster, PPMM_500_PPI, points, max_x, max_y, max_pressure, per_mm, bdb)
    return ParsedTransaction(
        header, tuple(fingers), tuple(missing), tuple(irises), signature, {r.name: r.raw for r in records}
    )


def _read_finger(record: Any) -> ParsedFinger | MissingFinger:
    for number, mnemonic in _MANDATORY_14.items():
        _value(record, number, mnemonic)
    position = _number(record, 13, "FGP")
    if not 1 <= position <= 10:
        raise TransactionError(f"Type-14 field 14.013 (FGP): {position} is not a finger position (1-10)")
    if record[999] is None:
        rows = _subfields(_value(record, 18, "AMP"))
        if len(rows) != 1 or rows[0][0] != str(position) or rows[0][1] not in MISSING_CODES:
            raise TransactionError(f"Type-14 field 14.018 (AMP): {rows!r} does not except FGP {position}")
        return MissingFinger(position, rows[0][1])
    for number, mnemonic in _IMAGE_14.items():
        _value(record, number, mnemonic)
    where = f"Type-14 field 14.999 (DATA), FGP {position}"
    if _single(record, 11, "CGA") != WSQ_COMPRESSION or _single(record, 12, "BPX") != "8":
        raise TransactionError(f"{where}: not an 8-bit WSQ image (CGA {record._11!r}, BPX {record._12!r})")
    if _single(record, 8, "SLC") != "1":
        raise TransactionError(f"Type-14 field 14.008 (SLC), FGP {position}: not pixels per inch")
    data = record[999].value
    pixels = _decode(data, "WSQ", where)
    if pixels.shape != (_number(record, 7, "VLL"), _number(record, 6, "HLL")):
        raise TransactionError(f"{where}: the image is not HLL x VLL pixels")
    rows = _subfields(_value(record, 24, "FQM"))
    if len(rows) != 1 or len(rows[0]) != 4 or rows[0][0] != str(position) or not rows[0][1].isdigit():
        raise TransactionError(f"Type-14 field 14.024 (FQM), FGP {position}: {rows!r} is not one quality")
    scan = record[16]
    comment = record[20]
    return ParsedFinger(
        position=position,
        quality=int(rows[0][1]),
        wsq=data,
        pixels=pixels,
        ppi=float(_number(record, 9, "THPS")),
        scan_ppi=float(scan.value) if scan is not None else float(_number(record, 9, "THPS")),
        in_place_of_signature=comment is not None and comment.value == IN_PLACE_OF_SIGNATURE,
    )


def _read_iris(record: Any) -> ParsedIris:
    for number, mnemonic in _MANDATORY_17.items():
        _value(record, number, mnemonic)
    eye = "right" if _single(record, 3, "ELR") == "1" else "left"
    where = f"Type-17 field 17.999 (DATA), {eye} eye"
    if _single(record, 11, "CGA") != LOSSLESS_JP2 or _single(record, 12, "BPX") != "8":
        raise TransactionError(f"{where}: not an 8-bit lossless JPEG 2000 image")
    data = record[999].value
    pixels = _decode(data, "JPEG2000", where)
    if pixels.shape != (_number(record, 7, "VLL"), _number(record, 6, "HLL")):
        raise TransactionError(f"{where}: the image is not HLL x VLL pixels")
    rows = _subfields(_value(record, 24, "IQS"))
    if len(rows) != 1 or len(rows[0]) != 3 or not rows[0][0].isdigit():
        raise TransactionError(f"Type-17 field 17.024 (IQS), {eye} eye: {rows!r} is not one quality")
    return ParsedIris(
        eye=eye,
        quality=int(rows[0][0]),
        jp2=data,
        pixels=pixels,
        pupil=_read_circle(_where(17, 33, f"IPB, {eye} eye"), _value(record, 33, "IPB")),
        iris=_read_circle(_where(17, 34, f"ISB, {eye} eye"), _value(record, 34, "ISB")),
    )


def _read_signature_image(record: Any) -> np.ndarray:
    body = record.value
    if len(body) < 7:
        raise TransactionError("Type-8: the record ends before its DATA field")
    sig, srt, isr, width, height = struct.unpack_from(">BBBHH", body)
    if (sig, srt, isr) != (0, 0, 0):
        raise TransactionError(
            f"Type-8 fields 8.003-8.005: SIG {sig}, SRT {srt}, ISR {isr}; this reader reads 0, 0, 0"
        )
    return _unpack_bilevel(body[7:], width, height)


def _read_cbeff(record: Any) -> bytes:
    for number, mnemonic in _MANDATORY_99.items():
        _value(record, number, mnemonic)
    owner, kind = _single(record, 103, "BFO"), _single(record, 104, "BFT")
    if (owner, kind) != (f"{SC37_FORMAT_OWNER:04X}", f"{SIGN_TIME_SERIES_FORMAT_TYPE:04X}"):
        raise TransactionError(
            f"Type-99 fields 99.103/99.104 (BFO/BFT): {owner}/{kind} is not a 19794-7 record"
        )
    return record[999].value


def transaction_files(parsed: ParsedTransaction) -> dict[str, bytes]:
    """What a transaction holds, as files to look at: images in their own formats, facts as JSON."""
    files: dict[str, bytes] = {}
    facts: dict[str, Any] = {
        "transaction_id": parsed.header.transaction_id,
        "kit_id": parsed.header.kit_id,
        "agency": parsed.header.agency,
        "destination": parsed.header.destination,
        "created": parsed.header.created.isoformat(),
        "applicant": dict(parsed.header.applicant),
        "visit": dict(parsed.header.visit),
        "fingers": [],
        "missing": [{"position": m.position, "code": m.code} for m in parsed.missing],
        "irises": [],
    }
    for finger in parsed.fingers:
        name = f"type-14_fgp-{finger.position}{'_signature' if finger.in_place_of_signature else ''}.wsq"
        files[name] = finger.wsq
        files[name.replace(".wsq", ".png")] = encode_png(finger.pixels)  # decoded, to look at
        facts["fingers"].append(
            {
                "position": finger.position,
                "quality": finger.quality,
                "ppi": finger.ppi,
                "scan_ppi": finger.scan_ppi,
                "in_place_of_signature": finger.in_place_of_signature,
                "file": name,
            }
        )
    for eye in parsed.irises:
        name = f"type-17_{eye.eye}.jp2"
        files[name] = eye.jp2
        files[name.replace(".jp2", ".png")] = encode_png(eye.pixels)
        facts["irises"].append(
            {
                "eye": eye.eye,
                "quality": eye.quality,
                "pupil": list(eye.pupil),
                "iris": list(eye.iris),
                "file": name,
            }
        )
    if parsed.signature is not None:
        files["type-8.png"] = encode_png(parsed.signature.image)
        files["type-99.sdi"] = parsed.signature.bdb
        files["signature.json"] = json.dumps(
            {
                "max_x": parsed.signature.max_x,
                "max_y": parsed.signature.max_y,
                "max_pressure": parsed.signature.max_pressure,
                "points_per_mm": parsed.signature.points_per_mm,
                "points": parsed.signature.points,
            },
            indent=1,
        ).encode()
    files["transaction.json"] = json.dumps(facts, indent=1, ensure_ascii=False).encode()
    return files
