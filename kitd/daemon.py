"""kitd: the daemon that owns the kit's devices and serves the local HTTP API.

`kitd [--config PATH]` reads the TOML config, opens the configured devices (each
kept alive by its slot's supervisor), serves the API, writes the port it got to
`data_dir/api.port`, tells systemd READY=1 and pings its watchdog, and stops
cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from kitd import __version__, sdnotify
from kitd.api import make_app
from kitd.capture.iris import PREVIEW_OVERLAYS
from kitd.capture.iris_overlay import install_preview_overlay
from kitd.capture_service import CAPTURE_KINDS, Capture
from kitd.claims import claim_scope
from kitd.config import DEFAULT_CONFIG_PATH, KitConfig, load_config
from kitd.devices import STATUSES, DeviceSlot
from kitd.drivers.registry import device_kind, make_driver
from kitd.errors import ConfigError, KitError
from kitd.events import EventHub
from kitd.logs import setup_logging
from kitd.sessions import LiveSessions

log = logging.getLogger("kitd")

PORT_FILE = "api.port"
FIRST_LOOK_TIMEOUT_S = 5.0


class Kit:
    """The daemon's services: the device slots and what the API may ask of them."""

    def __init__(self, config: KitConfig, api_url: str = "") -> None:
        self.config = config
        self.started = time.monotonic()
        self.api_url = api_url
        self.slots: dict[str, DeviceSlot] = {}
        for device in config.devices:
            self.slots[device.id] = DeviceSlot(
                device.id,
                device.uri,
                device_kind(device.uri),
                lambda uri=device.uri: make_driver(uri, config),
                claim_key=claim_scope(device.uri, config),
                holder={"program": "kitd", "api": api_url},
                reconnect_min_s=float(config["devices.reconnect_min_s"]),
                reconnect_max_s=float(config["devices.reconnect_max_s"]),
                health_interval_s=float(config["devices.health_interval_s"]),
            )

        self.events = EventHub()
        self.sessions = LiveSessions(config, self.events)
        # The iris preview shows what the quality gate sees: circles, score, first message.
        install_preview_overlay(PREVIEW_OVERLAYS, config.thresholds("iris"))
        for slot in self.slots.values():
            slot.on_status = self._device_changed

    def _device_changed(self, slot: DeviceSlot, status: str, reason: str) -> None:
        self.events.publish("device", {"device": slot.id, "status": status, "reason": reason})

    def slot(self, device_id: str) -> DeviceSlot | None:
        return self.slots.get(device_id)

    def status(self) -> dict[str, Any]:
        counts = dict.fromkeys(STATUSES, 0)
        for slot in self.slots.values():
            counts[slot.current()[0]] += 1
        return {
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "devices": counts,
        }

    def devices(self) -> list[dict[str, Any]]:
        return [slot.describe() for slot in self.slots.values()]

    async def capture(self, slot: DeviceSlot, options: dict[str, Any]) -> Capture:
        """One capture on `slot`, done the way its kind does it."""
        return await CAPTURE_KINDS[slot.kind].run(self.config, slot, options)


def write_port_file(data_dir: Path, port: int) -> Path:
    """Write the API port atomically so that a reader never sees half a number."""
    path = data_dir / PORT_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{port}\n")
    os.replace(tmp, path)
    return path


async def _watchdog(interval: float) -> None:
    while True:
        sdnotify.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


async def serve(config: KitConfig) -> int:
    data_dir = config.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"config key 'data_dir': cannot create {data_dir}: {exc.strerror}") from None

    host, port = config["api.host"], config["api.port"]
    kit = Kit(config)
    kit.events.bind(asyncio.get_running_loop())
    runner = web.AppRunner(make_app(kit), access_log=None, handle_signals=False)
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
    kit.api_url = f"http://{host}:{bound}"
    for slot in kit.slots.values():
        slot._holder["api"] = kit.api_url
    port_file = write_port_file(data_dir, bound)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    tasks = [asyncio.create_task(slot.supervise(), name=f"slot-{slot.id}") for slot in kit.slots.values()]
    # READY means the devices have been looked at once, so the first status is informed.
    looked_at = [asyncio.create_task(slot.looked_at.wait()) for slot in kit.slots.values()]
    if looked_at:
        await asyncio.wait(looked_at, timeout=FIRST_LOOK_TIMEOUT_S)
        for task in looked_at:
            task.cancel()
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
    await kit.sessions.shutdown()
    kit.events.close()
    for slot in kit.slots.values():
        await slot.shutdown()
    await runner.cleanup()
    with contextlib.suppress(OSError):
        port_file.unlink()
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
