"""Frame checks for the iris camera: what a source read becomes a numbered, judged Frame.

OpenCV reports neither dropped nor corrupt frames, so the driver checks each frame itself.
JPEG and PNG data are decoded here strictly, so a truncated or corrupt frame is marked
`truncated` or `undecodable` instead of arriving as garbage. A frame whose size differs from
the expected one is `wrong_size`; `black` and `saturated` use thresholds that suit dim
near-infrared images (see BLACK_* and SATURATED_*); a frame identical to the one before is
`repeated`. Frames are 8-bit grey numpy arrays with a sequence number, a capture time and the
number of frames missed before them, estimated from arrival times and the nominal rate (a
camera numbers nothing).

Pure functions over bytes and arrays, and the small state that numbering and counting need
(FrameClock, FrameInspector, StreamStats). No I/O. May import numpy, cv2, simplejpeg and
kitd.grey_image (the one grey rule); never the sources or the driver.
"""

from __future__ import annotations

import struct
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from kitd.grey_image import to_grey8

# OpenCV logs its own warnings about broken images (and streams) on stderr, in the middle of
# the daemon's JSON log lines; the driver reports these itself, as frame flags and states.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

# All-black: at most 0.5 % of the pixels above 20 (of 255). A dim near-infrared eye still has
# skin at 40 or more and the illuminator's reflection at 255; a capped lens or a dead
# illuminator leaves sensor noise only.
BLACK_LEVEL = 20
BLACK_MAX_SHARE = 0.005
# Saturated: at least 95 % of the pixels at 250 or above. A good near-infrared eye clips its
# reflections and often much skin (the open-iris sample: 18 % of the frame), never nearly all.
SATURATED_LEVEL = 250
SATURATED_MIN_SHARE = 0.95

FLAGS = ("undecodable", "truncated", "wrong_size", "black", "saturated", "repeated")
MEASURE_WINDOW = 60  # frames over which the delivered rate is measured


# ---- frames ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """One delivered frame: grey pixels (None when undecodable) and what the driver knows of it."""

    seq: int
    image: np.ndarray | None
    monotonic: float
    wall: float
    missed: int = 0
    missed_total: int = 0  # every frame missed since the driver was made, this one's included
    flags: frozenset[str] = frozenset()
    position: int | None = None  # index in a file or sequence; None for live sources

    @property
    def intact(self) -> bool:
        return not self.flags and self.image is not None

    def describe(self) -> dict[str, Any]:
        """The metadata, without pixels (safe to log or send)."""
        return {
            "seq": self.seq,
            "time": self.wall,
            "missed": self.missed,
            "missed_total": self.missed_total,
            "flags": sorted(self.flags),
            "position": self.position,
            "width": None if self.image is None else int(self.image.shape[1]),
            "height": None if self.image is None else int(self.image.shape[0]),
        }


@dataclass
class RawFrame:
    """What a source read: encoded bytes (JPEG, PNG, BMP) or an already decoded image."""

    data: bytes | None = None
    image: np.ndarray | None = None
    position: int | None = None


# ---- pure checks -------------------------------------------------------------------------
def jpeg_problem(data: bytes) -> str | None:
    """`truncated` or `undecodable` from the JPEG's markers alone, else None."""
    if len(data) < 4 or data[:2] != b"\xff\xd8":
        return "undecodable"
    # Some UVC cameras pad a frame with zeros after its end-of-image marker.
    if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        return "truncated"
    return None


def png_problem(data: bytes) -> str | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return "undecodable"
    if b"IEND" not in data[-16:]:
        return "truncated"
    return None


def bmp_problem(data: bytes) -> str | None:
    if len(data) < 14 or data[:2] != b"BM":
        return "undecodable"
    (declared,) = struct.unpack_from("<I", data, 2)
    if len(data) < declared:
        return "truncated"
    return None


def describe_flags(seen: Counter[str]) -> str:
    """The flags of frames that were not intact, most frequent first ("3 truncated, 1 black")."""
    return ", ".join(f"{n} {flag}" for flag, n in seen.most_common())


def decode_frame(data: bytes) -> tuple[np.ndarray | None, str | None]:
    """Decode JPEG, PNG or BMP bytes strictly to grey: (image, None) or (None, flag)."""
    if data[:2] == b"\xff\xd8":
        problem = jpeg_problem(data)
        if problem:
            return None, problem
        import simplejpeg

        try:
            # strict: libjpeg-turbo's "corrupt data" warnings are errors, not grey garbage.
            image = simplejpeg.decode_jpeg(data, colorspace="GRAY", strict=True)
        except ValueError:
            # Its end marker is there (checked above), so the data inside is corrupt, not cut short.
            return None, "undecodable"
        return np.ascontiguousarray(image[:, :, 0]), None
    check = png_problem if data[:4] == b"\x89PNG" else bmp_problem if data[:2] == b"BM" else None
    if check is None:
        return None, "undecodable"
    problem = check(data)
    if problem:
        return None, problem
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        return None, "undecodable"
    try:
        return to_grey8(image), None
    except ValueError:
        return None, "undecodable"


def exposure_flags(image: np.ndarray) -> set[str]:
    """`black` and/or `saturated` by the documented thresholds."""
    flags = set()
    total = image.size
    if np.count_nonzero(image > BLACK_LEVEL) <= BLACK_MAX_SHARE * total:
        flags.add("black")
    if np.count_nonzero(image >= SATURATED_LEVEL) >= SATURATED_MIN_SHARE * total:
        flags.add("saturated")
    return flags


def frame_flags(image: np.ndarray, expected: tuple[int, int] | None, previous: np.ndarray | None) -> set[str]:
    """Integrity flags of a decoded grey frame; `expected` is (width, height)."""
    flags = exposure_flags(image)
    if expected is not None and (image.shape[1], image.shape[0]) != expected:
        flags.add("wrong_size")
    if previous is not None and previous.shape == image.shape and np.array_equal(previous, image):
        flags.add("repeated")
    return flags


# ---- numbering and counting ----------------------------------------------------------
class FrameClock:
    """Frames missed between arrivals, from arrival times and the nominal rate.

    Keeps a schedule of when frames are due. A frame that arrives more than half a period
    after its slot means frames were lost; one that arrives well before its slot means an
    earlier frame was merely late and its "missed" were over-counted: that credit is taken
    off the next loss, so the total stays honest across bursts.
    """

    DRIFT = 0.05  # how fast the schedule follows a camera that runs slow

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self.due: float | None = None
        self.credit = 0

    def missed(self, arrival: float) -> int:
        if self.due is None:
            self.due = arrival
            return 0
        ticks = round((arrival - self.due) / self.period)
        if ticks < 1:
            self.credit += 1 - ticks
            ticks = 1
        missed = ticks - 1
        taken = min(self.credit, missed)
        missed -= taken
        self.credit -= taken
        self.due += ticks * self.period
        if arrival < self.due:
            self.due = arrival
        else:
            self.due += (arrival - self.due) * self.DRIFT
        return missed


@dataclass
class StreamStats:
    """What the reader has seen since the driver was made."""

    delivered: int = 0
    missed: int = 0
    reopens: int = 0
    flagged: Counter[str] = field(default_factory=Counter)
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=MEASURE_WINDOW))

    def measured_fps(self) -> float | None:
        if len(self.arrivals) < 2 or self.arrivals[-1] <= self.arrivals[0]:
            return None
        return (len(self.arrivals) - 1) / (self.arrivals[-1] - self.arrivals[0])


class FrameInspector:
    """Turns what a source read into numbered, checked Frames (state: previous frame, clock)."""

    def __init__(self, fps: float) -> None:
        self.clock = FrameClock(fps)
        self.seq = 0
        self.missed_total = 0
        self.previous: np.ndarray | None = None
        self.first_size: tuple[int, int] | None = None

    def inspect(self, raw: RawFrame, expected: tuple[int, int] | None, live: bool) -> Frame:
        now = time.monotonic()
        flags: set[str] = set()
        image = raw.image
        if raw.data is not None:
            image, problem = decode_frame(raw.data)
            if problem:
                flags.add(problem)
        elif image is not None:
            image = to_grey8(image)
        if image is not None:
            if expected is None:
                self.first_size = self.first_size or (image.shape[1], image.shape[0])
                expected = self.first_size
            flags |= frame_flags(image, expected, self.previous)
            self.previous = image
        self.seq += 1
        missed = self.clock.missed(now) if live else 0
        self.missed_total += missed
        return Frame(
            seq=self.seq,
            image=image,
            monotonic=now,
            wall=time.time(),
            missed=missed,
            missed_total=self.missed_total,
            flags=frozenset(flags),
            position=raw.position,
        )
