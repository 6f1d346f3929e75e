"""What every `kitctl capture` command shares: where the capture comes from (--device or
--daemon), claiming a device kitd might hold, the output file, and asking the daemon."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from kitd.capture.gate import GatedCapture
from kitd.cli.daemon_client import DaemonClient, DaemonError
from kitd.cli.options import add_api_option, add_config_option, client_from_args, config_from_args
from kitd.config import KitConfig
from kitd.drivers.registry import device_kind
from kitd.durable_files import write_atomically
from kitd.errors import ConfigError, DeviceBusy, KitError
from kitd.services.claims import ClaimHeld, DeviceClaim, claim_scope, describe_holder


def add_source_options(parser: argparse.ArgumentParser, noun: str, example_uri: str) -> None:
    """What every capture command takes: --device URI or --daemon [DEVICE_ID], and --config or --api."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--device", metavar="URI", help=f"open the {noun} directly, e.g. {example_uri}")
    source.add_argument(
        "--daemon",
        nargs="?",
        const="",
        metavar="DEVICE_ID",
        help=f"ask the running kitd (no ID: its only {noun})",
    )
    where = parser.add_mutually_exclusive_group()
    add_config_option(where)
    add_api_option(where, parser)


def output_path(option: str, value: str) -> Path:
    """A file kitctl may write, or ConfigError when it is a folder or its folder is missing."""
    path = Path(value)
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory")
    if not path.parent.exists() and str(path.parent):
        raise ConfigError(f"{option} {path}: folder {path.parent} does not exist")
    return path


def seconds_argument(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds")
    if not value > 0:
        raise argparse.ArgumentTypeError("must be above 0")
    return value


def fail(message: str) -> int:
    sys.stderr.write(f"kitctl: {message}\n")
    return 1


def progress(message: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(message + "\n")


def direct_config(args: argparse.Namespace) -> KitConfig:
    """The configuration for a device kitctl opens itself (--device); --api is the daemon's."""
    if args.api:
        raise ConfigError("--api only goes with --daemon")
    return config_from_args(args)


def run_image_capture(
    args: argparse.Namespace,
    capture_direct: Callable[[argparse.Namespace, KitConfig, Path], int],
    kind: str,
    noun: str,
    waiting: str,
) -> int:
    """An image capture to --out: from the device itself (--device) or through the daemon."""
    out = output_path("--out", args.out)
    if args.device is not None:
        return capture_direct(args, direct_config(args), out)
    return capture_image_through_daemon(args, client_from_args(args), out, kind, noun, waiting)


def claim_for_kitctl(uri: str, config: KitConfig, kind: str, a_noun: str, modality: str) -> DeviceClaim:
    """kitctl's claim on a device it opens itself, after checking the URI names `kind`.

    ConfigError when the URI is another kind of device ("... not `a_noun`");
    DeviceBusy naming the holder when a running kitd (or another kitctl) has it, and the
    command to use instead (with `--api URL` when the holder is a daemon serving one).
    """
    found = device_kind(uri)
    if found != kind:
        raise ConfigError(f"--device {uri}: a {found} device, not {a_noun}")
    try:
        return DeviceClaim(uri, claim_scope(uri, config), {"program": "kitctl"})
    except ClaimHeld as held:
        holder = describe_holder(held.holder)
        api = held.holder.get("api")
        command = f"kitctl capture {modality} --daemon" + (f" --api {api}" if api else "")
        raise DeviceBusy(f"{uri} is held by {holder}; use '{command}' instead") from None


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's header, None when `data` is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def describe_image(
    modality: str, out: Path, size: tuple[int, int] | None, score: float | None, raw: bool, forced: bool
) -> str:
    """One line for the technician on stdout: the file, its size, the score, whether forced."""
    parts = [str(out)]
    if size is not None:
        parts.append(f"{size[0]} x {size[1]} px")
    if score is not None:
        parts.append(f"score {score:.0f}")
    if raw:
        parts.append("raw (no quality gate)")
    else:
        parts.append("forced (did not pass the quality gate)" if forced else "passed the quality gate")
    return f"{modality}: " + ", ".join(parts)


def say_forced(detail: str) -> None:
    sys.stderr.write(f"kitctl: forced: the capture did not pass the quality gate ({detail})\n")


def forced_detail(capture: GatedCapture) -> str:
    return f"score {capture.report.score:.0f}; {capture.why_forced()}"


def pick_device(client: DaemonClient, wanted: str, kind: str, noun: str) -> str:
    """The daemon's device to use: `wanted` if it has it, else its only device of `kind`."""
    devices = client.devices()
    if wanted:
        named = next((d for d in devices if d["id"] == wanted), None)
        if named is None:
            known = ", ".join(d["id"] for d in devices) or "none"
            raise KitError(f"the daemon has no device '{wanted}' (it has: {known})")
        if named["kind"] != kind:
            # Another kind's capture would be written under this command's name, and pass.
            a_noun = f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"
            raise KitError(f"the daemon's device '{wanted}' is not {a_noun} (its kind: {named['kind']})")
        return wanted
    found = [d["id"] for d in devices if d["kind"] == kind]
    if not found:
        raise KitError(f"the daemon has no {noun} configured")
    if len(found) > 1:
        raise KitError(f"the daemon has several {noun}s ({', '.join(found)}): name one")
    return found[0]


def capture_image_through_daemon(
    args: argparse.Namespace, client: DaemonClient, out: Path, kind: str, noun: str, waiting: str
) -> int:
    """A gated (or --raw) image capture asked of the running daemon, written to `out`."""
    try:
        device_id = pick_device(client, args.daemon, kind, noun)
        body: dict = {"raw": bool(args.raw), "force": bool(args.force)}
        if args.timeout:
            body["timeout_s"] = args.timeout
        progress(f"waiting for {waiting} from the daemon's {noun} '{device_id}'")
        wait = (args.timeout or 60.0) + 15.0
        reply = client.checked("POST", f"/api/v1/devices/{device_id}/capture", body, timeout_s=wait)
    except DaemonError as exc:
        return fail(f"daemon: {exc} ({exc.code}, HTTP {exc.status})")
    except KitError as exc:
        return fail(str(exc))
    write_atomically(out, reply.body)
    forced = reply.headers.get("X-Kit-Forced") == "true"
    if forced:
        feedback = reply.headers.get("X-Kit-Feedback") or "none"
        why = reply.headers.get("X-Kit-Forced-Because")
        because = f"{why}; " if why else ""
        say_forced(f"score {reply.headers.get('X-Kit-Quality', '?')}; {because}feedback: {feedback}")
    try:
        score: float | None = float(reply.headers["X-Kit-Quality"])
    except (KeyError, ValueError):
        score = None
    modality = "iris" if kind == "iris_camera" else kind
    print(describe_image(modality, out, png_size(reply.body), score, bool(args.raw), forced), flush=True)
    return 0
