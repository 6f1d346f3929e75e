"""The iris camera's checks (kitd.services.camera_checks) against a fake streaming camera, with no
daemon: a camera that is not streaming is not_available at once; the frame tally; a lower
negotiated mode, a dropping stream, a capped lens and a featureless scene each get their
status; the checks read frames by subscribing, never by taking the slot's job."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from kitd.drivers.camera_frames import Frame
from kitd.services import camera_checks, diagnostics
from kitd.services.camera_checks import Arrival, tally
from kitd.services.device_checks import device_checks

CONFIG = {"iris.width": 640, "iris.height": 480, "iris.fps": 30.0}
KIT = SimpleNamespace(config=CONFIG)


def lit_scene() -> np.ndarray:
    rng = np.random.default_rng(3)
    image = np.full((480, 640), 180, np.uint8)
    image[200:280, 280:360] = 20
    image[60:120, ::40] = 240
    return np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)


class FakeCamera:
    """A FrameStream whose thread hands `image` to subscribers at `fps`, skipping every
    `drop_every`th frame (its successor then says one missed)."""

    def __init__(
        self,
        image: np.ndarray,
        detail: dict[str, Any],
        fps: float = 30.0,
        drop_every: int = 0,
        flags: frozenset[str] = frozenset(),
        reopen_every: int = 0,
    ):
        self.image, self.detail, self.fps, self.drop_every = image, detail, fps, drop_every
        self.flags, self.reopen_every = flags, reopen_every
        self.subscribers: list[Callable[[Frame], None]] = []
        self._latest: Frame | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        number, seq, missed = 0, 0, 0
        while not self.stop.wait(1 / self.fps):
            number += 1
            if self.drop_every and number % self.drop_every == 0:
                missed += 1
                continue
            seq += 1
            if self.reopen_every and seq % self.reopen_every == 0:
                self.detail["reopens"] = self.detail.get("reopens", 0) + 1
            frame = Frame(seq, self.image, time.monotonic(), time.time(), missed=missed, flags=self.flags)
            missed = 0
            self._latest = frame
            for callback in list(self.subscribers):
                callback(frame)

    @property
    def ended(self) -> str | None:
        return None

    def live_status(self) -> tuple[str, str, float]:
        return ("ready", "streaming", 0.0)

    def live_detail(self) -> dict[str, Any]:
        return dict(self.detail)

    def subscribe(self, callback: Callable[[Frame], None]) -> Callable[[], None]:
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback)

    def latest(self) -> Frame | None:
        return self._latest


def slot_of(camera: Any, status: str = "ready", reason: str = "streaming") -> Any:
    def run_job(*_args: Any) -> None:
        raise AssertionError("a diagnostics check must not take the camera's job")

    return SimpleNamespace(
        id="iris_camera",
        kind="iris_camera",
        uri="camera:fake",
        driver=camera,
        current=lambda: (status, reason, 0.0),
        run_job=run_job,
    )


HTTP_DETAIL = {"source": "http", "format": "MJPEG", "width": 640, "height": 480, "nominal_fps": 30.0}


async def run_all(slot: Any) -> dict[str, dict[str, Any]]:
    return {c.id.split(".")[1]: await c.run(KIT) for c in camera_checks.camera_checks(slot)}


@pytest.fixture(autouse=True)
def short_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(camera_checks, "RATE_WINDOW_S", 1.0)


def test_an_iris_camera_slot_gets_its_checks_after_its_presence() -> None:
    ids = [c.id for c in device_checks(slot_of(None))]
    assert ids == [
        "iris_camera.present",
        "iris_camera.format",
        "iris_camera.frame_rate",
        "iris_camera.exposure",
        "iris_camera.focus",
    ]
    other = {c.id for c in device_checks(SimpleNamespace(id="fp", kind="fingerprint", uri="usb:x"))}
    assert "fp.present" in other and not other & {"fp.format", "fp.frame_rate", "fp.exposure", "fp.focus"}


def test_a_camera_not_streaming_is_not_available_at_once_naming_why() -> None:
    slot = slot_of(None, status="disconnected", reason="stalled, reopening")
    started = time.monotonic()
    found = asyncio.run(run_all(slot))
    assert time.monotonic() - started < 0.5
    for f in found.values():
        assert f["status"] == "not_available"
        assert "stalled, reopening" in f["message"]["en"] and "presence check" in f["message"]["en"]
        assert "stalled, reopening" in f["message"]["id"]


def test_the_tally_counts_drops_after_the_first_frame_and_damage() -> None:
    arrivals = [Arrival(1, 10.0, 5, frozenset())]  # its 5 were lost before the window
    arrivals += [Arrival(i, 10.0 + i / 10, i % 2, frozenset()) for i in range(2, 11)]
    arrivals.append(Arrival(11, 11.1, 0, frozenset({"truncated"})))
    counted = tally(arrivals)
    assert (counted.frames, counted.dropped, counted.damaged) == (11, 4, 1)
    assert counted.dropped_share == pytest.approx(4 / 14)
    assert counted.measured_fps == pytest.approx(10 / 1.1)
    assert tally([]).measured_fps is None and tally([]).dropped_share == 0.0


def test_a_healthy_camera_passes_every_check_even_while_a_session_holds_the_slot() -> None:
    camera = FakeCamera(lit_scene(), HTTP_DETAIL)
    try:
        found = asyncio.run(run_all(slot_of(camera, status="busy", reason="capturing")))
    finally:
        camera.stop.set()
    assert {k: f["status"] for k, f in found.items()} == {
        "format": "ok",
        "frame_rate": "ok",
        "exposure": "ok",
        "focus": "ok",
    }, found
    assert found["frame_rate"]["values"]["measured_fps"] > 24
    assert not camera.subscribers  # every check unsubscribed


def test_a_lower_mode_a_dropping_stream_and_a_capped_lens_are_told() -> None:
    lower = {**HTTP_DETAIL, "source": "v4l2", "width": 320, "height": 240, "fps": 15.0}
    camera = FakeCamera(np.zeros((480, 640), np.uint8), lower, drop_every=3)
    try:
        found = asyncio.run(run_all(slot_of(camera)))
    finally:
        camera.stop.set()
    assert found["format"]["status"] == "warning"
    assert "320x240 at 15 fps" in found["format"]["message"]["en"]
    rate = found["frame_rate"]
    assert rate["status"] == "warning" and rate["values"]["dropped_share"] > 0.2
    assert "dropped" in rate["message"]["en"] and "hilang" in rate["message"]["id"]
    assert found["exposure"]["status"] == "failed" and found["exposure"]["values"]["verdict"] == "black"
    assert "illuminator" in found["exposure"]["message"]["en"]
    assert "uncover the lens" in found["exposure"]["message"]["en"]
    assert found["focus"]["status"] == "not_available"  # not judged on a black frame


def test_a_frozen_camera_fails_and_one_that_keeps_reopening_is_told() -> None:
    """The same picture over and over (the driver flags each 'repeated' and reopens the
    stream, which sends it again): failed. A stream reopened during the check: a warning."""
    frozen = FakeCamera(lit_scene(), dict(HTTP_DETAIL), flags=frozenset({"repeated"}), reopen_every=30)
    try:
        found = asyncio.run(camera_checks.frame_rate_check(slot_of(frozen)).run(KIT))
    finally:
        frozen.stop.set()
    assert found["status"] == "failed" and "frozen" in found["message"]["en"], found
    assert "macet" in found["message"]["id"] and found["values"]["repeated"] == found["values"]["frames"]
    breaking = FakeCamera(lit_scene(), dict(HTTP_DETAIL), reopen_every=10)
    try:
        found = asyncio.run(camera_checks.frame_rate_check(slot_of(breaking)).run(KIT))
    finally:
        breaking.stop.set()
    assert found["status"] == "warning" and found["values"]["reopens"] >= 1, found
    assert "reopened" in found["message"]["en"] and "dibuka lagi" in found["message"]["id"]


def test_a_peripheral_that_never_answers_leaves_the_camera_checks_to_look_unlit() -> None:
    # The illuminator's switch goes to the peripheral controller; silent, it must not run the
    # camera's checks past their time limit (they were failed as the camera's cable).
    switched: list[bool] = []

    async def never(job: Any) -> None:
        switched.append(True)
        await asyncio.sleep(60)

    peripheral = SimpleNamespace(kind="peripheral", run_when_free=never)
    kit = SimpleNamespace(config=CONFIG, slots={"peripheral": peripheral})
    camera = FakeCamera(lit_scene(), dict(HTTP_DETAIL))

    async def exposure_and_focus() -> list[dict[str, Any]]:
        found = []
        for check in camera_checks.camera_checks(slot_of(camera)):
            if check.id.endswith((".exposure", ".focus")):
                found.append(await diagnostics.run_check(check, kit))
        return found

    try:
        found = asyncio.run(exposure_and_focus())
    finally:
        camera.stop.set()
    assert switched == [True, True]
    assert [f["status"] for f in found] == ["ok", "ok"], found
    assert not any(f["values"].get("timed_out") for f in found)


def test_a_camera_whose_every_frame_is_damaged_fails_saying_so() -> None:
    # A cable that garbles every frame: frames come, none can be read. Not "no frame".
    camera = FakeCamera(lit_scene(), dict(HTTP_DETAIL), flags=frozenset({"truncated"}))
    try:
        found = asyncio.run(run_all(slot_of(camera)))
    finally:
        camera.stop.set()
    assert found["frame_rate"]["status"] == "failed", found["frame_rate"]
    assert "arrived damaged" in found["frame_rate"]["message"]["en"]
    for check in ("format", "exposure", "focus"):
        assert found[check]["status"] == "failed", (check, found[check])
        assert "every one damaged" in found[check]["message"]["en"], (check, found[check])
        assert found[check]["values"]["damaged"] > 0


def test_a_featureless_well_lit_scene_asks_to_clean_the_lens() -> None:
    plain = np.clip(170 + np.random.default_rng(1).normal(0, 2, (480, 640)), 0, 255).astype(np.uint8)
    camera = FakeCamera(plain, HTTP_DETAIL)
    try:
        check = camera_checks.focus_check(slot_of(camera))
        found = asyncio.run(check.run(KIT))
    finally:
        camera.stop.set()
    assert found["status"] == "warning" and "clean its lens" in found["message"]["en"]
    assert found["values"]["focus"] < found["values"]["focus_low"]


def test_a_stream_that_stops_mid_measurement_fails_saying_so() -> None:
    camera = FakeCamera(lit_scene(), HTTP_DETAIL)

    async def measure() -> dict[str, Any]:
        check = camera_checks.frame_rate_check(slot_of(camera))
        task = asyncio.ensure_future(check.run(KIT))
        await asyncio.sleep(0.3)
        camera.stop.set()
        return await task

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(camera_checks, "RATE_WINDOW_S", 3.0)
        patch.setattr(camera_checks, "STALL_S", 0.5)
        found = asyncio.run(measure())
    assert found["status"] == "failed"
    assert 0.1 < found["values"]["stalled_after_s"] < 0.6
    assert "stopped sending frames" in found["message"]["en"]
