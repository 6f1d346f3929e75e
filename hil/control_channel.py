"""The simulators' control channel: a line protocol on 127.0.0.1, one reply line per command.

A simulator subclasses `ControlChannel` and adds `_cmd_NAME(self, args) -> str` methods
(a dash in a command name is an underscore in its method); replies are `ok ...` or
`err REASON`. `help` lists the commands; `quit` replies `ok bye` and sets the stop event.
"""

from __future__ import annotations

import socket
import threading


class ControlChannel:
    """Accepts connections on a thread each; every line is one command."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        self.stop = stop
        self.sock = socket.create_server(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]

    def start(self) -> None:
        threading.Thread(target=self._accept, name="control-accept", daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        with sock, sock.makefile("rwb") as stream:
            for raw in stream:
                line = raw.decode("utf-8", "replace").strip()
                if not line:
                    continue
                answer = self.execute(line)
                stream.write((answer.replace("\n", " ") + "\n").encode())
                stream.flush()
                if line == "quit":
                    self.stop.set()
                    return
                self.replied(line)

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
