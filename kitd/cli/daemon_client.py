"""A small client of the daemon's local HTTP API, for kitctl and the rig (which is outside kitd).

Reaches the API over TCP (`--api URL`, with the sign-in token from `--token` or
KITD_TOKEN) or, on the kit, over the daemon's Unix socket in data_dir (`unix:PATH`:
no token, the caller is a technician). Without `--api` the socket is used when it is
there, else the port file the daemon writes in data_dir (which wins over `api.port`,
so port 0 works). Transport failures become one-line `DaemonUnreachable` errors; an answer
unlike kitd's (not JSON, an error without kitd's message, or JSON of another shape than the
API documents, checked by `checked_json` against kitd.schemas) a one-line `DaemonError`.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Any

from kitd.config import KitConfig, api_url
from kitd.errors import ConfigError, KitError, shown_value
from kitd.schemas import VALIDATORS, first_problem


class DaemonUnreachable(KitError):
    """Nothing answers at the daemon's address."""


class DaemonError(KitError):
    """The daemon answered with an error: `status`, `code` and its one-line message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


# What an answer unlike kitd's suggests: over TCP another server at the address typed; over
# the kit's own socket (only kitd makes it) a kitd of another version than kitctl's.
AT_ANOTHER_ADDRESS = "is this the address of a kitd?"
OF_ANOTHER_VERSION = "is kitd of the same version as kitctl?"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    unlike_kitd: str = AT_ANOTHER_ADDRESS  # the question an answer unlike kitd's raises

    def json(self) -> Any:
        """The body as JSON; DaemonError when it is not (something other than kitd answered)."""
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            message = f"the answer is not JSON: {self.unlike_kitd}"
            raise DaemonError(self.status, "not_json", message) from None


SOCKET_FILE = "kitd.sock"


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over the daemon's Unix socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def api_url_from_config(config: KitConfig) -> str:
    """``unix:PATH`` of the daemon's socket when it is there, else its TCP address."""
    socket_path = config.data_dir / SOCKET_FILE
    if socket_path.is_socket():
        return f"unix:{socket_path}"
    host = config["api.host"]
    port = config["api.port"]
    port_file = config.data_dir / "api.port"
    try:
        port = int(port_file.read_text().strip())
    except (OSError, ValueError):
        pass
    return api_url(host, port)


def daemon_absent(config: KitConfig) -> str | None:
    """What to tell a technician when this config's daemon leaves no trace of running (no
    socket, no port file: stopped, or never started with this data_dir), else None."""
    socket_path = config.data_dir / SOCKET_FILE
    if socket_path.is_socket() or (config.data_dir / "api.port").exists():
        return None
    return (
        f"kitd is not running for data_dir {config.data_dir} (no socket {socket_path}): start it "
        "(systemctl start kitd) and see its log (journalctl -u kitd) if it stops again"
    )


class DaemonClient:
    """Requests to one running kitd, at ``http://HOST:PORT`` (with a token) or ``unix:PATH``."""

    def __init__(self, base_url: str, token: str | None = None, absent: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.absent = absent  # said instead of the address when nothing answers (daemon_absent)
        # Over the socket no token is asked for, so none is sent; over TCP it travels in a
        # header: visible ASCII only (a pasted line break would split the header).
        self.token = None if self.base_url.startswith("unix:") else token or None
        if self.token is not None and not all("!" <= ch <= "~" for ch in self.token):
            raise ConfigError("--token (or $KITD_TOKEN): a sign-in token is printable ASCII, no spaces")

    def _connection(self, timeout_s: float) -> tuple[http.client.HTTPConnection, str]:
        """A connection to the daemon and the path prefix its URL names (none over the socket)."""
        if self.base_url.startswith("unix:"):
            return _UnixConnection(self.base_url.removeprefix("unix:"), timeout_s), ""
        try:
            parts = urllib.parse.urlsplit(self.base_url)
            port = parts.port  # raises on a port out of range or not a number
        except ValueError as exc:
            raise DaemonUnreachable(f"daemon address {self.base_url!r}: {exc}") from None
        if parts.scheme != "http" or not parts.hostname:
            raise DaemonUnreachable(
                f"daemon address {self.base_url!r}: expected http://HOST:PORT or unix:PATH"
            )
        return http.client.HTTPConnection(parts.hostname, port or 80, timeout=timeout_s), parts.path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout_s: float = 10.0,
        content_type: str = "application/json",
    ) -> Reply:
        """``body``: bytes are sent as they are (as ``content_type``), anything else as JSON."""
        if isinstance(body, bytes):
            data: bytes | None = body
        else:
            data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            connection, prefix = self._connection(timeout_s)
            try:
                connection.request(method, prefix + path, body=data, headers=headers)
                response = connection.getresponse()
                unlike = OF_ANOTHER_VERSION if self.base_url.startswith("unix:") else AT_ANOTHER_ADDRESS
                return Reply(response.status, dict(response.headers), response.read(), unlike)
            finally:
                connection.close()
        except (OSError, http.client.HTTPException) as exc:
            # Something else listening there answers bytes, which http.client quotes as they came.
            said = str(exc)
            said = said if said.isprintable() else shown_value(said)
            raise DaemonUnreachable(self.absent or f"daemon unreachable at {self.base_url}: {said}") from None

    def checked(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout_s: float = 10.0,
        content_type: str = "application/json",
    ) -> Reply:
        """Like `request`, but an error status raises DaemonError with the daemon's message."""
        reply = self.request(method, path, body, timeout_s, content_type)
        if reply.status >= 400:
            try:
                payload = reply.json()
                code, message = payload["error"], payload["message"]
            except (DaemonError, KeyError, TypeError):
                # kitd answers every error it means with its JSON; a 5xx without it is a failure
                # in kitd (its log says which), anything else an answer unlike kitd's.
                code = "http_error"
                message = (
                    f"HTTP {reply.status} without kitd's error message: see kitd's log (journalctl -u kitd)"
                    if reply.status >= 500
                    else f"HTTP {reply.status}, not a kitd error: {reply.unlike_kitd}"
                )
            raise DaemonError(reply.status, code, message)
        return reply

    def checked_json(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout_s: float = 10.0,
        content_type: str = "application/json",
        *,
        shape: str,
    ) -> Any:
        """The JSON of `checked`'s reply, of the API's documented `shape` (a kitd.schemas name);
        DaemonError when it is not (a server other than kitd answered, or another version)."""
        reply = self.checked(method, path, body, timeout_s, content_type)
        payload = reply.json()
        problem = first_problem(VALIDATORS[shape], payload)
        if problem is not None:
            raise DaemonError(
                reply.status,
                "unexpected_answer",
                f"the answer is not kitd's {shape} ({problem}): {reply.unlike_kitd}",
            )
        return payload

    def devices(self) -> list[dict[str, Any]]:
        return self.checked_json("GET", "/api/v1/devices", shape="DeviceList")
