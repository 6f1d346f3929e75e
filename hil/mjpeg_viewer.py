"""A viewer of MJPEG streams (multipart/x-mixed-replace) for tests and benchmarks: each part and its frame."""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from hil import frame_code


@dataclass
class Part:
    """One part of the stream: its headers (lower-case names), body, and the frame number it shows."""

    headers: dict[str, str]
    body: bytes
    code: int | None = None

    @property
    def seq(self) -> int | None:
        value = self.headers.get("x-frame-seq")
        return int(value) if value else None

    def header_int(self, name: str) -> int:
        return int(self.headers.get(name, "0") or 0)


def read_parts(url: str, timeout_s: float = 10.0, token: str = "") -> Iterator[tuple[dict[str, str], Part]]:
    """Yield (response headers, part) for every part until the stream ends or the caller stops.

    ``token``: the kit's sign-in token, sent as the kitd_token cookie as the kiosk's browser does.
    """
    parsed = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout_s)
    path = parsed.path + (f"?{parsed.query}" if parsed.query else "")
    connection.request("GET", path, headers={"Cookie": f"kitd_token={token}"} if token else {})
    response = connection.getresponse()
    headers = {k.lower(): v for k, v in response.getheaders()}
    if response.status != 200:
        raise RuntimeError(f"{url}: HTTP {response.status}: {response.read(500)!r}")
    try:
        while True:
            line = response.fp.readline()
            if not line:
                return
            if not line.startswith(b"--"):
                continue
            part_headers: dict[str, str] = {}
            while (line := response.fp.readline().strip()) != b"":
                name, _, value = line.decode("latin-1").partition(":")
                part_headers[name.strip().lower()] = value.strip()
            body = response.fp.read(int(part_headers["content-length"]))
            yield headers, Part(part_headers, body)
    finally:
        connection.close()


def decode_code(body: bytes) -> int | None:
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_GRAYSCALE)
    return None if image is None else frame_code.read(image)


@dataclass
class Viewer:
    """Watches a stream on a thread, keeping every part (with its block code read) until stopped."""

    url: str
    token: str = ""  # the kit's sign-in token (sent as the browser's cookie)
    parts: list[Part] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for headers, part in read_parts(self.url, timeout_s=30.0, token=self.token):
                self.headers = headers
                part.code = decode_code(part.body)
                self.parts.append(part)
                if self._stop.is_set():
                    return
        except Exception as exc:  # noqa: BLE001 - reported to the test through .error
            self.error = f"{type(exc).__name__}: {exc}"

    def frames(self) -> list[Part]:
        """Parts that carry a camera frame (not a status card)."""
        return [p for p in list(self.parts) if p.seq is not None]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=35.0)
