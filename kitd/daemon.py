"""kitd: the process that runs one kit and serves its local HTTP API.

`kitd [--config PATH]` reads the TOML config, builds the `Kit` (kitd.kit) and starts its
devices, serves the API (kitd.api), writes the port it got to `data_dir/api.port`, serves the
network API for paired laptops when `network.enabled` (mutual TLS; its port in
`data_dir/network.port`), tells systemd READY=1 and pings its watchdog, and stops cleanly on
SIGTERM or SIGINT. Only process plumbing lives here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import grp
import logging
import os
import signal
import sqlite3
import sys
from pathlib import Path

import cv2
from aiohttp import web

from kitd import __version__, sdnotify
from kitd.api import make_app
from kitd.api.network import make_network_app
from kitd.config import DEFAULT_CONFIG_PATH, KitConfig, api_url, load_config
from kitd.errors import ConfigError, KitError
from kitd.kit import Kit
from kitd.logs import setup_logging

log = logging.getLogger("kitd")

PORT_FILE = "api.port"
NETWORK_PORT_FILE = "network.port"
# kitctl's way in on the kit: no token, the caller is a technician (kitd.api.sign_in).
SOCKET_FILE = "kitd.sock"
FIRST_LOOK_TIMEOUT_S = 5.0


def write_port_file(data_dir: Path, port: int, name: str = PORT_FILE) -> Path:
    """Write a port atomically so that a reader never sees half a number."""
    path = data_dir / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{port}\n")
    os.replace(tmp, path)
    return path


async def _watchdog(interval: float) -> None:
    while True:
        sdnotify.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


async def open_socket(runner: web.AppRunner, path: Path, group: str) -> None:
    """Serve the API on a Unix socket, mode 0660 for ``group``; 0600 if the group does not
    exist (the daemon's own group may be one many users share)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # left by a daemon that did not stop cleanly; the port file says the same
    site = web.UnixSite(runner, str(path))
    umask = os.umask(0o177)  # born 0600: never a moment open to anyone else
    try:
        await site.start()
    finally:
        os.umask(umask)
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        log.warning(
            "group %r (api.socket_group) does not exist: %s is for the daemon's user only", group, path
        )
        return
    os.chown(path, -1, gid)
    os.chmod(path, 0o660)


async def open_network(kit: Kit) -> web.AppRunner | None:
    """network.enabled: the network API for paired laptops, on network.host:network.port with
    the kit's TLS (made on first use) and mutual TLS; None when it is off. OSError: the port."""
    config = kit.config
    if not config["network.enabled"]:
        return None
    trust = kit.network_trust or kit.open_network_trust()
    host, port = config["network.host"], config["network.port"]
    runner = web.AppRunner(
        make_network_app(kit), access_log=None, handle_signals=False, handler_cancellation=True
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=trust.server_context, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise OSError(
            exc.errno, f"cannot listen on {host}:{port} (network.host/network.port): {reason}"
        ) from None
    trust.port = runner.addresses[0][1]
    write_port_file(config.data_dir, trust.port, NETWORK_PORT_FILE)
    log.info(
        "network API for paired laptops on https://%s:%s (the kit's TLS certificate: SHA-256 %s)",
        host,
        trust.port,
        trust.fingerprint,
        extra={"network_port": trust.port, "tls_fingerprint": trust.fingerprint},
    )
    return runner


async def serve(config: KitConfig) -> int:
    data_dir = config.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"config key 'data_dir': cannot create {data_dir}: {exc.strerror}") from None

    host, port = config["api.host"], config["api.port"]
    kit = Kit(config)
    try:
        kit.open_database()
    except KitError as exc:
        log.error("%s", exc)
        return 1
    kit.start_clock()  # before anything is written: every time written is the kit clock's
    kit.reconcile_outbox()  # before anything is served: files and rows in step after a power cut
    kit.record_start()
    if config["network.enabled"]:
        try:
            kit.open_network_trust()  # before the API: pairing admits laptops to it
        except (OSError, ValueError, sqlite3.Error) as exc:
            log.error("the network API cannot be opened (its TLS credentials, the paired laptops): %s", exc)
            return 1
    # handler_cancellation: a client that goes away cancels its request, so that a capture it
    # was waiting for is cancelled too and frees the device (kitd.services.slots.run_job).
    runner = web.AppRunner(make_app(kit), access_log=None, handle_signals=False, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        log.error("cannot listen on %s:%s (api.host/api.port): %s", host, port, reason)
        return 1
    bound = runner.addresses[0][1]  # the real port, when port 0 asked for any free one
    kit.set_api_url(api_url(host, bound))
    socket_path = data_dir / SOCKET_FILE
    try:
        await open_socket(runner, socket_path, config["api.socket_group"])
    except OSError as exc:
        await runner.cleanup()
        log.error("cannot listen on %s (kitctl's socket in data_dir): %s", socket_path, exc.strerror or exc)
        return 1
    try:
        network_runner = await open_network(kit)
    except OSError as exc:
        await runner.cleanup()
        log.error("%s", exc.strerror or exc)
        return 1
    port_file = write_port_file(data_dir, bound)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    # READY means the devices have been looked at once, so the first status is informed.
    await kit.run_devices(FIRST_LOOK_TIMEOUT_S)
    await kit.visits.restore()  # a visit cut off by a restart or power cut comes back
    tasks: list[asyncio.Task[None]] = [
        asyncio.create_task(kit.erase_delivered(), name="erase-delivered"),
        asyncio.create_task(kit.checkpoint_periodically(), name="audit-checkpoints"),
        asyncio.create_task(kit.note_the_time(), name="clock-notes"),
    ]
    interval = sdnotify.watchdog_interval_s()
    if interval:
        tasks.append(asyncio.create_task(_watchdog(interval), name="watchdog"))
    log.info(
        "serving on %s",
        kit.api_url,
        extra={"port": bound, "port_file": str(port_file), "devices": list(kit.slots)},
    )
    sdnotify.notify(f"READY=1\nSTATUS=serving on {kit.api_url}\nMAINPID={os.getpid()}")

    await stop.wait()
    log.info("stopping")
    sdnotify.notify("STOPPING=1")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await kit.shutdown()
    kit.clock.note()
    if network_runner is not None:
        await network_runner.cleanup()
        with contextlib.suppress(OSError):
            (data_dir / NETWORK_PORT_FILE).unlink()
    await runner.cleanup()
    kit.close_database()  # after the API: a late request still finds it
    with contextlib.suppress(OSError):
        port_file.unlink()
    with contextlib.suppress(OSError):
        socket_path.unlink()
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kitd", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default=str(DEFAULT_CONFIG_PATH), help="TOML config (default %(default)s)"
    )
    parser.add_argument("--version", action="version", version=f"kitd {__version__}")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"kitd: {exc}\n")
        return 2
    setup_logging(config["log.level"])
    # OpenCV's own worker threads spin between the small parallel jobs of a preview and a
    # quality check (measured: 4% of a core of the 20% a preview and a session cost); the
    # daemon runs its jobs on threads of its own.
    cv2.setNumThreads(1)
    try:
        return asyncio.run(serve(config))
    except ConfigError as exc:
        sys.stderr.write(f"kitd: {exc}\n")
        return 2
    except KitError as exc:
        log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
