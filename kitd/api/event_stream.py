"""The kit's events over HTTP: server-sent events `assessment`, `capture`, `end` and `device`,
in the order they happened, as the touch screen and the LEDs follow them."""

from __future__ import annotations

import json

from aiohttp import web

from kitd.events import EventHub


async def stream_events(request: web.Request, events: EventHub) -> web.StreamResponse:
    """Send every event published from now on until the client leaves or the hub closes."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    await response.write(b": kitd events\n\n")
    async for event in events.subscribe():
        payload = json.dumps(event.data, separators=(",", ":"))
        try:
            await response.write(f"id: {event.id}\nevent: {event.type}\ndata: {payload}\n\n".encode())
        except (ConnectionResetError, RuntimeError):
            break
    return response
