"""A TCP link between a client and kitd that a test can cut and mend, as a flaky cable or a
browser that dropped its connections would.

`CuttableLink` listens on 127.0.0.1 and passes every connection through to the daemon.
`cut()` closes every connection passing through and, until `mend()`, closes each new one at
once: the client sees its streams end and its requests fail, and the daemon sees its
clients gone, as over a real link that went down.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading

from hil.loopback import LoopbackServer

CHUNK = 64 * 1024


class CuttableLink:
    """127.0.0.1:`port` passed through to `upstream` (host, port), until cut."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = False
        link = self

        class Pass(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                link._pass(self.request)

        self._server = LoopbackServer(0, Pass)
        self.port: int = self._server.port
        self._server.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Every connection through the link ends now; new ones end as they come."""
        with self._lock:
            self._cut = True
            ends, self._open = self._open, set()
        for end in ends:
            _close(end)

    def mend(self) -> None:
        """New connections pass again."""
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self.cut()
        self._server.close()

    def _pass(self, client: socket.socket) -> None:
        if self._cut:
            return  # the server closes the client's end
        try:
            daemon = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            return
        daemon.settimeout(None)
        with self._lock:
            if self._cut:  # cut while connecting
                _close(daemon)
                return
            self._open |= {client, daemon}
        back = threading.Thread(target=_pump, args=(daemon, client), daemon=True)
        back.start()
        _pump(client, daemon)
        back.join()
        with self._lock:
            self._open -= {client, daemon}


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Bytes from `source` to `sink` until either end closes; then both are shut."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    _close(source)
    _close(sink)


def _close(end: socket.socket) -> None:
    with contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        end.close()
