"""The kit's events over HTTP: server-sent events `assessment`, `capture`, `end` and `device`,
in the order they happened, as the touch screen and the LEDs follow them.

While nothing happens a comment line (`: keepalive`) goes out every KEEPALIVE_S, so that a
proxy or a client's own timeout does not take a quiet stream for a dead one. A client that
reconnects with `Last-Event-ID: N` first gets the events after N that the hub still keeps,
then the live ones; when some of them are no longer kept (or N is not an id of this run of
the daemon, whose ids start at 1) a `gap` event (no id) says so before anything else. A
client that comes without one is first given the id of the last event before its stream (an
`id:` line and no event), so that even a stream that drops before its first event comes back
with `Last-Event-ID`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from kitd.events import EventHub
from kitd.whole_numbers import SATURATED, whole_number_in

log = logging.getLogger("kitd.api")

KEEPALIVE_S = 15.0
KEEPALIVE = b": keepalive\n\n"
# With a sign-in to watch, an idle stream wakes this often to ask whether it still holds.
STREAM_RECHECK_S = 2.0
IDLE = object()


def _replay(request: web.Request, events: EventHub) -> tuple[int | None, dict | None]:
    """From `Last-Event-ID`: the id to replay after (None: live only) and the gap event's data."""
    text = request.headers.get("Last-Event-ID", "").strip()
    if not text:
        return None, None
    shown = text if len(text) <= 30 else f"{text[:30]}... ({len(text)} characters)"
    after = whole_number_in(text, 0, SATURATED)
    if after is None:
        return None, _gap(shown, events.next_id, "not an event id of this kit: only live events follow")
    replay = events.replay(after)
    return replay.after, None if replay.gap is None else _gap(shown, replay.first, replay.gap)


def _gap(last_event_id: str, first_id: int, reason: str) -> dict:
    return {"last_event_id": last_event_id, "first_id": first_id, "reason": reason}


async def stream_events(
    request: web.Request,
    events: EventHub,
    keepalive_s: float = KEEPALIVE_S,
    allowed: Callable[[], Awaitable[bool]] | None = None,
) -> web.StreamResponse:
    """Send the events missed since `Last-Event-ID` (if any), then every event published from
    now on, until the client leaves, the hub closes or `allowed()` says no more (its caller's
    sign-in ended); a keepalive comment when idle."""
    after, gap = _replay(request, events)
    subscription = events.open(after)  # before any await: no event slips between replay and live
    # A client given no event id yet (live only) is given one now: a stream that drops before
    # its first event then comes back with Last-Event-ID, and is given what it missed (or told
    # of the gap) instead of the live events only. (An SSE block with an id and no data sets
    # the client's last event id and dispatches nothing.)
    seen_up_to = events.next_id - 1 if after is None else None
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    try:
        await response.prepare(request)
        await response.write(b": kitd events\n\n")
        if gap is not None:
            # A screen that often comes back too late to be given what it missed says so here.
            log.info("event stream: a client came back after event %(last_event_id)s: %(reason)s", gap)
            await response.write(f"event: gap\ndata: {json.dumps(gap, separators=(',', ':'))}\n\n".encode())
        if seen_up_to is not None:
            await response.write(f"id: {seen_up_to}\n\n".encode())
        wait_s = keepalive_s if allowed is None else min(keepalive_s, STREAM_RECHECK_S)
        idle_s = 0.0
        while True:
            try:
                event = await asyncio.wait_for(subscription.get(), wait_s)
            except TimeoutError:
                event = IDLE
            if allowed is not None and not await allowed():
                break
            if event is IDLE:
                idle_s += wait_s
                if idle_s >= keepalive_s:
                    idle_s = 0.0
                    await response.write(KEEPALIVE)
                continue
            if event is None:
                break
            idle_s = 0.0
            payload = json.dumps(event.data, separators=(",", ":"))
            await response.write(f"id: {event.id}\nevent: {event.type}\ndata: {payload}\n\n".encode())
    except (ConnectionResetError, RuntimeError):
        pass
    finally:
        subscription.close()
    return response
