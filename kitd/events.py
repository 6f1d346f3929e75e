"""The daemon's event stream: typed events fanned out to every subscriber, in order.

Events are published on the event loop (threads use `publish_threadsafe`) and
delivered to each subscriber's queue with a running id, which the API sends as
server-sent events. A subscriber that falls hopelessly behind is dropped with a
final `overflow` event rather than slowing the kit down.

The hub keeps the last events (api.replay_events, REPLAY_EVENTS by default; live-only ones
never), so that a client that reconnects (SSE's `Last-Event-ID`) first gets what it missed,
if the hub still has it, and then the live ones. Ids start at 1 each time the daemon starts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

EVENT_TYPES = (
    "assessment",
    "capture",
    "end",
    "device",
    "visit",
    "panel",
    "ink",
    "pairing",
    "clock",
    "order_withdrawn",
    "guided",
)
SUBSCRIBER_QUEUE = 10_000
REPLAY_EVENTS = 1000  # kept for clients that reconnect; fewer than a subscriber's queue holds
# Sent live and never kept for a replay: a signature's pen points are biometric, and a
# caller reconnecting later (another officer's, after the session) must not get them. Any
# other event published with `live_only` (a guided test's state carrying its pen's points) too.
LIVE_ONLY = frozenset({"ink"})


@dataclass(frozen=True)
class Event:
    id: int
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Replay:
    """What a subscriber that last saw event `last_seen` is given again: the kept events above
    `after`, the first of them `first`; `gap` says why some it did not see are not among them."""

    after: int
    first: int
    gap: str | None


class Subscription:
    """One subscriber's queue of events; `None` from `get` ends it (overflow or the hub closing)."""

    def __init__(self, queue: asyncio.Queue[Event | None], on_close: Callable[[], None]) -> None:
        self._queue = queue
        self._on_close = on_close

    async def get(self) -> Event | None:
        """The next event (None: no more). Safe to cancel, e.g. under asyncio.wait_for."""
        return await self._queue.get()

    def close(self) -> None:
        self._on_close()


class EventHub:
    """Fan-out of events to subscribers; lives on one event loop."""

    def __init__(self, replay_events: int = REPLAY_EVENTS) -> None:
        if not 0 < replay_events < SUBSCRIBER_QUEUE:
            raise ValueError(f"replay_events must be between 1 and {SUBSCRIBER_QUEUE - 1}")
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._recent: deque[Event] = deque(maxlen=replay_events)
        # The newest kept event let go to make room: a subscriber that saw it (or later) missed
        # nothing kept, whatever live-only events lie between it and the oldest still kept.
        self._forgotten = 0
        self._next_id = 1
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def publish(self, event_type: str, data: dict[str, Any], live_only: bool = False) -> Event:
        """Send `data` to every subscriber; kept for a replay unless its type is LIVE_ONLY or it
        is `live_only` itself."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {event_type!r}")
        event = Event(self._next_id, event_type, data)
        self._next_id += 1
        if event_type not in LIVE_ONLY and not live_only:
            if len(self._recent) == self._recent.maxlen:
                self._forgotten = self._recent[0].id
            self._recent.append(event)
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

    @property
    def next_id(self) -> int:
        return self._next_id

    def replay(self, last_seen: int) -> Replay:
        """What a subscriber that last saw event `last_seen` gets again (see Replay)."""
        oldest = self._recent[0].id if self._recent else self._next_id
        if last_seen >= self._next_id:
            gap = "not an id of this run of the daemon (it has restarted since): every kept event follows"
            return Replay(0, oldest, gap)
        if last_seen < self._forgotten:
            return Replay(
                last_seen, oldest, "older events than the daemon keeps were missed: the kept ones follow"
            )
        return Replay(last_seen, last_seen + 1, None)

    def open(self, after: int | None = None) -> Subscription:
        """A subscription to every event published from now on; with `after`, the kept events
        whose id is above it come first. Close it when done."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        if after is not None:
            # Synchronous, on the loop that publishes: nothing is lost or sent twice.
            for event in self._recent:
                if event.id > after:
                    queue.put_nowait(event)
        self._subscribers.add(queue)
        return Subscription(queue, lambda: self._subscribers.discard(queue))

    async def subscribe(self, after: int | None = None) -> AsyncIterator[Event]:
        """Every event published from now on (see `open`), until the subscriber falls too far
        behind or the hub closes."""
        subscription = self.open(after)
        try:
            while (event := await subscription.get()) is not None:
                yield event
        finally:
            subscription.close()

    def close(self) -> None:
        """End every subscription (the daemon is stopping)."""
        for queue in list(self._subscribers):
            self._subscribers.discard(queue)
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
