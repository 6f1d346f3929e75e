"""Logging as one JSON object per line on stderr, for journald and for the rig.

The last lines are also kept in memory (:class:`RecentLines`, on the root logger beside
stderr's handler: logging is the process's, not a kit's), so that a diagnostics report can
carry them: stderr goes to journald on a kit and to a file on the rig, neither of which the
daemon reads back.
"""

from __future__ import annotations

import collections
import json
import logging
import sys
import time

from aiohttp.http_exceptions import HttpProcessingError

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonLineFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", ...extra}`; fields passed with `extra=` are kept."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RecentLines(logging.Handler):
    """The last ``size`` lines logged, formatted as on stderr, oldest first."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._lines: collections.deque[str] = collections.deque(maxlen=size)
        self.setFormatter(JsonLineFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # noqa: BLE001 - a line that cannot be formatted is not kept
            return
        self._lines.append(line)  # under the handler's own lock (Handler.handle takes it)

    def lines(self) -> list[str]:
        with self.lock:  # type: ignore[union-attr]
            return list(self._lines)


# Lines kept in memory: a few minutes of a busy daemon at info, what a vendor reads first.
RECENT_LINE_COUNT = 300


def recent_lines() -> list[str] | None:
    """The last lines logged, oldest first; None when no RecentLines handler is installed."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, RecentLines):
            return handler.lines()
    return None


class MalformedRequests(logging.Filter):
    """aiohttp logs a request its HTTP parser refuses (a line over 8190 bytes, a broken header)
    as an error with a traceback, after answering it 400 itself: the client's mistake, not the
    daemon's. One warning line instead, the parser's words cut."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 400) < 500:
            said = str(exc.message)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "refused a malformed HTTP request from %s: %s"
            record.args = (
                record.args[0] if record.args else "?",
                said if len(said) <= 120 else f"{said[:120]}...",
            )
            record.exc_info, record.exc_text = None, None
        return True


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler, RecentLines(RECENT_LINE_COUNT)]
    root.setLevel(level.upper())
    # aiohttp's access log would repeat every poll of the status page.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequests) for f in server.filters):
        server.addFilter(MalformedRequests())
