"""The kit's clock (kitd.clock): a persisted offset, laptops' confirmations, the system's setter
only where configured (a fake one here: tests never move the machine's clock), and a clock
that ran backwards across a restart."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from kitd.clock import KitClock, clock_of, parse_time, plausible_time
from kitd.store.audit import append_entry, entries
from kitd.store.database import open_database

START = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
YEAR = dt.timedelta(days=365)


class Machine:
    """A system clock the test moves, and a setter that records what it was asked."""

    def __init__(self, now: dt.datetime) -> None:
        self.seconds = now.timestamp()
        self.set_to: list[float] = []
        self.refuse = False

    def time(self) -> float:
        return self.seconds

    def set(self, seconds: float) -> None:
        if self.refuse:
            raise PermissionError(1, "Operation not permitted")
        self.set_to.append(seconds)
        self.seconds = seconds


def kit_clock(path: Path, machine: Machine, boot: str = "boot-1", **kwargs: object) -> KitClock:
    made = KitClock(path, system_time=machine.time, system_setter=machine.set, current_boot=boot, **kwargs)  # type: ignore[arg-type]
    made.load()
    return made


def test_a_laptop_within_the_skew_confirms_without_correcting(tmp_path: Path) -> None:
    machine = Machine(START)
    kit = kit_clock(tmp_path / "clock.json", machine)
    assert not kit.confirmed and kit.describe()["confirmed_at"] is None
    answer = kit.confirm(START + dt.timedelta(seconds=90), "laptop-a")
    assert (answer.corrected, answer.skew_s, kit.state.offset_s) == (False, 90.0, 0.0)
    assert kit.confirmed and kit.describe()["confirmed_by"] == "laptop-a"
    assert kit.now() == START  # not moved


def test_a_kit_a_year_behind_is_corrected_by_its_offset_and_keeps_it(tmp_path: Path) -> None:
    machine = Machine(START - YEAR)
    kit = kit_clock(tmp_path / "clock.json", machine, max_skew_s=120.0)
    answer = kit.confirm(START, "laptop-a")
    assert answer.corrected and not answer.by_system and machine.set_to == []
    assert answer.skew_s == YEAR.total_seconds()
    assert abs((kit.now() - START).total_seconds()) < 1e-3
    assert parse_time(answer.kit_time_before) == START - YEAR and parse_time(answer.kit_time) == kit.now()
    # A restart on the same boot keeps the offset and the confirmation; a reboot keeps the
    # offset (the best guess there is) but the confirmation lapses.
    again = kit_clock(tmp_path / "clock.json", machine)
    assert again.confirmed and abs((again.now() - START).total_seconds()) < 1e-3
    rebooted = kit_clock(tmp_path / "clock.json", machine, boot="boot-2")
    assert not rebooted.confirmed and rebooted.describe()["last_confirmed_at"] == answer.confirmed_at


def test_where_configured_the_system_clock_is_set_and_a_refusal_falls_back_to_the_offset(
    tmp_path: Path,
) -> None:
    machine = Machine(START - YEAR)
    kit = kit_clock(tmp_path / "clock.json", machine, set_system=True)
    answer = kit.confirm(START, "laptop-a")
    assert answer.by_system and machine.set_to == [START.timestamp()] and kit.state.offset_s == 0.0
    assert kit.now() == START
    machine.seconds -= YEAR.total_seconds()  # the machine lost its time again
    machine.refuse = True  # e.g. the unit without CAP_SYS_TIME
    answer = kit.confirm(START, "laptop-a")
    assert answer.corrected and not answer.by_system and kit.state.offset_s == YEAR.total_seconds()
    assert kit.confirmed


def test_a_clock_behind_the_last_time_seen_is_flagged_until_a_laptop_confirms(tmp_path: Path) -> None:
    machine = Machine(START)
    kit = kit_clock(tmp_path / "clock.json", machine)
    assert kit.check_at_start() is None
    kit.confirm(START, "laptop-a")
    machine.seconds += 3600
    kit.note()
    machine.seconds -= 86400  # the restart finds the clock a day behind the note
    restarted = kit_clock(tmp_path / "clock.json", machine)
    went_back = restarted.check_at_start()
    assert went_back is not None and went_back["behind_s"] == pytest.approx(86400)
    assert not restarted.confirmed and restarted.describe()["went_back"] == went_back
    # Still flagged after another restart: the flag is kept until a laptop confirms the clock.
    assert kit_clock(tmp_path / "clock.json", machine).describe()["went_back"] == went_back
    restarted.confirm(START + dt.timedelta(hours=1), "laptop-a")
    assert restarted.confirmed and restarted.describe()["went_back"] is None


def test_the_audit_logs_last_entry_counts_as_a_time_seen(tmp_path: Path) -> None:
    machine = Machine(START)
    kit = kit_clock(tmp_path / "clock.json", machine)
    assert kit.check_at_start(START + dt.timedelta(seconds=3)) is None  # within the tolerance
    went_back = kit.check_at_start(START + dt.timedelta(hours=2))
    assert went_back is not None and went_back["behind_s"] == pytest.approx(7200)


def test_a_broken_state_file_is_reported_and_the_clock_starts_unconfirmed(tmp_path: Path) -> None:
    path = tmp_path / "clock.json"
    path.write_text(json.dumps({"offset_s": "soon"}))
    kit = kit_clock(path, Machine(START))
    assert kit.state.offset_s == 0.0 and not kit.confirmed
    assert "offset_s is not a number" in (kit.problem or "") and str(path) in (kit.problem or "")
    kit.check_at_start()  # and it is written whole again
    assert json.loads(path.read_text())["offset_s"] == 0.0 and kit.problem is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-11-30T12:00:00", "no zone"),
        ("yesterday", "Invalid isoformat"),
        ("1970-01-01T00:00:00Z", "not a plausible time"),
        ("2150-01-01T00:00:00+07:00", "not a plausible time"),
    ],
)
def test_implausible_laptop_times_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        plausible_time(text)


def test_a_laptop_time_in_another_zone_is_the_same_instant() -> None:
    assert plausible_time("2026-11-30T19:00:00+07:00") == dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)


def test_the_kits_database_carries_its_clock_and_a_bare_connection_the_systems(tmp_path: Path) -> None:
    """Times written through the kit's connection (audit entries, stamps) are the kit clock's;
    kitctl's connection reads the same clock from data_dir."""
    machine = Machine(START - YEAR)
    kit = kit_clock(tmp_path / "clock.json", machine)
    kit.confirm(START, "laptop-a")
    conn = open_database(tmp_path / "kitd.sqlite3", kit)
    try:
        assert clock_of(conn) is kit
        seq = append_entry(conn, "system", "something")
        entry = entries(conn, seq, 1)[0]
        assert entry["clock_confirmed"] is True and entry["at"].startswith(START.date().isoformat())
    finally:
        conn.close()
    bare = sqlite3.connect(":memory:")
    assert (
        not clock_of(bare).confirmed
        and abs((clock_of(bare).now() - dt.datetime.now(dt.UTC)).total_seconds()) < 5
    )
    # kitctl on the kit: the clock kept in data_dir (its offset), confirmed only on this boot.
    again = open_database(tmp_path / "kitd.sqlite3")
    try:
        offset = clock_of(again).state.offset_s
        assert abs(offset - YEAR.total_seconds()) < 1 and clock_of(again).state.confirmed_by == "laptop-a"
    finally:
        again.close()
