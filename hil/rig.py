"""The hardware-in-the-loop rig: run the real kitd (and device simulators) as processes.

`KitdProcess` writes a config, starts `kitd` in its own process group with a
NOTIFY_SOCKET of ours, waits for systemd's READY=1 and the port file, and stops
it with SIGTERM. Tests talk to it only through its API and `kitctl`. Logs are kept
in files so that a failing test can show them.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from argon2 import PasswordHasher

from hil.control import ControlUnreachable, parse_address, send_command
from hil.credentials import provision_simulation_credentials
from kitd.cli.daemon_client import DaemonClient
from kitd.store.database import database_path, open_database
from kitd.store.officers import OfficerRoll

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")
FIXTURES = REPO.parent / "shared" / "fixtures"
NB1010_FIXTURE = FIXTURES / "nb1010"


def venv_script(name: str) -> str:
    """Path of a console script installed beside the running interpreter."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def render_config(values: dict[str, Any], devices: Sequence[dict[str, str]] = ()) -> str:
    """TOML text for dotted `values` and a list of [[device]] tables."""
    top: list[str] = []
    tables: dict[str, list[str]] = {}
    for key, value in values.items():
        table, _, name = key.rpartition(".")
        line = f"{name} = {toml_value(value)}"
        (tables.setdefault(table, []) if table else top).append(line)
    parts = top[:]
    for table, lines in tables.items():
        parts.append(f"\n[{table}]")
        parts.extend(lines)
    for device in devices:
        parts.append("\n[[device]]")
        parts.extend(f"{k} = {toml_value(v)}" for k, v in device.items())
    return "\n".join(parts) + "\n"


def umockdev_prefix(fixture: Path = NB1010_FIXTURE) -> list[str]:
    """The command prefix that replays the recorded NB-1010 under umockdev-run."""
    return [
        "umockdev-run",
        "-d",
        str(fixture / "device"),
        "-i",
        f"/dev/bus/usb/001/003={fixture / 'capture.ioctl'}",
        "--",
    ]


# Short timeouts so that failure paths in tests do not wait long.
# Officers every rig's kitd knows, for simulation only (never on a kit): their PINs are
# printed by kit-sim and written here in the clear.
SIMULATION_OFFICERS: tuple[dict[str, str], ...] = (
    {"nip": "197503152000031001", "name": "Siti Aminah (simulasi)", "role": "supervisor", "pin": "111111"},
    {"nip": "198001012005011002", "name": "Budi Santoso (simulasi)", "role": "officer", "pin": "222222"},
    {"nip": "198506202010121003", "name": "Dewi Lestari (simulasi)", "role": "technician", "pin": "333333"},
)
# Argon2id at its cheapest for the simulation's officers, so that starting a rig stays
# quick; the daemon re-hashes a PIN with the kit's own parameters at its first sign-in.
_SIMULATION_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def add_simulation_officers(data_dir: Path) -> None:
    """Put :data:`SIMULATION_OFFICERS` into the database in ``data_dir`` (once)."""
    conn = open_database(database_path(data_dir))
    try:
        roll = OfficerRoll(conn, hasher=_SIMULATION_HASHER)
        known = {o.nip for o in roll.list()}
        for officer in SIMULATION_OFFICERS:
            if officer["nip"] not in known:
                roll.add(officer["nip"], officer["name"], officer["role"], officer["pin"])
    finally:
        conn.close()


# The simulation kit's name in its config, its certificate and its bundles.
SIMULATION_KIT_ID = "kit-sim"
_credentials: list[Path] = []


def install_simulation_credentials(data_dir: Path, office_dir: Path) -> None:
    """The simulation CA's credentials: the kit's in ``data_dir/keys``, the office's in ``office_dir``.

    Made once per process (RSA-3072 recipient keys take a while) and copied to each rig,
    modes kept (keys 0600); a data_dir that has them already keeps its own.
    """
    if (data_dir / "keys" / "ca.crt").exists():
        return
    if not _credentials:
        made = Path(tempfile.mkdtemp(prefix="kitd-sim-credentials-"))
        atexit.register(shutil.rmtree, made, True)
        nips = [o["nip"] for o in SIMULATION_OFFICERS]
        provision_simulation_credentials(made / "keys", made / "office", SIMULATION_KIT_ID, nips)
        _credentials.append(made)
    shutil.copytree(_credentials[0] / "keys", data_dir / "keys", dirs_exist_ok=True)
    shutil.copytree(_credentials[0] / "office", office_dir, dirs_exist_ok=True)


def simulation_officer(role: str) -> dict[str, str]:
    return next(o for o in SIMULATION_OFFICERS if o["role"] == role)


TEST_SETTINGS: dict[str, Any] = {
    "log.level": "debug",
    "devices.reconnect_min_s": 0.1,
    "devices.reconnect_max_s": 0.5,
    "devices.health_interval_s": 0.2,
    "fingerprint.capture_timeout_s": 3.0,
    "fingerprint.poll_interval_s": 0.05,
}


def wait_until(condition: Callable[[], T], what: str | Callable[[], str], timeout_s: float = 30.0) -> T:
    """Poll `condition` (generously) until it returns something true; AssertionError naming `what`
    (a callable: asked at the timeout, to say what was seen then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what() if callable(what) else what}: not within {timeout_s} s")


class SimulatorProcess:
    """A device simulator in its own process: `python -m MODULE ARGS`.

    Every simulator prints one line `READY key=HOST:PORT ...` on stdout when it
    listens (it must include `control=`), logs to stderr, and takes one-line
    commands on its control channel, answering one line `ok ...` or `err ...`.
    """

    def __init__(self, module: str, args: Sequence[str] = (), workdir: Path | None = None) -> None:
        self.module = module
        self.args = list(args)
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="kitd-sim-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = module.rpartition(".")[2]
        self.log_path = self.workdir / f"{self.name}.log"
        self.process: subprocess.Popen[str] | None = None
        self.addresses: dict[str, str] = {}

    def start(self, timeout_s: float = 30.0) -> SimulatorProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=REPO,
                start_new_session=True,
            )
        assert self.process.stdout is not None
        ready: list[str] = []
        reader = threading.Thread(target=lambda: ready.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        line = ready[0] if ready else ""
        if not line.startswith("READY"):
            self.stop()
            raise RuntimeError(f"{self.module} did not print READY within {timeout_s} s:\n{self.logs()}")
        self.addresses = dict(item.split("=", 1) for item in line.split()[1:])
        return self

    @property
    def usbip_uri(self) -> str:
        """The simulated reader as kitd's `usb_backend` (or KITD_USB_BACKEND) names it."""
        return f"usbip://{self.addresses['usbip']}"

    def control(self, command: str, timeout_s: float = 10.0) -> str:
        """Send one control command; the reply after `ok` (RuntimeError on `err`)."""
        host, port = parse_address(self.addresses["control"])
        try:
            text = send_command(host, port, command, timeout_s)
        except ControlUnreachable as exc:
            raise RuntimeError(f"{self.name} control '{command}': {exc}") from None
        if not text.startswith("ok"):
            raise RuntimeError(f"{self.name} control '{command}': {text or 'no reply'}")
        return text[2:].strip()

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class KitdProcess:
    """One real kitd process with its own data dir, config, port and logs."""

    def __init__(
        self,
        workdir: Path,
        devices: Sequence[dict[str, str]] = (),
        settings: dict[str, Any] | None = None,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
        for_tests: bool = True,
    ) -> None:
        """`for_tests`: short timeouts, debug logs and a lock directory of its own."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        # Where the central office's keys of the simulation live (never in data_dir: the kit
        # cannot open its own bundles).
        self.office_dir = self.workdir / "office"
        values: dict[str, Any] = {"data_dir": str(self.data_dir), "api.port": 0, "kit.id": SIMULATION_KIT_ID}
        if for_tests:
            values.update(TEST_SETTINGS)
        values.update(settings or {})
        self.config_path = self.workdir / "kitd.toml"
        self.config_path.write_text(render_config(values, devices))
        self.log_path = self.workdir / "kitd.log"
        self.prefix = list(prefix)
        self.env = dict(os.environ, **(env or {}))
        if for_tests:
            self.env.setdefault("KITD_LOCK_DIR", str(self.workdir / "locks"))
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.token = ""
        self.notifications: list[str] = []

    def start(self, timeout_s: float = 30.0) -> KitdProcess:
        """Start kitd (again, after a stop or a kill: with a fresh READY to wait for)."""
        self.notifications = []
        add_simulation_officers(self.data_dir)
        install_simulation_credentials(self.data_dir, self.office_dir)
        self._notify_dir = tempfile.mkdtemp(prefix="kitd-notify-")
        notify_path = os.path.join(self._notify_dir, "notify")
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(notify_path)
        self._notify.settimeout(0.2)
        env = dict(self.env, NOTIFY_SOCKET=notify_path)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*self.prefix, venv_script("kitd"), "--config", str(self.config_path)],
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while "READY=1" not in "\n".join(self.notifications):
            if self.process.poll() is not None:
                self.stop()  # closes and removes the notify socket
                raise RuntimeError(f"kitd exited with {self.process.returncode}:\n{self.logs()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"kitd not READY within {timeout_s} s:\n{self.logs()}")
            self.poll_notifications()
        port = int((self.data_dir / "api.port").read_text())
        self.url = f"http://127.0.0.1:{port}"
        # The rig acts as the simulation's technician: every client it hands out, and
        # kitctl run through it (KITD_TOKEN), present that token.
        self.token = self.sign_in("technician")
        self.env["KITD_TOKEN"] = self.token
        return self

    def sign_in(self, role: str) -> str:
        """A fresh token of the simulation officer with ``role``."""
        officer = simulation_officer(role)
        reply = DaemonClient(self.url).checked(
            "POST", "/api/v1/auth/signin", {"nip": officer["nip"], "pin": officer["pin"]}
        )
        return str(reply.json()["token"])

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "kitd.sock"

    def poll_notifications(self) -> list[str]:
        if self._notify.fileno() < 0:
            return self.notifications
        try:
            while True:
                self.notifications.append(self._notify.recv(4096).decode())
                self._notify.settimeout(0.0)
        except (TimeoutError, BlockingIOError):
            pass
        finally:
            self._notify.settimeout(0.2)
        return self.notifications

    @property
    def client(self) -> DaemonClient:
        return DaemonClient(self.url, self.token)

    def devices(self) -> dict[str, dict[str, Any]]:
        return {d["id"]: d for d in self.client.devices()}

    def wait_for_status(self, device_id: str, status: str, timeout_s: float = 20.0) -> dict:
        """Wait (generously) until a device reaches `status`; AssertionError with logs if not."""
        seen: list[dict | None] = [None]

        def reached() -> dict | None:
            seen[0] = self.devices().get(device_id)
            return seen[0] if seen[0] and seen[0]["status"] == status else None

        try:
            return wait_until(reached, f"{device_id} not {status}", timeout_s)
        except AssertionError as exc:
            raise AssertionError(f"{exc} (last {seen[0]}):\n{self.logs()}") from None

    def kitctl(
        self,
        *args: str,
        timeout_s: float = 60.0,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """kitctl with the rig's environment (its token in KITD_TOKEN) unless ``env`` is given."""
        return subprocess.run(
            [*prefix, venv_script("kitctl"), *args],
            capture_output=True,
            text=True,
            env=self.env if env is None else env,
            timeout=timeout_s,
        )

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM and wait; the exit status (killed after the timeout: AssertionError)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            # The whole group: under umockdev-run, kitd is the wrapper's child.
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise AssertionError(f"kitd did not stop on SIGTERM:\n{self.logs()}") from None
        if self._notify.fileno() >= 0:
            self.poll_notifications()
            self._notify.close()
            shutil.rmtree(self._notify_dir, ignore_errors=True)
        return self.process.returncode

    def __enter__(self) -> KitdProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
