"""Send one command to a simulator's control channel and print its reply.

    python -m hil.control PORT 'condition light'
    python -m hil.control 127.0.0.1:PORT help

PORT is the `control=` port a simulator (or kit-sim) printed, on 127.0.0.1 unless given
as HOST:PORT. Prints the one reply line on stdout; exit 0 when it is `ok ...`, 1 when it
is `err ...`, 2 (one line on stderr) when the channel cannot be reached or gives no reply.
Unlike `printf ... | nc`, it closes the connection as soon as the reply is in.
"""

from __future__ import annotations

import argparse
import socket
import sys

TIMEOUT_S = 10.0


class ControlUnreachable(Exception):
    """No reply line: the channel refused, timed out or closed first (says which)."""


def parse_address(text: str) -> tuple[str, int]:
    """`PORT` or `HOST:PORT` -> (host, port); ValueError when it is neither."""
    host, _, port = text.rpartition(":")
    number = int(port)
    if not 0 < number < 65536:
        raise ValueError(f"{number} is not a TCP port")
    return host or "127.0.0.1", number


def send_command(host: str, port: int, command: str, timeout_s: float = TIMEOUT_S) -> str:
    """One command line to the channel at host:port -> its reply line, stripped."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(command.strip().encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
    except TimeoutError:
        raise ControlUnreachable(f"no reply from {host}:{port} within {timeout_s:g} s") from None
    except OSError as exc:
        raise ControlUnreachable(f"cannot reach {host}:{port}: {exc.strerror or exc}") from None
    text = reply.decode("utf-8", "replace").strip()
    if not text:
        raise ControlUnreachable(f"{host}:{port} closed the connection without a reply")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hil.control", description=__doc__.splitlines()[0])
    parser.add_argument("address", metavar="PORT", help="the control port (or HOST:PORT) a simulator printed")
    parser.add_argument("command", nargs="+", help="the command, e.g. 'condition light' (try help)")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds to wait for the reply")
    args = parser.parse_args(argv)
    try:
        host, port = parse_address(args.address)
    except ValueError:
        parser.error(f"'{args.address}' is not a port or HOST:PORT")
    try:
        reply = send_command(host, port, " ".join(args.command), args.timeout)
    except ControlUnreachable as exc:
        print(f"hil.control: {exc}", file=sys.stderr)
        return 2
    print(reply)
    return 0 if reply.split()[0] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
