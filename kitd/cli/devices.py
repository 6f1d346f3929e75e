"""kitctl devices: the configured devices and what is detected, in the API's shape.

A device the running daemon holds is reported as the daemon sees it (asked over
its API); any other is opened briefly to read its identity. Known devices found on
the bus but not in the config are listed too, with `detail.configured = false`; the
panel (its buttons, LEDs and buzzer) is listed when `panel.enabled`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from kitd.cli.daemon_client import DaemonClient, api_url_from_config
from kitd.cli.options import add_config_option, config_from_args
from kitd.config import KitConfig
from kitd.drivers.base import Driver
from kitd.drivers.panel import PANEL_ID, PanelDriver, panel_uri
from kitd.drivers.registry import USB_DRIVERS, device_kind, make_driver
from kitd.errors import DeviceGone, KitError
from kitd.services.claims import ClaimHeld, DeviceClaim, claim_scope


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("devices", help="list configured and detected devices")
    parser.add_argument("--json", action="store_true", help="one JSON array in the API's shape")
    add_config_option(parser)
    parser.set_defaults(func=run)


def _entry(device_id: str, uri: str, kind: str, status: str, **facts: Any) -> dict[str, Any]:
    return {
        "id": device_id,
        "uri": uri,
        "kind": kind,
        "model": facts.get("model"),
        "serial": facts.get("serial"),
        "firmware": facts.get("firmware"),
        "status": status,
        "detail": facts.get("detail", {}),
    }


def probe_device(
    device_id: str,
    uri: str,
    config: KitConfig,
    kind: str | None = None,
    make: Callable[[], Driver] | None = None,
) -> dict[str, Any]:
    """One device's entry: from the daemon if it holds it, else by opening it (its driver
    from `make`, by default the one its URI names)."""
    kind = kind or device_kind(uri)
    backend = claim_scope(uri, config)
    try:
        claim = DeviceClaim(uri, backend, {"program": "kitctl"})
    except ClaimHeld as held:
        # Ask the daemon: over its socket in data_dir when this config's daemon holds the
        # device (no token needed), else at the address its claim names (with $KITD_TOKEN).
        local = api_url_from_config(config)
        api = local if local.startswith("unix:") else held.holder.get("api")
        if api:
            try:
                for entry in DaemonClient(api, os.environ.get("KITD_TOKEN")).devices():
                    if entry["uri"] == uri:
                        entry["detail"]["held_by"] = "kitd"
                        return entry
            except KitError:
                pass
        return _entry(device_id, uri, kind, "busy", detail={"held_by": held.holder})
    driver = make() if make is not None else make_driver(uri, config.driver_settings())
    try:
        facts = driver.open()
    except DeviceGone as exc:
        return _entry(device_id, uri, kind, "disconnected", detail={"reason": str(exc)})
    except KitError as exc:
        return _entry(device_id, uri, kind, "error", detail={"reason": str(exc)})
    finally:
        driver.close()
        claim.release()
    return _entry(
        device_id,
        uri,
        kind,
        "ready",
        model=facts.model,
        serial=facts.serial,
        firmware=facts.firmware,
        detail=facts.detail,
    )


def list_devices(config: KitConfig) -> list[dict[str, Any]]:
    entries = [probe_device(d.id, d.uri, config) for d in config.devices]
    configured = {d.uri.partition("?")[0] for d in config.devices}
    for vendor, product in USB_DRIVERS:
        uri = f"usb:{vendor:04x}:{product:04x}"
        if uri in configured:
            continue
        entry = probe_device(uri, uri, config)
        if entry["status"] != "disconnected":
            entry["detail"]["configured"] = False
            entries.append(entry)
    if config["panel.enabled"]:
        target = str(config["panel.pin_factory"])
        wiring = config.panel_wiring()
        entries.append(
            probe_device(PANEL_ID, panel_uri(target), config, "panel", lambda: PanelDriver.at(target, wiring))
        )
    return entries


def run(args: argparse.Namespace) -> int:
    entries = list_devices(config_from_args(args))
    if args.json:
        print(json.dumps(entries))
        return 0
    if not entries:
        print("no devices configured or detected")
        return 0
    rows = [("ID", "KIND", "STATUS", "MODEL", "FIRMWARE", "URI")]
    for e in entries:
        rows.append((e["id"], e["kind"], e["status"], e["model"] or "-", e["firmware"] or "-", e["uri"]))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    for e in entries:
        reason = e["detail"].get("reason") or e["detail"].get("status_reason")
        if e["status"] in ("disconnected", "error") and reason:
            print(f"{e['id']}: {reason}", file=sys.stderr)
    return 0
