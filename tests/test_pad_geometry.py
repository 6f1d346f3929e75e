"""kitd.capture.pad_geometry: corners' zones, the coverage of the corner touches, and a line's
linearity, on made-up points with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kitd.capture.pad_geometry import (
    CORNERS,
    COVERAGE_MIN,
    LINEARITY_LIMIT,
    corner_reach,
    corner_zone,
    coverage,
    in_corner,
    line_fit,
)

MAX_X, MAX_Y = 9600, 6000


def test_each_corner_has_its_zone_a_tenth_of_the_pad_along_each_axis() -> None:
    zones = {corner: corner_zone(corner, MAX_X, MAX_Y).to_json() for corner in CORNERS}
    assert zones["top_left"] == {"x_min": 0, "x_max": 960, "y_min": 0, "y_max": 600}
    assert zones["top_right"] == {"x_min": 8640, "x_max": 9600, "y_min": 0, "y_max": 600}
    assert zones["bottom_right"] == {"x_min": 8640, "x_max": 9600, "y_min": 5400, "y_max": 6000}
    assert zones["bottom_left"] == {"x_min": 0, "x_max": 960, "y_min": 5400, "y_max": 6000}
    assert in_corner(950, 590, "top_left", MAX_X, MAX_Y)
    assert not in_corner(970, 10, "top_left", MAX_X, MAX_Y)  # near along y, too far along x
    assert not in_corner(10, 610, "top_left", MAX_X, MAX_Y)
    assert in_corner(9500, 5900, "bottom_right", MAX_X, MAX_Y)
    with pytest.raises(ValueError, match="unknown corner"):
        corner_zone("middle", MAX_X, MAX_Y)


def test_a_corners_reach_is_the_larger_share_of_either_axis() -> None:
    assert corner_reach(0, 0, "top_left", MAX_X, MAX_Y) == 0.0
    assert corner_reach(1920, 300, "top_left", MAX_X, MAX_Y) == pytest.approx(0.2)
    assert corner_reach(9600 - 480, 6000 - 1200, "bottom_right", MAX_X, MAX_Y) == pytest.approx(0.2)


def test_coverage_is_the_share_of_the_pad_the_corner_touches_enclose() -> None:
    corners = [(0, 0), (MAX_X, 0), (MAX_X, MAX_Y), (0, MAX_Y)]
    assert coverage(corners, MAX_X, MAX_Y) == pytest.approx(1.0)
    # Every touch at the inner edge of its zone: the least that all four zones allow.
    inner = [(960, 600), (8640, 600), (8640, 5400), (960, 5400)]
    assert coverage(inner, MAX_X, MAX_Y) == pytest.approx(COVERAGE_MIN) == pytest.approx(0.64)
    # One corner the pen cannot reach (a dead top-left area, the nearest touch 40% in).
    dead = [(0.4 * MAX_X, 0.4 * MAX_Y), (MAX_X, 0), (MAX_X, MAX_Y), (0, MAX_Y)]
    assert coverage(dead, MAX_X, MAX_Y) == pytest.approx(0.6)
    # The same touches the other way round, or fewer than three: orientation does not matter.
    assert coverage(list(reversed(dead)), MAX_X, MAX_Y) == pytest.approx(0.6)
    assert coverage(corners[:2], MAX_X, MAX_Y) == 0.0


def diagonal(n: int = 200, wobble: float = 0.0, hook: float = 0.0) -> list[tuple[float, float]]:
    """Points from near the top left to near the bottom right; ``wobble`` (share of the length)
    bends it sideways in one sine period; ``hook`` a sideways flick at both ends (pad units)."""
    start, end = np.array([600.0, 400.0]), np.array([9000.0, 5600.0])
    length = float(np.hypot(*(end - start)))
    normal = np.array([-(end - start)[1], (end - start)[0]]) / length
    u = np.linspace(0.0, 1.0, n)
    path = start + np.outer(u, end - start) + np.outer(wobble * length * np.sin(2 * math.pi * u), normal)
    if hook:
        path[:3] += hook * normal
        path[-3:] -= hook * normal
    return [(float(x), float(y)) for x, y in path]


def test_a_straight_line_has_a_linearity_near_zero_and_its_length() -> None:
    fit = line_fit(diagonal())
    assert fit.linearity < 1e-9
    # The ends' 5% are left out of the measure: 90% of the diagonal's length remains.
    assert fit.length == pytest.approx(0.9 * math.hypot(8400, 5200), rel=0.02)


def test_a_wobbly_line_fails_and_a_ruler_line_with_hooks_at_its_ends_passes() -> None:
    wobbly = line_fit(diagonal(wobble=0.05))
    assert wobbly.linearity > LINEARITY_LIMIT
    # The fitted line tilts to halve the wave's two bulges a little: less than 5%, well above 3%.
    assert 0.04 < wobbly.linearity < 0.05
    # A hand with a ruler: 0.3 mm of sensor jitter and a 2 mm hook where the pen lands and lifts.
    rng = np.random.default_rng(3)
    ruler = [(x + rng.normal(0, 30), y + rng.normal(0, 30)) for x, y in diagonal(hook=200.0)]
    fit = line_fit(ruler)
    assert fit.linearity < LINEARITY_LIMIT / 2, fit
    # The same hooks counted in (no trim) would weigh more: the trim is what keeps them out.
    assert line_fit(ruler, trim=0.0).deviation > fit.deviation


def test_a_line_of_one_point_has_no_length() -> None:
    assert line_fit([(5.0, 5.0)]).linearity == math.inf
    assert line_fit([]).points == 0
    assert line_fit([(5.0, 5.0), (5.0, 5.0)]).length == 0.0
