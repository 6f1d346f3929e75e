"""The iris camera through OpenCV: sources, frame integrity checks, and a reader that keeps the newest frame.

Sources, named by URI and taken literally (no percent-decoding, so `%03d` survives):

    camera:/dev/videoN              V4L2: asks for the configured size and rate, MJPEG or grey
    camera:http://HOST:PORT/PATH    MJPEG over HTTP, demuxed by FFmpeg
    camera:file:PATH[?loop=1]       a video file, or a printf-style image sequence (eye_%03d.png,
                                    numbered from 0 or 1) for replay; it ends ("end of stream")
                                    at the last frame unless loop=1

OpenCV reports neither dropped nor corrupt frames, so the driver checks each frame itself
(pure functions in kitd.drivers.camera_frames): JPEG and PNG data are taken undecoded from
FFmpeg (or the file) and decoded there strictly, so a truncated or corrupt frame is marked `truncated` or
`undecodable` instead of arriving as garbage. A frame whose size differs from the negotiated
one (V4L2: what the camera agreed to; HTTP: `iris.width` x `iris.height`; files: the first
frame) is `wrong_size`; `black` and `saturated` use thresholds that suit dim near-infrared
images (see BLACK_* and SATURATED_*); a frame identical to the one before is `repeated`, and
a live stream that repeats itself for `iris.read_timeout_s` is frozen and reopened. Frames are
8-bit grey numpy arrays with a sequence number, a capture time and the number of frames
missed before them, estimated from arrival times and the nominal rate (a camera numbers
nothing). The reader thread keeps only the newest frame; a slow consumer skips frames
(`FrameCursor` counts them) instead of making them pile up. A stalled or vanished live stream
is released and reopened with backoff.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2

from kitd.drivers.camera_frames import Frame, FrameInspector, RawFrame, StreamStats
from kitd.drivers.facts import DeviceFacts
from kitd.errors import ConfigError, DeviceGone, DeviceTimeout, EndOfStream

# FFmpeg prints its own warnings on stderr (a refused connection, a stream timeout), in the
# middle of the daemon's JSON log lines; the driver reports these itself. OpenCV reads this
# when its FFmpeg backend first opens a stream, not at import (checked with OpenCV 5.0).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

log = logging.getLogger("kitd.camera")

# FFmpeg would otherwise read ahead a few frames while opening and hand them over in a burst,
# which reads as frames missed and then frames early; one packet is enough to learn the size.
FFMPEG_LIVE_OPTIONS = "fflags;nobuffer|probesize;32|analyzeduration;0"

SEQUENCE_FIELD = re.compile(r"%(0?\d*)d")


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
            data = Path(path).read_bytes()
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
            capture = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG)
        elif self.mode == "http":
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = FFMPEG_LIVE_OPTIONS
            capture = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, self._timeouts())
        else:
            if not os.path.exists(self.target):
                raise DeviceGone(f"{self.label}: no such device")
            capture = cv2.VideoCapture(self.target, cv2.CAP_V4L2, self._timeouts())
        if not capture.isOpened():
            capture.release()
            raise DeviceGone(f"{self.label}: cannot open")
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


# ---- the driver ------------------------------------------------------------------------
class IrisCamera:
    """The iris camera: one source, a reader thread, the newest frame and the stream's state."""

    kind = "iris_camera"

    def __init__(
        self,
        source: CameraSource,
        *,
        read_timeout_s: float = 1.0,
        reconnect_min_s: float = 0.2,
        reconnect_max_s: float = 1.0,
        model: str | None = None,
    ) -> None:
        self.source = source
        self.read_timeout_s = read_timeout_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.model = model or ("UVC camera" if source.live else "replay")
        self.stats = StreamStats()
        self._inspector: FrameInspector | None = None
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._subscribers: list[Callable[[Frame], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opened = False
        self._state = ("disconnected", "not opened yet", time.time())
        self._format: dict[str, Any] = {}
        self._ended: str | None = None

    # -- state --
    def _set_state(self, status: str, reason: str) -> None:
        if (status, reason) != self._state[:2]:
            if status != self._state[0]:
                level = logging.INFO if status == "ready" else logging.WARNING
                log.log(level, "%s is %s: %s", self.source.label, status, reason)
            self._state = (status, reason, time.time())

    def live_status(self) -> tuple[str, str, float]:
        """(status, reason, since): ready while frames flow, disconnected while reopening."""
        return self._state

    def live_detail(self) -> dict[str, Any]:
        fps = self.stats.measured_fps()
        latest = self._latest
        return {
            **self._format,
            "nominal_fps": round(self.source.nominal_fps(), 3),
            "measured_fps": None if fps is None else round(fps, 2),
            "frames_delivered": self.stats.delivered,
            "frames_missed": self.stats.missed,
            "frames_flagged": dict(self.stats.flagged),
            "reopens": self.stats.reopens,
            "last_frame_seq": latest.seq if latest else None,
            "ended": self._ended,
        }

    # -- driver interface used by the daemon's device slot --
    def open(self) -> DeviceFacts:
        """Open the source once (DeviceGone if it cannot be) and start the reader thread."""
        if self._thread is not None and self._thread.is_alive():
            return self._facts()
        self._format = self.source.open()
        self._opened = True
        self._ended = None
        self._inspector = self._inspector or FrameInspector(self.source.nominal_fps())
        self._stop.clear()
        self._set_state("ready", "streaming")
        self._thread = threading.Thread(target=self._read_loop, name="camera-reader", daemon=True)
        self._thread.start()
        return self._facts()

    def _facts(self) -> DeviceFacts:
        model = self.model
        if isinstance(self.source, CaptureSource) and self.source.mode == "v4l2":
            model = v4l2_name(self.source.target) or model
        return DeviceFacts(model=model, serial=None, firmware=None, detail=dict(self._format))

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            # The reader may be inside an open or a read that only its timeout ends.
            thread.join(timeout=self.read_timeout_s + 5.0)
        self._thread = None
        if self._opened:
            self.source.close()
            self._opened = False
        with self._cond:
            self._cond.notify_all()

    def is_present(self) -> bool:
        # The reader reopens the stream by itself; the slot need not close and reopen it.
        return True

    # -- frames --
    def frames(self) -> Iterator[Frame]:
        """Every frame of the source in order, without a reader thread (replay); ends with the source."""
        self._format = self.source.open()
        inspector = FrameInspector(self.source.nominal_fps())
        try:
            while True:
                try:
                    raw = self.source.read()
                except EndOfStream:
                    return
                yield inspector.inspect(raw, self.source.expected_size(), self.source.live)
        finally:
            self.source.close()

    def subscribe(self, callback: Callable[[Frame], None]) -> Callable[[], None]:
        """Call `callback(frame)` on the reader thread for each frame (keep it short); returns unsubscribe."""
        with self._cond:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._cond:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def latest(self) -> Frame | None:
        return self._latest

    @property
    def ended(self) -> str | None:
        """Why a replay ended (None while it runs, and always for a live source)."""
        return self._ended

    def wait_frame(self, after_seq: int, timeout_s: float, cancel: threading.Event | None = None) -> Frame:
        """The newest frame numbered above `after_seq`; DeviceTimeout or EndOfStream if none comes."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                latest = self._latest
                if latest is not None and latest.seq > after_seq:
                    return latest
                if self._ended:
                    raise EndOfStream(self._ended)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (cancel is not None and cancel.is_set()):
                    status, reason, _ = self._state
                    state = "" if status == "ready" else f" (stream {status}: {reason})"
                    raise DeviceTimeout(f"no frame from {self.source.label} within {timeout_s:g} s{state}")
                self._cond.wait(min(remaining, 0.25))

    def next_intact(self, timeout_s: float, cancel: threading.Event | None = None) -> Frame:
        """The next intact frame to arrive; DeviceTimeout naming what was wrong with the others."""
        deadline = time.monotonic() + timeout_s
        latest = self._latest
        after = latest.seq if latest else 0
        seen: Counter[str] = Counter()
        while True:
            remaining = deadline - time.monotonic()
            try:
                frame = self.wait_frame(after, max(remaining, 0.0), cancel)
            except DeviceTimeout as exc:
                if seen:
                    flags = ", ".join(f"{n} {flag}" for flag, n in seen.most_common())
                    raise DeviceTimeout(f"{exc}; frames seen but not intact: {flags}") from None
                raise
            if frame.intact:
                return frame
            seen.update(frame.flags or {"undecodable"})
            after = frame.seq

    # -- the reader thread --
    def _publish(self, frame: Frame) -> None:
        stats = self.stats
        stats.delivered += 1
        stats.missed += frame.missed
        stats.flagged.update(frame.flags)
        stats.arrivals.append(frame.monotonic)
        with self._cond:
            self._latest = frame
            subscribers = list(self._subscribers)
            self._cond.notify_all()
        for callback in subscribers:
            try:
                callback(frame)
            except Exception:  # noqa: BLE001 - a consumer's bug must not stop the camera
                log.exception("frame subscriber failed")

    def _read_loop(self) -> None:
        assert self._inspector is not None
        source = self.source
        delay = self.reconnect_min_s
        pace = 1.0 / source.nominal_fps()
        next_due = time.monotonic()
        repeated_since: float | None = None
        while not self._stop.is_set():
            if not self._opened:
                try:
                    self._format = source.open()
                except (DeviceGone, DeviceTimeout) as exc:
                    self._set_state("disconnected", f"reopening in {delay:g} s: {exc}")
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.reconnect_max_s)
                    continue
                self._opened = True
                self.stats.reopens += 1
                delay = self.reconnect_min_s
                self._set_state("ready", "streaming again")
            try:
                raw = source.read()
            except EndOfStream as exc:
                self._ended = str(exc)
                self._set_state("disconnected", str(exc))
                with self._cond:
                    self._cond.notify_all()
                return
            except (DeviceGone, DeviceTimeout) as exc:
                self._release(f"stalled, reopening: {exc}")
                continue
            frame = self._inspector.inspect(raw, source.expected_size(), source.live)
            if frame.image is not None and source.live:
                if "repeated" in frame.flags:
                    repeated_since = repeated_since or frame.monotonic
                    if frame.monotonic - repeated_since >= self.read_timeout_s:
                        repeated_since = None
                        self._release(f"frozen: identical frames for {self.read_timeout_s:g} s, reopening")
                else:
                    repeated_since = None
            self._publish(frame)
            if not source.live:
                # A file replays at its nominal rate, like a camera, instead of racing through.
                next_due = max(next_due + pace, time.monotonic() - pace)
                self._stop.wait(max(0.0, next_due - time.monotonic()))
        if self._opened:
            source.close()
            self._opened = False

    def _release(self, reason: str) -> None:
        self.source.close()
        self._opened = False
        self._set_state("disconnected", reason)


class FrameCursor:
    """A consumer's place in the stream: takes the newest frame each time, counting what it skipped."""

    def __init__(self, camera: IrisCamera) -> None:
        self.camera = camera
        latest = camera.latest()
        self.last_seq = latest.seq if latest else 0
        self.skipped = 0
        self.taken = 0

    def next(self, timeout_s: float, cancel: threading.Event | None = None) -> Frame:
        frame = self.camera.wait_frame(self.last_seq, timeout_s, cancel)
        if self.taken:
            self.skipped += frame.seq - self.last_seq - 1
        self.taken += 1
        self.last_seq = frame.seq
        return frame


# ---- URIs ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CameraTarget:
    """What a camera: URI names: mode (v4l2, http, file), the path or URL, and loop."""

    mode: str
    target: str
    loop: bool = False


def parse_camera_target(text: str, target: str, params: dict[str, str]) -> CameraTarget:
    """Classify a camera URI's target (taken literally); ConfigError naming the URI when wrong."""
    if target.startswith("file:"):
        path = target[len("file:") :]
        unknown = set(params) - {"loop"}
        if unknown:
            raise ConfigError(f"device URI '{text}': unknown parameter '{sorted(unknown)[0]}' (known: loop)")
        loop = params.get("loop", "0")
        if loop not in ("0", "1"):
            raise ConfigError(f"device URI '{text}': loop must be 0 or 1, got '{loop}'")
        if not path:
            raise ConfigError(f"device URI '{text}': expected camera:file:PATH")
        if is_sequence(path):
            check_sequence_pattern(path)
        return CameraTarget("file", path, loop == "1")
    if target.startswith(("http://", "https://")):
        # The URL's own query belongs to the server; hand it back unchanged.
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return CameraTarget("http", f"{target}?{query}" if query else target)
    if target.startswith("/dev/"):
        if params:
            raise ConfigError(f"device URI '{text}': unknown parameter '{sorted(params)[0]}'")
        return CameraTarget("v4l2", target)
    raise ConfigError(
        f"device URI '{text}': expected camera:/dev/videoN, camera:http://HOST:PORT/PATH or camera:file:PATH"
    )


def make_camera(
    where: CameraTarget,
    *,
    size: tuple[int, int] = (640, 480),
    fps: float = 30.0,
    open_timeout_s: float = 2.0,
    read_timeout_s: float = 1.0,
    reconnect_min_s: float = 0.2,
    reconnect_max_s: float = 1.0,
) -> IrisCamera:
    """A driver (not yet opened) for a classified camera target."""
    source: CameraSource
    if where.mode == "file" and is_sequence(where.target):
        source = SequenceSource(where.target, where.loop, fps)
    else:
        source = CaptureSource(
            where.target,
            mode=where.mode,
            loop=where.loop,
            size=size,
            fps=fps,
            open_timeout_s=open_timeout_s,
            read_timeout_s=read_timeout_s,
        )
    model = {"http": "MJPEG stream", "file": "replay"}.get(where.mode)
    return IrisCamera(
        source,
        read_timeout_s=read_timeout_s,
        reconnect_min_s=reconnect_min_s,
        reconnect_max_s=reconnect_max_s,
        model=model,
    )
