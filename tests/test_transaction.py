"""The ANSI/NIST-ITL transaction of a visit: built, read back field for field, refused when wrong.

Synthetic inputs (ridge patterns at the NB-1010's 385 ppi, drawn eyes, a pen recording) go
through build_transaction and read_transaction; real prints and eyes from
../shared/fixtures (FVC2002 DB1_B, the NB-1010 frame, IIT Delhi eyes) go through the same
path when that folder is there, and the test skips with the reason when it is not.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import io
import re
from pathlib import Path

import cv2
import nistitl
import numpy as np
import pytest
import wsq  # noqa: F401 - registers Pillow's WSQ codec
from PIL import Image

from kitd.crypto.transaction import (
    TYPE2_FIELDS,
    FingerImpression,
    IrisImage,
    MissingFinger,
    SignatureSample,
    TransactionError,
    TransactionHeader,
    build_transaction,
    decode_sign_time_series,
    encode_sign_time_series,
    read_transaction,
    record_digests,
    scale_to_500_ppi,
    scaling_of,
    scaling_value,
    signature_raster,
    transaction_files,
)

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
SENSOR_PPI = 385.0
CREATED = dt.datetime(2026, 3, 1, 2, 30, 5, 250000, tzinfo=dt.UTC)

APPLICANT = {
    "nik": "3516014101500001",
    "kk": "3516010101080002",
    "name": "SUMIATI BINTI KARTO",
    "birth_date": "1950-01-01",
    "sex": "P",
    "address": {
        "street": "Jl. Mawar No. 5, Dusun Krajan",
        "rt": "001",
        "rw": "002",
        "kelurahan": "Sooko",
        "kecamatan": "Sooko",
        "kabupaten_kota": "Kab. Mojokerto",
    },
    "category": "lansia",
    "kind": "new",
}
VISIT = {
    "visit_id": "visit-MJK-001",
    "order_id": "MJK-001",
    "officer": "198001012005011002",
    "started_at": "2026-03-01T09:00:00+07:00",
    "finished_at": "2026-03-01T09:30:05+07:00",
    "consent_by": "applicant",
    "present": ["Sumiati", "Rina"],
}


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ridges(seed: int, height: int = 360, width: int = 256, ppi: float = SENSOR_PPI) -> np.ndarray:
    """A finger-like frame: curved ridges 0.46 mm apart fading to paper at the edges, sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    period = 0.46 * ppi / 25.4
    angle = 0.4 * seed
    warp = 3.0 * np.sin(x / 37.0 + seed) + 2.5 * np.cos(y / 29.0 - seed)
    phase = 2 * np.pi * (x * np.cos(angle) + y * np.sin(angle)) / period + warp
    reach = ((x - width / 2) / (0.45 * width)) ** 2 + ((y - height / 2) / (0.45 * height)) ** 2
    image = 200 - 90 * (1 + np.sin(phase)) * np.exp(-(reach**2)) + rng.normal(0, 5, reach.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def drawn_eye(seed: int, pupil: tuple[float, float, float], iris: tuple[float, float, float]) -> np.ndarray:
    """A grey eye: sclera, a textured iris, a dark pupil with a glint, noise (640 x 480)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640].astype(np.float64)
    r_iris = np.hypot(x - iris[0], y - iris[1])
    r_pupil = np.hypot(x - pupil[0], y - pupil[1])
    theta = np.arctan2(y - iris[1], x - iris[0])
    texture = 95 + 25 * np.sin(theta * 41 + r_iris / 6) + 10 * np.cos(theta * 13)
    image = np.where(r_iris < iris[2], texture, 185 - 0.05 * np.abs(y - 240))
    image = np.where(r_pupil < pupil[2], 18, image)
    image = np.where(np.hypot(x - pupil[0] - 8, y - pupil[1] - 6) < 4, 250, image)
    return np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def pen_points(count: int = 210) -> list[dict]:
    """Three strokes with hover between them; the pen leaves proximity once, at the end."""
    points = []
    for i in range(count):
        stroke = i // 70
        tip = 4 <= i % 70 <= 62
        points.append(
            {
                "t_ms": i * 8 + stroke * 120,
                "x": 1200 + i * 30,
                "y": 3000 + int(900 * np.sin(i / 9.0)),
                "pressure": int(300 + 600 * np.sin((i % 70) / 70 * np.pi)) if tip else 0,
                "tip": tip,
                "proximity": i != count - 1,
            }
        )
    return points


def ink(points: list[dict], px_per_mm: float = 10.0) -> np.ndarray:
    """The points drawn as the kit renders a signature: black ink on white, cropped with a margin."""
    xs = np.array([p["x"] for p in points]) / 100 * px_per_mm
    ys = np.array([p["y"] for p in points]) / 100 * px_per_mm
    xs, ys = xs - xs.min() + 30, ys - ys.min() + 30
    image = np.full((int(ys.max()) + 31, int(xs.max()) + 31), 255, np.uint8)
    for i in range(1, len(points)):
        if points[i]["tip"] and points[i - 1]["tip"]:
            a, b = (int(xs[i - 1]), int(ys[i - 1])), (int(xs[i]), int(ys[i]))
            cv2.line(image, a, b, 0, 3, cv2.LINE_AA)
    return image


def header(applicant: dict | None = None, visit: dict | None = None) -> TransactionHeader:
    order = {**APPLICANT, "order_id": "MJK-001", "needs": "bedridden"} if applicant is None else applicant
    return TransactionHeader(
        transaction_id="b2c7e0de-6f1d-4d8a-9a55-0f3c2a1b9e01",
        kit_id="KIT-3516-007",
        agency="3516",
        created=CREATED,
        applicant=order,
        visit=VISIT if visit is None else visit,
    )


IRIS_CIRCLES = {
    "right": ((318.4, 242.6, 48.2), (321.0, 240.0, 121.7)),
    "left": ((322.0, 238.0, 55.0), (320.0, 241.0, 118.0)),
}


@pytest.fixture(scope="module")
def visit_inputs() -> dict:
    fingers = [FingerImpression(p, ridges(p), SENSOR_PPI, 40 + p) for p in range(1, 11) if p != 4]
    irises = [
        IrisImage(eye, drawn_eye(i, *IRIS_CIRCLES[eye]), *IRIS_CIRCLES[eye], 70 + i)
        for i, eye in enumerate(("right", "left"))
    ]
    points = pen_points()
    signature = SignatureSample(
        ink(points), points, max_x=9600, max_y=6000, max_pressure=1023, points_per_mm=100
    )
    return {"fingers": fingers, "missing": [MissingFinger(4, "UP")], "irises": irises, "signature": signature}


@pytest.fixture(scope="module")
def built(visit_inputs: dict) -> bytes:
    v = visit_inputs
    return build_transaction(header(), v["fingers"], v["missing"], v["irises"], v["signature"])


def test_every_field_comes_back(built: bytes, visit_inputs: dict) -> None:
    parsed = read_transaction(built)
    got = parsed.header
    assert (got.transaction_id, got.kit_id, got.agency, got.destination) == (
        "b2c7e0de-6f1d-4d8a-9a55-0f3c2a1b9e01",
        "KIT-3516-007",
        "3516",
        "DUKCAPIL",
    )
    assert got.created == CREATED.replace(microsecond=0)  # GMT is to the second
    assert got.applicant == APPLICANT  # the order's other keys stay out
    assert got.visit == VISIT

    assert [(f.position, f.quality, f.ppi, f.scan_ppi) for f in parsed.fingers] == [
        (f.position, f.quality, 500.0, SENSOR_PPI) for f in visit_inputs["fingers"]
    ]
    assert not any(f.in_place_of_signature for f in parsed.fingers)
    assert parsed.missing == (MissingFinger(4, "UP"),)

    for eye, given in zip(parsed.irises, visit_inputs["irises"], strict=True):
        assert (eye.eye, eye.quality) == (given.eye, given.quality)
        assert eye.jp2.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n")
        assert np.array_equal(eye.pixels, given.pixels)  # lossless, pixel for pixel
        for back, sent in ((eye.pupil, given.pupil), (eye.iris, given.iris)):
            assert back[:2] == (round(sent[0]), round(sent[1]))  # whole pixels
            assert abs(back[2] - sent[2]) <= 0.5

    sign = parsed.signature
    assert sign is not None
    assert sign.points == visit_inputs["signature"].points  # point for point
    assert (sign.max_x, sign.max_y, sign.max_pressure, sign.points_per_mm) == (9600, 6000, 1023, 100.0)
    assert sign.bdb.startswith(b"SDI\x00 10\x00")
    assert np.array_equal(sign.image, signature_raster(visit_inputs["signature"].image, 10.0))
    assert sign.px_per_mm == pytest.approx(19.685, abs=1e-3)


def test_fingers_are_500_ppi_wsq_close_to_the_rescaled_frame(built: bytes, visit_inputs: dict) -> None:
    parsed = read_transaction(built)
    worst = float("inf")
    for finger, given in zip(parsed.fingers, visit_inputs["fingers"], strict=True):
        expected = scale_to_500_ppi(given.pixels, SENSOR_PPI)
        assert expected.shape == (round(360 * 500 / 385), round(256 * 500 / 385)) == finger.pixels.shape
        # The wsq package decodes the record's bytes by itself, to the same pixels.
        alone = np.array(Image.open(io.BytesIO(finger.wsq)))
        assert np.array_equal(alone, finger.pixels)
        worst = min(worst, psnr(expected, finger.pixels))
    assert worst > 25.0, f"WSQ PSNR {worst:.1f} dB on a ridge pattern"


def test_records_are_named_and_hashed_by_their_own_bytes(built: bytes) -> None:
    digests = record_digests(built)
    assert list(digests) == [
        "type-1",
        "type-2",
        *[f"type-14:fgp-{p}" if p != 4 else "type-14:fgp-4:excepted" for p in range(1, 11)],
        "type-17:right",
        "type-17:left",
        "type-8",
        "type-99",
    ]
    records = read_transaction(built).records
    assert b"".join(records.values()) == built  # the records tile the transaction
    assert digests == {name: hashlib.sha256(raw).hexdigest() for name, raw in records.items()}


def test_the_type_2_layout_is_the_documented_one(built: bytes) -> None:
    message = nistitl.Message()
    message.parse(built)
    type1, type2 = message[0], message[1]
    assert type1.VER == "0502" and type1.DOM == [["IDN-KTP-KIT", "1.0"]] and type1.GMT == "20260301023005Z"
    raw = read_transaction(built).records["type-2"]
    numbers = {int(n) for n in re.findall(rb"2\.(\d{3}):", raw)} - {1, 2}
    assert numbers <= set(TYPE2_FIELDS)
    assert type2._18 == "SUMIATI BINTI KARTO" and type2._22 == "19500101" and type2._84 == [["4", "UP"]]
    excepted = next(r for r in message if r.type == 14 and r[999] is None)
    assert (excepted.FGP, excepted.AMP) == ("4", [["4", "UP"]])
    finger = next(r for r in message if r.type == 14 and r[999] is not None)
    assert (finger.IMP, finger.CGA, finger.SLC, finger.THPS, finger.BPX, finger.SHPS) == (
        "0",
        "WSQ20",
        "1",
        "500",
        "8",
        "385",
    )
    eye = next(r for r in message if r.type == 17)
    assert (eye._3, eye._11, eye._33[0][:2], eye._34[0][:2]) == ("1", "JP2L", ["C", "2"], ["C", "2"])


def test_a_thumbprint_in_place_of_the_signature(visit_inputs: dict) -> None:
    thumb = FingerImpression(1, ridges(11), SENSOR_PPI, 63, in_place_of_signature=True)
    data = build_transaction(header(), [*visit_inputs["fingers"][:2], thumb], [], [], None)
    parsed = read_transaction(data)
    assert [(f.position, f.in_place_of_signature) for f in parsed.fingers] == [
        (1, False),
        (2, False),
        (1, True),
    ]
    assert parsed.signature is None and parsed.irises == ()
    assert list(record_digests(data)) == [
        "type-1",
        "type-2",
        "type-14:fgp-1",
        "type-14:fgp-2",
        "type-14:fgp-1:signature",
    ]
    files = transaction_files(parsed)
    assert {"type-14_fgp-1.wsq", "type-14_fgp-1_signature.wsq", "transaction.json"} <= set(files)


def test_files_for_the_office(built: bytes) -> None:
    files = transaction_files(read_transaction(built))
    assert sum(name.endswith(".wsq") for name in files) == 9
    assert {"type-17_right.jp2", "type-17_left.jp2", "type-8.png", "type-99.sdi", "signature.json"} <= set(
        files
    )


def test_non_ascii_names_travel_as_utf8(visit_inputs: dict) -> None:
    applicant = {
        **APPLICANT,
        "name": "ÉLISE NGŪRAH",
        "address": {**APPLICANT["address"], "street": "Jl. Kenari — Blok C"},
    }
    parsed = read_transaction(build_transaction(header(applicant), [], [], [], None))
    assert parsed.header.applicant == applicant


def test_the_19794_7_record_layout() -> None:
    points = pen_points(5)
    bdb = encode_sign_time_series(points, 9600, 6000, 1023, 100.0)
    # Header, channels X Y T F S, X and Y described by scale 100/mm, 0 and max (offset 0x8000).
    assert bdb[:10] == b"SDI\x00 10\x00\xc1\x60"
    assert bdb[10:17] == bytes.fromhex("e0 b480 8000 a580".replace(" ", ""))
    assert scaling_value(100.0) == 0xB480 and scaling_of(scaling_value(1000.0)) == 1000.0
    assert scaling_of(scaling_value(39.37)) == pytest.approx(39.37, rel=1e-3)
    back, max_x, max_y, max_pressure, per_mm = decode_sign_time_series(bdb)
    assert [{**p, "proximity": q["proximity"]} for p, q in zip(back, points, strict=True)] == points
    assert (max_x, max_y, max_pressure, per_mm) == (9600, 6000, 1023, 100.0)
    assert len(bdb) == 8 + 2 + 7 + 7 + 3 + 5 + 1 + 5 + 9 * len(points)


def _without(mapping: dict, key: str) -> dict:
    out = copy.deepcopy(mapping)
    del out[key]
    return out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda v: {"applicant": {**APPLICANT, "name": "SUMIATI 999: X"}},
            "Type-2 field 2.018 (name): contains '999:'",
        ),
        (
            lambda v: {
                "applicant": {**APPLICANT, "address": {**APPLICANT["address"], "street": "Jl.\x1eMawar"}}
            },
            "Type-2 field 2.030 (address street): contains the ANSI/NIST separator RS (0x1E)",
        ),
        (
            lambda v: {"visit": {**VISIT, "officer": "1980\x1c01"}},
            "Type-2 field 2.042 (officer): contains the ANSI/NIST",
        ),
        (
            lambda v: {"applicant": _without(APPLICANT, "nik")},
            "Type-2 field 2.010 (nik): missing (mandatory)",
        ),
        (
            lambda v: {"applicant": {**APPLICANT, "sex": "X"}},
            "Type-2 field 2.024 (sex): 'X' is not one of L, P",
        ),
        (lambda v: {"applicant": {**APPLICANT, "birth_date": "1950-02-30"}}, "2.022 (birth_date)"),
        (lambda v: {"visit": _without(VISIT, "consent_by")}, "Type-2 field 2.045 (consent_by): missing"),
        (
            lambda v: {"fingers": [FingerImpression(11, v["fingers"][0].pixels, SENSOR_PPI, 50)]},
            "Type-14 field 14.013 (FGP): 11 is not a finger position (1-10)",
        ),
        (
            lambda v: {"missing": [MissingFinger(4, "ZZ")]},
            "Type-14 field 14.018 (AMP): code 'ZZ' for FGP 4 is not XX or UP",
        ),
        (
            lambda v: {"missing": [MissingFinger(3, "XX")]},
            "Type-14 field 14.018 (AMP): finger 3 is both missing and given",
        ),
        (
            lambda v: {"irises": [IrisImage("", v["irises"][0].pixels, (320, 240, 50), (320, 240, 120), 70)]},
            "Type-17 field 17.003 (ELR): eye '' is not 'right' or 'left'",
        ),
        (
            lambda v: {
                "irises": [IrisImage("left", v["irises"][0].pixels, (900, 240, 50), (320, 240, 120), 70)]
            },
            "Type-17 field 17.033 (IPB, left eye)",
        ),
        (
            lambda v: {"fingers": [FingerImpression(2, v["fingers"][0].pixels, SENSOR_PPI, 101)]},
            "Type-14 field 14.024 (FGP 2 quality): 101 is not an integer 0-100",
        ),
    ],
)
def test_refusals_name_the_record_and_field(visit_inputs: dict, change, expected: str) -> None:
    given = {"applicant": None, "visit": None, **visit_inputs}
    given.update(change(visit_inputs))
    with pytest.raises(TransactionError) as refused:
        build_transaction(
            header(given["applicant"], given["visit"]),
            given["fingers"],
            given["missing"],
            given["irises"],
            given["signature"],
        )
    assert expected in str(refused.value)


def test_a_finger_comment_with_999_is_refused_before_nistitl_would_cut_it() -> None:
    # What the refusal prevents: nistitl finds 14.999 by searching for "999:", so a text field
    # holding it ends the record's text there and the image comes back corrupted, silently.
    record = nistitl.AsciiRecord(14)
    record += nistitl.Field(14, 20, "see 999: here")
    record += nistitl.BinaryField(14, 999, b"\xff\xa0image")
    message = nistitl.Message()
    message += record
    again = nistitl.Message()
    again.parse(message.NIST)
    assert again[1][20] is None and again[1][999].value != b"\xff\xa0image"
    with pytest.raises(TransactionError, match=r"Type-1 field 1\.009 \(TCN\): contains '999:'"):
        build_transaction(
            TransactionHeader("tcn-999:1", "KIT-1", "3516", CREATED, APPLICANT, VISIT), [], [], [], None
        )


def _flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1 :]


def test_garbage_is_a_transaction_error_and_nothing_else(built: bytes) -> None:
    rng = np.random.default_rng(7)
    for data in (b"", b"garbage", b"1.001:", rng.bytes(4096), "1.001:12", built[:-1], built + b"x"):
        with pytest.raises(TransactionError):
            read_transaction(data)  # type: ignore[arg-type]
        with pytest.raises(TransactionError):
            record_digests(data)  # type: ignore[arg-type]
    # A small transaction cut anywhere, or with a byte flipped in its text (image bytes are
    # the codecs' own business): still readable or a TransactionError, never another error.
    points = pen_points(30)
    small = build_transaction(
        header(),
        [FingerImpression(2, ridges(2, 64, 48), SENSOR_PPI, 50)],
        [MissingFinger(7, "XX")],
        [
            IrisImage(
                "left",
                drawn_eye(3, (40, 30, 6), (40, 30, 15))[:60, :80],
                (40, 30, 6),
                (40, 30, 15),
                50,
            )
        ],
        SignatureSample(ink(points), points, 9600, 6000, 1023, 100.0),
    )
    text_end = small.index(b"14.999:")
    damaged = [small[: int(n)] for n in rng.integers(1, len(small), 50)]
    damaged += [_flipped(small, int(at)) for at in rng.integers(0, text_end, 150)]
    refused = 0
    for data in damaged:
        for reader in (read_transaction, record_digests):
            try:
                reader(data)
            except TransactionError:
                refused += 1
    assert refused >= 100  # every cut at least, twice


def test_a_record_without_a_mandatory_field_is_refused(built: bytes) -> None:
    message = nistitl.Message()
    message.parse(built)
    del message[2][24]  # the first finger's FQM
    with pytest.raises(TransactionError, match=r"Type-14 field 14\.024 \(FQM\): missing \(mandatory\)"):
        read_transaction(message.NIST)
    message.parse(built)
    del message[1][18]
    with pytest.raises(TransactionError, match=r"Type-2 field 2\.018 \(name\): missing"):
        read_transaction(message.NIST)
    message.parse(built)
    message[0].VER = "0400"
    with pytest.raises(TransactionError, match=r"1\.002 \(VER\)"):
        read_transaction(message.NIST)


# ---- real prints and eyes -------------------------------------------------------------------

FVC = FIXTURES / "fvc2002-db1b"
NB1010_FRAME = FIXTURES / "nb1010" / "capture.png"
IITD = FIXTURES / "iitd-iris"


@pytest.mark.skipif(
    not (FVC.is_dir() and NB1010_FRAME.is_file() and IITD.is_dir()),
    reason=f"real prints and eyes not found under {FIXTURES} (../shared/fixtures)",
)
def test_real_prints_and_eyes_round_trip() -> None:
    # FVC2002 DB1_B: ten fingers (101-110, first impression) at 500 ppi, no rescaling; the
    # NB-1010's own frame at 385 ppi as a thumbprint in place of the signature.
    fingers = [
        FingerImpression(n - 100, cv2.imread(str(FVC / f"{n}_1.tif"), cv2.IMREAD_GRAYSCALE), 500.0, 50)
        for n in range(101, 111)
    ]
    frame = cv2.imread(str(NB1010_FRAME), cv2.IMREAD_GRAYSCALE)
    fingers.append(FingerImpression(1, frame, SENSOR_PPI, 40, in_place_of_signature=True))
    eyes = [cv2.imread(str(IITD / name), cv2.IMREAD_GRAYSCALE) for name in ("022_01_L.png", "022_06_R.png")]
    # The eyes are here for their real NIR texture (lossless or not); the circles are rough.
    irises = [
        IrisImage(eye, pixels, (160.0, 120.0, 30.0), (160.0, 120.0, 95.0), 60)
        for eye, pixels in zip(("left", "right"), eyes, strict=True)
    ]
    parsed = read_transaction(build_transaction(header(), fingers, [], irises, None))
    scores = []
    for finger, given in zip(parsed.fingers, fingers, strict=True):
        scores.append(psnr(scale_to_500_ppi(given.pixels, given.ppi), finger.pixels))
    # Measured: FVC DB1_B 101-110 19.6-33.6 dB (median 31.6); the NB-1010 frame, nearly
    # bilevel with salt noise, 20.7 dB: WSQ at 0.75 bit/pixel rounds its hard edges.
    assert np.median(scores[:10]) > 28.0 and min(scores) > 18.0, [round(s, 1) for s in scores]
    assert parsed.fingers[-1].in_place_of_signature and parsed.fingers[-1].pixels.shape == (234, 332)
    for eye, given in zip(parsed.irises, reversed(eyes), strict=True):
        assert np.array_equal(eye.pixels, given)
