"""Iris quality: time per 640 x 480 frame against OpenCV HoughCircles; the live stream judged per frame.

Single thread (cv2.setNumThreads(1)), median of many calls, on the same frames:

* `assess_iris` (pupil, limbus, eyelids and every metric) against the reference, OpenCV's
  HoughCircles (gradient method, after a median blur) finding circles only; the ratio says
  how much more the whole assessment costs than a textbook circle search.
* The live stream: the simulated eye (hil.eye_sim, its own process) at 30 fps read by the
  kit's camera driver; every newest frame judged as it comes. Frames judged per second
  against frames delivered, and the share of one core the judging costs (CPU of this
  process with judging minus without, over the same time).

Frames: the real eye of ../shared/fixtures/open-iris when present, and synthetic eyes
(good, blurred, half-closed, turned, dark), at 640 x 480; and, reported apart, real eyes from
a 320 x 240 camera (the development half of ../shared/fixtures/iitd-iris, when present).
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from bench.stats import summary_ms, time_calls
from hil.rig import SimulatorProcess
from hil.synthetic_eye import EyeParams, noise_bank, render, with_noise
from kitd.capture.iris_quality import assess_iris
from kitd.config import builtin_config
from kitd.drivers.registry import make_driver

REAL_EYE = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "open-iris" / "anonymized.png"
IITD_EYES = REAL_EYE.parents[1] / "iitd-iris"


def _frames() -> list[tuple[str, np.ndarray]]:
    frames = []
    if REAL_EYE.is_file():
        frames.append(("real eye", cv2.imread(str(REAL_EYE), cv2.IMREAD_GRAYSCALE)))
    for name, changes in [
        ("good", {}),
        ("blurred", {"blur": 3.0}),
        ("half-closed", {"eyelid": 0.6}),
        ("turned", {"gaze_dx": 70.0}),
        ("dark", {"exposure": 0.4}),
    ]:
        image, _ = render(EyeParams(seed=21, **changes))
        frames.append((name, with_noise(image, noise_bank(2.0, image.shape, 1, 21)[0])))
    return frames


def _hough(image: np.ndarray) -> object:
    blurred = cv2.medianBlur(image, 5)
    return cv2.HoughCircles(
        blurred, cv2.HOUGH_GRADIENT, dp=1.5, minDist=40, param1=100, param2=40, minRadius=20, maxRadius=200
    )


def _stream(url: str, seconds: float, judge: bool) -> dict[str, float]:
    """Read the camera for `seconds`, judging each newest frame if `judge`; rates and CPU share."""
    camera = make_driver(f"camera:{url}", builtin_config().driver_settings())
    camera.open()
    delivered = [0]
    lock = threading.Lock()

    def count(frame: object) -> None:
        with lock:
            delivered[0] += 1

    unsubscribe = camera.subscribe(count)
    try:
        camera.wait_frame(0, 5.0)
        with lock:
            delivered[0] = 0
        judged = 0
        cpu0, t0 = time.process_time(), time.monotonic()
        after = 0
        while time.monotonic() - t0 < seconds:
            frame = camera.wait_frame(after, 2.0)
            after = frame.seq
            if judge and frame.intact:
                assess_iris(frame.image)
                judged += 1
        elapsed = time.monotonic() - t0
        cpu = time.process_time() - cpu0
    finally:
        unsubscribe()
        camera.close()
    return {"delivered_fps": delivered[0] / elapsed, "judged_fps": judged / elapsed, "cpu": cpu / elapsed}


def run(smoke: bool) -> None:
    cv2.setNumThreads(1)
    repeat = 20 if smoke else 300
    # The reference is slow (HoughCircles takes 0.8 s on the real eye): a smoke run only checks
    # that it runs, so it times it a few times.
    reference_repeat = 3 if smoke else repeat
    ours_all, hough_all = [], []
    for name, image in _frames():
        assess_iris(image)  # warm the caches
        ours = time_calls(lambda image=image: assess_iris(image), repeat)
        hough = time_calls(lambda image=image: _hough(image), reference_repeat)
        ours_all.append(statistics.median(ours))
        hough_all.append(statistics.median(hough))
        print(f"   {name:12s} assess_iris {summary_ms(ours)}   HoughCircles {summary_ms(hough)}")
    ours_ms, hough_ms = 1000 * statistics.median(ours_all), 1000 * statistics.median(hough_all)
    print(
        f"   640 x 480, single thread, median over frames: assess_iris {ours_ms:.2f} ms "
        f"(budget 6 ms; a 30 fps frame is 33.3 ms), HoughCircles {hough_ms:.2f} ms: "
        f"ratio {ours_ms / hough_ms:.2f}x"
    )
    small = sorted(IITD_EYES.glob("0*.png"))[:: 12 if smoke else 2]
    if small:
        ours_small, hough_small = [], []
        for path in small:
            image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            assess_iris(image)
            ours_small.append(
                statistics.median(time_calls(lambda image=image: assess_iris(image), repeat // 5))
            )
            hough_small.append(
                statistics.median(
                    time_calls(lambda image=image: _hough(image), max(1, reference_repeat // 5))
                )
            )
        small_ms, small_hough = 1000 * statistics.median(ours_small), 1000 * statistics.median(hough_small)
        print(
            f"   320 x 240 (IITD, {len(small)} real eyes), median over frames: "
            f"assess_iris {small_ms:.2f} ms, HoughCircles {small_hough:.2f} ms: "
            f"ratio {small_ms / small_hough:.2f}x"
        )
    seconds = 3.0 if smoke else 15.0
    with SimulatorProcess("hil.eye_sim", []) as sim:
        url = sim.addresses["url"]
        plain = _stream(url, seconds, judge=False)
        judged = _stream(url, seconds, judge=True)
    share = judged["judged_fps"] / max(judged["delivered_fps"], 1e-9)
    print(
        f"   live stream from the simulated eye, {seconds:g} s each: "
        f"delivered {judged['delivered_fps']:.1f} fps, judged {judged['judged_fps']:.1f} fps "
        f"({share:.0%} of delivered); reading alone {plain['delivered_fps']:.1f} fps"
    )
    print(
        f"   share of one core: reading {plain['cpu']:.1%}, reading and judging {judged['cpu']:.1%}; "
        f"judging costs {judged['cpu'] - plain['cpu']:.1%}"
    )
