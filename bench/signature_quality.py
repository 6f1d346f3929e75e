"""Signature quality: assessment time per signature against the goal of well under 1 ms per 100 points.

Signatures: the hand-made set (tests/data/signatures, 300-2,700 packets), simulated
signatures of each style (hil.synthetic_signature, 300-1,100 packets) and long ones
(25 strokes, ~3,500 packets: a 30 s recording). For each group: the median time of
``assess_signature`` per signature and per 100 packets (every packet is read; hover
included).

References measured in the same run on the same signatures: numpy's own path length
(``np.hypot(np.diff(x), np.diff(y)).sum()``) over arrays made beforehand, the floor of
any numpy measurement of a path; the same including making the arrays from the
recording (what any assessor of a ``Signature`` pays first); and the capture module's
``signature_facts`` (pure Python). Last, what a capture session would pay assessing
the signature so far ten times a second, as a share of one core.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.stats import time_calls
from hil.hand_drawn import recording
from hil.synthetic_signature import synthetic_signature
from kitd.capture.signature import PadInfo, Signature, signature_facts, signature_from_json
from kitd.capture.signature_quality import assess_signature

REPO = Path(__file__).resolve().parents[1]
HAND_MADE = REPO / "tests" / "data" / "signatures"
PAD = PadInfo(max_x=9600, max_y=6000, max_pressure=1023, firmware=4660)
GOAL_MS_PER_100 = 1.0


def _signatures(smoke: bool) -> dict[str, list[Signature]]:
    seeds = range(2) if smoke else range(6)

    def simulated(seed: int, style: str, strokes: int | None = None) -> Signature:
        packets = synthetic_signature(
            seed, max_x=9600, max_y=6000, max_pressure=1023, style=style, strokes=strokes
        )
        return recording(PAD, packets)

    return {
        "hand-made": [
            signature_from_json(json.loads(p.read_text())) for p in sorted(HAND_MADE.glob("*.json"))
        ],
        "simulated": [simulated(seed, style) for style in ("steady", "shaky", "halting") for seed in seeds],
        "simulated, 25 strokes": [simulated(seed, "steady", strokes=25) for seed in seeds[:3]],
    }


def _numpy_path_length(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.hypot(np.diff(x), np.diff(y)).sum())


def _arrays_then_path_length(signature: Signature) -> float:
    x = np.array([p.x for p in signature.points], dtype=np.float64)
    y = np.array([p.y for p in signature.points], dtype=np.float64)
    return _numpy_path_length(x, y)


def _median_per_100(
    fn: Callable[[Signature], object], signatures: list[Signature], repeat: int
) -> tuple[float, float]:
    """Median seconds per signature and per 100 packets of `fn` over the signatures."""
    per_signature, per_100 = [], []
    for signature in signatures:
        seconds = statistics.median(time_calls(lambda s=signature: fn(s), repeat))
        per_signature.append(seconds)
        per_100.append(seconds / len(signature.points) * 100)
    return statistics.median(per_signature), statistics.median(per_100)


def _row(name: str, seconds: float, ours: float) -> str:
    return f"    {name:<38} {seconds * 1e3:8.3f} ms a signature; ours is {ours / seconds:.1f}x this"


def run(smoke: bool) -> None:
    repeat = 5 if smoke else 50
    worst_per_100 = 0.0
    groups = _signatures(smoke)
    for group, signatures in groups.items():
        packets = [len(s.points) for s in signatures]
        ours, ours_100 = _median_per_100(assess_signature, signatures, repeat)
        worst_per_100 = max(worst_per_100, ours_100)
        arrays = [
            (np.array([p.x for p in s.points], np.float64), np.array([p.y for p in s.points], np.float64))
            for s in signatures
        ]
        floor = statistics.median(
            statistics.median(time_calls(lambda a=a: _numpy_path_length(*a), repeat)) for a in arrays
        )
        with_arrays, _ = _median_per_100(_arrays_then_path_length, signatures, repeat)
        facts, _ = _median_per_100(signature_facts, signatures, repeat)
        print(f"  {group}: {len(signatures)} signatures, {min(packets)}-{max(packets)} packets")
        print(
            f"    {'assess_signature':<38} {ours * 1e3:8.3f} ms a signature, {ours_100 * 1e3:.3f} ms per 100"
        )
        print(_row("numpy path length (arrays ready)", floor, ours))
        print(_row("numpy path length (arrays made)", with_arrays, ours))
        print(_row("signature_facts (pure Python)", facts, ours))
    worst_ms = worst_per_100 * 1e3
    verdict = "met" if worst_ms < GOAL_MS_PER_100 else "NOT met"
    print(
        f"  goal well under {GOAL_MS_PER_100:g} ms per 100 points: {verdict}, worst group median "
        f"{worst_ms:.3f} ms per 100 ({GOAL_MS_PER_100 / worst_ms:.0f}x under)"
    )
    # A capture session assessing the signature so far: the longest recording, ten times a second.
    long_one = max((s for group in groups.values() for s in group), key=lambda s: len(s.points))
    seconds = statistics.median(time_calls(lambda: assess_signature(long_one), repeat))
    print(
        f"  session, the signature so far assessed 10 times a second at {len(long_one.points)} packets: "
        f"{seconds * 10 * 100:.1f} % of one core"
    )


if __name__ == "__main__":
    import sys

    run("--smoke" in sys.argv)
