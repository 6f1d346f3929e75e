"""The kit's database, officers and work orders (kitd/store/), on a real SQLite file."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from hil.sample_orders import orders_csv, sample_order
from kitd.store.database import MIGRATIONS, DatabaseError, open_database, transaction
from kitd.store.officers import (
    LastSupervisor,
    OfficerError,
    OfficerLocked,
    OfficerRoll,
    UnknownOfficer,
    WrongPin,
)
from kitd.store.visits import (
    OrderNotPending,
    active_visits,
    close_order,
    load_visit,
    pending_order,
    save_visit,
)
from kitd.store.work_orders import (
    MAX_ROWS,
    OrdersRefused,
    check_order,
    import_orders,
    parse_orders,
    pending_orders,
)

TODAY = dt.date(2026, 11, 29)
SUPERVISOR_NIP = "197503152000031001"
OFFICER_NIP = "198001012005011002"


@pytest.fixture()
def db(tmp_path: Path) -> sqlite3.Connection:
    conn = open_database(tmp_path / "kitd.sqlite3")
    yield conn
    conn.close()


# --- database ------------------------------------------------------------------------


def test_database_is_durable_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "kitd.sqlite3"
    conn = open_database(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()
    open_database(path).close()  # reopening applies nothing twice
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(DatabaseError, match="newer than this kitd knows"):
        open_database(path)


def test_a_transaction_inside_another_is_undone_alone_and_committed_with_it(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "kitd.sqlite")
    conn.execute("CREATE TABLE t (x INTEGER)")
    with transaction(conn):
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(sqlite3.IntegrityError), transaction(conn):
            conn.execute("INSERT INTO t VALUES (2)")
            raise sqlite3.IntegrityError("this one is refused")
        with transaction(conn):
            conn.execute("INSERT INTO t VALUES (3)")
        assert conn.in_transaction  # the inner ones committed nothing yet
    assert not conn.in_transaction
    conn.close()
    again = open_database(tmp_path / "kitd.sqlite")
    assert [x for (x,) in again.execute("SELECT x FROM t ORDER BY x")] == [1, 3]
    again.close()


def test_unusable_database_path_is_named(tmp_path: Path) -> None:
    (tmp_path / "kitd.sqlite3").write_bytes(b"this is not a database, it is a text file" * 100)
    with pytest.raises(DatabaseError, match="kitd.sqlite3"):
        open_database(tmp_path / "kitd.sqlite3")


# --- officers ------------------------------------------------------------------------

FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # unit tests only


def test_pins_are_stored_only_as_argon2id_hashes(db: sqlite3.Connection) -> None:
    roll = OfficerRoll(db, hasher=FAST)
    roll.add(SUPERVISOR_NIP, "Siti Aminah", "supervisor", "482913")
    stored = db.execute("SELECT pin_hash FROM officers").fetchone()[0]
    assert stored.startswith("$argon2id$") and "482913" not in stored
    assert roll.check_pin(SUPERVISOR_NIP, "482913").role == "supervisor"
    # The shipped parameters, as the daemon uses them.
    real = OfficerRoll(db)
    real.reset_pin(SUPERVISOR_NIP, "111222")
    assert "m=65536,t=2,p=1" in db.execute("SELECT pin_hash FROM officers").fetchone()[0]
    assert real.check_pin(SUPERVISOR_NIP, "111222").nip == SUPERVISOR_NIP


def test_bad_officers_are_refused(db: sqlite3.Connection) -> None:
    roll = OfficerRoll(db, hasher=FAST)
    roll.add(SUPERVISOR_NIP, "Siti", "supervisor", "482913")
    with pytest.raises(OfficerError, match="already exists"):
        roll.add(SUPERVISOR_NIP, "Siti", "supervisor", "482913")
    with pytest.raises(OfficerError, match="birth date"):
        roll.add("197513152000031001", "X", "officer", "482913")
    with pytest.raises(OfficerError, match="role"):
        roll.add(OFFICER_NIP, "X", "admin", "482913")
    with pytest.raises(OfficerError, match="6 digits"):
        roll.add(OFFICER_NIP, "X", "officer", "12345")
    with pytest.raises(OfficerError, match="6 digits"):
        roll.add(OFFICER_NIP, "X", "officer", "12345a")
    with pytest.raises(OfficerError, match="name"):
        roll.add(OFFICER_NIP, "  ", "officer", "123456")
    with pytest.raises(OfficerError, match="name contains the control character 0x0A"):
        roll.add(OFFICER_NIP, "Budi\nSantoso", "officer", "482913")
    with pytest.raises(OfficerError, match="name: 100000 characters, at most 200"):
        roll.add(OFFICER_NIP, "B" * 100_000, "officer", "482913")


def test_wrong_pins_lock_until_unlocked(db: sqlite3.Connection) -> None:
    roll = OfficerRoll(db, max_pin_failures=3, hasher=FAST)
    roll.add(OFFICER_NIP, "Budi", "officer", "135790")
    with pytest.raises(WrongPin):
        roll.check_pin(OFFICER_NIP, "000000")
    roll.check_pin(OFFICER_NIP, "135790")  # a right PIN resets the count
    for _ in range(2):
        with pytest.raises(WrongPin):
            roll.check_pin(OFFICER_NIP, "000000")
    with pytest.raises(OfficerLocked, match="supervisor must unlock"):
        roll.check_pin(OFFICER_NIP, "999999")
    with pytest.raises(OfficerLocked):  # even the right PIN, once locked
        roll.check_pin(OFFICER_NIP, "135790")
    assert roll.get(OFFICER_NIP).locked
    roll.unlock(OFFICER_NIP)
    assert roll.check_pin(OFFICER_NIP, "135790").nip == OFFICER_NIP
    with pytest.raises(UnknownOfficer):
        roll.check_pin("199001012015011003", "135790")


def test_the_last_active_supervisor_is_not_deactivated(db: sqlite3.Connection) -> None:
    roll = OfficerRoll(db, hasher=FAST)
    roll.add(OFFICER_NIP, "Siti", "supervisor", "135790")
    with pytest.raises(LastSupervisor, match="last active supervisor"):
        roll.deactivate(OFFICER_NIP)
    assert roll.get(OFFICER_NIP).active
    roll.add("198002022010012002", "Dewi", "supervisor", "246801")
    assert not roll.deactivate(OFFICER_NIP).active
    with pytest.raises(LastSupervisor):
        roll.deactivate("198002022010012002")


def test_deactivated_officers_are_kept_but_cannot_sign_in(db: sqlite3.Connection) -> None:
    roll = OfficerRoll(db, hasher=FAST)
    roll.add(OFFICER_NIP, "Budi", "officer", "135790")
    roll.deactivate(OFFICER_NIP)
    assert [o.active for o in roll.list()] == [False]
    with pytest.raises(OfficerError, match="deactivated"):
        roll.check_pin(OFFICER_NIP, "135790")


# --- work orders -----------------------------------------------------------------------


def fields(errors: list[dict[str, str]]) -> set[str]:
    return {e["field"] for e in errors}


def test_a_good_order_passes() -> None:
    assert check_order(sample_order(), "3576", TODAY) == ([], [])


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"sex": "L"}, "nik", "disagreeing with sex L"),
        ({"birth_date": "1948-03-08"}, "nik", "disagrees with birth_date 1948-03-08"),
        ({"birth_date": "1948-02-30"}, "birth_date", "not a calendar date"),
        ({"birth_date": "2030-01-01"}, "birth_date", "future"),
        ({"nik": "3576014703480000"}, "nik", "0000"),
        ({"nik": "35760147034800"}, "nik", "expected form"),
        ({"kk": "3576013002150003"}, "kk", "issue date"),
        ({"sex": "W"}, "sex", "is not one of"),
        ({"category": "lain"}, "category", "is not one of"),
        ({"kind": "renew"}, "kind", "is not one of"),
        (
            {"appointment": {"start": "2026-12-01T09:00:00", "end": "2026-12-01T10:00:00+07:00"}},
            "appointment.start",
            "UTC offset",
        ),
        (
            {"appointment": {"start": "2026-12-01T10:00:00+07:00", "end": "2026-12-01T09:00:00+07:00"}},
            "appointment.end",
            "after",
        ),
        ({"colour": "red"}, "", "Additional properties"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], field: str, says: str) -> None:
    errors, _ = check_order(sample_order(**changes), "", TODAY)
    assert field in fields(errors) and any(says in e["message"] for e in errors), errors


def test_missing_fields_are_named() -> None:
    broken = sample_order()
    del broken["kk"]
    del broken["address"]["rt"]
    errors, _ = check_order(broken, "", TODAY)
    assert {"kk", "address.rt"} <= fields(errors)
    assert all(e["message"] == "is required" for e in errors if e["field"] in ("kk", "address.rt"))


def test_another_region_warns_and_never_rejects(db: sqlite3.Connection) -> None:
    moved = sample_order("MJK-009", nik="3515011208550002", birth_date="1955-08-12", sex="L")
    errors, warnings = check_order(moved, "3576", TODAY)
    assert errors == [] and fields(warnings) == {"nik"} and "3515" in warnings[0]["message"]
    report = import_orders(db, [moved], "3576", TODAY)
    assert report.imported == 1 and report.rejected == [] and report.warnings[0]["row"] == 1


@pytest.mark.parametrize("form", ["json", "csv"])
def test_mixed_good_and_bad_rows(db: sqlite3.Connection, form: str) -> None:
    rows = [
        sample_order("MJK-001"),
        sample_order("MJK-002", sex="L"),  # disagrees with the NIK
        sample_order(
            "MJK-003", nik="3576011208550002", birth_date="1955-08-12", sex="L", category="disabilitas"
        ),
        sample_order("MJK-004", kk="3576012005150000"),
    ]
    data = json.dumps(rows).encode() if form == "json" else orders_csv(rows)
    parsed = parse_orders(data)
    report = import_orders(db, parsed, "3576", TODAY).to_json()
    assert report["imported"] == 2 and report["unchanged"] == 0
    assert [(r["row"], r["order_id"]) for r in report["rejected"]] == [(2, "MJK-002"), (4, "MJK-004")]
    assert fields(report["rejected"][0]["errors"]) == {"nik"}
    assert fields(report["rejected"][1]["errors"]) == {"kk"}
    # The same file again: nothing new; a changed order under a known id is rejected.
    again = import_orders(db, parsed, "3576", TODAY)
    assert (again.imported, again.unchanged) == (0, 2)
    changed = import_orders(db, [sample_order("MJK-001", note="pagi saja")], "3576", TODAY)
    assert changed.rejected[0]["errors"][0]["field"] == "order_id"
    assert "different content" in changed.rejected[0]["errors"][0]["message"]


def test_csv_and_json_give_the_same_sample_order() -> None:
    assert parse_orders(orders_csv([sample_order()])) == parse_orders(json.dumps([sample_order()]).encode())


def test_whole_files_refused_with_the_reason() -> None:
    with pytest.raises(OrdersRefused, match="row limit"):
        parse_orders(json.dumps([{}] * (MAX_ROWS + 1)).encode())
    with pytest.raises(OrdersRefused, match="10 MB"):
        parse_orders(b"[" + b" " * (10 * 1024 * 1024) + b"]")
    with pytest.raises(OrdersRefused, match="not valid JSON"):
        parse_orders(b'[{"order_id": ')
    with pytest.raises(OrdersRefused, match="JSON array"):
        parse_orders(b'{"order_id": "x"}')
    with pytest.raises(OrdersRefused, match="order_id column"):
        parse_orders(b"nik,name\n1,2\n")
    with pytest.raises(OrdersRefused, match="UTF-8"):
        parse_orders(b"order_id\n\xff\xfe\n")


def test_extreme_inputs_are_refused_not_crashed(db: sqlite3.Connection) -> None:
    far = sample_order(
        "FAR", appointment={"start": "9999-12-31T23:00:00+00:00", "end": "9999-12-31T23:30:00+00:00"}
    )
    early = sample_order(
        "EARLY", appointment={"start": "0001-01-01T00:00:00+07:00", "end": "0001-01-01T01:00:00+07:00"}
    )
    report = import_orders(db, [far, early, sample_order("OK")], "", TODAY)
    assert report.imported == 1 and {r["order_id"] for r in report.rejected} == {"FAR", "EARLY"}
    assert pending_orders(db, dt.date(2026, 12, 1), "Asia/Jakarta")[0]["order_id"] == "OK"
    with pytest.raises(OrdersRefused, match="nested too deeply"):
        parse_orders(b"[" * 100_000)
    with pytest.raises(OrdersRefused, match="not valid JSON"):
        parse_orders(b"[" + b"7" * 5000 + b"]")
    with pytest.raises(OrdersRefused, match="not valid JSON"):
        parse_orders(b'[{"order_id": NaN}]')


def test_text_a_sealed_bundle_cannot_carry_is_refused_at_import(db: sqlite3.Connection) -> None:
    """The order's text goes into the bundle's ANSI/NIST Type-2 record: "999:" and the
    separators would cut it short there, so such an order never becomes a visit."""
    tagged = sample_order("TAG", name="Sumiati 999:x")
    separated = sample_order("SEP", name="Sumi\x1dati")
    noted = sample_order("OK", needs="bedridden;\nalone in the afternoon")  # free text keeps its lines
    report = import_orders(db, [tagged, separated, noted], "", TODAY)
    assert report.imported == 1
    reasons = {r["order_id"]: r["errors"] for r in report.rejected}
    message = "contains '999:': a sealed bundle cannot carry it"
    assert reasons["TAG"] == [{"field": "name", "message": message}]
    assert reasons["SEP"][0]["field"] == "name" and "separator GS (0x1D)" in reasons["SEP"][0]["message"]


def test_half_a_utf16_pair_is_refused_and_reported_escaped(db: sqlite3.Connection) -> None:
    """JSON's "\\ud800" escape alone is no character: it has no UTF-8, so neither the store
    nor a report printed or sent as UTF-8 can hold it."""
    rows = json.loads('[{"order_id": "MJK-\\ud800"}, {"order_id": "MJK-2", "name": "Sumi\\udc80ti"}]')
    named = [sample_order(rows[0]["order_id"]), sample_order("MJK-2", name=rows[1]["name"])]
    report = import_orders(db, named, "", TODAY)
    assert report.imported == 0
    reasons = {r["order_id"]: r["errors"] for r in report.rejected}
    assert set(reasons) == {"MJK-\\ud800", "MJK-2"}
    json.dumps(report.to_json(), ensure_ascii=False).encode("utf-8")  # what kitctl and the API send
    assert reasons["MJK-2"] == [
        {
            "field": "name",
            "message": "contains U+DC80, half of a UTF-16 pair, not a character: "
            "a sealed bundle cannot carry it",
        }
    ]


def test_a_csv_column_nested_past_any_field_is_refused() -> None:
    deep = r"CSV column 'a\.a\.a\.a\.a.*\(4001 characters\): no order field is nested that deep"
    with pytest.raises(OrdersRefused, match=deep):
        parse_orders(("order_id," + ".".join(["a"] * 2000) + "\nMJK-1,x\n").encode())
    assert parse_orders(b"order_id,address.rt\nMJK-1,002\n") == [
        {"order_id": "MJK-1", "address": {"rt": "002"}}
    ]


def test_a_text_too_long_is_counted_not_quoted() -> None:
    errors, _ = check_order(sample_order(name="S" * 5000), "", TODAY)
    assert {"field": "name", "message": "5000 characters, at most 200"} in errors, errors


def test_garbage_rows_are_rejected_not_crashed(db: sqlite3.Connection) -> None:
    report = import_orders(db, [42, None, "x", [], {"order_id": 7}], "", TODAY)
    assert report.imported == 0 and len(report.rejected) == 5


def test_pending_orders_of_the_kits_day_come_first(db: sqlite3.Connection) -> None:
    def at(order_id: str, start: str, end: str) -> dict[str, Any]:
        return sample_order(order_id, appointment={"start": start, "end": end})

    rows = [
        at("LATER", "2026-12-03T08:00:00+07:00", "2026-12-03T09:00:00+07:00"),
        at("TODAY-PM", "2026-12-01T14:00:00+07:00", "2026-12-01T15:00:00+07:00"),
        # 23:30 UTC on 30 Nov is 06:30 on 1 Dec in Jakarta: the kit's day, not UTC's.
        at("TODAY-AM", "2026-11-30T23:30:00+00:00", "2026-12-01T00:30:00+00:00"),
        sample_order("NONE", appointment=None),
        at("EARLIER", "2026-11-30T09:00:00+07:00", "2026-11-30T10:00:00+07:00"),
    ]
    rows[3].pop("appointment")
    assert import_orders(db, rows, "", TODAY).imported == 5
    listed = [o["order_id"] for o in pending_orders(db, dt.date(2026, 12, 1), "Asia/Jakarta")]
    assert listed == ["TODAY-AM", "TODAY-PM", "EARLIER", "LATER", "NONE"]
    in_utc = [o["order_id"] for o in pending_orders(db, dt.date(2026, 12, 1), "UTC")]
    assert in_utc[0] == "TODAY-PM" and in_utc.index("TODAY-AM") > 1


# --- visits and the end of an order ------------------------------------------------------


def visit_record(visit_id: str, order_id: str, state: str, started: str) -> dict[str, Any]:
    return {
        "id": visit_id,
        "order_id": order_id,
        "state": state,
        "started_at": started,
        "updated_at": started,
        "identity": {"present": ["Sumiati"], "consent_by": "applicant", "guardian": None},
    }


def test_visits_are_kept_and_found_again(db: sqlite3.Connection) -> None:
    import_orders(db, [sample_order("MJK-001"), sample_order("MJK-002")], "", TODAY)
    save_visit(db, visit_record("v1", "MJK-001", "ended", "2026-12-01T01:00:00+00:00"))
    save_visit(db, visit_record("v2", "MJK-002", "capturing", "2026-12-01T02:00:00+00:00"))
    assert [v["id"] for v in active_visits(db)] == ["v2"]
    record = visit_record("v2", "MJK-002", "review", "2026-12-01T02:00:00+00:00")
    record["updated_at"] = "2026-12-01T02:30:00+00:00"
    save_visit(db, record)
    assert load_visit(db, "v2") == record and load_visit(db, "v3") is None
    with pytest.raises(sqlite3.IntegrityError):  # a visit needs a known order
        save_visit(db, visit_record("v9", "NO-SUCH-ORDER", "identity", "2026-12-01T03:00:00+00:00"))


def test_an_ended_visit_erases_its_orders_personal_fields(db: sqlite3.Connection) -> None:
    import_orders(db, [sample_order("MJK-001")], "", TODAY)
    assert pending_order(db, "MJK-001")["name"] == "Sumiati"
    close_order(db, "MJK-001", "not_home", now=dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC))
    row = db.execute("SELECT * FROM work_orders WHERE order_id = 'MJK-001'").fetchone()
    assert dict(row) | {"imported_at": None} == {
        "order_id": "MJK-001",
        "status": "done",
        "content": None,
        "appointment_start": None,
        "imported_at": None,
        "outcome": "not_home",
        "ended_at": "2026-12-01T03:00:00+00:00",
        "updated_at": None,
        "withdrawn_at": None,
    }
    everything = " ".join(str(v) for r in db.execute("SELECT * FROM work_orders") for v in tuple(r))
    assert "Sumiati" not in everything and "3576014703480001" not in everything
    with pytest.raises(OrderNotPending, match="done"):
        pending_order(db, "MJK-001")
    assert pending_orders(db, dt.date(2026, 12, 1), "Asia/Jakarta") == []
    again = import_orders(db, [sample_order("MJK-001")], "", TODAY)
    assert "is done (outcome not_home)" in again.rejected[0]["errors"][0]["message"]


def test_a_rescheduled_order_stays_pending_at_its_new_time(db: sqlite3.Connection) -> None:
    import_orders(db, [sample_order("MJK-001"), sample_order("MJK-002")], "", TODAY)
    tomorrow = {"start": "2026-12-02T09:00:00+07:00", "end": "2026-12-02T10:00:00+07:00"}
    close_order(db, "MJK-001", "rescheduled", tomorrow)
    assert pending_order(db, "MJK-001")["appointment"] == tomorrow
    on_the_day = [o["order_id"] for o in pending_orders(db, dt.date(2026, 12, 2), "Asia/Jakarta")]
    assert on_the_day[0] == "MJK-001"
    today = [o["order_id"] for o in pending_orders(db, dt.date(2026, 12, 1), "Asia/Jakarta")]
    assert today[0] == "MJK-002"
    with pytest.raises(ValueError):
        close_order(db, "MJK-002", "rescheduled")
    assert pending_order(db, "MJK-002")["name"] == "Sumiati"  # nothing changed
