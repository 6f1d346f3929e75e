"""The kit: everything one running kit owns — its configuration, device slots, camera feeds,
event stream and capture sessions — and what the API and the touch screen may ask of it.

One `Kit` holds all of the kit's running state; nothing is kept at module level, so two kits
in one process (a test, a future multi-kit rig) share nothing. Process plumbing (signals,
systemd, the port file) is kitd.daemon's; HTTP is kitd.api's, which depends on this and
never the reverse.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kitd import __version__
from kitd.clock import NOTE_INTERVAL_S, KitClock
from kitd.config import KitConfig
from kitd.crypto.kit_tls import NetworkTrust
from kitd.drivers.panel import PANEL_ID, PanelDriver, panel_uri
from kitd.drivers.registry import device_kind, make_driver
from kitd.errors import KitError
from kitd.events import EventHub
from kitd.services.audit import AuditLog, record_start
from kitd.services.battery_watch import BatteryWatch
from kitd.services.captures import CAPTURE_KINDS, Capture
from kitd.services.claims import claim_scope
from kitd.services.diagnostics import run_checks
from kitd.services.firmware_desk import FirmwareDesk
from kitd.services.guided_desk import GuidedDesk
from kitd.services.iris_feed import IrisFeed
from kitd.services.kit_checks import kit_checks
from kitd.services.outbox import kit_outbox
from kitd.services.pairing import Pairing
from kitd.services.panel import Panel
from kitd.services.sealing import BundleSealer, kit_keys
from kitd.services.sessions import LiveSessions
from kitd.services.sign_in import SignedInOfficers
from kitd.services.slots import STATUSES, DeviceSlot
from kitd.services.visits import VisitDesk
from kitd.store.audit import SYSTEM, append_entry, latest_entry_time
from kitd.store.database import DatabaseError, database_path, open_database
from kitd.store.diagnostics import record_run
from kitd.store.officers import OfficerRoll
from kitd.store.outbox import paired_tls_certificates

T = TypeVar("T")
log = logging.getLogger("kitd.outbox")
# How often delivered bundles past outbox.retention_days are looked for (and at start-up).
ERASE_INTERVAL_S = 3600.0


class Kit:
    """One kit's services: the device slots and what the API may ask of them."""

    def __init__(self, config: KitConfig, api_url: str = "") -> None:
        self.config = config
        self.started = time.monotonic()
        self.api_url = api_url
        settings = config.driver_settings()
        self.slots: dict[str, DeviceSlot] = {}
        for device in config.devices:
            self.slots[device.id] = DeviceSlot(
                device.id,
                device.uri,
                device_kind(device.uri),
                lambda uri=device.uri: make_driver(uri, settings),
                claim_key=claim_scope(device.uri, config),
                holder={"program": "kitd", "api": api_url},
                reconnect_min_s=float(config["devices.reconnect_min_s"]),
                reconnect_max_s=float(config["devices.reconnect_max_s"]),
                health_interval_s=float(config["devices.health_interval_s"]),
            )
        # Each camera's preview shows what its quality gate sees: circles, score, first message.
        self.iris_feeds: dict[str, IrisFeed] = {
            slot.id: IrisFeed(slot, config.thresholds("iris"), float(config["iris.judge_fps"]))
            for slot in self.slots.values()
            if slot.kind == "iris_camera"
        }
        # The kit's "now" (kitd.clock): handed to everything that writes or judges a time.
        self.clock = KitClock.for_config(config)
        self.events = EventHub(int(config["api.replay_events"]))
        self.sessions = LiveSessions(self, self.events)
        self.signed_in = SignedInOfficers(float(config["auth.idle_lock_s"]))
        # The kit's credentials: sealing, sign-in (officers' credentials) and the status use them.
        self.keys = kit_keys(config, self.clock)
        sealer = BundleSealer(
            self.keys,
            config.kit_id,
            str(config["kit.region_code"]),
            float(config["fingerprint.ppi"]),
            self.clock,
        )
        self.outbox = kit_outbox(config, self.keys)
        self.audit = AuditLog(config.data_dir / "keys", config.kit_id)
        self.visits = VisitDesk(
            self,
            list(config["visit.finger_order"]),
            sealer,
            self.outbox,
            clock=self.clock.now,
            require_officer_signature=bool(config["seal.require_officer_signature"]),
        )
        # The pairing window for field laptops (its port is the API's: kitd.api.pairing).
        self.pairing = Pairing(self)
        self.database = None
        # The network API's TLS and the laptops it trusts, once opened (network.enabled).
        self.network_trust: NetworkTrust | None = None
        # What start-up's reconciliation could not do (shown by the status), or None.
        self.outbox_problem: str | None = None
        # Why the audit log could not be checkpointed (shown by the status), or None.
        self.audit_problem: str | None = None
        self._officers: OfficerRoll | None = None
        # One thread owns the database connection: queries never block the event loop,
        # and never run two at once on the connection (a PIN check takes ~170 ms).
        self._database_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kitd-database")
        self._supervisors: list[asyncio.Task[None]] = []
        # The physical panel, when the kit has one: a device slot like the others (so that the
        # devices list shows it, and its absence is `disconnected`), followed by its service.
        self.panel: Panel | None = None
        if config["panel.enabled"]:
            target = str(config["panel.pin_factory"])
            driver = PanelDriver.at(target, config.panel_wiring())
            self.slots[PANEL_ID] = DeviceSlot(
                PANEL_ID,
                panel_uri(target),
                "panel",
                lambda: driver,
                holder={"program": "kitd", "api": api_url},
                reconnect_min_s=float(config["devices.reconnect_min_s"]),
                reconnect_max_s=float(config["devices.reconnect_max_s"]),
                health_interval_s=float(config["devices.health_interval_s"]),
            )
            self.panel = Panel(self, driver, PANEL_ID)
        # A technician's guided tests of the panel and the pad (one at a time; not during a visit).
        self.guided = GuidedDesk(self)
        # Firmware updates and rollbacks of the peripheral (one at a time; not during a visit).
        self.firmware = FirmwareDesk(self)
        self.battery = BatteryWatch(self.firmware, self.clock, float(config["devices.battery_interval_s"]))
        for slot in self.slots.values():
            slot.on_status = self._device_changed

    def open_database(self) -> None:
        """Open (and migrate) the kit's database in data_dir; DatabaseError names the file."""
        self.database = open_database(database_path(self.config.data_dir), self.clock)
        self._officers = OfficerRoll(self.database, int(self.config["auth.max_pin_failures"]))

    def open_network_trust(self) -> NetworkTrust:
        """For the network API: the kit's TLS credentials (made on first use) trusting the
        paired laptops that are not revoked; pairing admits more while it runs."""
        laptops = paired_tls_certificates(self.database)
        self.network_trust = NetworkTrust.for_kit(self.config.data_dir / "keys", self.config.kit_id, laptops)
        return self.network_trust

    def reconcile_outbox(self) -> None:
        """At start-up, before anything is served: the outbox's files and rows back in step
        (kitd.services.outbox). A failure is logged and shown by the status; the kit runs on."""
        try:
            report = self.outbox.reconcile(self.database)
        except Exception as exc:  # noqa: BLE001 - whatever the card holds, the kit starts and says so
            self.outbox_problem = f"the outbox could not be checked at start-up: {type(exc).__name__}: {exc}"
            log.error("%s", self.outbox_problem)
            return
        self.outbox_problem = None
        changes = {name: value for name, value in report.to_json().items() if value}
        if changes:
            log.warning("outbox reconciled at start-up: %s", changes, extra={"reconciled": changes})

    def start_clock(self) -> None:
        """At start-up, before anything is written: a clock behind the last time the kit had seen
        (its own note, the audit log's last entry) is flagged and audited."""
        try:
            latest = latest_entry_time(self.database)
            went_back = self.clock.check_at_start(latest)
            if went_back is not None:
                append_entry(self.database, SYSTEM, "clock_went_back", went_back)
        except (OSError, sqlite3.Error, ValueError) as exc:
            log.error("the clock could not be checked at start-up: %s", exc)

    async def note_the_time(self) -> None:
        """Keep the latest time seen, so that a restart can tell a clock that ran backwards."""
        while True:
            await asyncio.sleep(NOTE_INTERVAL_S)
            self.clock.note()

    async def confirm_clock(self, laptop_time: dt.datetime, laptop: str, actor: str) -> dict[str, Any]:
        """A paired laptop's time: the clock corrected beyond clock.max_skew_s (audited with the old
        and new times) or confirmed; the confirmation as the laptop is answered."""
        was_confirmed = self.clock.confirmed
        confirmation = self.clock.confirm(laptop_time, laptop)
        details = {"laptop": laptop, **confirmation.to_json()}
        if confirmation.corrected:
            await self.in_database(append_entry, self.database, actor, "clock_corrected", details)
        elif not was_confirmed:
            await self.in_database(append_entry, self.database, actor, "clock_confirmed", details)
        self.events.publish("clock", self.clock.describe())
        return {**confirmation.to_json(), "max_skew_s": self.clock.max_skew_s}

    async def run_diagnostics(self, quick: bool, actor: str) -> dict[str, Any]:
        """Every check (the quick subset when ``quick``), stored and audited; the run. A run
        that cannot be stored is still returned, saying so (``stored``: false)."""
        run = await run_checks(self, kit_checks(self), quick)
        try:
            await self.in_database(record_run, self.database, run, actor)
            run["stored"] = True
        except (OSError, sqlite3.Error, KitError) as exc:
            log.error("a diagnostics run could not be stored: %s", exc)
            run["stored"] = False
        return run

    async def precheck(self, actor: str) -> dict[str, Any]:
        """The pre-visit check: the quick subset, stored like any run; ``critical``: its failed
        checks without which no visit can succeed, ``findings``: every one not ok."""
        run = await self.run_diagnostics(True, actor)
        critical = {c.id for c in kit_checks(self) if c.visit_critical}
        # A guided test holds the panel or the pad, a firmware update the peripheral: no visit
        # until it ends.
        held = self.guided.holding() or self.firmware.holding()
        return {
            "run_id": run["run_id"],
            "status": run["status"] if held is None else "failed",
            "duration_s": run["duration_s"],
            "critical": [f for f in run["checks"] if f["id"] in critical and f["status"] == "failed"]
            + ([held] if held else []),
            "findings": [f for f in run["checks"] if f["status"] in ("warning", "failed")]
            + ([held] if held else []),
        }

    def record_start(self) -> None:
        """At start-up: the daemon's start (and any change of its configuration) in the audit
        log, and a checkpoint of it."""
        settings = {**self.config.values, "devices": [d.uri for d in self.config.devices]}
        try:
            record_start(self.database, __version__, settings)
            self.audit.checkpoint(self.database)
        except (OSError, sqlite3.Error, KitError) as exc:
            self.audit_problem = f"the audit log could not record the start: {exc}"
            log.error("%s", self.audit_problem)

    async def checkpoint_audit(self) -> None:
        """Sign a checkpoint of the audit log now (after a seal); a failure is logged."""
        try:
            await self.in_database(self.audit.checkpoint, self.database)
        except (OSError, sqlite3.Error, KitError) as exc:
            self.audit_problem = f"the audit log's checkpoint could not be signed: {exc}"
            log.error("%s", self.audit_problem)
        else:
            self.audit_problem = None

    async def audit_status(self) -> dict[str, Any]:
        """For the status: the log's size, its latest checkpoint, and what went wrong, if anything."""
        summary = await self.in_database(self.audit.summary, self.database)
        summary["problem"] = self.audit_problem
        return summary

    async def checkpoint_periodically(self) -> None:
        """A checkpoint every audit.checkpoint_interval_s (when entries were added)."""
        while True:
            await asyncio.sleep(float(self.config["audit.checkpoint_interval_s"]))
            await self.checkpoint_audit()

    async def erase_delivered(self) -> None:
        """Erase delivered bundles past their retention now, then every hour."""
        while True:
            try:
                await self.in_database(self.outbox.erase_expired, self.database)
            except (OSError, sqlite3.Error, KitError) as exc:
                log.error("delivered bundles could not be erased: %s", exc)
            await asyncio.sleep(ERASE_INTERVAL_S)

    async def outbox_status(self) -> dict[str, Any]:
        summary = await self.in_database(self.outbox.summary, self.database)
        summary["problem"] = self.outbox_problem
        return summary

    @property
    def officers(self) -> OfficerRoll:
        if self._officers is None:
            raise DatabaseError("the kit's database is not open")
        return self._officers

    async def in_database(self, job: Callable[..., T], *args: Any) -> T:
        """Run ``job(*args)`` on the database's own thread."""
        return await asyncio.get_running_loop().run_in_executor(self._database_thread, job, *args)

    def _device_changed(self, slot: DeviceSlot, status: str, reason: str) -> None:
        self.events.publish("device", {"device": slot.id, "status": status, "reason": reason})

    def slot(self, device_id: str) -> DeviceSlot | None:
        return self.slots.get(device_id)

    def iris_feed(self, device_id: str) -> IrisFeed:
        """The feed (newest frame, preview, quality overlay) of the iris camera `device_id`."""
        return self.iris_feeds[device_id]

    def set_api_url(self, url: str) -> None:
        """Where the API listens, once it does (port 0 is known only then); the device claims say it."""
        self.api_url = url
        for slot in self.slots.values():
            slot.set_api_url(url)

    def status(self) -> dict[str, Any]:
        counts = dict.fromkeys(STATUSES, 0)
        for slot in self.slots.values():
            counts[slot.current()[0]] += 1
        return {
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "devices": counts,
            "sealing": self.visits.sealer.readiness(),
            "clock": self.clock.describe(),
        }

    def devices(self) -> list[dict[str, Any]]:
        return [slot.describe() for slot in self.slots.values()]

    async def capture(self, slot: DeviceSlot, options: dict[str, Any]) -> Capture:
        """One capture on `slot`, done the way its kind does it."""
        return await CAPTURE_KINDS[slot.kind].run(self, slot, options)

    async def run_devices(self, looked_at_timeout_s: float) -> list[asyncio.Task[None]]:
        """Start every slot's supervisor; return once each device has been looked at once (or
        the timeout passed), so that the first status is informed."""
        self.events.bind(asyncio.get_running_loop())
        tasks = [
            asyncio.create_task(slot.supervise(), name=f"slot-{slot.id}") for slot in self.slots.values()
        ]
        looked_at = [asyncio.create_task(slot.looked_at.wait()) for slot in self.slots.values()]
        if looked_at:
            await asyncio.wait(looked_at, timeout=looked_at_timeout_s)
            for task in looked_at:
                task.cancel()
        if self.panel is not None:
            tasks.append(asyncio.create_task(self.panel.run(), name="panel"))
        if self.firmware.peripheral() is not None:
            tasks.append(asyncio.create_task(self.battery.run(), name="battery"))
        self._supervisors = tasks
        return tasks

    def close_streams(self) -> None:
        """End every preview and event stream (the API is shutting down)."""
        for feed in self.iris_feeds.values():
            feed.close()
        self.events.close()

    async def shutdown(self) -> None:
        """Stop supervising, end the sessions and streams, close and release every device."""
        tasks, self._supervisors = self._supervisors, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.guided.shutdown()
        await self.firmware.shutdown()
        await self.visits.shutdown()
        await self.sessions.shutdown()
        self.close_streams()
        for slot in self.slots.values():
            await slot.shutdown()
        self.keys.close()  # the token's session, if one was opened

    def close_database(self) -> None:
        """Close the database once nothing can ask it anything (after the API stops)."""
        self._database_thread.shutdown(wait=True)
        if self.database is not None:
            self.database.close()
            self.database = None
