"""The simulators' TCP servers on 127.0.0.1: bound at once, a thread for each connection.

`LoopbackServer` is socketserver's ThreadingTCPServer with what every simulator needs
of it: the port it got (ask for 0 to get a free one) to print on the READY line,
`start()` to serve in the background, and `close()` whether or not it was started.
"""

from __future__ import annotations

import socketserver
import threading

# shutdown() waits for serve_forever's next poll: a tenth of a second lets a simulator
# exit at once when told, where the default half second per server would add up.
POLL_S = 0.1


class LoopbackServer(socketserver.ThreadingTCPServer):
    """Listens on 127.0.0.1:port as soon as it is made; serves once started."""

    daemon_threads = True  # a client that stays connected does not keep the simulator alive
    allow_reuse_address = True  # a restarted simulator takes its port back at once

    def __init__(self, port: int, handler: type[socketserver.BaseRequestHandler]) -> None:
        super().__init__(("127.0.0.1", port), handler)
        self.port: int = self.server_address[1]
        self._serving: threading.Thread | None = None

    def start(self) -> None:
        self._serving = threading.Thread(
            target=self.serve_forever, args=(POLL_S,), name=type(self).__name__, daemon=True
        )
        self._serving.start()

    def close(self) -> None:
        """Stop listening; connections already open carry on until their clients go."""
        if self._serving is not None:  # shutdown() of a server never started would wait forever
            self.shutdown()
            self._serving = None
        self.server_close()
