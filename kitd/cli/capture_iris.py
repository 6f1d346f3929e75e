"""kitctl capture iris: one intact frame from the iris camera, directly or through the running daemon."""

from __future__ import annotations

import argparse
from pathlib import Path

from kitd.capture.iris_gate import take_iris
from kitd.cli.capture_common import (
    claim_for_kitctl,
    describe_image,
    fail,
    forced_detail,
    progress,
    run_image_capture,
    say_forced,
    seconds_argument,
)
from kitd.cli.options import add_api_option, add_config_option
from kitd.config import KitConfig
from kitd.drivers.registry import make_driver
from kitd.drivers.uvc_camera import IrisCamera
from kitd.durable_files import write_atomically
from kitd.errors import DeviceBusy, KitError, QualityGateFailed
from kitd.grey_image import encode_png
from kitd.services.gates import gate_policy, iris_assessor

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
        "--timeout", type=seconds_argument, metavar="SECONDS", help="wait this long for an intact frame"
    )
    gate = iris.add_mutually_exclusive_group()  # --raw skips the gate that --force overrides
    gate.add_argument("--raw", action="store_true", help="one intact frame, no quality gate")
    gate.add_argument("--force", action="store_true", help="keep the best frame even if none passes the gate")
    where = iris.add_mutually_exclusive_group()
    add_config_option(where)
    add_api_option(where, iris)
    iris.set_defaults(func=run_iris)


def run_iris(args: argparse.Namespace) -> int:
    return run_image_capture(args, _capture_direct, KIND, "iris camera", "an intact frame")


def _capture_direct(args: argparse.Namespace, config: KitConfig, out: Path) -> int:
    uri = args.device
    try:
        claim = claim_for_kitctl(uri, config, KIND, "an iris camera", "iris")
    except DeviceBusy as exc:
        return fail(str(exc))
    policy = gate_policy(config, "iris", args.timeout)
    camera = make_driver(uri, config.driver_settings())
    assert isinstance(camera, IrisCamera)
    # A file is judged frame by frame, as fast as it can be; a live camera streams.
    replay = not camera.source.live
    forced = None
    try:
        if not replay:
            camera.open()
        if args.raw:
            progress(f"waiting up to {policy.timeout_s:g} s for an intact frame from {uri}")
        else:
            progress(f"judging frames from {uri} for up to {policy.timeout_s:g} s until one passes the gate")
        result = take_iris(
            camera, policy, iris_assessor(config), raw=args.raw, force=args.force, replay_directly=replay
        )
        frame = result.frame
        score = result.report.score if result.report is not None else None
        if result.forced:
            forced = forced_detail(result)
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
        say_forced(forced)
    height, width = frame.image.shape[:2]
    print(describe_image("iris", out, (width, height), score, args.raw, bool(forced)), flush=True)
    return 0
