"""The simulators' control channel: a line protocol on 127.0.0.1, one reply line per command.

A simulator subclasses `ControlChannel` and adds `_cmd_NAME(self, args) -> str` methods
(a dash in a command name is an underscore in its method); replies are `ok ...` or
`err REASON`. `help` lists the commands; `quit` replies `ok bye` and sets the stop event.
"""

from __future__ import annotations

import socketserver
import threading

from hil.loopback import LoopbackServer


class _LineHandler(socketserver.StreamRequestHandler):
    """One client: every line it sends is one command, answered with one line."""

    server: ControlChannel

    def handle(self) -> None:
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            answer = self.server.execute(line)
            self.wfile.write((answer.replace("\n", " ") + "\n").encode())
            if line == "quit":
                self.server.stop.set()
                return
            self.server.replied(line)


class ControlChannel(LoopbackServer):
    """Serves the line protocol on a thread for each connection."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        self.stop = stop
        super().__init__(port, _LineHandler)

    def replied(self, line: str) -> None:
        """Called after the reply to `line` went out (e.g. to exit the process at once)."""

    def execute(self, line: str) -> str:
        """One command line -> one reply line (`ok ...` or `err ...`)."""
        name, *args = line.split()
        handler = getattr(self, "_cmd_" + name.replace("-", "_"), None)
        if handler is None:
            return f"err unknown command '{name}' (try help)"
        try:
            return handler(args)
        except (ValueError, OSError, KeyError) as exc:
            return f"err {exc}"

    def _cmd_help(self, args: list[str]) -> str:
        names = (n[5:].replace("_", "-") for n in dir(self) if n.startswith("_cmd_"))
        return "ok " + " ".join(sorted(names))

    def _cmd_quit(self, args: list[str]) -> str:
        return "ok bye"
