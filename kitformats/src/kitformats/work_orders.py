"""The work-order format: the JSON Schema an office's orders are checked against.

Its one job: :func:`work_order_schema` loads ``work_order.schema.json``, the one schema the kit
checks imported orders with and the field laptop checks them with before it sends them; and
the largest file of orders the kit takes, with the words refusing a larger one.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("work_order.schema.json")
MAX_FILE_BYTES = 10 * 1024 * 1024  # a bigger file of orders is refused whole


def file_too_large(name: object) -> str:
    """The refusal of a file of orders over MAX_FILE_BYTES, read only up to it (its size unknown)."""
    return f"{name}: more than the kit's 10 MB limit: split it"


@lru_cache(maxsize=1)
def work_order_schema() -> dict[str, Any]:
    """The work-order JSON Schema (draft 2020-12), parsed once."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
