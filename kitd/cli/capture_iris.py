"""kitctl capture iris: one intact frame from the iris camera, directly or through the running daemon."""

from __future__ import annotations

import argparse
from pathlib import Path

from kitd.capture.fingerprint import encode_png, gate_outcome
from kitd.capture.iris import take_intact_frame
from kitd.capture.iris_gate import gate_camera, iris_assessor, iris_policy
from kitd.cli.capture import (
    _progress,
    _say_forced,
    _seconds,
    claim_for_kitctl,
    fail,
    run_image_capture,
    write_atomically,
)
from kitd.cli.options import add_api_option, add_config_option
from kitd.config import KitConfig
from kitd.drivers.registry import make_driver
from kitd.errors import DeviceBusy, DeviceTimeout, KitError, QualityGateFailed

KIND = "iris_camera"


def add_modality(kinds: argparse._SubParsersAction) -> None:
    iris = kinds.add_parser("iris", help="capture one intact iris-camera frame as an 8-bit grey PNG")
    source = iris.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--device",
        metavar="URI",
        help="open the camera directly: camera:/dev/video0, camera:http://HOST:PORT/PATH, camera:file:PATH",
    )
    source.add_argument(
        "--daemon",
        nargs="?",
        const="",
        metavar="DEVICE_ID",
        help="ask the running kitd (no ID: its only iris camera)",
    )
    iris.add_argument(
        "--out", required=True, metavar="FILE", help="where to write the PNG (whatever its name)"
    )
    iris.add_argument(
        "--timeout", type=_seconds, metavar="SECONDS", help="wait this long for an intact frame"
    )
    iris.add_argument("--raw", action="store_true", help="one intact frame, no quality gate")
    iris.add_argument("--force", action="store_true", help="keep the best frame even if none passes the gate")
    where = iris.add_mutually_exclusive_group()
    add_config_option(where)
    add_api_option(where)
    iris.set_defaults(func=run_iris)


def run_iris(args: argparse.Namespace) -> int:
    return run_image_capture(args, _capture_direct, KIND, "iris camera", "an intact frame")


def _capture_direct(args: argparse.Namespace, config: KitConfig, out: Path) -> int:
    uri = args.device
    try:
        claim = claim_for_kitctl(uri, config, KIND, "an iris camera", "iris")
    except DeviceBusy as exc:
        return fail(str(exc))
    timeout = args.timeout or float(config["iris.capture_timeout_s"])
    camera = make_driver(uri, config)
    forced = None
    try:
        if args.raw:
            _progress(f"waiting up to {timeout:g} s for an intact frame from {uri}")
            frame = take_intact_frame(camera, timeout)
        else:
            _progress(f"judging frames from {uri} for up to {timeout:g} s until one passes the quality gate")
            session = gate_camera(camera, iris_policy(config, timeout), iris_assessor(config))
            result = gate_outcome(session, args.force, unit="frame", nothing=DeviceTimeout)
            frame = result.frame
            if result.forced:
                forced = f"score {result.report.score:.0f}; failing: {', '.join(result.report.failed_checks)}"
    except QualityGateFailed as exc:
        return fail(
            f"iris camera {uri}: {exc}; feedback: {', '.join(exc.feedback) or 'none'} (--force keeps it)"
        )
    except KitError as exc:
        return fail(f"iris camera {uri}: {exc}")
    finally:
        camera.close()
        claim.release()
    write_atomically(out, encode_png(frame.image))
    if forced:
        _say_forced(forced)
    return 0
