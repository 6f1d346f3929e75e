"""What kitctl makes of a JSON input it is handed (a statement, a report, receipts, a
recording): the document, or one line saying why it is not one."""

from __future__ import annotations

import pytest

from kitd.cli.inputs import InputUnreadable, json_document


def test_a_json_document_is_read() -> None:
    assert json_document(b'{"bundle": "B-1", "n": [1, 2.5, null]}') == {"bundle": "B-1", "n": [1, 2.5, None]}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"device": "\xe9"}', "not JSON: not UTF-8 text (byte 12)"),
        (b'{"bundle": ', "not JSON: Expecting value at line 1 column 12"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON: nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not JSON: a number of thousands of digits"),
    ],
)
def test_what_is_not_a_json_document_is_said_in_one_line(data: bytes, reason: str) -> None:
    with pytest.raises(InputUnreadable) as refused:
        json_document(data)
    assert str(refused.value) == reason
