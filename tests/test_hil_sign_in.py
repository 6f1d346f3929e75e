"""Sign-in against the real daemon: every documented path refused without a token, each role
allowed or refused as documented, the browser's cookie for the preview and the event stream,
kitctl over the Unix socket without a token, idle tokens, lock-out, and orders by role."""

from __future__ import annotations

import asyncio
import grp
import json
import os
import stat
import time

import aiohttp
import pytest

from hil.rig import SIMULATION_OFFICERS, simulation_officer
from hil.sample_orders import orders_csv, sample_order
from kitd.api.openapi import openapi_document
from kitd.api.sign_in import PUBLIC_ROUTES, ROUTE_ROLES
from kitd.cli.daemon_client import DaemonClient

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
STREAMS = {"/api/v1/events", "/api/v1/stream/iris.mjpg"}
# Path parameters filled with values that exist nowhere: a call that gets past sign-in is
# answered 404 or 400, never 401 or 403.
PARAMETERS = {"{id}": "nothing-here", "{nip}": "199901012020011999"}


def documented_operations() -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, operations in openapi_document()["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    )


def concrete(path: str) -> str:
    for name, value in PARAMETERS.items():
        path = path.replace(name, value)
    return path


def status_of(kitd, method: str, path: str, headers: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    """The status of one request; a stream is closed as soon as its status is known."""

    async def ask() -> int:
        async with aiohttp.ClientSession() as http:
            async with http.request(method, kitd.url + concrete(path), headers=headers, json=None) as reply:
                return reply.status

    return asyncio.run(ask())


@pytest.fixture
def kitd(start_kitd):  # noqa: ANN001, ANN201
    """A daemon with one (absent) fingerprint reader and the simulation's three officers."""
    return start_kitd(devices=[{"id": "fingerprint", "uri": "usb:298d:1010"}])


def test_every_documented_path_is_refused_without_a_token(kitd) -> None:  # noqa: ANN001
    # api.socket_group "kitd" does not exist on this machine: the socket is the daemon's user's alone.
    assert stat.S_IMODE(os.stat(kitd.socket_path).st_mode) == 0o600
    operations = documented_operations()
    assert len(operations) == 66
    for method, path in operations:
        status = status_of(kitd, method, path, {})
        if (method, path) in PUBLIC_ROUTES:
            assert status != 401, (method, path)
        else:
            assert status == 401, (method, path, status)
    # A wrong or made-up token is no better than none, and says so.
    reply = DaemonClient(kitd.url, "made-up-token").request("GET", "/api/v1/devices")
    assert reply.status == 401 and "sign in again" in reply.json()["message"]


@pytest.mark.parametrize("role", ["officer", "supervisor", "technician"])
def test_each_role_is_allowed_or_refused_as_documented(kitd, role: str) -> None:  # noqa: ANN001
    token = kitd.sign_in(role)
    headers = {"Authorization": f"Bearer {token}"}
    for method, path in documented_operations():
        if path == "/api/v1/auth/signout" or (method, path) in PUBLIC_ROUTES:
            continue  # sign-out would end this token; sign-in needs none
        status = status_of(kitd, method, path, headers)
        allowed = ROUTE_ROLES.get((method, path))
        if allowed is not None and role not in allowed:
            assert status == 403, (role, method, path, status)
        else:
            assert status not in (401, 403), (role, method, path, status)
    # HEAD is a GET without a body, and ruled as one.
    head = status_of(kitd, "HEAD", "/api/v1/officers", headers)
    assert head == (200 if role == "supervisor" else 403), (role, head)
    forbidden = DaemonClient(kitd.url, token).request("POST", "/api/v1/devices/fingerprint/capture", {})
    if role != "technician":
        assert forbidden.json() == {
            "error": "forbidden",
            "message": forbidden.json()["message"],
            "role": role,
        }
    # Sign-out ends the token.
    assert DaemonClient(kitd.url, token).request("POST", "/api/v1/auth/signout").status == 200
    assert DaemonClient(kitd.url, token).request("GET", "/api/v1/status").status == 401


def test_the_browser_needs_only_the_cookie(start_simulator, start_kitd) -> None:  # noqa: ANN001
    sim = start_simulator("hil.eye_sim", [])
    kitd = start_kitd(devices=[{"id": "iris", "uri": f"camera:{sim.addresses['url']}"}])
    kitd.wait_for_status("iris", "ready")
    officer = simulation_officer("officer")

    async def browse() -> tuple[str, bytes, bytes, int]:
        # unsafe: the kit is reached by IP address, whose cookies aiohttp otherwise drops.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            async with browser.post(
                kitd.url + "/api/v1/auth/signin", json={"nip": officer["nip"], "pin": officer["pin"]}
            ) as reply:
                assert reply.status == 200, await reply.text()
                cookie = reply.headers["Set-Cookie"]
            async with browser.get(kitd.url + "/api/v1/stream/iris.mjpg") as stream:
                assert stream.status == 200
                preview = await stream.content.read(2000)
            async with browser.get(kitd.url + "/api/v1/events") as events:
                assert events.status == 200
                first_event = await asyncio.wait_for(events.content.readuntil(b"\n\n"), 10)
                # Signing out ends the open stream too (within a few seconds: it asks again).
                async with browser.post(kitd.url + "/api/v1/auth/signout") as out:
                    assert out.status == 200
                await asyncio.wait_for(events.content.read(), 30)  # the stream's end, not a timeout
            async with browser.get(kitd.url + "/api/v1/stream/iris.mjpg") as after:
                assert after.status == 401
            async with browser.get(kitd.url + "/api/v1/devices", headers={"Cookie": ""}) as plain:
                without = plain.status
            return cookie, preview, first_event, without

    cookie, preview, first_event, _ = asyncio.run(asyncio.wait_for(browse(), 120))
    assert "kitd_token=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert b"Content-Type: image/jpeg" in preview
    assert first_event.startswith((b"event:", b"id:", b":"))


def test_kitctl_on_the_kit_uses_the_socket_without_a_token(start_simulator, start_kitd, tmp_path) -> None:  # noqa: ANN001
    sim = start_simulator("hil.nb1010_sim")
    group = grp.getgrgid(os.getgid()).gr_name  # a group that exists here
    kitd = start_kitd(
        devices=[{"id": "fingerprint", "uri": "usb:298d:1010"}],
        settings={"usb_backend": sim.usbip_uri, "api.socket_group": group},
    )
    kitd.wait_for_status("fingerprint", "ready")
    mode = stat.S_IMODE(os.stat(kitd.socket_path).st_mode)
    assert stat.S_ISSOCK(os.stat(kitd.socket_path).st_mode) and mode == 0o660
    assert os.stat(kitd.socket_path).st_gid == os.getgid()
    env = {k: v for k, v in kitd.env.items() if k != "KITD_TOKEN"}
    listed = kitd.kitctl("devices", "--json", "--config", str(kitd.config_path), env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["detail"]["held_by"] == "kitd"
    out = tmp_path / "finger.png"
    captured = kitd.kitctl(
        "capture",
        "fingerprint",
        "--daemon",
        "--raw",
        "--out",
        str(out),
        "--config",
        str(kitd.config_path),
        env=env,
    )
    assert captured.returncode == 0, captured.stderr
    assert out.stat().st_size > 1000
    # Over TCP the same command needs a token.
    refused = kitd.kitctl(
        "capture", "fingerprint", "--daemon", "--raw", "--api", kitd.url, "--out", str(out), env=env
    )
    assert refused.returncode != 0 and "sign in" in refused.stderr


def test_an_idle_token_ends(start_kitd) -> None:  # noqa: ANN001
    kitd = start_kitd(settings={"auth.idle_lock_s": 1.0})
    client = DaemonClient(kitd.url, kitd.sign_in("officer"))
    assert client.request("GET", "/api/v1/status").status == 200
    time.sleep(3.0)  # three idle periods without a single use (each use restarts it)
    ended = client.request("GET", "/api/v1/status")
    assert ended.status == 401 and "expired" in ended.json()["message"]


def test_wrong_pins_lock_until_a_supervisor_unlocks(start_kitd) -> None:  # noqa: ANN001
    kitd = start_kitd(settings={"auth.max_pin_failures": 3})
    officer = simulation_officer("officer")
    anonymous = DaemonClient(kitd.url)
    wrong = {"nip": officer["nip"], "pin": "000000"}
    replies = [anonymous.request("POST", "/api/v1/auth/signin", wrong) for _ in range(3)]
    assert [r.status for r in replies] == [401, 401, 423]
    # Each refusal says how many wrong PINs lock an officer; an unknown NIP hears the same
    # answer, word for word, so that it tells nothing of which NIPs exist.
    assert [r.json().get("max_pin_failures") for r in replies] == [3, 3, None]
    unknown = anonymous.request("POST", "/api/v1/auth/signin", {"nip": "1" * 18, "pin": "000000"})
    assert unknown.status == 401 and unknown.json() == replies[0].json()
    right = {"nip": officer["nip"], "pin": officer["pin"]}
    locked = anonymous.request("POST", "/api/v1/auth/signin", right)
    assert locked.status == 423 and locked.json()["error"] == "locked"
    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    unlocked = supervisor.request("POST", f"/api/v1/officers/{officer['nip']}/unlock")
    assert unlocked.status == 200 and unlocked.json()["locked"] is False
    assert anonymous.request("POST", "/api/v1/auth/signin", right).status == 200
    # Malformed sign-ins are 400 naming the field, not a count against anyone.
    bad = anonymous.request("POST", "/api/v1/auth/signin", {"nip": officer["nip"], "pin": "12"})
    assert bad.status == 400 and bad.json()["field"] == "pin"


def test_kitctl_on_the_database_also_ends_tokens(start_kitd) -> None:  # noqa: ANN001
    kitd = start_kitd()
    officer = simulation_officer("officer")
    client = DaemonClient(kitd.url, kitd.sign_in("officer"))
    assert client.request("GET", "/api/v1/status").status == 200
    result = kitd.kitctl("officers", "deactivate", officer["nip"], "--config", str(kitd.config_path))
    assert result.returncode == 0, result.stderr
    assert client.request("GET", "/api/v1/status").status == 401
    # A deactivated officer hears so only with the right PIN; a wrong one says nothing more.
    anonymous = DaemonClient(kitd.url)
    wrong = anonymous.request("POST", "/api/v1/auth/signin", {"nip": officer["nip"], "pin": "000000"})
    assert wrong.status == 401 and "deactivated" not in wrong.json()["message"]
    right = anonymous.request("POST", "/api/v1/auth/signin", {"nip": officer["nip"], "pin": officer["pin"]})
    assert right.status == 401 and "deactivated" in right.json()["message"]


def test_supervisors_manage_officers_and_their_tokens_end(start_kitd) -> None:  # noqa: ANN001
    kitd = start_kitd()
    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    listed = supervisor.checked("GET", "/api/v1/officers").json()
    assert {o["nip"] for o in listed} == {o["nip"] for o in SIMULATION_OFFICERS}
    new = {"nip": "199202022018012004", "name": "Rina", "role": "officer", "pin": "445566"}
    assert supervisor.request("POST", "/api/v1/officers", new).status == 201
    assert supervisor.request("POST", "/api/v1/officers", new).status == 409
    bad_nip = supervisor.request("POST", "/api/v1/officers", {**new, "nip": "199213022018012004"})
    assert bad_nip.status == 400 and "birth date" in bad_nip.json()["message"]
    assert bad_nip.json()["field"] == "nip"
    for name in ("Rina\u0000", "   "):  # refused by the roll, named as the schema's refusals are
        bad_name = supervisor.request(
            "POST", "/api/v1/officers", {**new, "nip": "199202022018012005", "name": name}
        )
        assert bad_name.status == 400 and bad_name.json()["field"] == "name", bad_name.body
    rina = DaemonClient(kitd.url)
    token = rina.checked("POST", "/api/v1/auth/signin", {"nip": new["nip"], "pin": "445566"}).json()["token"]
    rina.token = token
    assert rina.request("GET", "/api/v1/status").status == 200
    assert supervisor.request("POST", f"/api/v1/officers/{new['nip']}/deactivate").status == 200
    assert rina.request("GET", "/api/v1/status").status == 401  # her token ended with her
    again = DaemonClient(kitd.url).request(
        "POST", "/api/v1/auth/signin", {"nip": new["nip"], "pin": "445566"}
    )
    assert again.status == 401 and "deactivated" in again.json()["message"]
    # The kit's one supervisor cannot deactivate themself (nor another the last): nobody could
    # then import orders, add officers or unlock a locked one.
    own = simulation_officer("supervisor")["nip"]
    last = supervisor.request("POST", f"/api/v1/officers/{own}/deactivate")
    assert last.status == 409 and last.json()["error"] == "last_supervisor", last.body
    assert supervisor.request("GET", "/api/v1/status").status == 200  # still signed in


def test_orders_by_role(start_kitd) -> None:  # noqa: ANN001
    kitd = start_kitd(settings={"kit.region_code": "3576"})
    supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
    officer = DaemonClient(kitd.url, kitd.sign_in("officer"))
    rows = [sample_order("MJK-001"), sample_order("MJK-002", sex="L")]
    assert officer.request("POST", "/api/v1/orders", rows).status == 403
    report = supervisor.checked("POST", "/api/v1/orders", rows).json()
    assert report["imported"] == 1 and report["rejected"][0]["row"] == 2
    assert report["rejected"][0]["errors"][0]["field"] == "nik"

    async def post_csv(body: bytes, content_type: str) -> tuple[int, dict]:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {supervisor.token}"}) as http:
            async with http.post(
                kitd.url + "/api/v1/orders", data=body, headers={"Content-Type": content_type}
            ) as r:
                return r.status, await r.json()

    status, answer = asyncio.run(post_csv(orders_csv([sample_order("MJK-003")]), "text/csv"))
    assert status == 200 and answer["imported"] == 1
    status, answer = asyncio.run(post_csv(b"<orders/>", "application/xml"))
    assert status == 415
    status, answer = asyncio.run(post_csv(json.dumps([{}] * 10_001).encode(), "application/json"))
    assert status == 413 and "refused whole" in answer["message"]
    listed = officer.checked("GET", "/api/v1/orders?day=2026-12-01").json()
    assert [o["order_id"] for o in listed] == ["MJK-001", "MJK-003"]
    assert officer.request("GET", "/api/v1/orders?day=besok").status == 400
    schema = officer.checked("GET", "/api/v1/schemas/work-order.json").json()
    assert schema["title"] == "Work order" and "nik" in schema["required"]
