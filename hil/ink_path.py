"""Where rendered ink lies relative to the pen's path: the check that a signature image follows
what was written.

The mapping from device units to pixels is computed here from the renderer's documented
scale and margin (`RENDER_PX_PER_MM`, `RENDER_MARGIN_MM`, the ink's top-left corner), not
taken from the renderer, so a renderer that draws in the wrong place fails.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kitd.capture.signature import RENDER_MARGIN_MM, RENDER_PX_PER_MM

# (x, y, tip) in device units, in the order written
PenTrace = Sequence[tuple[int, int, bool]]


def _strokes(trace: PenTrace) -> list[list[tuple[int, int]]]:
    runs: list[list[tuple[int, int]]] = []
    previous = False
    for x, y, tip in trace:
        if tip:
            if not previous:
                runs.append([])
            runs[-1].append((x, y))
        previous = tip
    return runs


def ink_distances(
    image: np.ndarray, trace: PenTrace, points_per_mm: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """(distance of every ink pixel to the nearest tip-down segment, distance of every tip-down
    point to the nearest ink pixel), in pixels; ink is any pixel darker than mid-grey."""
    runs = _strokes(trace)
    if not runs:
        raise ValueError("the trace has no tip-down point")
    scale = RENDER_PX_PER_MM / points_per_mm
    margin = round(RENDER_MARGIN_MM * RENDER_PX_PER_MM)
    left = min(x for run in runs for x, _ in run)
    top = min(y for run in runs for _, y in run)
    placed = [
        np.array([((x - left) * scale + margin, (y - top) * scale + margin) for x, y in run]) for run in runs
    ]
    a = np.concatenate([run[:-1] if len(run) > 1 else run for run in placed])
    b = np.concatenate([run[1:] if len(run) > 1 else run for run in placed])
    ys, xs = np.nonzero(image < 128)
    ink = np.column_stack([xs, ys]).astype(float)
    if not len(ink):
        return np.array([np.inf]), np.array([np.inf])
    ab = b - a
    length2 = np.maximum((ab**2).sum(axis=1), 1e-9)
    from_ink = np.empty(len(ink))
    for start in range(0, len(ink), 2048):
        chunk = ink[start : start + 2048, None, :]
        u = np.clip(((chunk - a) * ab).sum(axis=2) / length2, 0.0, 1.0)
        nearest = a + u[..., None] * ab
        from_ink[start : start + 2048] = np.sqrt(((chunk - nearest) ** 2).sum(axis=2)).min(axis=1)
    points = np.concatenate(placed)
    to_ink = np.array([np.sqrt(((ink - q) ** 2).sum(axis=1)).min() for q in points])
    return from_ink, to_ink
