"""Simulated near-infrared iris camera: synthetic eyes served as MJPEG over HTTP on loopback.

A separate process that looks, to kitd's camera driver, like an MJPEG camera at
`camera:http://127.0.0.1:PORT/eye.mjpg`: frames at a steady rate (default 30 fps) of a
synthetic eye (hil.synthetic_eye), each with its frame number as a block code in the
top-left corner (hil.frame_code) so that a test knows exactly which frames arrived.

    python -m hil.eye_sim [--http-port 0] [--control-port 0] [--fps 30] [--quality 85]
                          [--applicant] [--set KEY=VALUE ...]

Both ports bind 127.0.0.1 (0 = a free port). When both listen, exactly one line goes to
stdout, `READY http=127.0.0.1:PORT control=127.0.0.1:PORT url=http://127.0.0.1:PORT/eye.mjpg`;
logs go to stderr. `GET /eye.mjpg` is the stream (multipart/x-mixed-replace), `GET /eye.jpg`
the current frame.

Frame n is due at start + n/fps, like a camera's clock: frames that are not sent (a fault, or
the simulator running late) leave a gap in the numbers. The eye is rendered once per change of
parameters (tens of milliseconds, cached) and each frame only adds sensor noise from a
pre-made bank, stamps its number and encodes the JPEG, so 30 fps holds on a busy 2-core machine.

Control channel: TCP on 127.0.0.1, one command per line, one reply line, `ok [DETAIL]` or
`err REASON`:

    set KEY=VALUE ...          change the eye while streaming (reply names from_frame=N, the
                               first frame that shows it): iris_x iris_y iris_r pupil_r
                               pupil_dx pupil_dy gaze_dx gaze_dy eyelid (1 open .. 0 closed)
                               blur motion motion_angle noise exposure eye (on|off)
                               reflections (x,y;x,y or none) seed; lengths in pixels;
                               exposure=0.05 is a dark scene (the illuminator off or the lens
                               covered: only the frame code stays bright), eye=off a plain one
    get                        ok {JSON of the parameters}
    truth                      ok {JSON: the drawn eye's circles, visible iris, and the number
                               of the frame being sent}
    applicant on|off           a scripted applicant: settles, blinks, glances away, comes
                               closer, settles again (loops); `set` turns it off
    fault stall [SECONDS]      send nothing (until cleared, or for SECONDS); connections stay open
    fault drop N               do not send the next N frames
    fault drop-every N         do not send every Nth frame (N >= 2), until cleared: a camera
                               that keeps losing frames (its `missed` counts, a lower rate)
    fault corrupt N [truncate|garble]
                               the next N frames are corrupt JPEGs: cut short (no end marker), or
                               with a run of bytes in the scan replaced by invalid markers
    fault exit                 the process exits at once (connections reset)
    fault clear                disarm every fault (drop-every too)
    status                     ok {JSON: frame (the last due), sent, late, dropped, corrupted,
                               stalled, clients [{id, sent, first, last, skipped}], fps, cpu_s,
                               drop_every}
    reset                      back to the start: default eye, faults cleared, counters kept
    help                       the command names
    quit                       reply `ok bye` and exit
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import OrderedDict
from dataclasses import asdict
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

from hil import frame_code
from hil.control_channel import ControlChannel
from hil.synthetic_eye import EyeParams, EyeTruth, check_params, noise_bank, parse_value, render, with_noise

log = logging.getLogger("eye_sim")

BOUNDARY = "eyeframe"
CACHE_SIZE = 96

# The scripted applicant: (seconds to hold, changes from the settled eye). Transitions
# between steps take TRANSITION frames, rendered once and cached, so the loop costs nothing
# after its first pass.
APPLICANT_SCRIPT: list[tuple[float, dict[str, float]]] = [
    (2.0, {}),
    (0.10, {"eyelid": 0.0}),  # blink
    (1.2, {}),
    (0.10, {"eyelid": 0.0}),  # blink
    (1.0, {}),
    (0.8, {"gaze_dx": 95.0, "gaze_dy": 10.0}),  # glances away
    (1.0, {}),
    (0.6, {"gaze_dx": -70.0}),  # and the other way
    (0.8, {"eyelid": 0.55}),  # drowsy
    (1.0, {"iris_r": 150.0, "pupil_r": 58.0}),  # leans in, too close
    (0.6, {"motion": 9.0, "motion_angle": 20.0}),  # moves
    (2.5, {}),  # settles
]
TRANSITION = 4


def applicant_frames(base: EyeParams, fps: float) -> list[EyeParams]:
    """The script as one EyeParams per frame, interpolated in a few cached steps."""
    frames: list[EyeParams] = []
    previous: dict[str, float] = {}
    keys = {k for _, changes in APPLICANT_SCRIPT for k in changes}
    for seconds, changes in APPLICANT_SCRIPT:
        target = {k: changes.get(k, getattr(base, k)) for k in keys}
        start = {k: previous.get(k, getattr(base, k)) for k in keys}
        for step in range(1, TRANSITION + 1):
            t = step / TRANSITION
            frames.append(base.replace(**{k: start[k] + (target[k] - start[k]) * t for k in keys}))
        frames.extend([base.replace(**target)] * max(0, int(seconds * fps) - TRANSITION))
        previous = target
    return frames


class EyeCamera:
    """The simulated camera: the eye being shown, the frame clock, faults and counters."""

    def __init__(self, params: EyeParams, fps: float, quality: int) -> None:
        self.lock = threading.RLock()
        self.new_frame = threading.Condition(self.lock)
        self.fps = fps
        self.quality = quality
        self.initial = params
        self.params = params
        self._cache: OrderedDict[EyeParams, tuple[np.ndarray, EyeTruth]] = OrderedDict()
        self._noise: dict[tuple[float, int, int], list[np.ndarray]] = {}
        self.base, self.truth = self.rendered(params)
        self.script: list[EyeParams] | None = None
        self.script_start = 0
        self.latest: tuple[int, bytes, EyeTruth] | None = None
        self.due = 0
        self.counts = {"produced": 0, "sent": 0, "late": 0, "dropped": 0, "corrupted": 0, "stalled": 0}
        self.stall_until: float | None = None
        self.drop = 0
        self.drop_every = 0  # 0: off; N: every Nth frame is not sent
        self.corrupt = 0
        self.corrupt_mode = "truncate"
        self.clients: dict[int, dict[str, Any]] = {}
        self.started = time.monotonic()
        self.stop = threading.Event()

    # -- rendering (cached) --
    def rendered(self, params: EyeParams) -> tuple[np.ndarray, EyeTruth]:
        with self.lock:
            hit = self._cache.get(params)
            if hit is not None:
                self._cache.move_to_end(params)
                return hit
        made = render(params)
        with self.lock:
            self._cache[params] = made
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return made

    def noise(self, params: EyeParams) -> list[np.ndarray] | None:
        if params.noise <= 0:
            return None
        key = (params.noise, params.height, params.width)
        if key not in self._noise:
            self._noise[key] = noise_bank(params.noise, (params.height, params.width), seed=params.seed)
        return self._noise[key]

    def show(self, params: EyeParams) -> int:
        """Render (outside the lock) and switch to `params`; the applicant script stops.
        Returns the number of the first frame that shows them."""
        check_params(params)
        base, truth = self.rendered(params)
        with self.lock:
            self.params, self.base, self.truth = params, base, truth
            self.script = None
            return self.due + 1

    def start_applicant(self) -> int:
        frames = applicant_frames(self.initial if self.script is None else self.params, self.fps)
        for params in dict.fromkeys(frames):  # render every distinct state before starting
            self.rendered(params)
        with self.lock:
            self.script = frames
            self.script_start = self.due
        return len(frames)

    # -- the frame clock --
    def frame(self, number: int) -> tuple[bytes, EyeTruth]:
        with self.lock:
            if self.script is not None:
                params = self.script[(number - self.script_start) % len(self.script)]
                base, truth = self.rendered(params)
            else:
                params, base, truth = self.params, self.base, self.truth
        bank = self.noise(params)
        image = with_noise(base, bank[number % len(bank)] if bank else None)
        frame_code.stamp(image, number)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        return data.tobytes(), truth

    def run(self) -> None:
        """Produce frame n at start + n/fps, hand it to every client, and keep time."""
        period = 1.0 / self.fps
        number = 0
        while not self.stop.is_set():
            number += 1
            due_at = self.started + number * period
            wait = due_at - time.monotonic()
            if wait > 0:
                self.stop.wait(wait)
            elif -wait > period:
                # Running late: like a camera, skip to the frame now due; the gap shows in the numbers.
                late = int(-wait / period)
                self.counts["late"] += late
                number += late
            self.due = number
            if self._held_back(number):
                continue
            data, truth = self.frame(number)
            with self.lock:
                if self.corrupt:
                    self.corrupt -= 1
                    self.counts["corrupted"] += 1
                    data = corrupt_jpeg(data, self.corrupt_mode)
                self.latest = (number, data, truth)
                self.counts["produced"] += 1
                self.new_frame.notify_all()

    def _held_back(self, number: int) -> bool:
        with self.lock:
            if self.stall_until is not None and time.monotonic() < self.stall_until:
                self.counts["stalled"] += 1
                return True
            self.stall_until = None
            if self.drop:
                self.drop -= 1
                self.counts["dropped"] += 1
                return True
            if self.drop_every and number % self.drop_every == 0:
                self.counts["dropped"] += 1
                return True
        return False

    def status(self) -> dict[str, Any]:
        with self.lock:
            elapsed = time.monotonic() - self.started
            cpu = os.times()
            return {
                "frame": self.due,
                **self.counts,
                "clients": [{"id": k, **v} for k, v in self.clients.items()],
                "fps": self.fps,
                "achieved_fps": round(self.counts["produced"] / elapsed, 2),
                "cpu_s": round(cpu.user + cpu.system, 3),
                "applicant": self.script is not None,
                "stalled_now": self.stall_until is not None,
                "drop_every": self.drop_every,
            }


def corrupt_jpeg(data: bytes, mode: str) -> bytes:
    """A JPEG cut short (no end-of-image marker), or with invalid markers inside its scan."""
    if mode == "truncate":
        return data[: len(data) * 2 // 3]
    middle = len(data) // 2
    return data[:middle] + b"\xff\x01" * 32 + data[middle + 64 :]


def _newer(camera: EyeCamera, last: int) -> bool:
    return (camera.latest is not None and camera.latest[0] > last) or camera.stop.is_set()


class StreamHandler(BaseHTTPRequestHandler):
    """GET /eye.mjpg: the stream; GET /eye.jpg: the current frame."""

    camera: EyeCamera
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        camera = self.camera
        if self.path.split("?")[0] == "/eye.jpg":
            with camera.lock:
                latest = camera.latest
            if latest is None:
                self.send_error(503, "no frame yet")
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(latest[1])))
            self.send_header("X-Frame-Number", str(latest[0]))
            self.end_headers()
            self.wfile.write(latest[1])
            return
        if self.path.split("?")[0] != "/eye.mjpg":
            self.send_error(404, "try /eye.mjpg")
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        me = {"sent": 0, "first": None, "last": None, "skipped": 0, "peer": self.client_address[1]}
        client_id = id(me)
        with camera.lock:
            camera.clients[client_id] = me
            last = camera.latest[0] if camera.latest else 0
        try:
            while not camera.stop.is_set():
                with camera.new_frame:
                    camera.new_frame.wait_for(partial(_newer, camera, last), timeout=1.0)
                    latest = camera.latest
                if latest is None or latest[0] <= last:
                    continue
                number, data, _ = latest
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
                self.wfile.write(head.encode() + data + b"\r\n")
                self.wfile.flush()
                with camera.lock:
                    if me["last"] is not None and number - me["last"] > 1:
                        me["skipped"] += number - me["last"] - 1
                    me["sent"] += 1
                    me["first"] = me["first"] or number
                    me["last"] = number
                    camera.counts["sent"] += 1
                last = number
        except OSError:
            pass  # the client went away
        finally:
            with camera.lock:
                camera.clients.pop(client_id, None)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        log.debug("%s " + format, self.client_address[0], *args)


class StreamServer(ThreadingHTTPServer):
    """The HTTP side; rebinding its port at once lets a test restart the simulator in place."""

    allow_reuse_address = True
    daemon_threads = True


class ControlServer(ControlChannel):
    """The line protocol on 127.0.0.1 that steers the simulated camera (see the module doc)."""

    def __init__(self, camera: EyeCamera, port: int, stop: threading.Event) -> None:
        super().__init__(port, stop)
        self.camera = camera

    def replied(self, line: str) -> None:
        if line == "fault exit":
            os._exit(3)  # the reply is out; now vanish as a crashed camera server would

    def _cmd_set(self, args: list[str]) -> str:
        if not args:
            raise ValueError("usage: set KEY=VALUE ...")
        changes = {}
        for item in args:
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"'{item}' is not KEY=VALUE")
            changes[key] = parse_value(key, value)
        first = self.camera.show(self.camera.params.replace(**changes))
        return "ok " + " ".join(f"{k}={v}" for k, v in changes.items()) + f" from_frame={first}"

    def _cmd_get(self, args: list[str]) -> str:
        return "ok " + json.dumps(asdict(self.camera.params), separators=(",", ":"))

    def _cmd_truth(self, args: list[str]) -> str:
        with self.camera.lock:
            latest = self.camera.latest
            truth = latest[2] if latest else self.camera.truth
            number = latest[0] if latest else None
        return "ok " + json.dumps({"frame": number, **truth.as_dict()}, separators=(",", ":"))

    def _cmd_applicant(self, args: list[str]) -> str:
        if args == ["on"]:
            return f"ok applicant: {self.camera.start_applicant()} frames a loop"
        if args == ["off"]:
            self.camera.show(self.camera.params)
            return "ok applicant off"
        raise ValueError("usage: applicant on|off")

    def _cmd_fault(self, args: list[str]) -> str:
        usage = (
            "usage: fault stall [SECONDS] | drop N | drop-every N | corrupt N [truncate|garble] "
            "| exit | clear"
        )
        camera = self.camera
        kind, rest = (args[0], args[1:]) if args else ("", [])
        with camera.lock:
            if kind == "stall" and len(rest) <= 1:
                seconds = float(rest[0]) if rest else 1e9
                camera.stall_until = time.monotonic() + seconds
            elif kind == "drop" and len(rest) == 1:
                camera.drop = int(rest[0])
            elif kind == "drop-every" and len(rest) == 1:
                every = int(rest[0])
                if every < 2:
                    raise ValueError("fault drop-every N: N must be 2 or more (every frame is a stall)")
                camera.drop_every = every
            elif kind == "corrupt" and 1 <= len(rest) <= 2:
                camera.corrupt = int(rest[0])
                camera.corrupt_mode = rest[1] if len(rest) == 2 else "truncate"
                if camera.corrupt_mode not in ("truncate", "garble"):
                    raise ValueError(usage)
            elif kind == "exit" and not rest:
                log.info("exiting on request (fault exit)")
                return "ok exiting"
            elif kind == "clear" and not rest:
                camera.stall_until, camera.drop, camera.drop_every, camera.corrupt = None, 0, 0, 0
            else:
                raise ValueError(usage)
        return f"ok fault {' '.join(args)}"

    def _cmd_status(self, args: list[str]) -> str:
        return "ok " + json.dumps(self.camera.status(), separators=(",", ":"))

    def _cmd_reset(self, args: list[str]) -> str:
        with self.camera.lock:
            self.camera.stall_until, self.camera.drop, self.camera.corrupt = None, 0, 0
            self.camera.drop_every = 0
        self.camera.show(self.camera.initial)
        return "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hil.eye_sim",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--http-port", type=int, default=0, help="MJPEG port (0: a free one)")
    parser.add_argument("--control-port", type=int, default=0, help="control channel port (0: a free one)")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality (default 85)")
    parser.add_argument("--applicant", action="store_true", help="start with the scripted applicant")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="an eye parameter")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="eye_sim: %(message)s")
    try:
        changes = {}
        for item in args.set:
            key, _, value = item.partition("=")
            changes[key] = parse_value(key, value)
        params = EyeParams().replace(**changes)
        check_params(params)
        if not 0 < args.fps <= 240 or not 1 <= args.quality <= 100:
            raise ValueError("--fps must be 0..240 and --quality 1..100")
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    camera = EyeCamera(params, args.fps, args.quality)
    if args.applicant:
        camera.start_applicant()
    stop = threading.Event()
    handler = type("Handler", (StreamHandler,), {"camera": camera})
    try:
        http = StreamServer(("127.0.0.1", args.http_port), handler)
        control = ControlServer(camera, args.control_port, stop)
    except OSError as exc:
        print(f"eye_sim: cannot listen: {exc}", file=sys.stderr)
        return 1
    threading.Thread(target=camera.run, name="frame-clock", daemon=True).start()
    threading.Thread(target=http.serve_forever, name="http", daemon=True).start()
    control.start()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    port = http.server_address[1]
    print(
        f"READY http=127.0.0.1:{port} control=127.0.0.1:{control.port} url=http://127.0.0.1:{port}/eye.mjpg",
        flush=True,
    )
    log.info("serving %d fps at http://127.0.0.1:%d/eye.mjpg", args.fps, port)
    stop.wait()
    log.info("stopping")
    camera.stop.set()
    with camera.new_frame:
        camera.new_frame.notify_all()
    http.shutdown()
    http.server_close()
    control.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
