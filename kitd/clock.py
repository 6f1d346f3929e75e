"""The kit's clock: what "now" is for every time the kit writes, and whether a laptop vouched for it.

A Raspberry Pi has no battery-backed clock and a kit can stay offline for weeks, so the time
the system gives may be far off. :class:`KitClock` is the kit's one source of "now": the
system's time plus an offset kept in ``data_dir/clock.json``. A paired laptop sends its time
at every sync (:meth:`KitClock.confirm`); beyond ``clock.max_skew_s`` the kit corrects itself —
with the system's setter (``clock_settime``, which needs CAP_SYS_TIME) where
``clock.set_system`` is on, else by the offset — and either way the clock counts as confirmed
until the machine restarts (a reboot brings the system's unconfirmed time back).

At start the clock compares itself with the latest time the kit is known to have seen (the
last one it noted, the audit log's last entry): a time behind it means the clock ran backwards
across the restart, which is flagged until a laptop confirms the clock again.

The kit's clock is handed to what writes times, never kept in a module: the daemon's Kit
owns one; its database connection carries it (:func:`clock_of`: every audit entry, visit and
order stamp written through that connection), and kitctl reads the same state from data_dir
(:meth:`KitClock.for_config`). A connection or a piece of code given no clock uses the
system's time, unconfirmed.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from kitd.config import KitConfig
from kitd.durable_files import write_atomically

log = logging.getLogger("kitd.clock")

STATE_FILE = "clock.json"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
# A clock a little behind the last time noted is not "running backwards": the note is taken
# every NOTE_INTERVAL_S, and a system clock slews by fractions of a second.
BACKWARDS_TOLERANCE_S = 5.0
NOTE_INTERVAL_S = 600.0

SystemTime = Callable[[], float]
SystemSetter = Callable[[float], None]


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str) -> dt.datetime:
    """An ISO 8601 time with its zone (``Z`` or ``+07:00``), as UTC; ValueError otherwise."""
    # fromisoformat takes a trailing NUL and more; an ISO 8601 time is printable ASCII.
    if not (text.isascii() and text.isprintable()):
        raise ValueError("not an ISO 8601 time (a character no time has)")
    moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("the time has no zone (add Z or an offset such as +07:00)")
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError:  # 0001-01-01 east of UTC, 9999-12-31 west of it
        raise ValueError("the time is out of range") from None


# No time a laptop sends can be right before this software existed, or in the next century:
# such a time is the laptop's own clock gone wrong, and is refused rather than followed.
EARLIEST = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def plausible_time(text: str) -> dt.datetime:
    """A laptop's time, parsed and within [EARLIEST, LATEST); ValueError saying why not."""
    moment = parse_time(text)
    if not EARLIEST <= moment < LATEST:
        raise ValueError(
            f"{iso(moment)} is not a plausible time (before {EARLIEST.date()} or after "
            f"{LATEST.date()}): the laptop's clock is wrong"
        )
    return moment


def system_now() -> dt.datetime:
    """The system's time, UTC (what a clock with no offset and no state says)."""
    return dt.datetime.now(dt.UTC)


def set_system_time(seconds: float) -> None:
    """The machine's real clock to ``seconds`` (Unix time); PermissionError without CAP_SYS_TIME."""
    time.clock_settime(time.CLOCK_REALTIME, seconds)


def boot_id() -> str | None:
    """This boot's id (it changes with every reboot); None where the kernel does not say."""
    try:
        return BOOT_ID.read_text().strip() or None
    except OSError:
        return None


@dataclass
class ClockState:
    """What ``clock.json`` keeps across restarts."""

    offset_s: float = 0.0
    confirmed_at: str | None = None  # the kit's corrected time when a laptop last confirmed it
    confirmed_by: str | None = None  # that laptop's name
    boot_id: str | None = None  # the boot during which it was confirmed
    last_seen: str | None = None  # the latest kit time noted
    went_back: dict[str, Any] | None = None  # {"from", "to"} when a restart found it behind

    @classmethod
    def from_json(cls, data: Any) -> ClockState:
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        state = cls()
        offset = data.get("offset_s", 0.0)
        if not isinstance(offset, int | float) or isinstance(offset, bool):
            raise ValueError("offset_s is not a number")
        state.offset_s = float(offset)
        for name in ("confirmed_at", "confirmed_by", "boot_id", "last_seen"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} is not text")
            setattr(state, name, value)
        went_back = data.get("went_back")
        state.went_back = went_back if isinstance(went_back, dict) else None
        return state


@dataclass(frozen=True)
class Confirmation:
    """What a laptop's time did to the kit's clock."""

    laptop_time: str
    kit_time_before: str
    kit_time: str
    skew_s: float  # the laptop's time minus the kit's, before any correction
    corrected: bool
    by_system: bool  # the system's clock was set (else only the kit's offset moved)
    confirmed_at: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class KitClock:
    """The kit's "now": the system's time plus a persisted offset, confirmed by laptops."""

    def __init__(
        self,
        state_path: Path | None,
        max_skew_s: float = 120.0,
        set_system: bool = False,
        system_time: SystemTime = time.time,
        system_setter: SystemSetter = set_system_time,
        current_boot: str | None = None,
    ) -> None:
        self.state_path = state_path
        self.max_skew_s = max_skew_s
        self.set_system = set_system
        self._system_time = system_time
        self._system_setter = system_setter
        self._boot = current_boot
        self._lock = threading.Lock()
        self.state = ClockState()
        self.problem: str | None = None  # why the state file could not be read or written

    @classmethod
    def for_kit(cls, data_dir: Path, max_skew_s: float = 120.0, set_system: bool = False) -> KitClock:
        """The kit's clock, its state in ``data_dir``, on this boot."""
        clock = cls(data_dir / STATE_FILE, max_skew_s, set_system, current_boot=boot_id())
        clock.load()
        return clock

    @classmethod
    def for_config(cls, config: KitConfig) -> KitClock:
        return cls.for_kit(
            config.data_dir, float(config["clock.max_skew_s"]), bool(config["clock.set_system"])
        )

    # -- reading ---------------------------------------------------------------------------

    def timestamp(self) -> float:
        return self._system_time() + self.state.offset_s

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp(), dt.UTC)

    def day_start(self, timezone: str) -> dt.datetime:
        """Midnight starting the kit's day now, in ``timezone`` (kit.timezone)."""
        zone = ZoneInfo(timezone)
        return dt.datetime.combine(self.now().astimezone(zone).date(), dt.time(), zone)

    @property
    def confirmed(self) -> bool:
        """A laptop confirmed the clock during this boot, and it has not run backwards since."""
        state = self.state
        return state.confirmed_at is not None and state.boot_id == self._boot and state.went_back is None

    @property
    def confirmed_at(self) -> str | None:
        """When a laptop confirmed the clock, if it is confirmed now (for a bundle's manifest)."""
        return self.state.confirmed_at if self.confirmed else None

    def describe(self) -> dict[str, Any]:
        """For the status, the screen and a bundle's manifest."""
        state = self.state
        return {
            "now": iso(self.now()),
            "confirmed": self.confirmed,
            "confirmed_at": state.confirmed_at if self.confirmed else None,
            "confirmed_by": state.confirmed_by if self.confirmed else None,
            "last_confirmed_at": state.confirmed_at,
            "offset_s": round(state.offset_s, 3),
            "set_system": self.set_system,
            "went_back": state.went_back,
            "problem": self.problem,
        }

    # -- start, notes and confirmation -----------------------------------------------------

    def load(self) -> None:
        """Read ``clock.json``; a missing file is a fresh clock, a broken one is reported and reset."""
        if self.state_path is None:
            return
        try:
            self.state = ClockState.from_json(json.loads(self.state_path.read_text()))
        except FileNotFoundError:
            self.state = ClockState()
        except (OSError, ValueError) as exc:
            self.problem = f"{self.state_path}: unreadable ({exc}); the clock starts unconfirmed"
            log.error("%s", self.problem)
            self.state = ClockState()

    def check_at_start(self, latest_known: dt.datetime | None = None) -> dict[str, Any] | None:
        """Compare now with the latest time the kit had seen (its own note, ``latest_known``);
        a clock behind it ran backwards across the restart: flagged, and returned as
        ``{"from", "to", "behind_s"}`` for the audit log. Notes the time either way."""
        with self._lock:
            marks = [parse_time(t) for t in (self.state.last_seen,) if t] + (
                [latest_known] if latest_known else []
            )
            now = self.now()
            went_back = None
            if marks and now < max(marks) - dt.timedelta(seconds=BACKWARDS_TOLERANCE_S):
                latest = max(marks)
                went_back = {
                    "from": iso(latest),
                    "to": iso(now),
                    "behind_s": round((latest - now).total_seconds(), 3),
                }
                self.state.went_back = went_back
                log.warning(
                    "the clock ran backwards across the restart: %s now, %s seen before; unconfirmed "
                    "until a laptop syncs",
                    went_back["to"],
                    went_back["from"],
                )
            else:
                self.state.last_seen = iso(now)
            self._save()
            return went_back

    def note(self) -> None:
        """Keep the latest time seen (the daemon calls it every NOTE_INTERVAL_S and at exit)."""
        with self._lock:
            now = self.now()
            last = parse_time(self.state.last_seen) if self.state.last_seen else None
            if self.state.went_back is None and (last is None or now > last):
                self.state.last_seen = iso(now)
                self._save()

    def confirm(self, laptop_time: dt.datetime, laptop: str) -> Confirmation:
        """A laptop's time: beyond max_skew_s the clock is corrected to it; confirmed either way."""
        with self._lock:
            before = self.now()
            skew = (laptop_time - before).total_seconds()
            corrected = abs(skew) > self.max_skew_s
            by_system = False
            if corrected:
                if self.set_system:
                    try:
                        self._system_setter(laptop_time.timestamp())
                        self.state.offset_s = 0.0
                        by_system = True
                    except OSError as exc:
                        log.warning("the system clock could not be set (%s); the kit keeps an offset", exc)
                if not by_system:
                    self.state.offset_s += skew
            after = self.now()
            state = self.state
            state.confirmed_at, state.confirmed_by, state.boot_id = iso(after), laptop, self._boot
            state.last_seen, state.went_back = iso(after), None
            self._save()
            return Confirmation(
                laptop_time=iso(laptop_time),
                kit_time_before=iso(before),
                kit_time=iso(after),
                skew_s=round(skew, 3),
                corrected=corrected,
                by_system=by_system,
                confirmed_at=state.confirmed_at,
            )

    def _save(self) -> None:
        if self.state_path is None:
            return
        try:
            write_atomically(self.state_path, json.dumps(asdict(self.state), indent=1).encode(), 0o644)
            self.problem = None
        except OSError as exc:
            self.problem = f"{self.state_path}: could not be written ({exc})"
            log.error("%s", self.problem)


def clock_of(conn: Any) -> KitClock:
    """The kit's clock a database connection carries (kitd.store.database.open_database gives it
    one), else the system's, unconfirmed."""
    carried = getattr(conn, "clock", None)
    return carried if isinstance(carried, KitClock) else KitClock(None)
