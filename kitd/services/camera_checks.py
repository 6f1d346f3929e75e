"""Diagnostics of an iris camera: the format it got, the frames it delivers, what it sees.

Its one job: the checks of an ``iris_camera`` slot, after its presence check
(kitd.services.device_checks adds them):

    SLOT.format       the size and rate the camera gave against iris.width/height/fps
    SLOT.frame_rate   frames delivered, dropped and damaged over RATE_WINDOW_S
    SLOT.exposure     the exposure histogram: too dark (illuminator, lens cover), too bright
    SLOT.focus        the scene's focus measure: a smeared lens (judged on a normal exposure only)

Exposure and focus look with the iris illuminator on when the kit has a peripheral controller
(switched through that device's slot, as jobs: its thread alone talks to its port).

They read the stream by subscribing to the driver's frames, as the preview does
(kitd.services.iris_feed): they never take the slot's job, so a session capturing meanwhile
loses no frame and waits for nothing. A camera that is not streaming is ``not_available`` at
once — its presence check says why — rather than failing twice. The measures and their
thresholds are kitd.capture.scene_stats'.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from kitd.capture import scene_stats
from kitd.drivers.base import FrameStream
from kitd.drivers.camera_frames import Frame
from kitd.errors import KitError
from kitd.services.diagnostics import FAILED, NOT_AVAILABLE, OK, WARNING, Check, Words, decimal_id, finding
from kitd.services.slots import peripheral_slot

# How long a check waits for a frame before saying none comes: 45 periods at 30 fps, longer
# than any pause of a healthy camera, shorter than the driver's own stall-and-reopen cycle.
FRAME_WAIT_S = 1.5
# The frame rate is measured over this long: 90 frames at 30 fps, so one late frame moves the
# dropped share by about 1 %.
RATE_WINDOW_S = 3.0
# No frame for this long in the middle of the measurement: the stream stalled.
STALL_S = 1.5
# Below this share of its nominal rate a camera is slow (a UVC camera on a shared hub or a
# throttled CPU); the simulator's healthy stream measures 29.5-30.1 of 30.
RATE_LOW_SHARE = 0.8
# Over this share of frames dropped or damaged, a capture waits noticeably longer for its
# frames; the simulator's healthy stream drops under 1 %, a UVC camera on its own port none.
DROPPED_WARN_SHARE = 0.05
DAMAGED_WARN_SHARE = 0.05
# Most frames damaged: hardly a picture gets through (a capture would wait in vain), a failure.
DAMAGED_FAIL_SHARE = 0.5
# How long a check waits for the peripheral to switch the illuminator on (it answers in ms).
ILLUMINATOR_WAIT_S = 1.0
# The camera's rate may be reported as 29.97 for 30: lower by more than this is lower.
FPS_TOLERANCE = 0.02
# Exposure and focus judge a few frames a little apart, so a blink or a glance is not the verdict.
SAMPLES = 3
SAMPLE_SPACING_S = 0.1
SAMPLES_WAIT_S = FRAME_WAIT_S + SAMPLES * SAMPLE_SPACING_S
DAMAGE_FLAGS = frozenset({"undecodable", "truncated"})
# Over this share of a window's frames identical to the one before: the camera is frozen.
FROZEN_SHARE = 0.5


# --- reading the stream without taking it ------------------------------------------------------


def _stream(slot: Any) -> tuple[Any, dict[str, Any] | None]:
    """The slot's streaming driver, or (None, the not_available finding saying it is not streaming)."""
    status, reason, _since = slot.current()
    camera = slot.driver
    if status in ("ready", "busy") and camera is not None and isinstance(camera, FrameStream):
        return camera, None
    return None, finding(
        NOT_AVAILABLE,
        {"status": status, "reason": reason},
        Words(
            f"Kamera iris tidak mengirim gambar ({reason}): pemeriksaan keberadaannya menjelaskan sebabnya.",
            f"The iris camera is not streaming ({reason}): its presence check says why.",
        ),
    )


@dataclass(frozen=True)
class Arrival:
    """What the reader thread said of one frame (no pixels: ninety of them are kept)."""

    seq: int
    monotonic: float
    missed: int
    flags: frozenset[str]


async def _arrivals(camera: Any, window_s: float) -> tuple[list[Arrival], float | None]:
    """Every frame the camera delivers for ``window_s``, and when the stream stalled (seconds
    after the start; None when it did not): no frame first for FRAME_WAIT_S, or then for STALL_S."""
    arrivals: list[Arrival] = []

    def arrived(frame: Frame) -> None:
        # On the camera's reader thread: note it and return (list.append is atomic).
        arrivals.append(Arrival(frame.seq, frame.monotonic, frame.missed, frame.flags))

    unsubscribe = camera.subscribe(arrived)
    started = time.monotonic()
    try:
        while time.monotonic() - started < window_s:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            if not arrivals:
                if now - started > FRAME_WAIT_S:
                    return arrivals, now - started
            elif now - arrivals[-1].monotonic > STALL_S:
                return arrivals, arrivals[-1].monotonic - started
    finally:
        unsubscribe()
    return arrivals, None


async def _frames(camera: Any, count: int, spacing_s: float, timeout_s: float) -> tuple[list[Frame], int]:
    """The next ``count`` decoded frames at least ``spacing_s`` apart (fewer if they stop coming);
    a fresh newest frame counts as the first. Also how many frames came that could not be decoded
    (damaged: not "no frame")."""
    kept: list[Frame] = []
    damaged = [0]
    latest = camera.latest()
    fresh = latest is not None and time.monotonic() - latest.monotonic < 0.5
    if fresh and latest.image is not None and not latest.flags & DAMAGE_FLAGS:
        kept.append(latest)

    def arrived(frame: Frame) -> None:
        if frame.image is None or frame.flags & DAMAGE_FLAGS:
            damaged[0] += 1  # a truncated frame's half picture measures nothing
            return
        if len(kept) < count:
            if not kept or frame.monotonic - kept[-1].monotonic >= spacing_s:
                kept.append(frame)

    if len(kept) >= count:
        return kept, 0
    unsubscribe = camera.subscribe(arrived)
    deadline = time.monotonic() + timeout_s
    try:
        while len(kept) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        unsubscribe()
    return kept[:count], damaged[0]


def _no_frame(slot: Any, waited_s: float, damaged: int = 0) -> dict[str, Any]:
    """No frame came: not_available if the camera meanwhile stopped streaming, else failed;
    frames that came damaged, every one, are said as such."""
    _camera, not_streaming = _stream(slot)
    if not_streaming is not None:
        return not_streaming
    if damaged:
        return finding(
            FAILED,
            {"waited_s": waited_s, "damaged": damaged},
            Words(
                f"Kamera iris mengirim {damaged} gambar dalam {decimal_id(waited_s)} detik, semuanya rusak: "
                "periksa kabel USB-nya, cabut lalu colokkan lagi; jika tetap, ganti kameranya.",
                f"The iris camera sent {damaged} frames in {waited_s:g} s, every one damaged: check its "
                "USB cable, unplug it and plug it in again; if it stays, replace the camera.",
            ),
        )
    return finding(
        FAILED,
        {"waited_s": waited_s},
        Words(
            f"Kamera iris tidak mengirim gambar dalam {decimal_id(waited_s)} detik: periksa kabelnya, "
            "cabut lalu colokkan lagi.",
            f"The iris camera sent no frame within {waited_s:g} s: check its cable, unplug it "
            "and plug it in again.",
        ),
    )


# --- pure summaries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamTally:
    """A measurement window's frames: how many came, how fast, how many were lost or damaged."""

    frames: int
    dropped: int
    damaged: int
    span_s: float
    measured_fps: float | None

    @property
    def dropped_share(self) -> float:
        # The first frame's `missed` were lost before the window opened: not counted.
        expected = max(self.frames - 1, 0) + self.dropped
        return self.dropped / expected if expected else 0.0

    @property
    def damaged_share(self) -> float:
        return self.damaged / self.frames if self.frames else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "dropped_share": round(self.dropped_share, 4),
            "damaged": self.damaged,
            "span_s": round(self.span_s, 3),
            "measured_fps": None if self.measured_fps is None else round(self.measured_fps, 2),
        }


def tally(arrivals: list[Arrival]) -> StreamTally:
    if not arrivals:
        return StreamTally(0, 0, 0, 0.0, None)
    span = arrivals[-1].monotonic - arrivals[0].monotonic
    return StreamTally(
        frames=len(arrivals),
        dropped=sum(a.missed for a in arrivals[1:]),
        damaged=sum(bool(a.flags & DAMAGE_FLAGS) for a in arrivals),
        span_s=span,
        measured_fps=(len(arrivals) - 1) / span if len(arrivals) > 1 and span > 0 else None,
    )


def _configured(kit: Any) -> tuple[int, int, float]:
    config = kit.config
    return int(config["iris.width"]), int(config["iris.height"]), float(config["iris.fps"])


# --- the checks ---------------------------------------------------------------------------------


def format_check(slot: Any) -> Check:
    """The size and rate the camera gave (or the stream carries) against the configured ones."""

    async def run(kit: Any) -> dict[str, Any]:
        camera, not_streaming = _stream(slot)
        if not_streaming is not None:
            return not_streaming
        detail = camera.live_detail()
        frames, damaged = await _frames(camera, 1, 0.0, FRAME_WAIT_S)
        if not frames:
            return _no_frame(slot, FRAME_WAIT_S, damaged)
        frame = frames[0]
        assert frame.image is not None
        frame_w, frame_h = int(frame.image.shape[1]), int(frame.image.shape[0])
        want_w, want_h, want_fps = _configured(kit)
        got_fps = float(detail.get("fps") or detail.get("nominal_fps") or want_fps)
        values: dict[str, Any] = {
            "source": detail.get("source"),
            "format": detail.get("format"),
            "width": detail.get("width", frame_w),
            "height": detail.get("height", frame_h),
            "fps": round(got_fps, 3),
            "frame_width": frame_w,
            "frame_height": frame_h,
            "configured": {"width": want_w, "height": want_h, "fps": want_fps},
        }
        if "wrong_size" in frame.flags:
            expected = f"{values['width']}x{values['height']}"
            return finding(
                FAILED,
                values,
                Words(
                    f"Gambar kamera iris berukuran {frame_w}x{frame_h}, bukan {expected} yang diharapkan "
                    "kit: samakan iris.width dan iris.height dengan kamera.",
                    f"The iris camera's frames are {frame_w}x{frame_h}, not the {expected} the kit "
                    "expects: set iris.width and iris.height to the camera's size.",
                ),
            )
        if "width" not in detail:
            return finding(OK, values)  # a replayed file: nothing was negotiated
        got_w, got_h = int(detail["width"]), int(detail["height"])
        if got_w < want_w or got_h < want_h or got_fps < want_fps * (1 - FPS_TOLERANCE):
            return finding(
                WARNING,
                values,
                Words(
                    f"Kamera iris memberi {got_w}x{got_h} pada {decimal_id(got_fps)} fps, di bawah yang "
                    f"diatur ({want_w}x{want_h} pada {decimal_id(want_fps)} fps): colokkan langsung ke port "
                    "USB kit tanpa hub; jika tetap, pilih mode yang dimiliki kamera.",
                    f"The iris camera gave {got_w}x{got_h} at {got_fps:g} fps, below the configured "
                    f"{want_w}x{want_h} at {want_fps:g} fps: plug it straight into the kit's USB port (no "
                    "hub); if it stays, configure a mode the camera has.",
                ),
            )
        return finding(OK, values)

    return Check(f"{slot.id}.format", slot.id, run, quick=True, time_limit_s=FRAME_WAIT_S + 1.5)


def _mostly_damaged(counted: StreamTally, values: dict[str, Any], status: str) -> dict[str, Any]:
    return finding(
        status,
        values,
        Words(
            f"{counted.damaged} dari {counted.frames} gambar kamera iris rusak: periksa kabel "
            "USB-nya, cabut lalu colokkan lagi.",
            f"{counted.damaged} of {counted.frames} frames from the iris camera arrived damaged: "
            "check its USB cable, unplug it and plug it in again.",
        ),
    )


def frame_rate_check(slot: Any) -> Check:
    """Frames delivered, dropped (gaps in their arrival at the nominal rate) and damaged."""

    async def run(kit: Any) -> dict[str, Any]:
        camera, not_streaming = _stream(slot)
        if not_streaming is not None:
            return not_streaming
        detail = camera.live_detail()
        nominal = float(detail.get("nominal_fps") or _configured(kit)[2])
        reopens_before = int(detail.get("reopens") or 0)
        arrivals, stalled_at = await _arrivals(camera, RATE_WINDOW_S)
        counted = tally(arrivals)
        repeated = sum("repeated" in a.flags for a in arrivals)
        values = {
            **counted.to_json(),
            "repeated": repeated,
            "reopens": int(camera.live_detail().get("reopens") or 0) - reopens_before,
            "window_s": RATE_WINDOW_S,
            "nominal_fps": round(nominal, 3),
            "configured_fps": _configured(kit)[2],
        }
        if not arrivals:
            return _no_frame(slot, FRAME_WAIT_S)
        if repeated > FROZEN_SHARE * counted.frames:
            # A live camera's sensor noise never sends one picture twice: the camera is frozen
            # (its stream is reopened each time, and the same picture comes back).
            return finding(
                FAILED,
                values,
                Words(
                    f"Kamera iris mengirim gambar yang sama berulang-ulang ({repeated} dari "
                    f"{counted.frames}): kamera macet; cabut lalu colokkan lagi, dan bila tetap, ganti "
                    "kameranya.",
                    f"The iris camera sends the same picture over and over ({repeated} of {counted.frames} "
                    "frames): it is frozen; unplug it and plug it in again, and if it stays, replace it.",
                ),
            )
        if stalled_at is not None:
            values["stalled_after_s"] = round(stalled_at, 2)
            return finding(
                FAILED,
                values,
                Words(
                    "Kamera iris berhenti mengirim gambar di tengah pemeriksaan "
                    f"({decimal_id(stalled_at, 1)} detik setelah mulai): periksa kabel USB-nya, cabut lalu "
                    "colokkan lagi, lalu ulangi.",
                    f"The iris camera stopped sending frames in the middle of the check ({stalled_at:.1f} s "
                    "in): check its USB cable, unplug it and plug it in again, then run the check again.",
                ),
            )
        if counted.damaged_share >= DAMAGED_FAIL_SHARE:
            return _mostly_damaged(counted, values, FAILED)
        fps = counted.measured_fps or 0.0
        if fps < RATE_LOW_SHARE * nominal or counted.dropped_share > DROPPED_WARN_SHARE:
            return finding(
                WARNING,
                values,
                Words(
                    f"Kamera iris hanya mengirim {decimal_id(fps, 1)} dari {decimal_id(nominal)} gambar "
                    f"per detik ({counted.dropped_share:.0%} hilang): periksa kabel USB-nya dan colokkan "
                    "langsung ke kit tanpa hub; jika CPU panas, dinginkan kit.",
                    f"The iris camera delivers only {fps:.1f} of {nominal:g} frames a second "
                    f"({counted.dropped_share:.0%} dropped): check its USB cable and plug it straight into "
                    "the kit (no hub); if the CPU is hot, let the kit cool.",
                ),
            )
        if values["reopens"] > 0:
            return finding(
                WARNING,
                values,
                Words(
                    f"Aliran gambar kamera iris putus dan dibuka lagi {values['reopens']} kali selama "
                    "pemeriksaan: periksa kabel USB-nya, cabut lalu colokkan lagi.",
                    f"The iris camera's stream broke off and was reopened {values['reopens']} times during "
                    "the check: check its USB cable, unplug it and plug it in again.",
                ),
            )
        if counted.damaged_share > DAMAGED_WARN_SHARE:
            return _mostly_damaged(counted, values, WARNING)
        return finding(OK, values)

    return Check(
        f"{slot.id}.frame_rate", slot.id, run, time_limit_s=RATE_WINDOW_S + FRAME_WAIT_S + STALL_S + 1.0
    )


EXPOSURE_WORDS = {
    scene_stats.BLACK: (
        FAILED,
        Words(
            "Gambar kamera iris hampir hitam: periksa lampu inframerah (iluminator) menyala dan buka "
            "penutup lensa.",
            "The iris camera's picture is nearly black: check that the infrared illuminator lights up "
            "and uncover the lens.",
        ),
    ),
    scene_stats.DARK: (
        WARNING,
        Words(
            "Gambar kamera iris terlalu gelap: periksa lampu inframerah (iluminator) dan pastikan tidak "
            "ada yang menutupi lensa.",
            "The iris camera's picture is too dark: check the infrared illuminator and that nothing "
            "covers the lens.",
        ),
    ),
    scene_stats.BRIGHT: (
        WARNING,
        Words(
            "Gambar kamera iris terlalu terang: jauhkan kamera dari sinar matahari langsung dan "
            "lampu terang.",
            "The iris camera's picture is overexposed: keep the camera out of direct sunlight and "
            "bright lamps.",
        ),
    ),
    scene_stats.SATURATED: (
        FAILED,
        Words(
            "Gambar kamera iris hampir putih seluruhnya: jauhkan dari sinar matahari langsung; jika "
            "tetap, laporkan kamera rusak.",
            "The iris camera's picture is nearly all white: move it out of direct sunlight; if it stays, "
            "report the camera as faulty.",
        ),
    ),
}


def _exposure(frame: Frame) -> scene_stats.Exposure:
    assert frame.image is not None  # _frames keeps decoded frames only
    return scene_stats.exposure(frame.image)


async def _measured(frames: list[Frame], measure: Callable[[Frame], Any]) -> list[Any]:
    # A few milliseconds a frame, but off the event loop: the API and the preview keep going.
    return await asyncio.to_thread(lambda: [measure(f) for f in frames])


@asynccontextmanager
async def _illuminated(kit: Any) -> AsyncIterator[bool]:
    """The iris illuminator on while a check looks, when the kit has a peripheral controller
    ready (True), off again after. Switched as jobs of the peripheral's slot, whose thread owns
    its port; a peripheral that is away or busy (a firmware update) leaves the check to look
    without the light."""
    slot = peripheral_slot(kit)
    lit = False
    if slot is not None:
        switching = asyncio.ensure_future(
            slot.run_when_free(lambda driver, _cancel: driver.set_illuminator(True, 100))
        )
        # A peripheral that does not answer must not take the camera's check past its time
        # limit (it was then failed as the camera's cable): the check looks without the light.
        try:
            done, _ = await asyncio.wait({switching}, timeout=ILLUMINATOR_WAIT_S)
        except asyncio.CancelledError:  # the run was cancelled (its client went away)
            switching.add_done_callback(lambda job: _switched_late(slot, job))
            raise
        if done:
            lit = not switching.cancelled() and switching.exception() is None
        else:
            switching.add_done_callback(lambda job: _switched_late(slot, job))
    try:
        yield lit
    finally:
        if lit:
            try:
                await slot.run_when_free(lambda driver, _cancel: driver.set_illuminator(False, 0))
            except KitError:
                pass


def _switched_late(slot: Any, job: asyncio.Future[Any]) -> None:
    """The illuminator switched on after the check had given up waiting: off again."""
    if not job.cancelled() and job.exception() is None:
        off = slot.run_when_free(lambda driver, _cancel: driver.set_illuminator(False, 0))
        asyncio.ensure_future(off).add_done_callback(lambda task: task.cancelled() or task.exception())


def exposure_check(slot: Any) -> Check:
    """The exposure histogram of the median of a few frames (by their mean), under the
    illuminator when the kit has one."""

    async def run(kit: Any) -> dict[str, Any]:
        camera, not_streaming = _stream(slot)
        if not_streaming is not None:
            return not_streaming
        async with _illuminated(kit):
            frames, damaged = await _frames(camera, SAMPLES, SAMPLE_SPACING_S, SAMPLES_WAIT_S)
        if not frames:
            return _no_frame(slot, SAMPLES_WAIT_S, damaged)
        found = await _measured(frames, _exposure)
        middle = sorted(found, key=lambda e: e.mean)[len(found) // 2]
        verdict = scene_stats.exposure_verdict(middle)
        values = {
            **middle.to_json(),
            "verdict": verdict,
            "frames": len(found),
            "means": [round(e.mean, 1) for e in found],
        }
        if verdict == scene_stats.NORMAL:
            return finding(OK, values)
        status, words = EXPOSURE_WORDS[verdict]
        return finding(status, values, words)

    return Check(f"{slot.id}.exposure", slot.id, run, time_limit_s=ILLUMINATOR_WAIT_S + FRAME_WAIT_S + 2.0)


def focus_check(slot: Any) -> Check:
    """The scene's focus measure, the best of a few frames; judged only on a normal exposure,
    and low only below what even a plain scene in focus gives (no eye in front is not a fault)."""

    async def run(kit: Any) -> dict[str, Any]:
        camera, not_streaming = _stream(slot)
        if not_streaming is not None:
            return not_streaming
        async with _illuminated(kit):
            frames, damaged = await _frames(camera, SAMPLES, SAMPLE_SPACING_S, SAMPLES_WAIT_S)
        if not frames:
            return _no_frame(slot, SAMPLES_WAIT_S, damaged)

        def measure(frame: Frame) -> tuple[float, str]:
            assert frame.image is not None
            verdict = scene_stats.exposure_verdict(scene_stats.exposure(frame.image))
            return scene_stats.focus(frame.image), verdict

        found = await _measured(frames, measure)
        judged = [value for value, verdict in found if verdict == scene_stats.NORMAL]
        values: dict[str, Any] = {
            "focus": round(max(v for v, _ in found), 1),
            "focus_low": scene_stats.FOCUS_LOW,
            "focus_width": scene_stats.FOCUS_WIDTH,
            "frames": len(found),
        }
        if not judged:
            return finding(
                NOT_AVAILABLE,
                values,
                Words(
                    "Ketajaman tidak dapat dinilai pada gambar yang terlalu gelap atau terang: lihat "
                    "pemeriksaan eksposur.",
                    "Focus cannot be judged on a picture too dark or too bright: see the exposure check.",
                ),
            )
        values["focus"] = round(max(judged), 1)
        if scene_stats.focus_is_low(max(judged)):
            return finding(
                WARNING,
                values,
                Words(
                    "Gambar kamera iris sangat kabur: bersihkan lensanya dengan kain lembut (jika tidak ada "
                    "apa pun di depan kamera, letakkan tangan di depannya lalu ulangi).",
                    "The iris camera's picture is very blurred: clean its lens with a soft cloth (if nothing "
                    "is in front of the camera, hold a hand in front of it and run the check again).",
                ),
            )
        return finding(OK, values)

    return Check(f"{slot.id}.focus", slot.id, run, time_limit_s=ILLUMINATOR_WAIT_S + FRAME_WAIT_S + 2.0)


def camera_checks(slot: Any) -> list[Check]:
    """An iris camera's checks after its presence, cheapest first."""
    return [format_check(slot), frame_rate_check(slot), exposure_check(slot), focus_check(slot)]
