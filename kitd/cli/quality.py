"""kitctl quality: assess captures already on disk, one report per input.

    kitctl quality fingerprint IMAGE... [--ppi N] [--config PATH] [--json]
    kitctl quality iris IMAGE... [--config PATH] [--json]
    kitctl quality signature FILE... [--config PATH] [--json]   (the JSON of kitctl capture signature)

With --json, one JSON object per line in input order:
`{"file", "score", "passed", "metrics", "feedback"}` (a fingerprint adds `"ppi"`, the
resolution it was assessed at: --ppi, else `fingerprint.ppi` of the config, as in the
daemon), or `{"file", "error"}` for an input that cannot be read (the others are still
assessed). Exit 1 when any input could not be read (not when a capture fails the gate),
2 for bad arguments.
A modality adds one QualityCommand to QUALITY_COMMANDS.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kitd.capture.fingerprint_quality import PLAUSIBLE_PPI, assess_fingerprint
from kitd.capture.iris_quality import MIN_FRAME_SIDE, assess_iris
from kitd.capture.signature_quality import assess_signature
from kitd.cli.inputs import InputUnreadable, read_grey_image
from kitd.cli.options import add_config_option, config_from_args
from kitd.cli.quality_signature import read_signature
from kitd.config import KitConfig


@dataclass(frozen=True)
class QualityCommand:
    """How one modality's inputs are read and assessed.

    `settings` are what the assessment depends on beyond the thresholds (a fingerprint's
    resolution), from the arguments and the config; they are passed to `assess` and
    reported with every input.
    """

    help: str
    load: Callable[[Path], Any]
    assess: Callable[[Any, dict[str, Any], dict[str, float]], Any]
    add_arguments: Callable[[argparse.ArgumentParser], None]
    settings: Callable[[argparse.Namespace, KitConfig], dict[str, Any]] = lambda args, config: {}


def _ppi(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not PLAUSIBLE_PPI[0] <= value <= PLAUSIBLE_PPI[1]:
        raise argparse.ArgumentTypeError(f"{text} ppi is not a plausible sensor resolution")
    return value


def _fingerprint_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ppi", type=_ppi, help="resolution of the images (default: fingerprint.ppi of the config)"
    )


def _fingerprint_settings(args: argparse.Namespace, config: KitConfig) -> dict[str, Any]:
    ppi = args.ppi if args.ppi is not None else config["fingerprint.ppi"]
    return {"ppi": int(ppi) if float(ppi).is_integer() else float(ppi)}


def _assess_fingerprint(image: np.ndarray, settings: dict[str, Any], thresholds: dict[str, float]) -> Any:
    return assess_fingerprint(image, settings["ppi"], thresholds or None)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def _read_eye_image(path: Path) -> np.ndarray:
    image = read_grey_image(path)
    if min(image.shape) < MIN_FRAME_SIDE:
        height, width = image.shape
        least = f"{MIN_FRAME_SIDE} x {MIN_FRAME_SIDE}"
        raise InputUnreadable(f"{width} x {height} px is too small for an eye image (at least {least})")
    return image


def _assess_iris(image: np.ndarray, settings: dict[str, Any], thresholds: dict[str, float]) -> Any:
    return assess_iris(image, thresholds or None)


def _assess_signature(signature: Any, settings: dict[str, Any], thresholds: dict[str, float]) -> Any:
    return assess_signature(signature, thresholds or None)


QUALITY_COMMANDS: dict[str, QualityCommand] = {
    "fingerprint": QualityCommand(
        help="fingerprint images: an NFIQ 2-class score with feedback",
        load=read_grey_image,
        assess=_assess_fingerprint,
        add_arguments=_fingerprint_arguments,
        settings=_fingerprint_settings,
    ),
    "iris": QualityCommand(
        help="near-infrared eye images: ISO/IEC 29794-6-style metrics and circles, with feedback",
        load=_read_eye_image,
        assess=_assess_iris,
        add_arguments=_no_arguments,
    ),
    "signature": QualityCommand(
        help="signature recordings (the JSON of kitctl capture signature): writing, size, points, pressure",
        load=read_signature,
        assess=_assess_signature,
        add_arguments=_no_arguments,
    ),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    quality = subparsers.add_parser("quality", help="assess captures on disk")
    kinds = quality.add_subparsers(dest="modality", required=True, parser_class=type(quality))
    for name, command in QUALITY_COMMANDS.items():
        parser = kinds.add_parser(name, help=command.help)
        parser.add_argument("inputs", nargs="+", metavar="FILE")
        command.add_arguments(parser)
        add_config_option(parser)
        parser.add_argument("--json", action="store_true", help="one JSON object per line")
        parser.set_defaults(func=run, quality=command)


def _human_line(entry: dict[str, Any]) -> str:
    if "error" in entry:
        return f"{entry['file']}: cannot read: {entry['error']}"
    verdict = "pass" if entry["passed"] else "FAIL"
    feedback = ", ".join(entry["feedback"]) or "-"
    at = f" at {entry['ppi']:g} ppi" if "ppi" in entry else ""
    return f"{entry['file']}: score {entry['score']:.0f}{at} {verdict}; feedback: {feedback}"


def run(args: argparse.Namespace) -> int:
    command: QualityCommand = args.quality
    config = config_from_args(args)
    thresholds = config.thresholds(args.modality)
    settings = command.settings(args, config)
    unreadable = 0
    for name in args.inputs:
        entry: dict[str, Any] = {"file": name}
        try:
            report = command.assess(command.load(Path(name)), settings, thresholds)
        except InputUnreadable as exc:
            unreadable += 1
            entry["error"] = str(exc)
        else:
            entry.update(report.to_json())
            entry.update(settings)
        print(json.dumps(entry) if args.json else _human_line(entry), flush=True)
    if unreadable:
        print(f"kitctl: {unreadable} of {len(args.inputs)} inputs could not be read", file=sys.stderr)
        return 1
    return 0
