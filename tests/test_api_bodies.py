"""A request body that stops coming: the API answers 408 saying so, instead of waiting on the
connection for ever (a real server on a socket; the client sends a Content-Length of 100 and
10 bytes)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from kitd.api import requests
from kitd.api.routes import json_errors


async def _echo(request: web.Request) -> web.Response:
    return web.json_response({"got": await requests.json_body(request)})


def test_a_body_that_stops_coming_is_a_408_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(requests, "BODY_WAIT_S", 0.3)

    async def scenario() -> tuple[bytes, bytes]:
        app = web.Application(middlewares=[json_errors])
        app.router.add_post("/body", _echo)
        async with TestServer(app) as server:
            reader, writer = await asyncio.open_connection(server.host, server.port)
            head = (
                b"POST /body HTTP/1.1\r\nHost: kit\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n"
            )
            writer.write(head + b'{"a": 1, "')
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            body = await asyncio.wait_for(reader.readexactly(length), 10)
            writer.close()
            return head.partition(b"\r\n")[0], body

    status_line, body = asyncio.run(scenario())
    assert status_line.startswith(b"HTTP/1.1 408"), status_line
    said = json.loads(body)
    assert said["error"] == "request_timeout"
    assert said["message"] == "the body did not come whole within 0.3 s (Content-Length 100)"
