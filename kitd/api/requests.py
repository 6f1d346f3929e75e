"""What every handler of the API does with a request: the kit it serves, JSON bodies, errors.

Its one job: the helpers the route modules share: :data:`KIT_KEY` (the app's Kit),
:func:`json_body` (a body read as JSON this kit accepts, or why not), the error
responses, ``{"error": code, "message": ...}`` with the field when there is one, the
kit's errors as HTTP (:func:`kit_error_response`) and a capture's answer.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from aiohttp import web

from kitd.errors import (
    DeviceBusy,
    DeviceGone,
    DeviceTimeout,
    EndOfStream,
    KitError,
    NoFinger,
    NoPenInput,
    NotSteady,
    ProtocolError,
    QualityGateFailed,
)
from kitd.kit import Kit
from kitd.schemas import ShapeError, check
from kitd.services.captures import Capture

KIT_KEY = web.AppKey("kit", Kit)


class UnsupportedMediaType(ValueError):
    """A body that says it is not JSON (415)."""


def error_response(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    body = {"error": code, "message": message}
    if field is not None:
        body["field"] = field
    return web.json_response(body, status=status)


def http_refusal(exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusal (no such route, another method, a body over the limit) as the
    kit's ``{error, message}``, its Allow kept: a 405 says what the route takes (RFC 9110,
    15.5.6)."""
    if exc.status == 413:  # the kit's own word for it, and aiohttp's limit in bytes
        return error_response(413, "too_large", f"the body is refused unread: {exc.text}")
    said = exc.text if exc.status == 408 and exc.text else exc.reason  # the kit's own 408 says why
    response = error_response(exc.status, exc.reason.lower().replace(" ", "_"), said)
    if "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


def bad_request(what: str, exc: ValueError) -> web.Response:
    """400 naming what was wrong, and the field when there is one (ShapeError knows it); 415 for
    a body that is not JSON by its Content-Type."""
    if isinstance(exc, UnsupportedMediaType):
        return error_response(415, "unsupported_media_type", f"{what}: {exc}")
    return error_response(400, "bad_request", f"{what}: {exc}", getattr(exc, "field", None))


def _no_constant(name: str) -> Any:
    # Python's json reads NaN and Infinity, which JSON itself does not have.
    raise ValueError(f"{name} is not a JSON number")


def _json_integer(text: str) -> int:
    # Python's own limit (4300 digits) speaks of sys.set_int_max_str_digits; no number the kit
    # takes has more than a few digits.
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"a whole number of {len(text.lstrip('-'))} digits (at most {MAX_INTEGER_DIGITS})")
    return int(text)


def _json_real(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e309 reads as infinity
        raise ValueError(f"the number {text[:30]} is too large")
    return value


# A JSON body (receipts, a visit's step, a signature) is a few hundred KB at most: one that
# stops coming (a Content-Length larger than what is sent) is answered 408, not waited for.
BODY_WAIT_S = 60.0
# A body nested deeper than this is refused before any schema reads it (jsonschema's own
# messages recurse through the value and ran out of stack near 1000 levels).
MAX_BODY_DEPTH = 64
MAX_INTEGER_DIGITS = 30


def _refusal(document: Any) -> ShapeError | None:
    """Why a parsed body cannot be taken as it is: nested too deep, or a string (key or value)
    with half of a UTF-16 pair (a lone \\udXXX escape: no UTF-8 for it, no file or database
    takes it), naming where as a schema does (the top-level field, if any). None when it can."""
    stack: list[tuple[Any, str, str | None, int]] = [(document, "", None, 0)]
    while stack:
        value, where, field, depth = stack.pop()
        if depth > MAX_BODY_DEPTH:
            return ShapeError(f"nested more than {MAX_BODY_DEPTH} deep", field)
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                half = ord(value[exc.start])
                said = f"{where or 'a string'} contains U+{half:04X}, half of a UTF-16 pair, not a character"
                return ShapeError(said, field)
        elif isinstance(value, dict):
            for key, item in value.items():
                # A key with half a pair names the field as \udXXX: the message stays UTF-8.
                name = key.encode("utf-8", "backslashreplace").decode("utf-8")
                top = field if field is not None else name
                stack.append((key, f"{where}.{name}" if where else "a field name", field, depth + 1))
                stack.append((item, f"{where}.{name}" if where else name, top, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{n}]", field, depth + 1) for n, item in enumerate(value))
    return None


NO_BODY = object()  # what json_body returns for an empty body (not the JSON `null`)


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


async def json_body(request: web.Request) -> Any:
    """The request's JSON body, NO_BODY when it is empty; ValueError when it is not JSON this kit
    reads (ShapeError naming the field for text no file takes or nesting past MAX_BODY_DEPTH),
    UnsupportedMediaType when its Content-Type says it is something else; HTTPRequestTimeout
    (408) when the body stops coming."""
    try:
        raw = await asyncio.wait_for(request.read(), BODY_WAIT_S)
    except TimeoutError:
        length = request.content_length
        said = f"the body did not come whole within {BODY_WAIT_S:g} s (Content-Length {length})"
        raise web.HTTPRequestTimeout(text=said) from None
    if not raw.strip():
        return NO_BODY
    # A body with no Content-Type at all is read as JSON; one labelled otherwise is refused.
    if "Content-Type" in request.headers and not _is_json(request.content_type):
        raise UnsupportedMediaType(f"a body of {request.content_type}: this endpoint reads application/json")
    try:
        document = json.loads(
            raw, parse_constant=_no_constant, parse_int=_json_integer, parse_float=_json_real
        )
    except RecursionError:
        raise ValueError("body is not JSON this kit reads: nested too deeply") from None
    except ValueError as exc:
        raise ValueError(f"body is not JSON: {exc}") from None
    refused = _refusal(document)
    if refused is not None:
        raise ShapeError(f"body is not JSON this kit reads: {refused}", refused.field)
    return document


class RequestRefused(Exception):
    """A request refused before its work began; the API's error middleware answers
    ``response`` (so that handlers need no try/except for a malformed body)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.text)
        self.response = response


async def checked_body(request: web.Request, schema: str, what: str) -> Any:
    """The request's JSON body, required and of the shape ``schema`` names (kitd.schemas);
    else RequestRefused with the 400 (or 415) naming ``what`` and the field."""
    try:
        body = await json_body(request)
        if body is NO_BODY:
            raise ValueError("no body: a JSON object is required")
        check(schema, body)
    except ValueError as exc:
        raise RequestRefused(bad_request(what, exc)) from None
    return body


# The kit's errors as HTTP, most specific first (NoFinger before DeviceTimeout, ...).
KIT_ERROR_STATUS: tuple[tuple[type[KitError], int, str], ...] = (
    (DeviceBusy, 409, "busy"),
    (EndOfStream, 503, "end_of_stream"),
    (DeviceGone, 503, "disconnected"),
    (NoFinger, 504, "no_finger"),
    (NoPenInput, 504, "no_pen_input"),
    (DeviceTimeout, 504, "timeout"),
    (ProtocolError, 502, "protocol_error"),
)


def capture_response(capture: Capture) -> web.Response:
    """A captured image or recording, never cached (it is biometric data)."""
    headers = {"Cache-Control": "no-store", **capture.headers}
    return web.Response(body=capture.body, content_type=capture.content_type, headers=headers)


def kit_error_response(exc: KitError) -> web.Response:
    if isinstance(exc, NotSteady):
        return web.json_response(
            {
                "error": "not_steady",
                "message": str(exc),
                "score": round(exc.score, 1),
                "failed_checks": [],
                "feedback": exc.feedback,
                "passes": exc.passes,
                "consecutive_passes": exc.consecutive_passes,
            },
            status=422,
        )
    if isinstance(exc, QualityGateFailed):
        return web.json_response(
            {
                "error": "quality_gate",
                "message": str(exc),
                "score": round(exc.score, 1),
                "failed_checks": exc.failed_checks,
                "feedback": exc.feedback,
            },
            status=422,
        )
    for error_type, status, code in KIT_ERROR_STATUS:
        if isinstance(exc, error_type):
            return error_response(status, code, str(exc))
    return error_response(500, "error", str(exc))
