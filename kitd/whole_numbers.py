"""Whole numbers a client or a technician wrote as ASCII digits (a header, a query parameter,
a command-line option), read without Python's 4300-digit limit: thousands of digits are just
too large, never a ValueError the caller did not expect.
"""

from __future__ import annotations

# Past any id, count or byte offset SQLite or a file holds.
SATURATED = 2**64


def digits_value(text: str) -> int:
    """The whole number the ASCII digits `text` write, saturated at SATURATED."""
    significant = text.lstrip("0") or "0"
    return int(significant) if len(significant) <= 20 else SATURATED


def whole_number_in(text: str, lowest: int, highest: int) -> int | None:
    """`text` as a whole number from `lowest` to `highest` (ASCII digits only: no sign, no
    space, no other script's digits); None when it is not one."""
    if not (text.isascii() and text.isdigit()):
        return None
    value = digits_value(text)
    return value if lowest <= value <= highest else None
