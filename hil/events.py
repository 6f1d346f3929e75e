"""A client of kitd's server-sent event stream for the rig: collects events in a thread."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from hil.rig import wait_until


class EventRecorder:
    """Subscribes to GET /api/v1/events and keeps every event, in order."""

    def __init__(self, base_url: str, token: str = "") -> None:
        """``token``: the kit's sign-in token, sent as the kitd_token cookie (as EventSource does)."""
        parts = urlsplit(base_url)
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        self._connection.request(
            "GET", "/api/v1/events", headers={"Cookie": f"kitd_token={token}"} if token else {}
        )
        self._response = self._connection.getresponse()
        if self._response.status != 200:
            raise RuntimeError(f"event stream answered {self._response.status}")
        self.events: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event: dict[str, Any] = {}
        try:
            for raw in self._response:
                line = raw.decode().rstrip("\n")
                if not line:
                    if "type" in event:
                        event["received"] = time.perf_counter()  # for latency benchmarks
                        self.events.append(event)
                    event = {}
                elif line.startswith("event: "):
                    event["type"] = line[7:]
                elif line.startswith("id: "):
                    event["id"] = int(line[4:])
                elif line.startswith("data: "):
                    event["data"] = json.loads(line[6:])
        except (OSError, ValueError):
            pass

    def of(self, event_type: str, session: str | None = None) -> list[dict[str, Any]]:
        return [
            e["data"]
            for e in list(self.events)
            if e["type"] == event_type and (session is None or e["data"].get("session") == session)
        ]

    def wait_for(self, predicate: Any, timeout_s: float = 30.0) -> dict[str, Any]:
        """The first event satisfying predicate(event), waiting generously; AssertionError if none."""
        return wait_until(
            lambda: next((e for e in list(self.events) if predicate(e)), None),
            f"no matching event (last ones: {self.events[-10:]})",
            timeout_s,
        )

    def close(self) -> None:
        # Shut the socket down first: the reader thread holds the response's buffer
        # lock while it waits, and a plain close() would wait for its timeout.
        sock = self._connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(5)
        self._connection.close()
