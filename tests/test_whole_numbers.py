"""Whole numbers written as digits (kitd/whole_numbers.py): other scripts' digits, signs and
spaces are not numbers; thousands of digits are just too large."""

from __future__ import annotations

import pytest

from kitd.whole_numbers import SATURATED, digits_value, whole_number_in


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("5", 5),
        ("0005", 5),
        ("0", 0),
        ("500", 500),
        ("501", None),
        ("", None),
        ("+5", None),
        ("-1", None),
        (" 5", None),
        ("5 ", None),
        ("1e2", None),
        ("\u0665", None),  # ARABIC-INDIC DIGIT FIVE: str.isdigit() takes it, the kit does not
        ("\u00b2", None),  # SUPERSCRIPT TWO
        ("9" * 5000, None),
        ("0" * 5000 + "7", 7),
    ],
)
def test_a_whole_number_is_ascii_digits_within_its_bounds(text: str, value: int | None) -> None:
    assert whole_number_in(text, 0, 500) == value


def test_thousands_of_digits_saturate_rather_than_raise() -> None:
    assert digits_value("9" * 5000) == SATURATED
    assert digits_value("9" * 20) == 10**20 - 1
    assert digits_value("1" + "0" * 20) == SATURATED
    assert whole_number_in("9" * 5000, 0, SATURATED) == SATURATED
