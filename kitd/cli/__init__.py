"""kitctl: the technician's command line for one-off jobs on a kit.

Each command group lives in its own module under ``kitd.cli`` and offers
``add_parser(subparsers)``; the parser it adds sets ``func(args) -> int``.
Exit status: 0 success, 1 the job failed, 2 bad arguments or configuration.

The top of the house with the API: may import the kit's services and everything below
them (kitd.services, kitd.config, kitd.capture, kitd.drivers), never kitd.api or
kitd.daemon; it reaches a running daemon only over HTTP (kitd.cli.daemon_client).
"""

from __future__ import annotations

import argparse
import os
import sys

from kitd import __version__
from kitd.cli import (
    audit,
    bundles,
    capture,
    devices,
    diag,
    keys,
    laptops,
    officers,
    orders,
    outbox,
    quality,
)
from kitd.errors import ConfigError
from kitd.store.database import DatabaseError

# Command-group modules, in the order their help is shown.
COMMAND_GROUPS = (devices, capture, quality, diag, officers, orders, keys, bundles, outbox, laptops, audit)


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that exits 2 with one line instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"kitctl: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="kitctl", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kitctl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)
    for group in COMMAND_GROUPS:
        group.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # inside: a reader gone away is met here, not at the interpreter's exit
        return code
    except ConfigError as exc:
        sys.stderr.write(f"kitctl: {exc}\n")
        return 2
    except DatabaseError as exc:
        sys.stderr.write(f"kitctl: {exc}\n")
        return 1
    except BrokenPipeError:
        # The reader went away (kitctl diag --history | head): nothing more to say to it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE
    except OSError as exc:
        # The file system said no (a folder not writable, a disk full): its word, not a traceback.
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"kitctl: {where}{exc.strerror or exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("kitctl: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
