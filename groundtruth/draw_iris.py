"""Drawings of an eye's ground truth and of what the assessor found, one over the other.

Its one job: picture an eye enlarged, with a coordinate grid to read points off
(:func:`grid_picture`), with the hand marks in green and the assessor's finding in magenta
(:func:`draw_eye`), and many such pictures on one contact sheet (:func:`contact_sheet`).
Pure: arrays in, arrays out; the commands that write files are in :mod:`groundtruth.mark_iris`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from groundtruth.iris_marks import EyeMarks, lid_columns, lid_curve

MARK_COLOUR = (60, 220, 60)  # BGR
FOUND_COLOUR = (255, 0, 255)
GRID_COLOUR = (0, 200, 255)


def _enlarge(grey: np.ndarray, zoom: int) -> np.ndarray:
    big = cv2.resize(grey, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2BGR)


def _at(x: float, y: float, zoom: int, origin: tuple[int, int] = (0, 0)) -> tuple[int, int]:
    # Pixel centres: frame pixel (x, y) covers zoom x zoom screen pixels from x * zoom.
    return round((x - origin[0] + 0.5) * zoom), round((y - origin[1] + 0.5) * zoom)


def grid_picture(
    grey: np.ndarray, crop: tuple[int, int, int, int] | None = None, zoom: int = 4, every: int = 5
) -> np.ndarray:
    """The crop (x0, y0, x1, y1) enlarged `zoom` times, a grid line every `every` frame
    pixels and a label every two lines, to read frame coordinates off."""
    h, w = grey.shape
    x0, y0, x1, y1 = crop if crop else (0, 0, w, h)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    pad = 28  # room for the labels, left and top
    body = _enlarge(grey[y0:y1, x0:x1], zoom)
    out = np.full((body.shape[0] + pad, body.shape[1] + pad, 3), 255, np.uint8)
    out[pad:, pad:] = body
    for x in range((x0 + every - 1) // every * every, x1, every):
        sx = pad + round((x - x0 + 0.5) * zoom)
        labelled = x % (2 * every) == 0
        cv2.line(out, (sx, pad), (sx, out.shape[0] - 1), GRID_COLOUR, 1, cv2.LINE_4)
        if labelled:
            cv2.putText(out, str(x), (sx - 8, 18), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 0, 0), 1)
    for y in range((y0 + every - 1) // every * every, y1, every):
        sy = pad + round((y - y0 + 0.5) * zoom)
        labelled = y % (2 * every) == 0
        cv2.line(out, (pad, sy), (out.shape[1] - 1, sy), GRID_COLOUR, 1, cv2.LINE_4)
        if labelled:
            cv2.putText(out, str(y), (1, sy + 4), cv2.FONT_HERSHEY_PLAIN, 0.8, (0, 0, 0), 1)
    return out


def _circle(img: np.ndarray, circle: Sequence[float], colour: tuple[int, int, int], zoom: int) -> None:
    x, y, r = circle
    cv2.circle(img, _at(x, y, zoom), max(1, round(r * zoom)), colour, 1, cv2.LINE_AA)
    cv2.drawMarker(img, _at(x, y, zoom), colour, cv2.MARKER_CROSS, 2 * zoom, 1)


def _lid_ticks(
    img: np.ndarray, columns: Sequence[float], heights: Sequence[float] | None, colour, zoom: int
) -> None:
    if heights is None:
        return
    for x, y in zip(columns, heights, strict=True):
        cx, cy = _at(x, y, zoom)
        cv2.line(img, (cx - 3 * zoom, cy), (cx + 3 * zoom, cy), colour, 2)


def draw_eye(
    grey: np.ndarray,
    marks: EyeMarks | None = None,
    found: Mapping[str, float] | None = None,
    zoom: int = 2,
    title: str = "",
) -> np.ndarray:
    """The eye enlarged, marks (green: points, circles, lid curves and the lid heights at
    the three columns) and the assessor's metrics (magenta: circles and lid heights)."""
    img = _enlarge(grey, zoom)
    if marks is not None:
        for part in ("pupil", "limbus", "upper_lid", "lower_lid"):
            for x, y in marks.points.get(part, []):
                cv2.circle(img, _at(x, y, zoom), max(2, zoom // 2 + 1), MARK_COLOUR, -1)
        _circle(img, marks.pupil, MARK_COLOUR, zoom)
        _circle(img, marks.limbus, MARK_COLOUR, zoom)
        columns = lid_columns(marks.limbus)
        for part in ("upper_lid", "lower_lid"):
            curve = lid_curve(marks.points.get(part, []))
            if curve is None:
                continue
            ix, _, ir = marks.limbus
            xs = np.linspace(ix - 1.1 * ir, ix + 1.1 * ir, 60)
            line = np.array([_at(x, float(np.polyval(curve, x)), zoom) for x in xs], np.int32)
            cv2.polylines(img, [line], False, MARK_COLOUR, 1, cv2.LINE_AA)
            _lid_ticks(img, columns, marks.lid_heights(part), MARK_COLOUR, zoom)
    if found and found.get("eye_found"):
        _circle(img, (found["pupil_x"], found["pupil_y"], found["pupil_r"]), FOUND_COLOUR, zoom)
        _circle(img, (found["iris_x"], found["iris_y"], found["iris_r"]), FOUND_COLOUR, zoom)
        columns = lid_columns((found["iris_x"], found["iris_y"], found["iris_r"]))
        for part in ("upper", "lower"):
            keys = [f"{part}_eyelid_y_left", f"{part}_eyelid_y", f"{part}_eyelid_y_right"]
            if all(k in found for k in keys):
                _lid_ticks(img, columns, [found[k] for k in keys], FOUND_COLOUR, zoom)
            elif keys[1] in found:
                _lid_ticks(img, columns[1:2], [found[keys[1]]], FOUND_COLOUR, zoom)
    if title:
        cv2.rectangle(img, (0, 0), (img.shape[1], 16), (0, 0, 0), -1)
        cv2.putText(img, title, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return img


def contact_sheet(pictures: Sequence[np.ndarray], columns: int = 4) -> np.ndarray:
    """Pictures of one size in rows of `columns` (the last row padded with black)."""
    if not pictures:
        raise ValueError("no pictures for the contact sheet")
    h, w = pictures[0].shape[:2]
    tiles = [cv2.resize(p, (w, h)) if p.shape[:2] != (h, w) else p for p in pictures]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)
