"""Iris capture and the live preview: the daemon's asyncio view of a camera's stream.

An `IrisFeed` per camera slot is told of each frame by the driver's reader thread and lets
any number of coroutines await the newest one without a thread each: the capture endpoint
(next intact frame) and every preview viewer. The preview is an MJPEG stream scaled for the
7" screen; each frame is scaled and encoded once, on the feed's own thread, whatever the
number of viewers, and overlays registered in PREVIEW_OVERLAYS (circles, a score, a message
from the quality checks) are drawn on it first. A viewer that is slow skips frames and is
told how many. Nothing here writes a frame to disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import numpy as np
from aiohttp import web

from kitd.capture.fingerprint import encode_png
from kitd.devices import DeviceSlot
from kitd.drivers.camera_frames import Frame
from kitd.errors import DeviceGone, DeviceTimeout, EndOfStream

log = logging.getLogger("kitd.capture.iris")

BOUNDARY = "kitframe"
VIEWER_WAIT_S = 1.0  # a viewer with no new frame this long gets a status card instead

# Drawn on every preview frame, in order: overlay(image, frame, scale) with `image` the scaled
# BGR preview (draw in place) and `scale` preview pixels per camera pixel.
Overlay = Callable[[np.ndarray, Frame, float], None]
PREVIEW_OVERLAYS: list[Overlay] = []


def render_preview(
    image: np.ndarray, frame: Frame, width: int, quality: int, overlays: list[Overlay]
) -> bytes:
    """One preview JPEG: scaled down to `width` (never up), overlays drawn, encoded."""
    height_in, width_in = image.shape[:2]
    scale = min(1.0, width / width_in)
    if scale < 1.0:
        size = (max(1, round(width_in * scale)), max(1, round(height_in * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if overlays:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        for overlay in overlays:
            overlay(image, frame, scale)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("could not encode the preview frame")
    return data.tobytes()


def render_card(width: int, lines: list[str]) -> bytes:
    """A dark card with a message (officer's words: Bahasa Indonesia first, then English)."""
    height = width * 3 // 4
    card = np.full((height, width), 24, np.uint8)
    scale = width / 640
    for i, line in enumerate(lines):
        y = int(height / 2 + (i - (len(lines) - 1) / 2) * 48 * scale)
        size = 1.1 * scale if i == 0 else 0.8 * scale
        (w, _), _ = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, size, 2)
        cv2.putText(card, line, ((width - w) // 2, y), cv2.FONT_HERSHEY_SIMPLEX, size, 230, 2, cv2.LINE_AA)
    ok, data = cv2.imencode(".jpg", card, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return data.tobytes()


def card_lines(status: str, reason: str, ended: str | None) -> list[str]:
    if ended:
        return ["Rekaman selesai", "Replay ended"]
    if status == "ready":
        return ["Menunggu gambar kamera...", "Waiting for the camera..."]
    return ["Kamera iris tidak tersambung", "Iris camera not connected"]


def part(body: bytes, headers: dict[str, str]) -> bytes:
    """One part of a multipart/x-mixed-replace stream."""
    lines = [f"--{BOUNDARY}", "Content-Type: image/jpeg", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body + b"\r\n"


def frame_headers(frame: Frame) -> dict[str, str]:
    """What a client may know of a frame: its number, time, losses and flags (no pixels)."""
    return {
        "X-Frame-Seq": str(frame.seq),
        "X-Frame-Time": f"{frame.wall:.3f}",
        "X-Frame-Missed": str(frame.missed),
        "X-Frame-Missed-Total": str(frame.missed_total),
        "X-Frame-Flags": ",".join(sorted(frame.flags)),
    }


class IrisFeed:
    """The newest frame of one camera slot, awaitable; shared preview encoding."""

    def __init__(self, slot: DeviceSlot) -> None:
        self.slot = slot
        self.viewers = 0
        self.closed = asyncio.Event()
        self._camera: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._latest: Frame | None = None
        self._next: asyncio.Future[Frame] | None = None
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"preview-{slot.id}")
        self._encoded: tuple[int, asyncio.Future[bytes]] | None = None
        self._cards: dict[tuple[int, tuple[str, ...]], bytes] = {}

    def _attach(self) -> Any:
        camera = self.slot.driver
        if camera is not None and camera is not self._camera:
            if self._unsubscribe is not None:
                self._unsubscribe()
            self._loop = asyncio.get_running_loop()
            self._camera = camera
            self._latest = camera.latest()
            self._unsubscribe = camera.subscribe(self._from_reader)
        return camera

    def _from_reader(self, frame: Frame) -> None:
        # On the camera's reader thread: hand the frame to the event loop and return at once.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._arrived, frame)
            except RuntimeError:
                pass  # the loop closed meanwhile: the daemon is stopping

    def _arrived(self, frame: Frame) -> None:
        self._latest = frame
        waiting, self._next = self._next, None
        if waiting is not None and not waiting.done():
            waiting.set_result(frame)

    async def next(self, after_seq: int, timeout_s: float) -> Frame | None:
        """The newest frame numbered above `after_seq`, or None after `timeout_s`; EndOfStream at the end."""
        camera = self._attach()
        latest = self._latest
        if latest is not None and latest.seq > after_seq:
            return latest
        if camera is not None and camera.ended:
            raise EndOfStream(camera.ended)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(asyncio.shield(self._next), timeout_s)
        except TimeoutError:
            return None

    async def next_intact(self, timeout_s: float) -> Frame:
        """The next intact frame to arrive; DeviceTimeout saying what the others were."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        latest = self._latest if self._attach() is not None else None
        after = latest.seq if latest else 0
        seen: Counter[str] = Counter()
        while (remaining := deadline - loop.time()) > 0:
            frame = await self.next(after, remaining)
            if frame is None:
                break
            if frame.intact:
                return frame
            seen.update(frame.flags)
            after = frame.seq
        status, reason, _ = self.slot.current()
        why = f"no intact frame from {self.slot.id} within {timeout_s:g} s"
        if status != "ready":
            why += f" (camera {status}: {reason})"
        if seen:
            why += "; frames seen: " + ", ".join(f"{n} {flag}" for flag, n in seen.most_common())
        raise DeviceTimeout(why)

    async def preview(self, frame: Frame, width: int, quality: int) -> bytes:
        """The frame's preview JPEG, encoded once however many viewers ask."""
        if self._encoded is None or self._encoded[0] != frame.seq:
            assert frame.image is not None
            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(
                self._encoder, render_preview, frame.image, frame, width, quality, list(PREVIEW_OVERLAYS)
            )
            self._encoded = (frame.seq, asyncio.ensure_future(job))
        return await asyncio.shield(self._encoded[1])

    def card(self, width: int, lines: list[str]) -> bytes:
        key = (width, tuple(lines))
        if key not in self._cards:
            self._cards[key] = render_card(width, lines)
        return self._cards[key]

    def close(self) -> None:
        self.closed.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._encoder.shutdown(wait=False, cancel_futures=True)


_FEEDS: weakref.WeakKeyDictionary[DeviceSlot, IrisFeed] = weakref.WeakKeyDictionary()


def feed_for(slot: DeviceSlot) -> IrisFeed:
    feed = _FEEDS.get(slot)
    if feed is None:
        feed = _FEEDS[slot] = IrisFeed(slot)
    return feed


def close_feeds() -> None:
    """End every preview stream (the daemon is stopping)."""
    for feed in list(_FEEDS.values()):
        feed.close()


async def capture_intact_png(slot: DeviceSlot, timeout_s: float) -> tuple[Frame, bytes]:
    """The next intact frame of a camera slot and its PNG (8-bit grey, lossless)."""
    if slot.status != "ready":
        raise DeviceGone(f"device {slot.id} is {slot.status}: {slot.reason}")
    frame = await feed_for(slot).next_intact(timeout_s)
    png = await asyncio.get_running_loop().run_in_executor(None, encode_png, frame.image)
    return frame, png


async def stream_preview(
    request: web.Request, slot: DeviceSlot, width: int, quality: int
) -> web.StreamResponse:
    """Serve the live preview of `slot` as multipart/x-mixed-replace until the viewer leaves."""
    feed = feed_for(slot)
    response = web.StreamResponse(
        headers={
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
        }
    )
    await response.prepare(request)
    feed.viewers += 1
    log.info("preview viewer joined %s (%d watching)", slot.id, feed.viewers)
    last = last_shown = shown = skipped = 0
    try:
        while not feed.closed.is_set():
            try:
                frame = await feed.next(last, VIEWER_WAIT_S)
            except EndOfStream:
                frame = None
            if frame is None:
                status, reason, _ = slot.current()
                camera = slot.driver
                ended = camera.ended if camera is not None else None
                await response.write(part(feed.card(width, card_lines(status, reason, ended)), {}))
                if ended:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(feed.closed.wait(), VIEWER_WAIT_S)
                continue
            last = frame.seq
            if frame.image is None:
                continue  # undecodable: nothing to show; counted as skipped with the next one shown
            if shown:
                skipped += frame.seq - last_shown - 1
            body = await feed.preview(frame, width, quality)
            await response.write(part(body, {**frame_headers(frame), "X-Frame-Skipped": str(skipped)}))
            shown += 1
            last_shown = frame.seq
    except ConnectionError:
        pass  # the viewer went away
    finally:
        feed.viewers -= 1
        log.info(
            "preview viewer left %s after %d frames, %d skipped",
            slot.id,
            shown,
            skipped,
            extra={"device": slot.id, "shown": shown, "skipped": skipped},
        )
    return response


def take_intact_frame(camera: Any, timeout_s: float) -> Frame:
    """Without the daemon: the first intact frame of a replayed file, or the next one of a live camera.

    The caller closes the camera. EndOfStream when a file holds no intact frame (saying what
    its frames were), DeviceTimeout when a live camera sends none in time.
    """
    if camera.source.live:
        camera.open()
        return camera.next_intact(timeout_s)
    seen: Counter[str] = Counter()
    for frame in camera.frames():
        if frame.intact:
            return frame
        seen.update(frame.flags)
    flags = ", ".join(f"{n} {flag}" for flag, n in seen.most_common()) or "no frames at all"
    raise EndOfStream(f"{camera.source.label}: no intact frame ({flags})")
