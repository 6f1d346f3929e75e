"""The daemon's asyncio view of one iris camera: the newest frame, awaitable, and the preview
encoded once per frame for every viewer.

An `IrisFeed` per camera slot is told of each frame by the driver's reader thread and lets
any number of coroutines await the newest one without a thread each. Each frame is scaled
and encoded once, on the feed's own thread, whatever the number of viewers, with the feed's
overlays drawn first: the quality overlay (the assessor's circles and eyelids; no words, which
the page draws from the API). The gate and the sessions ask the same overlay for a frame's
report, so a frame is judged once. Nothing here writes a frame to disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from kitd.capture.iris_overlay import IrisQualityOverlay
from kitd.capture.iris_preview import Overlay, render_card, render_preview
from kitd.drivers.base import FrameStream
from kitd.drivers.camera_frames import Frame
from kitd.errors import EndOfStream
from kitd.services.slots import DeviceSlot


class IrisFeed:
    """The newest frame of one camera slot, awaitable; shared preview encoding."""

    def __init__(
        self, slot: DeviceSlot, thresholds: Mapping[str, float] | None = None, judge_fps: float = 0.0
    ) -> None:
        self.slot = slot
        self.viewers = 0
        self.closed = asyncio.Event()
        # The quality overlay of this camera's preview, and the judge the gate and the
        # sessions on this camera ask.
        self.quality = IrisQualityOverlay(thresholds, judge_fps)
        self.overlays: list[Overlay] = [self.quality]
        self._camera: FrameStream | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._latest: Frame | None = None
        self._next: asyncio.Future[Frame] | None = None
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"preview-{slot.id}")
        self._encoded: tuple[int, asyncio.Future[bytes]] | None = None
        self._cards: dict[int, bytes] = {}

    @property
    def camera(self) -> FrameStream | None:
        """The slot's camera driver, once made (a feed is only made for an iris camera's slot)."""
        # No isinstance against the runtime Protocol here: it is asked for every frame of every
        # viewer, and a Protocol check walks all its members each time.
        return cast(FrameStream | None, self.slot.driver)

    def _attach(self) -> FrameStream | None:
        camera = self.camera
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
        if camera is not None and camera.latest() is None:
            self._latest = None  # the stream went away: what came before it is not shown again
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

    async def preview(self, frame: Frame, width: int, quality: int) -> bytes:
        """The frame's preview JPEG, encoded once however many viewers ask."""
        if self._encoded is None or self._encoded[0] != frame.seq:
            assert frame.image is not None
            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(
                self._encoder, render_preview, frame.image, frame, width, quality, list(self.overlays)
            )
            self._encoded = (frame.seq, asyncio.ensure_future(job))
        return await asyncio.shield(self._encoded[1])

    def card(self, width: int) -> bytes:
        """The plain dark card shown while there is no frame, encoded once per width."""
        if width not in self._cards:
            self._cards[width] = render_card(width)
        return self._cards[width]

    def close(self) -> None:
        self.closed.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._encoder.shutdown(wait=False, cancel_futures=True)
