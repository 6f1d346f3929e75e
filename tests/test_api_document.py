"""The OpenAPI document and the API cannot drift apart: the app's routes are the document's
paths, method by method; the document is valid OpenAPI 3.1 (checked by an independent
validator), and so is the pairing port's; and what the API accepts is what the document's
schemas say."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from kitd.api import make_app
from kitd.api.openapi import openapi_document
from kitd.api.pairing_openapi import PAIRING_SCHEMAS, pairing_openapi_document
from kitd.config import parse_config
from kitd.kit import Kit
from kitd.schemas import CAPTURE_REQUESTS, SCHEMAS, ShapeError, check

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def app_routes() -> set[tuple[str, str]]:
    app = make_app(Kit(parse_config("")))
    # aiohttp answers HEAD for every GET by itself; the document lists what we serve on purpose.
    return {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def document_routes() -> set[tuple[str, str]]:
    paths = openapi_document()["paths"]
    return {
        (method, path)
        for path, operations in paths.items()
        for method in operations
        if method in HTTP_METHODS
    }


def test_the_apps_routes_are_the_documents_paths_method_by_method() -> None:
    served, documented = app_routes(), document_routes()
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    assert len(served) == 66


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_the_pairing_ports_document_is_valid_openapi_3_1() -> None:
    document = pairing_openapi_document()
    assert document["openapi"].startswith("3.1")
    validate(document)
    for schema in PAIRING_SCHEMAS.values():
        Draft202012Validator.check_schema(schema)
    # Every error answer has its code (the pairing app's routes are its paths: test_hil_pairing.py).
    confirm = document["paths"]["/pairing/v1/confirm"]["post"]["responses"]
    assert sorted(confirm) == ["200", "400", "401", "403", "404", "409", "413"]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_is_a_valid_json_schema(name: str) -> None:
    Draft202012Validator.check_schema(SCHEMAS[name])


def test_each_capture_request_is_in_the_document() -> None:
    body = openapi_document()["paths"]["/api/v1/devices/{id}/capture"]["post"]["requestBody"]
    refs = {s["$ref"].rpartition("/")[2] for s in body["content"]["application/json"]["schema"]["oneOf"]}
    assert refs == set(CAPTURE_REQUESTS.values())


@pytest.mark.parametrize(
    ("schema", "body", "field", "words"),
    [
        ("FingerprintCaptureRequest", {"timeout_s": -1}, "timeout_s", "timeout_s must be above 0, not -1"),
        ("FingerprintCaptureRequest", {"timeout_s": True}, "timeout_s", "timeout_s is not a number"),
        ("FingerprintCaptureRequest", {"raw": "yes"}, "raw", "raw is not true/false: 'yes'"),
        ("FingerprintCaptureRequest", {"seconds": 5}, "seconds", "unknown field 'seconds'"),
        ("IrisCaptureRequest", {"seconds": 5}, "seconds", "unknown field 'seconds'"),
        (
            "SignatureCaptureRequest",
            {"timeout_s": 5},
            "timeout_s",
            "unknown field 'timeout_s' (accepted: seconds)",
        ),
        ("SignatureCaptureRequest", {"seconds": 0}, "seconds", "seconds must be above 0, not 0"),
        ("SessionRequest", {"modality": "iris", "category": "lansia"}, "device_id", "no 'device_id'"),
        (
            "SessionRequest",
            {"device_id": "x", "modality": "face", "category": "lansia"},
            "modality",
            "modality must be one of",
        ),
        ("FingerprintCaptureRequest", [1], None, "the JSON is an array, not an object"),
        ("FingerprintCaptureRequest", None, None, "the JSON is null, not an object"),
        (
            "FingerprintCaptureRequest",
            {"raw": True, "force": True},
            "force",
            "raw and force cannot both be true",
        ),
        ("IrisCaptureRequest", {"raw": True, "force": True}, "force", "raw and force cannot both be true"),
        # A refused value is quoted cut (a 300,000-character NIP once came back whole) and
        # JSON's words are JSON's (not Python's True and None).
        ("SignInRequest", {"nip": "9" * 300_000, "pin": "1234"}, "nip", "(300002 characters) does not match"),
        (
            "NewOfficer",
            {"nip": "1" * 18, "name": "x" * 300, "role": "officer", "pin": "482615"},
            "name",
            "name: 300 characters, at most 200",
        ),
        (
            "VisitException",
            {"reason": "amputated", "confirm": False},
            "confirm",
            "confirm must be true, not false",
        ),
    ],
)
def test_a_wrong_body_is_refused_naming_the_field(
    schema: str, body: object, field: str | None, words: str
) -> None:
    with pytest.raises(ShapeError) as refused:
        check(schema, body)
    assert refused.value.field == field
    assert words in str(refused.value)


@pytest.mark.parametrize(
    ("schema", "body"),
    [
        ("FingerprintCaptureRequest", {}),
        ("FingerprintCaptureRequest", {"timeout_s": 2, "raw": True, "force": False}),
        ("IrisCaptureRequest", {"timeout_s": 0.5}),
        ("IrisCaptureRequest", {"raw": False, "force": True}),
        ("SignatureCaptureRequest", {"seconds": 10}),
        ("SessionRequest", {"device_id": "iris", "modality": "iris", "category": "odgj", "label": "left"}),
    ],
)
def test_a_good_body_passes(schema: str, body: object) -> None:
    check(schema, body)


def test_a_value_of_no_shape_or_of_two_shapes_is_told_apart() -> None:
    """oneOf in the kit's words: never jsonschema's, which quotes the whole value."""
    with pytest.raises(ShapeError, match="^the JSON has none of the shapes it may take$"):
        check("DiagnosticsHistory", {"runs": 5})
    both = {"runs": [], "check": "unit.disk", "findings": []}
    with pytest.raises(ShapeError, match="^the JSON fits more than one of the shapes it may take$"):
        check("DiagnosticsHistory", both)
    check("DiagnosticsHistory", {"runs": []})
