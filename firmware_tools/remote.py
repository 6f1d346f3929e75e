"""kitfw's commands that go through the kit's daemon: list, upload and rollback.

Its one job: ask the daemon's firmware endpoints (kitd.api.firmware) over its Unix socket in
data_dir (or ``--api URL`` with a token, as kitctl does) and show the technician what happens:
``list`` the peripheral's image slots; ``upload IMAGE`` checks the image here first (a refusal
is immediate and nothing is sent), sends it, and follows the operation with a progress bar on
stderr and each step on stdout; ``rollback`` goes back to the previous image.

Exit status: 0 the new image runs confirmed (rollback: the previous image runs again), 1 refused,
reverted or failed (the reason said), 2 bad arguments or an unreadable file, 3 the daemon cannot
be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from kitformats.named_files import read_named_file

from firmware_tools.image_checks import (
    AllowListError,
    KeyFileError,
    read_allow_list,
    read_public_keys,
    verify_image,
)
from kitd.cli.daemon_client import DaemonClient, DaemonError, DaemonUnreachable
from kitd.cli.options import client_from_args, config_from_args
from kitd.errors import ConfigError
from kitd.services.firmware import parse_kit_version

OK, FAILED, USAGE, UNREACHABLE = 0, 1, 2, 3
FIRMWARE = "/api/v1/firmware"
POLL_S = 0.2
# How long kitfw follows an operation before it says so and leaves it to the daemon.
FOLLOW_LIMIT_S = 1800.0
# The upload request carries the whole image (up to 1 MiB) in one body.
UPLOAD_TIMEOUT_S = 120.0
BAR_WIDTH = 30
# Checks that need the kit's pinned keys and allow-list: skipped here when none are pinned locally
# (the daemon checks them before it sends anything).
NEEDS_PINNING = ("signature", "allow_list")


class _Stop(Exception):
    """A one-line message and an exit status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _run(command: Any, args: argparse.Namespace) -> int:
    try:
        return int(command(args))
    except _Stop as stop:
        sys.stderr.write(f"kitfw: {stop}\n")
        return stop.status
    except DaemonUnreachable as exc:
        sys.stderr.write(f"kitfw: {exc}\n")
        return UNREACHABLE
    except DaemonError as exc:
        if exc.status < 400:  # an answer unlike kitd's (not JSON, another shape): nothing was refused
            sys.stderr.write(f"kitfw: {exc}\n")
        else:
            sys.stderr.write(f"kitfw: the daemon refused ({exc.status} {exc.code}): {exc}\n")
        return FAILED
    except ConfigError as exc:
        sys.stderr.write(f"kitfw: {exc}\n")
        return USAGE


def _client(args: argparse.Namespace) -> DaemonClient:
    return client_from_args(args)


# --- list ---------------------------------------------------------------------------------------


def list_slots(args: argparse.Namespace) -> int:
    """The peripheral's image slots and running version, and the last operation."""
    return _run(_list, args)


def _list(args: argparse.Namespace) -> int:
    state = _client(args).checked_json("GET", FIRMWARE, shape="Firmware")
    if getattr(args, "json", False):
        print(json.dumps(state, indent=2))
        return OK if state["device"] is not None else FAILED
    if state["device"] is None:
        raise _Stop(FAILED, "this kit has no peripheral configured (an smp: device)")
    print(
        f"peripheral {state['device']} ({state['status']}), running {state['running_version'] or 'unknown'}"
    )
    if not state["read_now"]:
        print(f"(slots as last read: {state['problem'] or 'a firmware operation holds the peripheral'})")
    print(f"{'slot':<5} {'version':<14} {'hash':<18} flags")
    for slot in state["slots"]:
        flags = [name for name in ("active", "confirmed", "pending", "bootable", "permanent") if slot[name]]
        print(f"{slot['slot']:<5} {slot['version']:<14} {slot['hash'][:16]:<18} {' '.join(flags)}")
    operation = state["operation"]
    if operation is not None:
        print(
            f"last operation: {operation['kind']} {operation['operation_id']} {operation['state']}"
            + (f": {operation['outcome']}" if operation["outcome"] else "")
        )
    return OK


# --- upload ---------------------------------------------------------------------------------------


def upload(args: argparse.Namespace) -> int:
    """Check the image here, send it, and follow the daemon's update to its end."""
    return _run(_upload, args)


def _upload(args: argparse.Namespace) -> int:
    try:
        data = read_named_file(args.image)
    except OSError as exc:
        raise _Stop(USAGE, f"cannot read image {args.image}: {exc.strerror or exc}") from None
    client = _client(args)
    state = client.checked_json("GET", FIRMWARE, shape="Firmware")
    if state["device"] is None:
        raise _Stop(FAILED, "this kit has no peripheral configured (an smp: device)")
    _check_here(args, data, state["running_version"])
    query = "?allow_downgrade=1" if args.allow_downgrade else ""
    reply = client.checked_json(
        "POST",
        f"{FIRMWARE}/upload{query}",
        data,
        UPLOAD_TIMEOUT_S,
        "application/octet-stream",
        shape="FirmwareOperation",
    )
    version = reply.get("version") or "version not given"
    print(f"upload {reply['operation_id']}: {version} ({len(data)} bytes) to {reply['device']}")
    return _follow(client, reply["operation_id"], "confirmed", not args.no_progress)


def _check_here(args: argparse.Namespace, data: bytes, running: str | None) -> None:
    """The image's checks with this machine's configuration: a refusal ends here, nothing sent."""
    try:
        config = config_from_args(args)
        keys = read_public_keys(config["firmware.public_keys"])
        path = str(config["firmware.allow_list"])
        allow_list = read_allow_list(path) if path else None
    except (KeyFileError, AllowListError) as exc:
        raise _Stop(USAGE, str(exc)) from None
    running_version = parse_kit_version(running)
    findings = verify_image(data, keys, allow_list, running_version, args.allow_downgrade)
    pinned = bool(keys)
    refused = [f for f in findings if not f.ok and (pinned or f.check not in NEEDS_PINNING)]
    for finding in findings:
        if not pinned and finding.check in NEEDS_PINNING:
            continue
        print(f"{'ok' if finding.ok else 'REFUSED':<8} {finding}")
    if not pinned:
        print("no keys pinned in this configuration: the daemon checks the signature before sending")
    if refused:
        raise _Stop(FAILED, f"{args.image} refused, nothing sent: " + "; ".join(str(f) for f in refused))


# --- rollback -------------------------------------------------------------------------------------


def rollback(args: argparse.Namespace) -> int:
    """Go back to the previous image, and follow the daemon's rollback to its end."""
    return _run(_rollback, args)


def _rollback(args: argparse.Namespace) -> int:
    client = _client(args)
    reply = client.checked_json("POST", f"{FIRMWARE}/rollback", shape="FirmwareOperation")
    print(f"rollback {reply['operation_id']} on {reply['device']}")
    return _follow(client, reply["operation_id"], "rolled_back", False)


# --- following an operation -----------------------------------------------------------------------


def _follow(client: DaemonClient, operation_id: str, success: str, show_progress: bool) -> int:
    """Each new step on stdout and the upload's progress on stderr until the operation ends."""
    bar = _ProgressBar(show_progress and sys.stderr.isatty())
    shown = 0
    deadline = time.monotonic() + FOLLOW_LIMIT_S
    while True:
        operation = client.checked_json(
            "GET", f"{FIRMWARE}/operations/{operation_id}", shape="FirmwareOperation"
        )
        bar.show(operation["bytes_done"], operation["bytes_total"])
        for step in operation["steps"][shown:]:
            bar.clear()
            print(f"{step['at'][11:19]}  {describe_step(step)}", flush=True)
        shown = len(operation["steps"])
        if operation["state"] != "running":
            bar.clear()
            outcome = str(operation["outcome"])
            # An outcome that already begins with its state ("refused, nothing was sent: ...")
            # is said once.
            state = str(operation["state"]).replace("_", " ")  # rolled_back: "rolled back: ..."
            said = outcome if outcome.startswith(state) else f"{operation['state']}: {outcome}"
            print(said)
            return OK if operation["state"] == success else FAILED
        if time.monotonic() > deadline:
            raise _Stop(
                FAILED, f"operation {operation_id} still running after {FOLLOW_LIMIT_S:g} s: kitfw list"
            )
        time.sleep(POLL_S)


def describe_step(step: dict[str, Any]) -> str:
    """One step in a technician's words."""
    action, d = step["action"], step["details"]
    words = {
        "firmware_verified": lambda: (
            f"verified {d.get('version')} against the running {d.get('running_version')}"
        ),
        "firmware_refused": lambda: "refused: " + "; ".join(d.get("reasons") or [str(d.get("reason"))]),
        "firmware_rollback_started": lambda: (
            f"rollback from {d.get('running_version')}"
            + ("" if d.get("running_confirmed") else " (not confirmed)")
        ),
        "firmware_upload_started": lambda: (
            f"upload attempt {d.get('attempt')} from byte {d.get('offset')} of {d.get('size')}"
            if d.get("offset") is not None
            else f"upload attempt {d.get('attempt')}: the peripheral did not take its first chunk"
        ),
        "firmware_upload_interrupted": lambda: (
            f"upload attempt {d.get('attempt')} cut at byte {d.get('offset')}: {d.get('reason')}"
        ),
        "firmware_uploaded": lambda: f"uploaded {d.get('size')} bytes to slot {d.get('slot')}",
        "firmware_marked_for_test": lambda: (
            f"marked {d.get('version')} for test"
            + ("" if d.get("ok", True) else f" (interrupted: {d.get('reason')})")
        ),
        "firmware_reset": lambda: f"reset {d.get('reason')}",
        "firmware_back": lambda: (
            f"back: {d.get('running_version')} runs"
            + (", confirmed" if d.get("confirmed") else ", not confirmed")
            if d.get("ok", True)
            else f"not back: {d.get('reason')}"
        ),
        "firmware_self_test": lambda: f"self-test {'passed' if d.get('ok') else 'FAILED'}: {d.get('detail')}",
        "firmware_confirmed": lambda: f"confirmed: {d.get('running_version')} runs",
        "firmware_reverted": lambda: f"reverted: {d.get('running_version')} runs",
        "firmware_failed": lambda: f"failed: {d.get('reason')}",
        "firmware_erased": lambda: f"erased slot 1: {d.get('erased_version')} is no longer marked for test",
        "firmware_still_marked": lambda: (
            f"{d.get('marked_version')} is still marked for test in slot 1 ({d.get('reason')})"
            if d.get("certain")
            else f"slot 1 may still be marked for test ({d.get('reason')})"
        ),
    }
    describe = words.get(action)
    return describe() if describe is not None else action


class _ProgressBar:
    """One line on stderr, redrawn in place: the bytes the peripheral holds of the image."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.drawn = False
        self.last = (-1, -1)

    def show(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0 or (done, total) == self.last or (done == 0 and not self.drawn):
            return
        self.last = (done, total)
        filled = BAR_WIDTH * done // total
        sys.stderr.write(
            f"\rupload [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {100 * done // total:3d}% "
            f"{done / 1024:.1f}/{total / 1024:.1f} KiB"
        )
        sys.stderr.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            sys.stderr.write("\r" + " " * (BAR_WIDTH + 40) + "\r")
            sys.stderr.flush()
            self.drawn = False
