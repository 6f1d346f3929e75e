"""The event stream's keepalive and its replay after a reconnection (`Last-Event-ID`), on an
event hub of its own served by aiohttp in this process (issue 17, defect 8). The real daemon's
replay is in tests/test_api_protocol.py."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kitd.api import event_stream
from kitd.api.event_stream import stream_events
from kitd.events import REPLAY_EVENTS, SUBSCRIBER_QUEUE, EventHub


async def read_stream(response: Any, until: Any, timeout_s: float = 10.0) -> list[Any]:
    """Comments (as strings) and events (as dicts) until `until(items)` holds."""
    items: list[Any] = []
    event: dict[str, Any] = {}
    async with asyncio.timeout(timeout_s):
        while not until(items):
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith(":"):
                items.append(line)
            elif line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("event: "):
                event["type"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
            elif not line and event:
                items.append(event)
                event = {}
    return items


def events_of(items: list[Any]) -> list[dict[str, Any]]:
    """The events among `items`: an id with no data is none (EventSource only takes its id)."""
    return [item for item in items if isinstance(item, dict) and "data" in item]


def serve(hub: EventHub, keepalive_s: float = event_stream.KEEPALIVE_S) -> TestClient:
    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream_events(request, hub, keepalive_s)

    app = web.Application()
    app.router.add_get("/events", handler)
    return TestClient(TestServer(app))


def publish(hub: EventHub, count: int) -> None:
    for n in range(count):
        hub.publish("device", {"device": f"d{n}", "status": "ready", "reason": ""})


def test_an_idle_stream_sends_a_keepalive_comment_every_interval() -> None:
    assert event_stream.KEEPALIVE_S == 15.0

    async def scenario() -> None:
        hub = EventHub()
        async with serve(hub, keepalive_s=0.2) as client:
            response = await client.get("/events")
            started = time.monotonic()
            items = await read_stream(response, lambda items: items.count(": keepalive") >= 3)
            assert time.monotonic() - started >= 0.5
            publish(hub, 1)  # an event in between: the stream goes on, keepalives after it
            items = await read_stream(response, lambda items: ": keepalive" in items)
            assert events_of(items)[0]["id"] == 1
            hub.close()

    asyncio.run(scenario())


def test_a_reconnecting_client_first_gets_what_it_missed_then_live_events() -> None:
    async def scenario() -> None:
        hub = EventHub()
        publish(hub, 5)
        async with serve(hub) as client:
            live_only = await client.get("/events")
            replayed = await client.get("/events", headers={"Last-Event-ID": "2"})
            caught_up = await client.get("/events", headers={"Last-Event-ID": "5"})
            # An id of thousands of digits is no id of this run: every kept event follows.
            huge = await client.get("/events", headers={"Last-Event-ID": "9" * 5000})
            gap, *kept = events_of(await read_stream(huge, lambda items: len(events_of(items)) == 6))
            assert gap["type"] == "gap" and gap["data"]["last_event_id"].endswith("... (5000 characters)")
            assert [e["id"] for e in kept] == [1, 2, 3, 4, 5]
            await asyncio.sleep(0.1)
            publish(hub, 1)
            got = events_of(await read_stream(replayed, lambda items: len(events_of(items)) == 4))
            assert [e["id"] for e in got] == [3, 4, 5, 6]
            assert got[0] == {
                "id": 3,
                "type": "device",
                "data": {"device": "d2", "status": "ready", "reason": ""},
            }
            for response in (live_only, caught_up):
                got = events_of(await read_stream(response, lambda items: len(events_of(items)) == 1))
                assert [e["id"] for e in got] == [6]
            hub.close()

    asyncio.run(scenario())


def test_a_stream_dropped_before_its_first_event_comes_back_with_an_id_and_misses_nothing() -> None:
    """A client that opens without Last-Event-ID is given the last event's id before its
    stream: if the link drops before the first event, EventSource comes back with that id and
    gets every event published meanwhile, instead of the live ones only."""

    async def scenario() -> None:
        hub = EventHub()
        publish(hub, 3)
        async with serve(hub) as client:
            first = await client.get("/events")
            given = await read_stream(first, lambda items: any(isinstance(i, dict) for i in items))
            assert given == [": kitd events", {"id": 3}]
            first.close()  # the link drops; meanwhile, two events
            publish(hub, 2)
            again = await client.get("/events", headers={"Last-Event-ID": str(given[-1]["id"])})
            got = events_of(await read_stream(again, lambda items: len(events_of(items)) == 2))
            assert [e["id"] for e in got] == [4, 5]
            hub.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("last_event_id", "first_ids", "words"),
    [
        ("1", [8, 9, 10, 11, 12], "older events than the daemon keeps were missed"),
        ("99", [8, 9, 10, 11, 12], "it has restarted since"),
        ("yesterday", [], "not an event id of this kit"),
    ],
)
def test_a_gap_the_hub_cannot_fill_is_said_before_anything_else(
    last_event_id: str, first_ids: list[int], words: str
) -> None:
    async def scenario() -> None:
        hub = EventHub(replay_events=5)
        publish(hub, 12)
        async with serve(hub) as client:
            response = await client.get("/events", headers={"Last-Event-ID": last_event_id})
            got = events_of(
                await read_stream(response, lambda items: len(events_of(items)) == 1 + len(first_ids))
            )
            gap, *replayed = got
            assert gap["type"] == "gap" and "id" not in gap
            assert gap["data"]["last_event_id"] == last_event_id and words in gap["data"]["reason"]
            assert gap["data"]["first_id"] == (first_ids[0] if first_ids else 13)
            assert [e["id"] for e in replayed] == first_ids
            publish(hub, 1)
            live = events_of(await read_stream(response, lambda items: len(events_of(items)) == 1))
            assert [e["id"] for e in live] == [13]
            hub.close()

    asyncio.run(scenario())


def test_the_hub_keeps_a_bounded_number_of_events() -> None:
    assert 0 < REPLAY_EVENTS < SUBSCRIBER_QUEUE
    hub = EventHub()
    publish(hub, REPLAY_EVENTS + 10)
    replay = hub.replay(0)
    assert (replay.first, replay.gap is not None) == (11, True)
    assert hub.replay(9).gap is not None and hub.replay(10).gap is None  # 10 seen, 11 is kept
    with pytest.raises(ValueError):
        EventHub(replay_events=SUBSCRIBER_QUEUE)


def test_live_only_events_missed_are_no_gap() -> None:
    """A pen's ink is never kept for a replay: a subscriber back after a signature whose kept
    events are all still there is told of no gap, however far the kept ones have moved on."""
    hub = EventHub(replay_events=3)
    publish(hub, 2)  # 1, 2: seen by the subscriber
    for _ in range(5):
        hub.publish("ink", {"points": []})  # 3-7: live only
    publish(hub, 3)  # 8, 9, 10: 1 and 2 are let go to keep them
    assert hub.replay(2).gap is None  # the oldest kept is 8, and 3-7 were never kept
    assert hub.replay(1).gap is not None  # 2 was missed
    publish(hub, 1)  # 11 lets 8 go
    assert hub.replay(2).gap is not None and hub.replay(8).gap is None
