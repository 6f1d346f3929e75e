"""kitctl capture fingerprint: one fingerprint as an 8-bit grey PNG, directly or through kitd."""

from __future__ import annotations

import argparse
from pathlib import Path

from kitd.capture.fingerprint import take_fingerprint
from kitd.cli.capture_common import (
    add_source_options,
    claim_for_kitctl,
    describe_image,
    fail,
    forced_detail,
    progress,
    run_image_capture,
    say_forced,
    seconds_argument,
)
from kitd.config import KitConfig
from kitd.drivers.registry import make_driver
from kitd.durable_files import write_atomically
from kitd.errors import DeviceBusy, KitError, QualityGateFailed
from kitd.grey_image import encode_png
from kitd.services.gates import fingerprint_assessor, gate_policy


def add_modality(kinds: argparse._SubParsersAction) -> None:
    finger = kinds.add_parser("fingerprint", help="capture one fingerprint as an 8-bit grey PNG")
    add_source_options(finger, "fingerprint reader", "usb:298d:1010")
    finger.add_argument("--out", required=True, metavar="FILE", help="where to write the PNG")
    finger.add_argument(
        "--timeout", type=seconds_argument, metavar="SECONDS", help="wait for a finger this long"
    )
    gate = finger.add_mutually_exclusive_group()  # --raw skips the gate that --force overrides
    gate.add_argument("--raw", action="store_true", help="one frame, no quality gate")
    gate.add_argument("--force", action="store_true", help="keep the best press even if it fails the gate")
    finger.set_defaults(func=run_fingerprint)


def run_fingerprint(args: argparse.Namespace) -> int:
    return run_image_capture(args, _capture_direct, "fingerprint", "fingerprint reader", "a finger")


def _capture_direct(args: argparse.Namespace, config: KitConfig, out: Path) -> int:
    uri = args.device
    try:
        claim = claim_for_kitctl(uri, config, "fingerprint", "a fingerprint reader", "fingerprint")
    except DeviceBusy as exc:
        return fail(str(exc))
    policy = gate_policy(config, "fingerprint", args.timeout)
    driver = make_driver(uri, config.driver_settings())
    try:
        driver.open()
        progress(f"waiting up to {policy.timeout_s:g} s for a finger on {uri}")
        result = take_fingerprint(
            driver,
            policy,
            fingerprint_assessor(config),
            raw=args.raw,
            force=args.force,
            poll_interval_s=float(config["fingerprint.poll_interval_s"]),
        )
    except QualityGateFailed as exc:
        return fail(f"fingerprint reader {uri}: {exc}")
    except KitError as exc:
        return fail(f"fingerprint reader {uri}: {exc}")
    finally:
        driver.close()
        claim.release()
    write_atomically(out, encode_png(result.frame))
    if result.forced:
        say_forced(forced_detail(result))
    height, width = result.frame.shape[:2]
    score = result.report.score if result.report is not None else None
    print(describe_image("fingerprint", out, (width, height), score, args.raw, result.forced), flush=True)
    return 0
