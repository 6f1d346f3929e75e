"""The daemon's event stream: typed events fanned out to every subscriber, in order.

Events are published on the event loop (threads use `publish_threadsafe`) and
delivered to each subscriber's queue with a running id, which the API sends as
server-sent events. A subscriber that falls hopelessly behind is dropped with a
final `overflow` event rather than slowing the kit down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

EVENT_TYPES = ("assessment", "capture", "end", "device")
SUBSCRIBER_QUEUE = 10_000


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    data: dict[str, Any]


class EventHub:
    """Fan-out of events to subscribers; lives on one event loop."""

    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._next_id = 1
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, event_type: str, data: dict[str, Any]) -> Event:
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        event = Event(self._next_id, event_type, data)
        self._next_id += 1
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._subscribers.discard(queue)
                queue.get_nowait()  # make room for the end marker
                queue.put_nowait(None)
        return event

    def publish_threadsafe(self, event_type: str, data: dict[str, Any]) -> None:
        """Publish from any thread: from a device thread the event is queued on the loop, in
        call order; on the loop itself it is published at once."""
        if self._loop is None:
            raise RuntimeError("EventHub is not bound to a loop")
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            # Already on the loop: publish now, so that a later publish() cannot overtake it.
            self.publish(event_type, data)
        else:
            self._loop.call_soon_threadsafe(self.publish, event_type, data)

    async def subscribe(self) -> AsyncIterator[Event]:
        """Every event published from now on, until the subscriber falls too far behind."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self._subscribers.add(queue)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    return
                yield event
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        """End every subscription (the daemon is stopping)."""
        for queue in list(self._subscribers):
            self._subscribers.discard(queue)
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
