"""kit-sim: a whole kit with no hardware — every simulator, then the real kitd against them.

    kit-sim [--port 8080] [--workdir DIR] [--network]

Starts each simulator in its own process, writes a kitd config pointing at them,
starts the real `kitd`, prints the API's URL and every control channel, and stops
them all on Ctrl-C or SIGTERM. Without --workdir it works in a new /tmp/kit-sim-*
directory (configs, data, logs), removed when it exits; --workdir keeps them.
--network also serves the network API for field laptops on loopback (the port it got is
printed; `kitctl laptops pair` opens a pairing window for `kit-sync pair`).
A device family adds its simulator to SIMULATORS.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from kitformats.signing import write_private_key

from hil.rig import SIMULATION_OFFICERS, KitdProcess, SimulatorProcess
from kitd.whole_numbers import whole_number_in


@dataclass
class SimulatedDevice:
    """A running simulator and what kitd's config needs to reach it."""

    simulator: SimulatorProcess
    settings: dict[str, Any] = field(default_factory=dict)
    devices: list[dict[str, str]] = field(default_factory=list)


def start_fingerprint_reader(workdir: Path) -> SimulatedDevice:
    sim = SimulatorProcess("hil.nb1010_sim", ["--condition", "good"], workdir / "nb1010").start()
    return SimulatedDevice(
        simulator=sim,
        settings={"usb_backend": sim.usbip_uri},
        devices=[{"id": "fingerprint", "uri": "usb:298d:1010"}],
    )


def start_signature_pad(workdir: Path) -> SimulatedDevice:
    folder = workdir / "isdv4"
    sim = SimulatorProcess("hil.isdv4_sim", ["--link", str(folder / "pad")], folder).start()
    uri = f"serial:{sim.addresses['serial']}"
    return SimulatedDevice(simulator=sim, devices=[{"id": "signature", "uri": uri}])


def start_iris_camera(workdir: Path) -> SimulatedDevice:
    sim = SimulatorProcess("hil.eye_sim", ["--applicant"], workdir / "eye").start()
    uri = f"camera:{sim.addresses['url']}"
    return SimulatedDevice(simulator=sim, devices=[{"id": "iris_camera", "uri": uri}])


def start_panel(workdir: Path) -> SimulatedDevice:
    """The buttons, LEDs and buzzer: kitd's pins reach them over the simulator's pin link."""
    sim = SimulatorProcess("hil.panel_sim", [], workdir / "panel").start()
    settings = {"panel.enabled": True, "panel.pin_factory": f"socket:{sim.addresses['pins']}"}
    return SimulatedDevice(simulator=sim, settings=settings)


def start_peripheral(workdir: Path) -> SimulatedDevice:
    """The peripheral controller (illuminator, battery gauge, MCUboot firmware) over SMP on a pty;
    its flash stays in the work directory, so a --workdir kit keeps its firmware."""
    folder = workdir / "peripheral"
    args = ["--link", str(folder / "ttyACM0"), "--state-dir", str(folder / "flash")]
    sim = SimulatorProcess("hil.smp_peripheral_sim", args, folder).start()
    uri = f"smp:{sim.addresses['serial']}"
    settings = {"firmware.public_keys": [str(firmware_signing_key(folder).with_suffix(".pub.pem"))]}
    return SimulatedDevice(simulator=sim, devices=[{"id": "peripheral", "uri": uri}], settings=settings)


def firmware_signing_key(folder: Path) -> Path:
    """The simulation's own firmware signing key (Ed25519, made once, never a kit's), its public
    half beside it as NAME.pub.pem and pinned in the kit's configuration: images signed with it
    (imgtool sign --key) pass kitfw verify and upload on the simulated kit."""
    private = folder / "firmware-signing.pem"
    if not private.exists():
        key = ed25519.Ed25519PrivateKey.generate()
        write_private_key(private, key)
        private.with_suffix(".pub.pem").write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return private


# Every simulator the kit has, in start order.
SIMULATORS: dict[str, Callable[[Path], SimulatedDevice]] = {
    "fingerprint": start_fingerprint_reader,
    "iris_camera": start_iris_camera,
    "signature": start_signature_pad,
    "panel": start_panel,
    "peripheral": start_peripheral,
}


def start_simulators(workdir: Path) -> list[SimulatedDevice]:
    """Every simulator, in start order; on any failure those started are stopped, and it re-raises."""
    started: list[SimulatedDevice] = []
    try:
        for start in SIMULATORS.values():
            started.append(start(workdir))
    except BaseException:
        stop_simulators(started)
        raise
    return started


def stop_simulators(simulated: list[SimulatedDevice]) -> None:
    for device in simulated:
        device.simulator.stop()


def simulated_kitd(
    workdir: Path,
    simulated: list[SimulatedDevice],
    settings: dict[str, Any] | None = None,
    for_tests: bool = True,
    env: dict[str, str] | None = None,
) -> KitdProcess:
    """A kitd (not started yet) configured for the simulated devices, ``settings`` on top."""
    values: dict[str, Any] = {"api.port": 0}
    devices: list[dict[str, str]] = []
    for device in simulated:
        values.update(device.settings)
        devices.extend(device.devices)
    values.update(settings or {})
    return KitdProcess(workdir / "kitd", devices=devices, settings=values, for_tests=for_tests, env=env)


# The network API on loopback, on any free port (printed), its pairing port chosen per window.
LOOPBACK_NETWORK = {
    "network.enabled": True,
    "network.host": "127.0.0.1",
    "network.port": 0,
    "network.pairing_port": 0,
}


def start_kit(
    workdir: Path, port: int, log_level: str = "info", network: bool = False
) -> tuple[KitdProcess, list[SimulatedDevice]]:
    """Start every simulator, then kitd; on any failure stop what was started and re-raise."""
    started = start_simulators(workdir)
    settings: dict[str, Any] = {
        "api.port": port,
        "log.level": log_level,
        **(LOOPBACK_NETWORK if network else {}),
    }
    try:
        kitd = simulated_kitd(workdir, started, settings, for_tests=False)
        kitd.start()
    except BaseException:
        stop_simulators(started)
        raise
    return kitd, started


def _port(text: str) -> int:
    port = whole_number_in(text, 0, 65535)
    if port is None:
        raise argparse.ArgumentTypeError(f"{text} is not a port (0-65535; 0: any free port)")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kit-sim", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=_port, default=8080, help="kitd API port (0: any free port)")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where configs, data and logs go, kept (default: a temp dir removed on exit)",
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument(
        "--network", action="store_true", help="also serve the network API for field laptops, on loopback"
    )
    args = parser.parse_args(argv)
    if args.workdir is not None:
        try:
            args.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            said = "not a folder" if isinstance(exc, FileExistsError) else exc.strerror or exc
            print(f"kit-sim: --workdir {args.workdir}: {said}", file=sys.stderr)
            return 2
        return run_kit(args, args.workdir)
    workdir = Path(tempfile.mkdtemp(prefix="kit-sim-"))
    try:
        return run_kit(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_kit(args: argparse.Namespace, workdir: Path) -> int:
    """Start the kit in `workdir`, report it, and stop it all on Ctrl-C, SIGTERM or kitd's exit."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        kitd, simulated = start_kit(workdir, args.port, args.log_level, args.network)
    except (RuntimeError, OSError) as exc:
        # The first line says what failed; kitd's own last line, when it exited, says why.
        lines = [line for line in str(exc).splitlines() if line.strip()]
        why = f" ({lines[-1].strip()})" if len(lines) > 1 else ""
        print(f"kit-sim: could not start the kit: {lines[0] if lines else exc}{why}", file=sys.stderr)
        return 1
    assert kitd.process is not None
    print(f"kit-sim: kitd serving on {kitd.url}  (pid {kitd.process.pid}, logs: {kitd.log_path})")
    for device in simulated:
        sim = device.simulator
        channels = "  ".join(f"{k}={v}" for k, v in sim.addresses.items())
        pid = sim.process.pid if sim.process else "?"
        print(f"kit-sim: {sim.name}: {channels}  (pid {pid}, logs: {sim.log_path})")
    print("kit-sim: officers for this simulation only (never on a kit); sign in with NIP and PIN:")
    for officer in SIMULATION_OFFICERS:
        role, nip, pin, name = officer["role"], officer["nip"], officer["pin"], officer["name"]
        print(f"kit-sim:   {role:10s} NIP {nip}  PIN {pin}  {name}")
    if args.network:
        network_port = (kitd.data_dir / "network.port").read_text().strip()
        print(
            f"kit-sim: network API for paired laptops on https://127.0.0.1:{network_port}; to pair, "
            f"kitctl laptops pair --config {kitd.config_path} prints the code and the pairing port "
            "for kit-sync pair 127.0.0.1:PORT CODE"
        )
    office, keys = kitd.office_dir, kitd.data_dir / "keys"
    print(f"kit-sim: sealed bundles go to {kitd.data_dir / 'outbox'}; the office's keys (simulation only):")
    print(f"kit-sim:   kitctl bundle verify FILE --key {office / 'central.key'} --ca {keys / 'ca.crt'}")
    signing = firmware_signing_key(workdir / "peripheral")
    print(
        "kit-sim: peripheral firmware (simulation key): imgtool sign --key "
        f"{signing} --header-size 0x200 --align 4 --slot-size 0x60000 --pad-header --version 1.1.0 "
        f"BODY.bin IMAGE.bin; kitfw upload IMAGE.bin --config {kitd.config_path}"
    )
    print(f"kit-sim: config {kitd.config_path}; Ctrl-C stops everything", flush=True)
    try:
        while not stop.wait(0.5):
            if kitd.process is not None and kitd.process.poll() is not None:
                print(f"kit-sim: kitd exited with status {kitd.process.returncode}", file=sys.stderr)
                break
    finally:
        kitd.stop()
        for device in simulated:
            device.simulator.stop()
        print("kit-sim: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
