"""kitctl capture signature: record a signature from the pad, directly or through the running daemon.

Writes the recording as JSON (the shape of `Signature.to_json`, the same the daemon
returns) and, with --png, the rendered ink. Recording stops after --seconds, or once
no packet at all has arrived for `signature.pen_lift_stop_s` after the first tip-down.
"""

from __future__ import annotations

import argparse
import json

from kitd.capture.signature import (
    Signature,
    record_signature,
    render_png,
    signature_facts,
    signature_from_json,
)
from kitd.cli.capture_common import (
    add_source_options,
    claim_for_kitctl,
    direct_config,
    fail,
    output_path,
    pick_device,
    progress,
    seconds_argument,
)
from kitd.cli.daemon_client import DaemonClient, DaemonError
from kitd.cli.options import client_from_args
from kitd.config import KitConfig
from kitd.drivers.registry import make_driver
from kitd.durable_files import write_atomically
from kitd.errors import ConfigError, DeviceBusy, KitError

# How much longer than the recording kitctl waits for the daemon's answer.
DAEMON_MARGIN_S = 15.0


def add_modality(kinds: argparse._SubParsersAction) -> None:
    pad = kinds.add_parser("signature", help="record a signature from the pad as JSON (and a PNG)")
    add_source_options(pad, "signature pad", "serial:/dev/ttyUSB0")
    pad.add_argument(
        "--seconds", required=True, type=seconds_argument, metavar="N", help="record at most this long"
    )
    pad.add_argument("--out", required=True, metavar="FILE", help="where to write the JSON")
    pad.add_argument("--png", metavar="FILE", help="also write the rendered ink as PNG")
    pad.set_defaults(func=run_signature)


def run_signature(args: argparse.Namespace) -> int:
    out = output_path("--out", args.out)
    png = output_path("--png", args.png) if args.png else None
    if png is not None and png.resolve() == out.resolve():
        raise ConfigError(f"--png {png}: the same file as --out (the ink would replace the recording)")
    if args.device is not None:
        signature = _record_direct(args, direct_config(args))
    else:
        signature = _record_through_daemon(args, client_from_args(args))
    if isinstance(signature, int):
        return signature
    write_atomically(out, json.dumps(signature.to_json()).encode())
    if png is not None:
        write_atomically(png, render_png(signature))
    print(describe_facts(signature_facts(signature)))
    return 0


def describe_facts(facts: dict) -> str:
    """One line for the technician: strokes, points, pen-down time, ink size."""
    ink = facts["ink_mm"]
    size = f"ink {ink['width_mm']:.1f} x {ink['height_mm']:.1f} mm" if ink else "no ink"
    return (
        f"signature: {facts['strokes']} strokes, {facts['points']} points in {facts['duration_s']:.2f} s, "
        f"pen down {facts['pen_down_s']:.2f} s, {size}"
    )


def _record_direct(args: argparse.Namespace, config: KitConfig) -> Signature | int:
    uri = args.device
    try:
        claim = claim_for_kitctl(uri, config, "signature", "a signature pad", "signature")
    except DeviceBusy as exc:
        return fail(str(exc))
    pad = make_driver(uri, config.driver_settings())
    try:
        pad.open()
        progress(f"recording up to {args.seconds:g} s from {uri}: sign now")
        return record_signature(pad, args.seconds, float(config["signature.pen_lift_stop_s"]))
    except KitError as exc:
        return fail(f"signature pad {uri}: {exc}")
    finally:
        pad.close()
        claim.release()


def _record_through_daemon(args: argparse.Namespace, client: DaemonClient) -> Signature | int:
    try:
        device_id = pick_device(client, args.daemon, "signature", "signature pad")
        progress(f"recording up to {args.seconds:g} s on the daemon's pad '{device_id}': sign now")
        reply = client.checked(
            "POST",
            f"/api/v1/devices/{device_id}/capture",
            {"seconds": args.seconds},
            timeout_s=args.seconds + DAEMON_MARGIN_S,
        )
    except DaemonError as exc:
        return fail(f"daemon: {exc} ({exc.code}, HTTP {exc.status})")
    except KitError as exc:
        return fail(str(exc))
    try:
        return signature_from_json(reply.json())
    except DaemonError as exc:
        return fail(f"daemon: {exc}")
    except ValueError as exc:
        return fail(f"daemon: the reply is {exc}")
