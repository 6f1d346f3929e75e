"""The iris camera's live preview over HTTP: a multipart/x-mixed-replace MJPEG stream.

Each viewer awaits the camera feed's newest frame (kitd.services.iris_feed), which encodes
each frame once for all viewers; a viewer that is slow skips frames and is told how many.
While the camera is away the viewer is sent a plain dark card about once a second (no words:
the page says why, from the device's status, in its own language).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from kitd.errors import EndOfStream
from kitd.services.captures import frame_headers
from kitd.services.iris_feed import IrisFeed

log = logging.getLogger("kitd.capture.iris")

BOUNDARY = "kitframe"
VIEWER_WAIT_S = 1.0  # a viewer with no new frame this long gets a status card instead


def part(body: bytes, headers: dict[str, str]) -> bytes:
    """One part of a multipart/x-mixed-replace stream."""
    lines = [f"--{BOUNDARY}", "Content-Type: image/jpeg", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body + b"\r\n"


async def stream_preview(
    request: web.Request,
    feed: IrisFeed,
    width: int,
    quality: int,
    allowed: Callable[[], Awaitable[bool]] | None = None,
) -> web.StreamResponse:
    """Serve the live preview of `feed`'s camera until the viewer leaves or `allowed()` says
    no more (its caller's sign-in ended: the eye is not shown to whoever holds the screen)."""
    slot = feed.slot
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
            if allowed is not None and not await allowed():
                break
            try:
                frame = await feed.next(last, VIEWER_WAIT_S)
            except EndOfStream:
                frame = None
            if frame is None:
                camera = feed.camera
                ended = camera.ended if camera is not None else None
                await response.write(part(feed.card(width), {}))
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
