"""The pieces the kit's OpenAPI documents are built of.

Its one job: the small builders every document module (kitd.api.openapi for the local API,
kitd.api.network_openapi for paired laptops, kitd.api.pairing_openapi for the pairing port)
writes its operations with, so that none keeps a copy of its own: a reference to a component
schema, a JSON answer, an ``{error, message}`` answer, the 413 of a body over the limit.
"""

from __future__ import annotations

import copy
from typing import Any


def ref(name: str) -> dict[str, str]:
    """A reference to the document's component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """A response whose body is JSON of ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_answer(description: str) -> dict[str, Any]:
    """A response whose body is the kit's ``{error, message[, field]}`` (the Error schema)."""
    return json_answer(ref("Error"), description)


# A body labelled as anything but JSON (no Content-Type at all is read as JSON).
UNSUPPORTED_MEDIA_TYPE = error_answer("The body's Content-Type is not application/json")

# aiohttp refuses a body over its app's client_max_size (1 MiB by default) before any handler
# reads it: every operation that takes a body can answer this.
BODY_TOO_LARGE = error_answer("The body is over the API's limit (1 MiB): refused unread (too_large)")


def with_body_limit(paths: dict[str, Any]) -> None:
    """Every operation of ``paths`` that takes a body documents 413 (its own, where it has one:
    a limit of its own to say)."""
    for operations in paths.values():
        for operation in operations.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation["responses"].setdefault("413", copy.deepcopy(BODY_TOO_LARGE))
