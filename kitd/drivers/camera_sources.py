"""Where the iris camera's frames come from: image sequences, video files, MJPEG over HTTP, V4L2.

A source opens, reads one RawFrame at a time and closes (CameraSource), and says what OpenCV
and the file system said in the kit's own errors: DeviceTimeout on a stall, DeviceGone when
the source vanished, EndOfStream at the end of a file. JPEG and PNG data are taken undecoded
from FFmpeg (or the file), for camera_frames to decode strictly. The size a source expects is
what the camera agreed to (V4L2), `iris.width` x `iris.height` (HTTP), or none (files: the
first frame sets it).

I/O only: it does not judge frames or retry. May import kitd.drivers.camera_frames (RawFrame),
kitd.errors and cv2; never the driver (kitd.drivers.uvc_camera).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol

import cv2
from kitformats.named_files import read_named_file

from kitd.drivers.camera_frames import RawFrame
from kitd.errors import ConfigError, DeviceGone, DeviceTimeout, EndOfStream

# FFmpeg prints its own warnings on stderr (a refused connection, a stream timeout), in the
# middle of the daemon's JSON log lines; the driver reports these itself. OpenCV reads this
# when its FFmpeg backend first opens a stream, not at import (checked with OpenCV 5.0).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

log = logging.getLogger("kitd.camera")

# FFmpeg would otherwise read ahead a few frames while opening and hand them over in a burst,
# which reads as frames missed and then frames early; one packet is enough to learn the size.
# A stream that keeps failing to open is asked why over HTTP at most this often.
PROBE_EVERY_S = 30.0
FFMPEG_LIVE_OPTIONS = "fflags;nobuffer|probesize;32|analyzeduration;0"
# OpenCV takes FFmpeg's options from the process's environment when a capture opens, so they
# are set only around a stream's open: left set, a video file opened later in the daemon (or
# in a kitctl it starts) is probed with 32 bytes and read as no frames at all.
FFMPEG_OPTIONS_VARIABLE = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_FFMPEG_OPTIONS_LOCK = threading.Lock()


def ffmpeg_capture(target: str, options: str | None, params: list[int] | None = None) -> Any:
    """cv2.VideoCapture of `target` through FFmpeg with `options` (none: FFmpeg's defaults),
    the process's environment as it was afterwards."""
    with _FFMPEG_OPTIONS_LOCK:
        before = os.environ.pop(FFMPEG_OPTIONS_VARIABLE, None)
        if options is not None:
            os.environ[FFMPEG_OPTIONS_VARIABLE] = options
        try:
            if params is None:
                return cv2.VideoCapture(target, cv2.CAP_FFMPEG)
            return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        finally:
            os.environ.pop(FFMPEG_OPTIONS_VARIABLE, None)
            if before is not None:
                os.environ[FFMPEG_OPTIONS_VARIABLE] = before


SEQUENCE_FIELD = re.compile(r"%(0?\d*)d")


# ---- image sequences ---------------------------------------------------------------------
def sequence_path(pattern: str, index: int) -> str:
    """The file name of image `index` of a printf-style sequence (one %d field, %% for %)."""
    return pattern % index


def is_sequence(path: str) -> bool:
    return bool(SEQUENCE_FIELD.search(path.replace("%%", "")))


def check_sequence_pattern(path: str) -> None:
    if len(SEQUENCE_FIELD.findall(path.replace("%%", ""))) != 1:
        raise ConfigError(f"image sequence '{path}': expected exactly one %d field, e.g. eye_%03d.png")
    try:
        sequence_path(path, 0)
    except (TypeError, ValueError):
        raise ConfigError(f"image sequence '{path}': not a printf-style pattern") from None


# ---- sources (I/O) -----------------------------------------------------------------------


def http_stream_problem(url: str, timeout_s: float) -> str:
    """Why an MJPEG stream at `url` does not open, as its server answers a plain GET: nothing
    listening, an HTTP error status, a page that is not a stream, or no answer in time."""
    # Straight to the camera: a proxy in the environment is for the internet, not the kit's camera.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as answer:
            kind = answer.headers.get_content_type()
            if kind.startswith("multipart/"):
                return f"the server answers {kind} but sent no frame FFmpeg could read within {timeout_s:g} s"
            return f"the server answers {kind}, not an MJPEG stream: check the camera's URL"
    except urllib.error.HTTPError as exc:
        return f"the server answers HTTP {exc.code} {exc.reason}: check the camera's URL"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError | socket.timeout):
            return f"the server did not answer within {timeout_s:g} s"
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else str(reason)
        return f"nothing answers there ({text.lower()})"
    except (TimeoutError, OSError) as exc:
        return f"the server did not answer properly within {timeout_s:g} s ({exc})"


class CameraSource(Protocol):
    """Where frames come from. `read` raises DeviceTimeout on a stall, DeviceGone when the
    source vanished, EndOfStream at the end of a file."""

    live: bool
    label: str

    def open(self) -> dict[str, Any]: ...

    def read(self) -> RawFrame: ...

    def close(self) -> None: ...

    def nominal_fps(self) -> float: ...

    def expected_size(self) -> tuple[int, int] | None: ...


class SequenceSource:
    """A printf-style image sequence, numbered from 0 or 1, read file by file."""

    live = False

    def __init__(self, pattern: str, loop: bool, fps: float) -> None:
        check_sequence_pattern(pattern)
        self.pattern = pattern
        self.loop = loop
        self.fps = fps
        self.label = f"image sequence {pattern}"
        self.first = 0
        self.index = 0

    def open(self) -> dict[str, Any]:
        for first in (0, 1):
            if os.path.exists(sequence_path(self.pattern, first)):
                self.first = self.index = first
                suffix = Path(self.pattern).suffix.lstrip(".").upper() or "image"
                return {"source": "file", "format": f"{suffix} sequence", "first_index": first}
        raise DeviceGone(
            f"{self.label}: neither {sequence_path(self.pattern, 0)} nor "
            f"{sequence_path(self.pattern, 1)} exists"
        )

    def read(self) -> RawFrame:
        path = sequence_path(self.pattern, self.index)
        try:
            data = read_named_file(path)
        except FileNotFoundError:
            if self.loop and self.index > self.first:
                self.index = self.first
                return self.read()
            raise EndOfStream(
                f"end of stream: {self.label} ends after {self.index - self.first} images"
            ) from None
        except OSError as exc:
            raise DeviceGone(f"{self.label}: cannot read {path}: {exc.strerror}") from None
        raw = RawFrame(data=data, position=self.index)
        self.index += 1
        return raw

    def close(self) -> None:
        pass

    def nominal_fps(self) -> float:
        return self.fps

    def expected_size(self) -> tuple[int, int] | None:
        return None


class CaptureSource:
    """A cv2.VideoCapture: a video file, MJPEG over HTTP, or a V4L2 device."""

    def __init__(
        self,
        target: str,
        *,
        mode: str,
        loop: bool = False,
        size: tuple[int, int] = (640, 480),
        fps: float = 30.0,
        open_timeout_s: float = 2.0,
        read_timeout_s: float = 1.0,
    ) -> None:
        self.target = target
        self.mode = mode  # "file", "http" or "v4l2"
        self.live = mode != "file"
        self.loop = loop
        self.size = size
        self.fps = fps
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.label = {"file": "video file", "http": "MJPEG stream", "v4l2": "camera"}[mode] + f" {target}"
        self.capture: Any = None
        self.raw_packets = False
        self.negotiated: tuple[int, int] | None = None
        self.position = 0
        self._probed: tuple[float, str] | None = None  # when the server was last asked, and what it said

    def _why_not_open(self) -> str:
        """http_stream_problem, asked at most once per PROBE_EVERY_S: a reopen loop's each
        failure would wait for the server again."""
        now = time.monotonic()
        if self._probed is None or now - self._probed[0] >= PROBE_EVERY_S:
            self._probed = (now, http_stream_problem(self.target, self.open_timeout_s))
        return self._probed[1]

    def _timeouts(self) -> list[int]:
        return [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            int(self.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            int(self.read_timeout_s * 1000),
        ]

    def open(self) -> dict[str, Any]:
        self.close()
        self.position = 0
        if self.mode == "file":
            if not os.path.exists(self.target):
                raise DeviceGone(f"{self.label}: no such file")
            capture = ffmpeg_capture(self.target, None)
        elif self.mode == "http":
            capture = ffmpeg_capture(self.target, FFMPEG_LIVE_OPTIONS, self._timeouts())
        else:
            if not os.path.exists(self.target):
                raise DeviceGone(f"{self.label}: no such device")
            capture = cv2.VideoCapture(self.target, cv2.CAP_V4L2, self._timeouts())
        if not capture.isOpened():
            capture.release()
            # FFmpeg says only that it failed: asked over HTTP, the server says why.
            why = f": {self._why_not_open()}" if self.mode == "http" else ""
            raise DeviceGone(f"{self.label}: cannot open{why}")
        self.capture = capture
        if self.mode == "http":
            # Undecoded packets, so that a corrupt JPEG is found here rather than concealed.
            self.raw_packets = bool(capture.set(cv2.CAP_PROP_FORMAT, -1))
            self.negotiated = self.size
            return {"source": "http", "format": "MJPEG", "width": self.size[0], "height": self.size[1]}
        if self.mode == "v4l2":
            return self._negotiate_v4l2(capture)
        self.raw_packets = False
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC))
        return {
            "source": "file",
            "format": fourcc.to_bytes(4, "little").decode("latin-1").strip("\0 ").upper() or "video",
            "frames": int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
        }

    def _negotiate_v4l2(self, capture: Any) -> dict[str, Any]:
        # Exercised on a kit only: these machines have no video device.
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("latin-1")
        if fourcc == "MJPG":
            self.raw_packets = bool(capture.set(cv2.CAP_PROP_CONVERT_RGB, 0))
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.negotiated = (width, height)
        fps = capture.get(cv2.CAP_PROP_FPS)
        if fps > 0:
            self.fps = fps
        if self.negotiated != self.size:
            log.warning("%s: asked %dx%d, camera gave %dx%d", self.label, *self.size, width, height)
        return {"source": "v4l2", "format": fourcc.strip(), "width": width, "height": height, "fps": self.fps}

    def read(self) -> RawFrame:
        if self.capture is None:
            raise DeviceGone(f"{self.label}: not open")
        ok, data = self.capture.read()
        if not ok or data is None:
            if not self.live:
                if self.loop and self.position > 0:
                    self.open()
                    return self.read()
                raise EndOfStream(f"end of stream: {self.label} ends after {self.position} frames")
            raise DeviceTimeout(f"{self.label}: no frame in {self.read_timeout_s:g} s (stalled or closed)")
        position = self.position
        self.position += 1
        if self.raw_packets:
            return RawFrame(data=data.tobytes(), position=None if self.live else position)
        return RawFrame(image=data, position=None if self.live else position)

    def close(self) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None

    def nominal_fps(self) -> float:
        if self.mode == "file" and self.capture is not None:
            fps = self.capture.get(cv2.CAP_PROP_FPS)
            if fps and fps > 0:
                return float(fps)
        return self.fps

    def expected_size(self) -> tuple[int, int] | None:
        return self.negotiated


def v4l2_name(device: str) -> str | None:
    """The camera's name as the kernel reports it (/sys/class/video4linux/videoN/name)."""
    try:
        return Path(f"/sys/class/video4linux/{Path(device).name}/name").read_text().strip() or None
    except OSError:
        return None
