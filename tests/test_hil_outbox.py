"""HIL: the outbox through the real daemon and kitctl.

Bundles are sealed into a kit's data_dir by the real outbox code (hil.outbox_rig) before its
kitd starts; then the daemon's status and outbox endpoints show them, the kit trusts a
laptop's receipts key (as pairing would), a supervisor posts receipts and kitctl revokes the
laptop, a restart reconciles what was left wrong on the disk and erases what the office has
had long enough, and a visit is refused below the disk reserve.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from hil.outbox_rig import central_signer, laptop_signer, open_rig, receipt, sample_captures, seal_injected
from hil.rig import SIMULATION_KIT_ID, KitdProcess, venv_script
from hil.sample_orders import sample_order
from hil.sample_visit import SampleVisit
from kitd.cli.daemon_client import DaemonClient


@pytest.fixture(scope="module")
def sample() -> SampleVisit:
    return sample_captures()


def kitctl(kitd: KitdProcess, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [venv_script("kitctl"), *map(str, args), "--config", str(kitd.config_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def sealed_kit(tmp_path: Path, sample: SampleVisit, count: int) -> tuple[Path, list[dict[str, Any]]]:
    """A kit's workdir whose outbox holds ``count`` sealed bundles; their visits' records."""
    workdir = tmp_path / "kitd0"
    rig = open_rig(workdir / "data", workdir / "office")
    try:
        visits = [seal_injected(rig, sample, f"V-{n:03d}") for n in range(count)]
    finally:
        rig.close()
    return workdir, visits


def test_the_daemon_shows_the_outbox_and_takes_receipts(start_kitd, tmp_path, sample) -> None:  # noqa: ANN001
    workdir, visits = sealed_kit(tmp_path, sample, 3)
    rig = open_rig(workdir / "data", workdir / "office")
    laptop = laptop_signer(rig, "laptop-7", trust=False)
    stranger = laptop_signer(rig, "laptop-9", trust=False)
    central = central_signer(rig)
    rig.close()
    kitd = start_kitd()
    assert kitd.data_dir == workdir / "data"
    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    status = supervisor.checked("GET", "/api/v1/status").json()["outbox"]
    assert status["bundles"] == {"sealed": 3, "offered": 0, "acknowledged": 0, "delivered": 0, "erased": 0}
    assert status["oldest_unacknowledged_age_s"] is not None and status["problems"] == []
    assert status["reserve_ok"] is True and status["free_bytes"] > 0
    listed = supervisor.checked("GET", "/api/v1/outbox").json()["bundles"]
    assert sorted(b["visit_id"] for b in listed) == ["V-000", "V-001", "V-002"]
    first = next(b for b in listed if b["visit_id"] == "V-000")
    assert (
        supervisor.checked("GET", f"/api/v1/outbox/bundles/{first['bundle_id']}").json()["state"] == "sealed"
    )
    missing = supervisor.request("GET", "/api/v1/outbox/bundles/00000000-0000-4000-8000-000000000000")
    assert missing.status == 404 and missing.json()["error"] == "unknown_bundle"
    officer = DaemonClient(kitd.url, kitd.sign_in("officer"))
    assert officer.request("GET", "/api/v1/outbox").status == 403
    assert officer.request("POST", "/api/v1/outbox/receipts", []).status == 403

    # An unknown laptop's receipt is refused, whole request 422, each reason given.
    unknown = receipt(laptop, "laptop_receipt", first, "laptop-7")
    refused = supervisor.request("POST", "/api/v1/outbox/receipts", unknown)
    assert refused.status == 422 and refused.json()["error"] == "receipts_refused"
    assert "unknown key" in refused.json()["results"][0]["reason"]
    # Trusted beside the running daemon (pairing records a laptop's receipts key the same way:
    # tests/test_hil_pairing.py); SQLite takes turns.
    with open_rig(workdir / "data", workdir / "office") as beside:
        beside.outbox.trust_laptop(beside.conn, "laptop-7", laptop.certificate)
    known = json.loads(kitctl(kitd, "laptops", "list", "--json").stdout)
    assert [(r["name"], r["paired_at"], r["revoked_at"]) for r in known] == [("laptop-7", None, None)]

    second = next(b for b in listed if b["visit_id"] == "V-001")
    batch = [
        receipt(laptop, "laptop_receipt", first, "laptop-7"),
        receipt(laptop, "laptop_receipt", first, "laptop-7"),  # replayed
        receipt(laptop, "laptop_receipt", second, "laptop-7", sha256="0" * 64),  # another file
        receipt(stranger, "laptop_receipt", second, "laptop-9"),  # an unknown key
        receipt(central, "central_receipt", second, "central"),
    ]
    answer = supervisor.checked("POST", "/api/v1/outbox/receipts", batch).json()
    assert [r["result"] for r in answer["results"]] == [
        "accepted",
        "duplicate",
        "refused",
        "refused",
        "accepted",
    ]
    assert (answer["accepted"], answer["duplicate"], answer["refused"]) == (2, 1, 2)
    assert "names another file" in answer["results"][2]["reason"]
    # The daemon's log has each receipt (kitctl receipts take prints its own instead).
    logged = kitd.logs()
    assert f"receipt for bundle {first['bundle_id']}: accepted" in logged
    assert "receipt 2 refused: " in logged and "receipt 3 refused: " in logged
    status = supervisor.checked("GET", "/api/v1/status").json()["outbox"]
    assert status["bundles"] == {"sealed": 1, "offered": 0, "acknowledged": 1, "delivered": 1, "erased": 0}

    done = kitctl(kitd, "outbox", "list")
    assert done.returncode == 0, done.stderr
    assert "1 sealed, 0 offered, 1 acknowledged, 1 delivered, 0 erased" in done.stdout
    assert f"{first['bundle_id']}  acknowledged" in done.stdout
    shown = json.loads(kitctl(kitd, "outbox", "show", first["bundle_id"], "--json").stdout)
    assert shown["acknowledged_by"] == "laptop-7" and shown["laptop_receipt"]["statement"]["by"] == "laptop-7"
    done = kitctl(kitd, "outbox", "show", "no-such-bundle")
    assert done.returncode == 1 and "no bundle 'no-such-bundle'" in done.stderr

    # Revoked: its receipts are refused from now on.
    done = kitctl(kitd, "laptops", "revoke", "laptop-7")
    assert done.returncode == 0 and "revoked laptop laptop-7" in done.stdout, done.stderr
    done = kitctl(kitd, "laptops", "revoke", "laptop-8")
    assert done.returncode == 1 and "no laptop 'laptop-8'" in done.stderr and done.stderr.count("\n") == 1
    # This kit's network API is off: there is nothing to pair with.
    done = kitctl(kitd, "laptops", "pair")
    assert done.returncode == 1 and "network.enabled = false" in done.stderr, done.stderr
    third = next(b for b in listed if b["visit_id"] == "V-002")
    late = supervisor.request(
        "POST", "/api/v1/outbox/receipts", [receipt(laptop, "laptop_receipt", third, "laptop-7")]
    )
    assert late.status == 422 and "revoked" in late.json()["results"][0]["reason"]
    empty = supervisor.request("POST", "/api/v1/outbox/receipts", [])
    assert empty.status == 400 and "empty" in empty.json()["message"], empty.body
    # A body that is no receipt at all is a bad request, not a batch whose receipts were refused;
    # in an array, each is judged on its own.
    for body, kind in ((b'"thanks, got it"', "a string"), (b"null", "null"), (b"1", "a number")):
        text = supervisor.request("POST", "/api/v1/outbox/receipts", body)
        assert text.status == 400, text.body
        assert text.json()["message"] == (
            f"receipts: the body is {kind}, not a receipt (an object) or an array of them"
        )
    text = supervisor.request("POST", "/api/v1/outbox/receipts", ["thanks, got it"])
    assert text.status == 422 and "a receipt is a signed statement" in text.json()["results"][0]["reason"]


def test_kitctl_takes_receipts_brought_on_a_stick_and_names_each_by_its_file(tmp_path, sample) -> None:  # noqa: ANN001
    """No daemon: kitctl takes receipt files on the kit's database, one line per receipt on
    stdout naming its file (and its place in an array), nothing said twice on stderr."""
    workdir, _ = sealed_kit(tmp_path, sample, 2)
    with open_rig(workdir / "data", workdir / "office") as rig:
        laptop = laptop_signer(rig, "laptop-7")
        rows = {r["visit_id"]: r for r in rig.outbox.bundles(rig.conn)}
    config = workdir / "kitd.toml"
    config.write_text(f'data_dir = "{workdir / "data"}"\n[kit]\nid = "{SIMULATION_KIT_ID}"\n')

    def take(*args: Path | str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [venv_script("kitctl"), "receipts", "take", *map(str, args), "--config", str(config)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    first, second = rows["V-000"], rows["V-001"]
    one = tmp_path / "one.json"
    one.write_text(json.dumps(receipt(laptop, "laptop_receipt", first, "laptop-7")))
    several = tmp_path / "several.json"
    several.write_text(
        json.dumps(
            [
                receipt(laptop, "laptop_receipt", first, "laptop-7"),
                {"statement": "not one"},
                receipt(laptop, "laptop_receipt", second, "laptop-7"),
            ]
        )
    )
    done = take(one, several)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout.splitlines() == [
        f"{one} (bundle {first['bundle_id']}): accepted (now acknowledged)",
        f"{several} [0] (bundle {first['bundle_id']}): duplicate (now acknowledged)",
        f"{several} [1]: refused: a receipt is a signed statement: "
        '{"statement": {...}, "signature": "..."}',
        f"{several} [2] (bundle {second['bundle_id']}): accepted (now acknowledged)",
    ]
    again = json.loads(take(several, "--json").stdout)
    assert [(r["file"], r["result"]) for r in again] == [
        (f"{several} [0]", "duplicate"),
        (f"{several} [1]", "refused"),
        (f"{several} [2]", "duplicate"),
    ]
    # Every receipt refused: exit 1, each still named once.
    refused = tmp_path / "refused.json"
    refused.write_text(json.dumps({"statement": {"type": "laptop_receipt"}, "signature": "x"}))
    done = take(refused)
    assert done.returncode == 1 and done.stderr == "" and done.stdout.count(str(refused)) == 1, done
    # A file holding an empty array: said, exit 1, and the files with it not taken.
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    third = tmp_path / "third.json"
    third.write_text(json.dumps(receipt(laptop, "laptop_receipt", first, "laptop-7")))
    done = take(third, empty)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"kitctl receipts take: {empty}: holds an empty JSON array: no receipt\n"
    number = tmp_path / "number.json"
    number.write_text("1")
    done = take(third, number)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (
        f"kitctl receipts take: {number}: holds a number, not a receipt (an object) or an array of them\n"
    )


def test_a_restart_reports_a_lost_file_removes_leftovers_and_erases_what_was_delivered_long_ago(
    start_kitd,
    tmp_path,
    sample,  # noqa: ANN001
) -> None:
    workdir, _ = sealed_kit(tmp_path, sample, 3)
    data = workdir / "data"
    with sqlite3.connect(data / "kitd.sqlite3") as db:
        ids = [r[0] for r in db.execute("SELECT bundle_id FROM outbox ORDER BY visit_id")]
        long_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).isoformat(timespec="seconds")
        # The central office has had the first one for 30 days (retention 7).
        db.execute(
            "UPDATE outbox SET state = 'delivered', delivered_at = ? WHERE bundle_id = ?", (long_ago, ids[0])
        )
    (data / "outbox" / f"{ids[1]}.p7m").unlink()  # lost (a technician's slip, a bad card)
    leftover = data / "outbox" / f".{ids[2]}.p7m.1a2b3c4d.part"
    leftover.write_bytes(b"half a bundle")
    kitd = start_kitd()
    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    status = supervisor.checked("GET", "/api/v1/status").json()["outbox"]
    assert status["bundles"] == {"sealed": 2, "offered": 0, "acknowledged": 0, "delivered": 0, "erased": 1}
    assert [(p["bundle_id"], p["problem"]) for p in status["problems"]] == [(ids[1], "missing")]
    assert not leftover.exists()
    assert not (data / "outbox" / f"{ids[0]}.p7m").exists()
    assert (data / "outbox" / f"{ids[2]}.p7m").exists()
    assert f"bundle {ids[1]}" in kitd.logs() and "has no file in the outbox" in kitd.logs()
    done = kitctl(kitd, "outbox", "list")
    assert f"PROBLEM: bundle {ids[1]} (sealed): file missing" in done.stdout, done.stdout
    # The lost bundle stays on the list (never dropped) until its file is back.
    assert supervisor.checked("GET", f"/api/v1/outbox/bundles/{ids[1]}").json()["problem"] == "missing"


def test_no_visit_starts_below_the_disk_reserve(start_kitd) -> None:  # noqa: ANN001
    # A reserve no disk has: every visit is refused, and the status says why.
    kitd = start_kitd(settings={"outbox.reserve_visits": 10**9})
    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    supervisor.checked("POST", "/api/v1/orders", [sample_order("MJK-001")])
    officer = DaemonClient(kitd.url, kitd.sign_in("officer"))
    refused = officer.request("POST", "/api/v1/visits", {"order_id": "MJK-001"})
    assert refused.status == 409 and refused.json()["error"] == "disk_reserve", refused.body
    assert "outbox.reserve_visits" in refused.json()["message"]
    assert officer.checked("GET", "/api/v1/visits").json() == []
    status = supervisor.checked("GET", "/api/v1/status").json()["outbox"]
    assert status["reserve_ok"] is False and status["free_bytes"] < status["reserve_bytes"]
