"""What the daemon serves the touch screen, against the real daemon: the app's files and nothing
beside them, the summary (devices, reasons a visit cannot start, the caller's visit), watching
that does not keep an idle sign-in alive, the officer's language, and the message catalogue."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from hil.rig import simulation_officer, wait_until
from hil.sample_orders import sample_order
from kitd.api.screen import SCREEN_DIR, screen_file
from kitd.capture.fingerprint_quality import FEEDBACK_MESSAGES as FINGERPRINT_FEEDBACK
from kitd.capture.iris_quality import FEEDBACK_MESSAGES as IRIS_FEEDBACK
from kitd.cli.daemon_client import DaemonClient
from kitd.services.kit_summary import START_REASONS


def client(kitd, role: str) -> DaemonClient:  # noqa: ANN001
    return DaemonClient(kitd.url, kitd.sign_in(role))


@pytest.mark.parametrize(
    "name",
    [
        "",
        "..",
        "../api/screen.py",
        "i18n/../../api/screen.py",
        "/etc/passwd",
        "a\\b",
        "i18n//id.json",
        "a\x00b.js",  # a NUL would have made resolving the path raise (a 500)
        "x" * 300 + ".js",  # so would a name longer than the system takes
        "README.md",  # the folder's notes are not the app
    ],
)
def test_no_name_reaches_outside_the_apps_folder(name: str) -> None:
    assert screen_file(name) is None


def test_the_apps_own_files_are_found() -> None:
    assert screen_file("index.html") == SCREEN_DIR / "index.html"
    assert screen_file("i18n/id.json") == SCREEN_DIR / "i18n" / "id.json"


def test_the_app_is_served_without_a_sign_in_and_nothing_else_is(start_kitd) -> None:  # noqa: ANN001
    kitd = start_kitd()
    anyone = DaemonClient(kitd.url)
    page = anyone.request("GET", "/")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    script = anyone.request("GET", "/screen/app.js")
    assert script.status == 200 and script.headers["Content-Type"].startswith("text/javascript")
    for name in ("../api/screen.py", "..%2Fapi%2Fscreen.py", "nothing.js"):
        reply = anyone.request("GET", "/screen/" + name)
        assert reply.status in (404, 401), (name, reply.status)  # a dot-segment path is normalised away
        assert b"SCREEN_DIR" not in reply.body
    assert anyone.request("GET", "/api/v1/summary").status == 401
    catalogue = anyone.request("GET", "/api/v1/messages").json()
    assert catalogue["languages"] == ["id", "en"]
    # The assessors' own words, not a copy that could drift from them.
    assert catalogue["feedback"]["fingerprint"] == {
        c: {"id": i, "en": e} for c, (i, e) in FINGERPRINT_FEEDBACK.items()
    }
    assert catalogue["feedback"]["iris"] == {c: {"id": i, "en": e} for c, (i, e) in IRIS_FEEDBACK.items()}
    assert set(catalogue["reasons"]) == set(START_REASONS)


def test_the_summary_names_every_reason_a_visit_cannot_start(start_kitd) -> None:  # noqa: ANN001
    # The reader is configured but absent, and there is no iris camera nor pad at all.
    kitd = start_kitd(devices=[{"id": "fingerprint", "uri": "usb:298d:1010"}])
    officer = client(kitd, "officer")
    summary = officer.checked("GET", "/api/v1/summary").json()
    assert summary["officer"]["nip"] == simulation_officer("officer")["nip"]
    assert summary["kit"]["timezone"] and summary["battery"] is None
    kit_now = dt.datetime.fromisoformat(summary["clock"].pop("now"))  # the kit's time, for the page
    assert abs((kit_now - dt.datetime.now(dt.UTC)).total_seconds()) < 60
    assert summary["clock"] == {"confirmed": False, "confirmed_at": None, "went_back": False}
    assert [(d["id"], d["status"], d["ready"]) for d in summary["devices"]] == [
        ("fingerprint", "disconnected", False)
    ]
    reasons = summary["visit_start"]["reasons"]
    assert summary["visit_start"]["possible"] is False
    assert sorted(r.get("device", "") for r in reasons if r["code"] == "device_missing") == [
        "fingerprint",
        "iris_camera",
        "signature",
    ]
    assert {r["code"] for r in reasons} == {"device_missing"}  # the simulation's officer can sign
    missing_reader = next(r for r in reasons if r.get("device") == "fingerprint")
    assert missing_reader["message"]["id"].startswith("Pemindai sidik jari")
    assert "fingerprint reader" in missing_reader["message"]["en"]
    assert (
        summary["disk"]["enough"] is True and summary["disk"]["free_bytes"] > summary["disk"]["reserve_bytes"]
    )
    assert summary["outbox"] == {"waiting": 0, "problems": 0}


def test_an_active_visit_is_the_callers_and_blocks_another(start_kitd) -> None:  # noqa: ANN001
    kitd = start_kitd()
    client(kitd, "supervisor").checked("POST", "/api/v1/orders", [sample_order("SCR-1")])
    officer = client(kitd, "officer")
    visit = officer.checked("POST", "/api/v1/visits", {"order_id": "SCR-1"}).json()
    mine = officer.checked("GET", "/api/v1/summary").json()
    assert mine["visit"] == {"id": visit["id"], "state": visit["state"], "order_id": "SCR-1"}
    assert mine["others_visit"] is None
    assert "visit_active" in {r["code"] for r in mine["visit_start"]["reasons"]}
    theirs = client(kitd, "supervisor").checked("GET", "/api/v1/summary").json()
    assert theirs["visit"] is None
    # Whose visit blocks the supervisor's, so that they know whom to call (or end it).
    officer_nip = simulation_officer("officer")["nip"]
    assert theirs["others_visit"] == {
        "id": visit["id"],
        "state": visit["state"],
        "order_id": "SCR-1",
        "officer": {"nip": officer_nip, "name": simulation_officer("officer")["name"]},
    }
    codes = {r["code"] for r in theirs["visit_start"]["reasons"]}
    assert "visit_of_another" in codes and "visit_active" not in codes
    # The visit is its officer's to work on (its bundle carries their signature): another
    # signed-in officer is refused, saying whose it is, and may only end it.
    supervisor = client(kitd, "supervisor")
    base = f"/api/v1/visits/{visit['id']}"
    for path, body in (
        ("identity", {"present": ["Sumiati"], "consent_by": "applicant"}),
        ("items/finger:1/start", None),
        ("items/finger:1/retry", None),
        ("items/finger:1/accept", None),
        ("items/finger:1/except", {"reason": "bandaged", "confirm": True}),
        ("finish", None),
    ):
        refused = supervisor.request("POST", f"{base}/{path}", body)
        assert refused.status == 403 and refused.json()["error"] == "not_visits_officer", (path, refused.body)
        assert officer_nip in refused.json()["message"]
    shown = supervisor.request("GET", f"{base}/items/finger:1/capture")  # the applicant's images
    assert shown.status == 403 and shown.json()["error"] == "not_visits_officer", shown.body
    assert officer.request("GET", f"{base}/items/finger:1/capture").status == 404  # none yet
    assert supervisor.checked("POST", f"{base}/cancel").json()["state"] == "ending"
    assert supervisor.request("POST", f"{base}/carry-on").status == 403
    assert officer.checked("POST", f"{base}/carry-on").json()["state"] == "identity"
    ended = supervisor.checked("POST", f"{base}/outcome", {"code": "cancelled", "note": "petugas sakit"})
    assert ended.json()["state"] == "ended"


def test_watching_does_not_keep_a_sign_in_alive_and_using_does(start_kitd) -> None:  # noqa: ANN001
    kitd = start_kitd(settings={"auth.idle_lock_s": 2})
    watcher, user = client(kitd, "officer"), client(kitd, "officer")
    signed_in_at = time.monotonic()
    # Both poll: the watcher its summary, the user "who am I" (what the screen asks on a touch).
    while time.monotonic() - signed_in_at < 4:
        watcher.request("GET", "/api/v1/summary")
        assert user.checked("GET", "/api/v1/auth/me").json()["idle_lock_s"] == 2
        time.sleep(0.3)
    wait_until(lambda: watcher.request("GET", "/api/v1/summary").status == 401, "the watcher locked out")
    assert user.request("GET", "/api/v1/summary").status == 200


def test_an_officers_language_is_kept_for_the_next_sign_in(start_kitd) -> None:  # noqa: ANN001
    kitd = start_kitd()
    officer = client(kitd, "officer")
    assert officer.checked("GET", "/api/v1/auth/me").json()["officer"]["language"] == "id"
    refused = officer.request("POST", "/api/v1/auth/language", {"language": "fr"})
    assert refused.status == 400 and "language" in refused.json()["message"]
    assert officer.checked("POST", "/api/v1/auth/language", {"language": "en"}).json()["language"] == "en"
    again = DaemonClient(kitd.url).checked(
        "POST", "/api/v1/auth/signin", {k: simulation_officer("officer")[k] for k in ("nip", "pin")}
    )
    assert again.json()["officer"]["language"] == "en"
    # Choosing a language is not a change of standing: the first sign-in's token still holds.
    assert officer.request("GET", "/api/v1/auth/me").status == 200
