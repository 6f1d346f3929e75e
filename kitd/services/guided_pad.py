"""The signature pad's guided test: its four corners touched, then a straight line drawn.

Its one job: the steps of the ``pad`` guided test and how each is met, judged with the pure
measures of kitd.capture.pad_geometry. The pad is the test's for its whole length (one job of
its slot, started once: a capture or a visit cannot take it meanwhile), and every pen packet
goes to the screen as it comes (the ``guided`` event's ``ink``):

1. ``corner_top_left``, ``corner_top_right``, ``corner_bottom_right``, ``corner_bottom_left``
   (``touch``): a pen-down within a tenth of the pad's extent from the corner, in that order.
   A stroke that comes near the corner (within :data:`ATTEMPT_REACH`) but never into its zone
   is a miss; :data:`MAX_MISSES` of them fail the corner: the digitiser does not register
   there. The four touches' coverage of the pad is the finding's.
2. ``line`` (``draw``): one stroke at least :data:`LINE_MIN_SHARE` of the pad's diagonal long;
   its linearity (largest distance from its fitted line over its length) above the limit fails:
   a ruler line is straight, a digitiser that bends it is not. Shorter strokes are not the line.

Strokes that began before the step waiting now (the pen still down from the last corner) do not
count for it. The pad going away mid-test fails the step it was at.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from typing import Any

from kitd.capture.pad_geometry import (
    CORNER_ZONE,
    CORNERS,
    COVERAGE_MIN,
    LINEARITY_LIMIT,
    corner_point,
    corner_reach,
    corner_zone,
    coverage,
    line_fit,
)
from kitd.drivers.isdv4 import POINTS_PER_MM, PenSample
from kitd.errors import KitError
from kitd.services.diagnostics import DEVICE_NAMES, FAILED, OK, WARNING, Words, decimal_id
from kitd.services.guided import Guide, Step
from kitd.services.slots import GUIDED_TEST

PAD = DEVICE_NAMES["signature"]
CORNER_NAMES = {
    "top_left": Words("kiri atas", "top-left"),
    "top_right": Words("kanan atas", "top-right"),
    "bottom_right": Words("kanan bawah", "bottom-right"),
    "bottom_left": Words("kiri bawah", "bottom-left"),
}
# A stroke that comes this near a corner (a share of the pad's extent) is an attempt at it; one
# further away is the pen on its way, or resting.
ATTEMPT_REACH = 0.3
MAX_MISSES = 3
# The line is a diagonal: at least half the pad's diagonal long, not a tick.
LINE_MIN_SHARE = 0.5
# A stroke with no packet for this long has ended (a pen taken away without a tip-up packet).
QUIET_S = 0.3
READ_WAIT_S = 0.25


def corner_step(corner: str, max_x: int, max_y: int) -> Step:
    name = CORNER_NAMES[corner]
    return Step(
        f"corner_{corner}",
        "touch",
        Words(
            f"Sentuhkan pena di sudut {name.id} bantalan.", f"Touch the pad's {name.en} corner with the pen."
        ),
        values={"zone": corner_zone(corner, max_x, max_y).to_json()},
        late=(
            FAILED,
            Words(
                f"Sudut {name.id} bantalan tidak pernah terbaca: jika pena sudah menyentuhnya, bagian "
                "digitizer itu rusak; ganti bantalan tanda tangan.",
                f"The pad's {name.en} corner was never read: if the pen touched it, that part of the "
                "digitiser is damaged; replace the signature pad.",
            ),
        ),
    )


def unreachable(corner: str, nearest_mm: float) -> Words:
    name = CORNER_NAMES[corner]
    return Words(
        f"Sudut {name.id} bantalan tidak terjangkau pena (titik terdekat {nearest_mm:.0f} mm dari "
        "sudutnya): bagian digitizer itu rusak; ganti bantalan tanda tangan.",
        f"The pad's {name.en} corner does not register the pen (the nearest point {nearest_mm:.0f} mm "
        "from it): that part of the digitiser is damaged; replace the signature pad.",
    )


def not_straight(linearity: float) -> Words:
    share, limit = 100 * linearity, 100 * LINEARITY_LIMIT
    return Words(
        f"Garis tidak lurus: menyimpang {decimal_id(share, 1)}% dari panjangnya (batas {limit:.0f}%). "
        "Ulangi uji dengan menggaris memakai penggaris; jika tetap, digitizer tidak linear: ganti "
        "bantalan tanda tangan.",
        f"The line is not straight: it strays {share:.1f}% of its length (at most {limit:.0f}%). Run "
        "the test again drawing along a ruler; if it stays, the digitiser is not linear: replace the "
        "signature pad.",
    )


def pad_stopped(what: str) -> Words:
    return Words(
        f"Bantalan tanda tangan berhenti di tengah uji ({what}): periksa kabelnya, colokkan lagi, "
        "lalu ulangi uji.",
        f"The signature pad stopped in the middle of the test ({what}): check its cable, plug it "
        "in again, then run the test again.",
    )


class PadTest:
    """The ``pad`` guided test on one signature pad's slot."""

    test = "pad"

    def __init__(self, slot: Any) -> None:
        self.slot = slot
        self.device = slot.id
        self.check_id = f"{slot.id}.guided"
        detail = slot.detail
        self.max_x, self.max_y = int(detail["max_x"]), int(detail["max_y"])
        self.max_pressure = int(detail.get("max_pressure") or 0)
        self.per_mm = int(detail.get("points_per_mm") or POINTS_PER_MM)
        self._steps: list[Step] = []
        self._at = 0
        self._stroke: list[tuple[int, int]] = []
        self._stroke_step = 0  # the step waiting when the open stroke began
        self._attempt = False  # the open stroke came near the corner waiting
        self._touches: dict[str, tuple[int, int]] = {}
        self._line: dict[str, Any] = {}
        self._arrived: asyncio.Queue[list[PenSample]] = asyncio.Queue()
        self._stop = threading.Event()
        self._job: asyncio.Task[None] | None = None

    def steps(self) -> list[Step]:
        diagonal_mm = math.hypot(self.max_x, self.max_y) / self.per_mm
        line = Step(
            "line",
            "draw",
            Words(
                "Tarik garis lurus dengan penggaris, dari sudut kiri atas ke sudut kanan bawah.",
                "Draw a straight line along a ruler, from the top-left corner to the bottom-right one.",
            ),
            values={"limit": LINEARITY_LIMIT, "min_length_mm": round(LINE_MIN_SHARE * diagonal_mm, 1)},
            late=(
                WARNING,
                Words(
                    "Tidak ada garis yang digambar sebelum waktu habis: ulangi uji bantalan.",
                    "No line was drawn in time: run the pad test again.",
                ),
            ),
        )
        self._steps = [*(corner_step(c, self.max_x, self.max_y) for c in CORNERS), line]
        return self._steps

    # --- running ---------------------------------------------------------------------------

    def take(self) -> None:
        """The pad's job starts now: it is the test's until released (a capture gets 409)."""
        loop = asyncio.get_running_loop()
        arrived, stop = self._arrived, self._stop

        def listen(pad: Any, cancel: threading.Event) -> None:
            """On the pad's thread: start it, hand every pen packet to the loop, stop it."""
            pad.start()
            try:
                while not (cancel.is_set() or stop.is_set()):
                    batch = pad.read_samples()
                    if batch:
                        loop.call_soon_threadsafe(arrived.put_nowait, batch)
            except BaseException:
                # The read's error (the pad unplugged) is the one to report, not stop's echo of it.
                with contextlib.suppress(KitError):
                    pad.stop()
                raise
            pad.stop()

        self._job = asyncio.create_task(
            self.slot.run_job(listen, doing=GUIDED_TEST), name=f"guided-pad-{self.device}"
        )

    async def release(self) -> None:
        self._stop.set()
        if self._job is not None:
            await asyncio.gather(self._job, return_exceptions=True)

    async def run(self, guide: Guide) -> None:
        job, arrived = self._job, self._arrived
        assert job is not None, "take() first"
        guide.begin(self._steps[0])
        last_packet = time.monotonic()
        while self._at < len(self._steps):
            batch = await self._next_batch(arrived, job, guide)
            ink: list[list[int]] = []
            for sample in batch:
                pen = sample.pen
                ink.append([pen.x, pen.y, pen.pressure, int(pen.tip)])
                if self._at >= len(self._steps):
                    continue  # the last step is done: the rest is only drawn
                if pen.tip:
                    if not self._stroke:
                        self._stroke_step = self._at
                    self._stroke.append((pen.x, pen.y))
                    self._touched(guide, pen.x, pen.y)
                elif self._stroke:
                    self._lifted(guide)
            if batch:
                last_packet = time.monotonic()
            elif self._stroke and time.monotonic() - last_packet > QUIET_S:
                self._lifted(guide)
            if ink:
                guide.changed(
                    ink={
                        "points": ink,
                        "max_x": self.max_x,
                        "max_y": self.max_y,
                        "max_pressure": self.max_pressure,
                    }
                )

    async def _next_batch(
        self, arrived: asyncio.Queue[list[PenSample]], job: asyncio.Task[None], guide: Guide
    ) -> list[PenSample]:
        """The packets that came since the last call (none within READ_WAIT_S: an empty list);
        the step waiting fails when the pad's job has ended (the pad went away)."""
        try:
            batch = list(await asyncio.wait_for(arrived.get(), READ_WAIT_S))
        except TimeoutError:
            batch = []
        while not arrived.empty():
            batch.extend(arrived.get_nowait())
        if not batch and job.done():
            error = None if job.cancelled() else job.exception()
            what = f"{type(error).__name__}: {error}" if error is not None else "its job ended"
            guide.fail(self._steps[self._at], pad_stopped(what), {"error": what})
        return batch

    def _advance(self, guide: Guide) -> None:
        self._at += 1
        self._attempt = False
        if self._at < len(self._steps):
            guide.begin(self._steps[self._at])

    def _touched(self, guide: Guide, x: int, y: int) -> None:
        """A pen-down point: the corner waiting touched, or come near (an attempt at it)."""
        step = self._steps[self._at]
        # A stroke begun at an earlier corner counts here too: a pen may slide from corner to corner.
        if step.kind != "touch":
            return
        corner = step.id.removeprefix("corner_")
        reach = corner_reach(x, y, corner, self.max_x, self.max_y)
        if reach <= CORNER_ZONE:
            self._touches[corner] = (x, y)
            guide.done(step, {"touched": {"x": x, "y": y}, "reach": round(reach, 3)})
            self._advance(guide)
        elif reach <= ATTEMPT_REACH:
            self._attempt = True
            cx, cy = corner_point(corner, self.max_x, self.max_y)
            mm = math.hypot(x - cx, y - cy) / self.per_mm
            nearest = step.values.get("nearest")
            if nearest is None or mm < nearest["mm"]:
                step.values["nearest"] = {"x": x, "y": y, "mm": round(mm, 1)}

    def _lifted(self, guide: Guide) -> None:
        """The pen left the pad: a corner missed, or the line drawn."""
        points, began = self._stroke, self._stroke_step
        self._stroke = []
        step = self._steps[self._at]
        if step.kind == "touch":
            if self._attempt:
                self._attempt = False
                misses = step.values.get("misses", 0) + 1
                step.values["misses"] = misses
                if misses >= MAX_MISSES:
                    corner = step.id.removeprefix("corner_")
                    guide.fail(step, unreachable(corner, step.values["nearest"]["mm"]))
                guide.changed()
            return
        if began != self._at:
            return  # begun before the line was asked for: the last corner's touch
        fit = line_fit(points)
        if fit.length < LINE_MIN_SHARE * math.hypot(self.max_x, self.max_y):
            step.values["short_strokes"] = step.values.get("short_strokes", 0) + 1
            guide.changed()
            return
        self._line = {
            "linearity": round(fit.linearity, 4),
            "length_mm": round(fit.length / self.per_mm, 1),
            "deviation_mm": round(fit.deviation / self.per_mm, 2),
            "points": len(points),
        }
        if fit.linearity > LINEARITY_LIMIT:
            guide.fail(step, not_straight(fit.linearity), self._line)
        guide.done(step, self._line)
        self._advance(guide)

    # --- the finding -------------------------------------------------------------------------

    def _corner_points(self) -> list[tuple[int, int]] | None:
        """Each corner's touch, or for one missed its nearest point; None while one has neither."""
        found = []
        for corner, step in zip(CORNERS, self._steps, strict=False):
            if corner in self._touches:
                found.append(self._touches[corner])
            elif "nearest" in step.values:
                found.append((step.values["nearest"]["x"], step.values["nearest"]["y"]))
            else:
                return None
        return found

    def summary(self) -> dict[str, Any]:
        points = self._corner_points()
        return {
            "pad": {"max_x": self.max_x, "max_y": self.max_y, "points_per_mm": self.per_mm},
            "touches": {corner: list(xy) for corner, xy in self._touches.items()},
            "coverage": None if points is None else round(coverage(points, self.max_x, self.max_y), 3),
            "line": dict(self._line) or None,
        }

    def judge(self) -> tuple[str, Words | None]:
        points = self._corner_points() or []
        share = coverage(points, self.max_x, self.max_y)
        if share < COVERAGE_MIN:
            return FAILED, Words(
                f"Sentuhan di keempat sudut hanya mencakup {share:.0%} bantalan (minimal "
                f"{COVERAGE_MIN:.0%}): ulangi uji; jika tetap, ganti bantalan tanda tangan.",
                f"The four corners' touches cover only {share:.0%} of the pad (at least "
                f"{COVERAGE_MIN:.0%}): run the test again; if it stays, replace the signature pad.",
            )
        return OK, None
