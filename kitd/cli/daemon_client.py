"""A small client of the daemon's local HTTP API, for kitctl and the rig (which is outside kitd).

Finds the API from `--api URL` or the config (the port file the daemon writes in
`data_dir` wins over `api.port`, so port 0 works) and turns transport failures
into one-line `DaemonUnreachable` errors.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from kitd.config import KitConfig
from kitd.errors import KitError


class DaemonUnreachable(KitError):
    """Nothing answers at the daemon's address."""


class DaemonError(KitError):
    """The daemon answered with an error: `status`, `code` and its one-line message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def api_url_from_config(config: KitConfig) -> str:
    host = config["api.host"]
    port = config["api.port"]
    port_file = config.data_dir / "api.port"
    try:
        port = int(port_file.read_text().strip())
    except (OSError, ValueError):
        pass
    return f"http://{host}:{port}"


class DaemonClient:
    """Requests to one running kitd."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, path: str, body: Any = None, timeout_s: float = 10.0) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return Reply(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, dict(exc.headers), exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DaemonUnreachable(f"daemon unreachable at {self.base_url}: {reason}") from None

    def checked(self, method: str, path: str, body: Any = None, timeout_s: float = 10.0) -> Reply:
        """Like `request`, but an error status raises DaemonError with the daemon's message."""
        reply = self.request(method, path, body, timeout_s)
        if reply.status >= 400:
            try:
                payload = reply.json()
                code, message = payload["error"], payload["message"]
            except (ValueError, KeyError, TypeError):
                code, message = "http_error", f"HTTP {reply.status} from the daemon"
            raise DaemonError(reply.status, code, message)
        return reply

    def devices(self) -> list[dict[str, Any]]:
        return self.checked("GET", "/api/v1/devices").json()
