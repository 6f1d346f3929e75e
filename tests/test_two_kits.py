"""Two kits in one process, each with its own simulated reader and camera, share nothing.

Everything a running kit owns (slots, drivers, camera feeds and their quality overlays, the
event stream, the sessions) hangs off its `Kit`; nothing is kept at module level. Here two
kits run side by side on one event loop, each serving its own API, and what happens on one
(a finger, a session's message on the preview, an event, a shutdown) is not seen by the other.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from hil.rig import (
    TEST_SETTINGS,
    SimulatorProcess,
    add_simulation_officers,
    render_config,
    simulation_officer,
)
from kitd.api import make_app
from kitd.config import parse_config
from kitd.kit import Kit
from kitd.services.sessions import SessionNotFound

WAIT_S = 30.0


def kit_config(workdir: Path, reader: SimulatorProcess, camera: SimulatorProcess) -> str:
    values = {
        **TEST_SETTINGS,
        "data_dir": str(workdir / "data"),
        "api.port": 0,
        "usb_backend": reader.usbip_uri,
        "iris.capture_timeout_s": 20.0,
    }
    devices = [
        {"id": "fingerprint", "uri": "usb:298d:1010"},
        {"id": "iris", "uri": f"camera:{camera.addresses['url']}"},
    ]
    return render_config(values, devices)


async def wait_for(condition, what: str, timeout_s: float = WAIT_S):  # noqa: ANN001, ANN201
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout_s} s")


async def serve(kit: Kit) -> tuple[web.AppRunner, str]:
    kit.config.data_dir.mkdir(parents=True, exist_ok=True)
    add_simulation_officers(kit.config.data_dir)
    kit.open_database()
    runner = web.AppRunner(make_app(kit), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    kit.set_api_url(url)
    await kit.run_devices(10.0)
    return runner, url


def owned_objects(kit: Kit) -> list[object]:
    """What one kit holds that a second kit must not share."""
    objects: list[object] = [kit.events, kit.sessions, kit.config, kit.signed_in, kit.officers, kit.database]
    for slot in kit.slots.values():
        objects += [slot, slot.driver, slot.cancel]
    for feed in kit.iris_feeds.values():
        objects += [feed, feed.quality, feed.overlays]
    return objects


@pytest.fixture
def two_rigs(start_simulator, tmp_path, monkeypatch):  # noqa: ANN001, ANN201
    monkeypatch.setenv("KITD_LOCK_DIR", str(tmp_path / "locks"))
    rigs = []
    for name in ("a", "b"):
        reader = start_simulator("hil.nb1010_sim", ["--condition", "good"])
        camera = start_simulator("hil.eye_sim", ["--set", "eye=on"])
        workdir = tmp_path / name
        workdir.mkdir()
        rigs.append((parse_config(kit_config(workdir, reader, camera)), reader, camera))
    return rigs


def test_two_kits_in_one_process_share_nothing(two_rigs) -> None:  # noqa: ANN001
    (config_a, reader_a, camera_a), (config_b, reader_b, camera_b) = two_rigs
    reader_b.control("finger off")

    async def scenario() -> None:
        kit_a, kit_b = Kit(config_a), Kit(config_b)
        runner_a, url_a = await serve(kit_a)
        runner_b, url_b = await serve(kit_b)
        running = [(kit_a, runner_a), (kit_b, runner_b)]
        try:
            for kit in (kit_a, kit_b):
                await wait_for(lambda k=kit: k.status()["devices"]["ready"] == 2, "both devices ready")

            ids_a = {id(o) for o in owned_objects(kit_a)}
            shared = [o for o in owned_objects(kit_b) if id(o) in ids_a]
            assert not shared, f"kit b shares {shared} with kit a"
            assert kit_a.slots["fingerprint"].driver is not kit_b.slots["fingerprint"].driver

            async with aiohttp.ClientSession() as http:
                # Each kit signs its own officers in: a's token means nothing to b.
                as_a, as_b = await sign_in(http, url_a), await sign_in(http, url_b)
                async with http.get(f"{url_b}/api/v1/status", headers=as_a) as r:
                    assert r.status == 401
                # A finger on kit a's reader only: a's capture succeeds, b's waits in vain.
                capture = "/api/v1/devices/fingerprint/capture"
                async with http.post(f"{url_a}{capture}", json={"raw": True}, headers=as_a) as r:
                    assert r.status == 200 and r.content_type == "image/png"
                async with http.post(
                    f"{url_b}{capture}", json={"raw": True, "timeout_s": 0.5}, headers=as_b
                ) as r:
                    assert r.status == 504, await r.text()
                    assert (await r.json())["error"] == "no_finger"

                # An iris session on kit a: its preview shows the session's line, b's shows none,
                # and b's event stream carries none of a's events.
                events_b: list[str] = []
                seen_b = asyncio.create_task(_collect_events(http, url_b, as_b, events_b))
                body = {"device_id": "iris", "modality": "iris", "category": "lainnya"}
                async with http.post(f"{url_a}/api/v1/sessions", json=body, headers=as_a) as r:
                    assert r.status == 201, await r.text()
                    session = (await r.json())["id"]
                await wait_for(
                    lambda: kit_a.iris_feed("iris").quality.session_message is not None,
                    "kit a's preview shows its session",
                )
                assert kit_b.iris_feed("iris").quality.session_message is None
                await wait_for(lambda: kit_a.sessions.get(session).core.ended, "kit a's session ends")
                with pytest.raises(SessionNotFound, match=session):
                    kit_b.sessions.get(session)
                seen_b.cancel()
                assert not any(session in line for line in events_b), events_b

            # Kit a stops; kit b goes on with its own devices.
            running.remove((kit_a, runner_a))
            await kit_a.shutdown()
            await runner_a.cleanup()
            reader_b.control("finger on")
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{url_b}{capture}", json={"raw": True}, headers=as_b) as r:
                    assert r.status == 200, await r.text()
            assert kit_b.status()["devices"]["ready"] == 2
            served = json.loads(reader_b.control("status").removeprefix("ok "))["served"]
            assert served == 1  # b's reader served b's one capture; a's capture went to a's reader
        finally:
            for kit, runner in running:
                await kit.shutdown()
                await runner.cleanup()
            for kit in (kit_a, kit_b):
                kit.close_database()

    asyncio.run(scenario())


async def sign_in(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    """The Authorization header of the simulation's technician on the kit at ``url``."""
    officer = simulation_officer("technician")
    async with http.post(
        f"{url}/api/v1/auth/signin", json={"nip": officer["nip"], "pin": officer["pin"]}
    ) as r:
        assert r.status == 200, await r.text()
        return {"Authorization": f"Bearer {(await r.json())['token']}"}


async def _collect_events(
    http: aiohttp.ClientSession, url: str, auth: dict[str, str], lines: list[str]
) -> None:
    async with http.get(f"{url}/api/v1/events", headers=auth) as response:
        async for line in response.content:
            lines.append(line.decode())
