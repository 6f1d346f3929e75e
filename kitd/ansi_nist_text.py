"""What a text field of an ANSI/NIST-ITL transaction can carry.

Its one job: :func:`text_problem` says why a text cannot go into a sealed bundle's
transaction — its separators (FS, GS, RS, US) and other control characters, half a UTF-16
pair (no UTF-8 for it), and ``999:``, the tag of an image field, at which nistitl's reader
cuts a record short without an error. Checked where such text first enters the kit (work
orders at import, officers' names, names at a visit's identity step) as well as when the
transaction is built, so that a visit never fails at
its very end because of a name typed at its start.
"""

from __future__ import annotations

SEPARATORS = {0x1C: "FS", 0x1D: "GS", 0x1E: "RS", 0x1F: "US"}
IMAGE_TAG = "999:"


def text_problem(text: str, line_breaks: bool = False) -> str | None:
    """Why ``text`` cannot be carried (``"contains ..."``), or None; ``line_breaks`` allows
    newlines and tabs (free notes that stay out of the transaction)."""
    if IMAGE_TAG in text:
        return f"contains '{IMAGE_TAG}'"
    for ch in text:
        code = ord(ch)
        if code in SEPARATORS:
            return f"contains the ANSI/NIST separator {SEPARATORS[code]} (0x{code:02X})"
        if (code < 0x20 or code == 0x7F) and not (line_breaks and ch in "\n\r\t"):
            return f"contains the control character 0x{code:02X}"
        if 0xD800 <= code <= 0xDFFF:  # from a JSON "\udXXX" escape with no partner: no UTF-8 for it
            return f"contains U+{code:04X}, half of a UTF-16 pair, not a character"
    return None
