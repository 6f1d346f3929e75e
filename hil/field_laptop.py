"""A field laptop beside a simulated kit: the real kit-sync paired with a real kitd over TLS.

Its one job: fill a kit's outbox with sealed bundles before its kitd starts (the real outbox
code, hil.outbox_rig), start that kitd with its network API on loopback, pair the real
``kit-sync`` with it through a supervisor's pairing window, and run kit-sync's commands as a
laptop's user would — for the HIL tests of the laptop link and its benchmark. A
:class:`KitRelay` stands between them where a test needs a connection cut or slowed, or the
kit gone for a while: :class:`KitCrash` SIGKILLs the kitd at a point of a pull, and
:class:`SealedAhead` has new bundles ready to store while it is down.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hil.kit_sim import LOOPBACK_NETWORK
from hil.outbox_rig import central_signer, finished_record, open_rig, receipt, seal_injected, seal_visit
from hil.rig import KitdProcess, venv_script, wait_until
from hil.sample_orders import sample_order
from hil.sample_visit import SampleVisit
from kitd.cli.daemon_client import DaemonClient
from kitd.crypto.bundle import SealedBundle
from kitd.store.work_orders import import_orders

LOOPBACK = "127.0.0.1"
# How long a relay holds a laptop's connection for a kit that is down (restarting).
KIT_DOWN_AT_MOST_S = 30.0


def seal_bundles(workdir: Path, sample: SampleVisit, count: int, prefix: str = "V") -> None:
    """``count`` sealed bundles in the outbox of the kit at ``workdir`` (before its kitd
    starts), and the central office's signing certificate trusted by it."""
    rig = open_rig(workdir / "data", workdir / "office")
    try:
        for n in range(count):
            seal_injected(rig, sample, f"{prefix}-{n:03d}")
        central_signer(rig)
    finally:
        rig.close()


class SealedAhead:
    """New visits' bundles for a kit that is killed and started again round after round:
    sealed in memory while its kitd runs (0.4 s a bundle, while the test waits anyway), and
    stored into its outbox — their orders imported, their visits saved finished — by the
    real outbox code while the kitd is down, which is quick. Close it after."""

    def __init__(self, kitd: KitdProcess, sample: SampleVisit, prefix: str) -> None:
        self.rig = open_rig(kitd.data_dir, kitd.office_dir)  # written to only while kitd is down
        self.sample = sample
        self.prefix = prefix
        self.made = 0
        self.stock: list[tuple[dict[str, Any], SealedBundle, dict[str, Any]]] = []

    def seal(self, count: int) -> None:
        """At least ``count`` bundles sealed in memory (the kit's database untouched)."""
        while len(self.stock) < count:
            name = f"{self.prefix}-{self.made:03d}"
            self.made += 1
            order = sample_order(name)
            record = dict(self.sample.visit, id=name, order_id=name)
            bundle = seal_visit(self.rig, record, order, self.sample)
            self.stock.append((order, bundle, finished_record(record, bundle)))

    def store(self, count: int) -> None:
        """``count`` of them in the outbox (the kitd down), sealing any not sealed yet."""
        self.seal(count)
        for order, bundle, finished in self.stock[:count]:
            import_orders(self.rig.conn, [order])
            self.rig.outbox.store(self.rig.conn, bundle, finished, dt.datetime.now(dt.UTC))
        del self.stock[:count]

    def close(self) -> None:
        self.rig.close()


def network_kit(workdir: Path, settings: dict[str, Any] | None = None, **kwargs: Any) -> KitdProcess:
    """A kitd at ``workdir`` (not started) with its network API on loopback."""
    return KitdProcess(workdir, settings={**LOOPBACK_NETWORK, **(settings or {})}, **kwargs)


VISIT_ITEMS = [*(f"finger:{n}" for n in range(1, 11)), "iris:right", "iris:left", "signature"]


def complete_visit(officer: DaemonClient, order_id: str) -> dict[str, Any]:
    """A whole visit through the API on the simulators, as the touch screen drives one:
    identity, ten fingers, two irises, the signature (accepted once it passes), finish. The
    finished visit (its ``bundle`` sealed)."""
    visit = officer.checked("POST", "/api/v1/visits", {"order_id": order_id}).json()
    base = f"/api/v1/visits/{visit['id']}"

    def item(name: str) -> dict[str, Any]:
        now = officer.checked("GET", base).json()
        return next(i for i in now["items"] if i["item"] == name)

    officer.checked("POST", f"{base}/identity", {"present": ["Sumiati"], "consent_by": "applicant"})
    for name in VISIT_ITEMS:
        officer.checked("POST", f"{base}/items/{name}/start", timeout_s=60)
        if name == "signature":
            wait_until(lambda: item("signature")["passed"], "the signature passes", 60)
            officer.checked("POST", f"{base}/items/{name}/accept", timeout_s=60)
        wait_until(lambda name=name: item(name)["status"] == "captured", f"{name} captured", 60)
    return officer.checked("POST", f"{base}/finish", timeout_s=60).json()


def outbox_rows(kitd: KitdProcess) -> dict[str, dict[str, Any]]:
    """The kit's outbox rows by bundle id, read from its database as kitctl does."""
    with sqlite3.connect(kitd.data_dir / "kitd.sqlite3") as db:
        db.row_factory = sqlite3.Row
        return {r["bundle_id"]: dict(r) for r in db.execute("SELECT * FROM outbox")}


def sealed_file(kitd: KitdProcess, bundle_id: str) -> bytes:
    return (kitd.data_dir / "outbox" / f"{bundle_id}.p7m").read_bytes()


def central_receipts(kitd: KitdProcess, rows: Sequence[dict[str, Any]], directory: Path) -> list[Path]:
    """The central office's signed receipts for ``rows``, one JSON file each in ``directory``."""
    rig = open_rig(kitd.data_dir, kitd.office_dir)
    try:
        signer = central_signer(rig)
    finally:
        rig.close()
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for row in rows:
        path = directory / f"{row['bundle_id']}.receipt.json"
        path.write_text(json.dumps(receipt(signer, "central_receipt", row, "central office")))
        paths.append(path)
    return paths


@dataclass
class KitSync:
    """The real kit-sync of one laptop, its data directory ``home`` (``environment``: more
    variables for it)."""

    home: Path
    environment: dict[str, str] = field(default_factory=dict)

    def command(self, *args: object) -> list[str]:
        return [venv_script("kit-sync"), *map(str, args)]

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, **self.environment, KIT_SYNC_HOME=str(self.home))

    def run(self, *args: object, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), capture_output=True, text=True, timeout=timeout_s, env=self.env, check=False
        )

    def start(self, *args: object) -> subprocess.Popen[bytes]:
        """kit-sync running in the background (a test kills it)."""
        return subprocess.Popen(
            self.command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=self.env
        )

    def pair(self, kitd: KitdProcess, name: str) -> dict[str, Any]:
        """Pair with ``kitd``: a supervisor opens the window, kit-sync types the code. The
        laptop's record of the kit (kit.json)."""
        supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
        window = supervisor.checked("POST", "/api/v1/pairing").json()
        done = self.run("pair", f"{LOOPBACK}:{window['port']}", window["code"], "--name", name)
        if done.returncode != 0:
            raise AssertionError(f"kit-sync pair exited {done.returncode}: {done.stderr}")
        return json.loads(self.kit_record().read_text())

    def kit_record(self) -> Path:
        """The laptop's kit.json of its one kit."""
        (record,) = (self.home / "kits").glob("*/kit.json")
        return record

    def point_at(self, port: int) -> None:
        """The laptop's record of its kit pointed at ``port`` (a relay, or a loopback kit's port
        after a restart: it takes any free port each time; a real kit keeps network.port)."""
        record = json.loads(self.kit_record().read_text())
        self.kit_record().write_text(json.dumps({**record, "port": port}))


class KitRelay:
    """A TCP relay in front of the kit's network port (TLS passes through it untouched, so the
    laptop still sees the kit's pinned certificate). With ``cut_after`` it cuts the first
    connection that carries more than that many bytes from the kit, once: a download broken
    mid-body. With ``bytes_per_s`` it paces what the kit sends, as a slow Wi-Fi link would, so
    that a test killing the laptop lands in the middle of transfers.

    ``kit_port`` may change (a kit restarted picks a new port) or be None while the kit is
    down: a connection made then waits for the kit to be back when ``waiting`` (a laptop
    whose Wi-Fi holds while the kit reboots), else is closed at once. ``on_answer``, when set,
    is told after each piece of an answer went through how many bytes the kit has sent since
    the laptop last spoke on that connection (a download's body, past its first bytes).
    ``on_request``, when set, is called before each piece the laptop sends is passed on to the
    kit (a request, before the kit has it)."""

    def __init__(self, kit_port: int, cut_after: int | None = None, bytes_per_s: float | None = None) -> None:
        self.kit_port: int | None = kit_port
        self.cut_after = cut_after
        self.bytes_per_s = bytes_per_s
        self.waiting = False
        self.on_answer: Callable[[int], object] | None = None
        self.on_request: Callable[[], object] | None = None
        self.cuts = 0
        self.connections = 0
        self._closed = threading.Event()
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._join, args=(client,), daemon=True).start()

    def _join(self, client: socket.socket) -> None:
        kit = self._reach_kit()
        if kit is None:  # the kit is down: refused, as a kit that is off refuses
            client.close()
            return
        answer = [0]  # bytes from the kit since the laptop last sent any, on this connection
        threading.Thread(target=self._pump, args=(client, kit, False, answer), daemon=True).start()
        threading.Thread(target=self._pump, args=(kit, client, True, answer), daemon=True).start()

    def _reach_kit(self) -> socket.socket | None:
        deadline = time.monotonic() + KIT_DOWN_AT_MOST_S
        while not self._closed.is_set():
            port = self.kit_port
            if port is not None:
                try:
                    return socket.create_connection((LOOPBACK, port))
                except OSError:
                    pass  # a port the kit does not listen on (yet, any more)
            if not self.waiting or time.monotonic() > deadline:
                return None
            time.sleep(0.02)
        return None

    def _pump(self, source: socket.socket, sink: socket.socket, from_kit: bool, answer: list[int]) -> None:
        carried = 0
        started = time.monotonic()
        try:
            while data := source.recv(16384):
                if from_kit and self.bytes_per_s:
                    behind = carried / self.bytes_per_s - (time.monotonic() - started)
                    if behind > 0:
                        time.sleep(behind)
                if not from_kit and (asking := self.on_request) is not None:
                    asking()
                cut = self.cut_after
                if from_kit and cut is not None and self.cuts == 0 and carried + len(data) > cut:
                    sink.sendall(data[: cut - carried])
                    self.cuts += 1
                    break
                sink.sendall(data)
                carried += len(data)
                if not from_kit:
                    answer[0] = 0
                    continue
                answer[0] += len(data)
                if (told := self.on_answer) is not None:
                    told(answer[0])
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


def network_port(kitd: KitdProcess) -> int:
    """The port the running kitd's network API listens on (it writes it at each start)."""
    return int((kitd.data_dir / "network.port").read_text())


class KitCrash:
    """One SIGKILL of a running kitd (its whole process group) at a point of a laptop's pull:
    after ``at`` bytes of one answer went through the relay (:meth:`within_answer`: inside a
    download), at the first request of the laptop's once a condition holds, before the kit
    has it (:meth:`before_request`: the next download asked for, a bundle whole on the
    laptop), or as soon as a condition polled every half millisecond holds (:meth:`when`:
    receipts stored on the kit); or :meth:`now`. The relay stops
    reaching for the kit's port before the kill: no laptop's connection goes to a port the
    dead kit left (another process may get it). ``fired`` is set once the kit is killed."""

    def __init__(self, kitd: KitdProcess, relay: KitRelay) -> None:
        self.kitd = kitd
        self.relay = relay
        self.fired = threading.Event()
        self._disarmed = threading.Event()
        self._lock = threading.Lock()

    def now(self) -> None:
        with self._lock:
            if self.fired.is_set() or self.kitd.process is None:
                return
            self.relay.kit_port = None
            os.killpg(self.kitd.process.pid, signal.SIGKILL)
            self.fired.set()

    def within_answer(self, at: int) -> None:
        """Kill when an answer of the kit has reached ``at`` bytes."""
        self.relay.on_answer = lambda carried: carried >= at and not self._disarmed.is_set() and self.now()

    def before_request(self, condition: Callable[[], bool]) -> None:
        """Kill at the laptop's first request once ``condition`` holds, before it reaches the
        kit: what the kit sent before is on its way, what was asked now is never answered."""
        self.relay.on_request = lambda: not self._disarmed.is_set() and condition() and self.now()

    def when(self, condition: Callable[[], bool]) -> None:
        """Kill as soon as ``condition`` holds (polled on a thread of its own)."""

        def poll() -> None:
            while not (self.fired.is_set() or self._disarmed.is_set()):
                if condition():
                    self.now()
                    return
                time.sleep(0.0005)  # receipts are recorded about a millisecond apart

        threading.Thread(target=poll, daemon=True).start()

    def disarm(self) -> None:
        """No kill at the point any more (the pull ended before it): :meth:`now` still kills."""
        self._disarmed.set()
        self.relay.on_answer = None
        self.relay.on_request = None
