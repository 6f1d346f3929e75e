"""The iris camera driver: one source, a reader thread that keeps the newest frame, and camera: URIs.

Sources, named by URI and taken literally (no percent-decoding, so `%03d` survives):

    camera:/dev/videoN              V4L2: asks for the configured size and rate, MJPEG or grey
    camera:http://HOST:PORT/PATH    MJPEG over HTTP, demuxed by FFmpeg
    camera:file:PATH[?loop=1]       a video file, or a printf-style image sequence (eye_%03d.png,
                                    numbered from 0 or 1) for replay; it ends ("end of stream")
                                    at the last frame unless loop=1

OpenCV reports neither dropped nor corrupt frames, so the reader thread checks and numbers
each frame a source (kitd.drivers.camera_sources) delivers with kitd.drivers.camera_frames,
and keeps only the newest: a slow consumer skips frames (`FrameCursor` counts them) instead of
making them pile up. A live stream that repeats itself for `iris.read_timeout_s` is frozen
and reopened; a stalled or vanished live stream is released and reopened with backoff
(`devices.reconnect_min_s` doubling up to `devices.reconnect_max_s`, kitd.drivers.backoff).

May import kitd.drivers.camera_sources, camera_frames, backoff, facts and kitd.errors.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from kitd.drivers.backoff import Backoff
from kitd.drivers.camera_frames import Frame, FrameInspector, StreamStats, describe_flags
from kitd.drivers.camera_sources import (
    CameraSource,
    CaptureSource,
    SequenceSource,
    check_sequence_pattern,
    is_sequence,
    v4l2_name,
)
from kitd.drivers.facts import DeviceFacts
from kitd.errors import ConfigError, DeviceGone, DeviceTimeout, EndOfStream

log = logging.getLogger("kitd.camera")

# Seconds a reopened stream must keep delivering before its next loss reopens at once again.
STEADY_S = 5.0


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

    def wait_frame(
        self,
        after_seq: int,
        timeout_s: float,
        cancel: threading.Event | None = None,
        waited_s: float | None = None,
    ) -> Frame:
        """The newest frame numbered above `after_seq`; DeviceTimeout or EndOfStream if none comes.
        `waited_s`: the wait the timeout's message names, when this is the rest of a longer one."""
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
                    said = timeout_s if waited_s is None else waited_s
                    raise DeviceTimeout(f"no frame from {self.source.label} within {said:g} s{state}")
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
                frame = self.wait_frame(after, max(remaining, 0.0), cancel, waited_s=timeout_s)
            except DeviceTimeout as exc:
                if seen:
                    raise DeviceTimeout(
                        f"{exc}; frames seen but not intact: {describe_flags(seen)}"
                    ) from None
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
        backoff = Backoff(self.reconnect_min_s, self.reconnect_max_s)
        pace = 1.0 / source.nominal_fps()
        next_due = time.monotonic()
        repeated_since: float | None = None
        opened_at: float | None = None  # until the stream has held STEADY_S: then backoff resets
        while not self._stop.is_set():
            if not self._opened:
                try:
                    self._format = source.open()
                except (DeviceGone, DeviceTimeout) as exc:
                    delay = backoff.next_delay()
                    self._set_state("disconnected", f"reopening in {delay:g} s: {exc}")
                    self._stop.wait(delay)
                    continue
                self._opened = True
                self.stats.reopens += 1
                opened_at = time.monotonic()
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
                # A stream that opens and dies again at once waits longer each time (else it
                # reopens several times a second, two log lines each).
                delay = backoff.next_delay()
                self._release(f"stalled, reopening in {delay:g} s: {exc}")
                self._stop.wait(delay)
                continue
            if opened_at is not None and time.monotonic() - opened_at >= STEADY_S:
                backoff.reset()
                opened_at = None
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
        # A frame from before a disconnection is never taken or shown again as if it were now.
        with self._cond:
            self._latest = None
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


def _url_problem(url: str) -> str | None:
    """What keeps `url` from being one an HTTP client can open, or None: a space or a control
    character, an unclosed [IPv6], no host, a port that is none."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return "the URL has a space or a control character in it"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a URL ({exc})"
    if not parts.hostname:
        return "the URL names no host"
    if port == 0:
        return "the URL's port 0 is not a port"
    return None


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
        problem = _url_problem(target)
        if problem:
            raise ConfigError(f"device URI '{text}': {problem}")
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
