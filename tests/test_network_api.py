"""HIL: the network API for paired field laptops, through the real daemon and real TLS.

One kitd for the module, with the network API on loopback (TLS 1.3, mutual TLS): its outbox
holds bundles sealed before it started (hil.outbox_rig), and laptops are paired in its database
as pairing records them (kitd.store.outbox.pair_laptop), their TLS certificates self-signed
here as kit-sync makes them. Every path of the network OpenAPI document is walked with no
client certificate, a stranger's, a revoked laptop's (revoked by another process while the
kit runs) and a paired one's; bundles come down whole and by ranges; orders are pushed,
listed, replaced and withdrawn (one while its visit runs: flagged, and the visit still
finishes); outcomes are followed by their cursor; receipts are taken only as the laptop's own;
the audit log's checkpoint and a consistency proof are a laptop's to check.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import json
import re
import socket
import sqlite3
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from jsonschema import Draft202012Validator
from kitformats.audit.checkpoint import open_checkpoint
from kitformats.audit.merkle import tree_hash, verify_consistency
from kitformats.audit.note import parse_signer_key
from kitformats.bundle_statements import check_statement
from kitformats.receipts import receipt_statement
from kitformats.signing import FileSigner
from kitformats.statements import sign_statement
from openapi_spec_validator import validate

from hil.browser import ScreenKit, catalogue, expect, need_browser, open_browser, screen_on
from hil.credentials import self_signed_tls
from hil.events import EventRecorder
from hil.outbox_rig import central_signer, laptop_signer, open_rig, sample_captures, seal_injected
from hil.rig import KitdProcess, venv_script, wait_until
from hil.sample_orders import appointment_in_days, orders_csv, sample_order
from kitd.api.network import RangeRefused, byte_range, make_network_app
from kitd.api.network_openapi import NETWORK_SCHEMAS, network_openapi_document
from kitd.cli.daemon_client import DaemonClient
from kitd.config import parse_config
from kitd.crypto.kit_tls import NetworkTrust, kit_tls_credentials, tls_fingerprint
from kitd.kit import Kit
from kitd.store.audit import AuditEntry, entry_leaf, find_entries
from kitd.store.database import database_path, open_database
from kitd.store.outbox import pair_laptop, revoke_laptop
from kitd.store.visits import (
    OrderNotPending,
    end_visit,
    load_visit,
    outcomes_since,
    pending_order,
    save_visit,
)
from kitd.store.work_orders import (
    OrderConflict,
    UnknownOrder,
    check_rows,
    import_orders,
    pending_orders,
    replace_order,
    withdraw_order,
)

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}
LAPTOPS = ("lap-1", "lap-2", "lap-3", "lap-4")
# Every item of a visit excepted: it reaches review with no device at all, and seals.
FINGERS = [f"finger:{n}" for n in range(1, 11)]


@dataclass(frozen=True)
class LaptopTls:
    name: str
    certificate: Path
    key: Path
    pem: str
    fingerprint: str


def laptop_tls(directory: Path, name: str) -> LaptopTls:
    """A laptop's TLS client credential as kit-sync makes it (hil.credentials.self_signed_tls)."""
    key, certificate_path, certificate = self_signed_tls(directory, name)
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    return LaptopTls(name, certificate_path, key, pem, tls_fingerprint(certificate))


def client_context(tls: LaptopTls | None) -> ssl.SSLContext:
    """A laptop's TLS: 1.3, its certificate; the kit's checked by the test, as kit-sync pins it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if tls is not None:
        context.load_cert_chain(tls.certificate, tls.key)
    return context


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Laptop:
    """HTTPS requests to the kit's network API as one laptop (or none: ``tls`` None)."""

    def __init__(self, port: int, tls: LaptopTls | None, kit_fingerprint: str) -> None:
        self.port = port
        self.tls = tls
        self.context = client_context(tls)
        self.kit_fingerprint = kit_fingerprint

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Answer:
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=30)
        try:
            connection.connect()
            der = connection.sock.getpeercert(binary_form=True)
            assert hashlib.sha256(der).hexdigest() == self.kit_fingerprint, "not the kit's certificate"
            sent = dict(headers or {})
            if body is not None and not isinstance(body, bytes):
                body = json.dumps(body).encode()
                sent.setdefault("Content-Type", "application/json")
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            answer = Answer(response.status, response.headers, response.read())
        finally:
            connection.close()
        assert_documented(method, template(path), answer)  # every answer, as the document says
        return answer

    def checked(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.request(method, path, body)
        assert answer.status == 200, (method, path, answer.status, answer.body[:500])
        return answer.json()


@dataclass
class NetworkKit:
    kitd: KitdProcess
    port: int
    kit_fingerprint: str
    tls: dict[str, LaptopTls]
    receipt_keys: dict[str, FileSigner]
    central: FileSigner
    bundles: list[dict[str, Any]]

    def laptop(self, name: str | None) -> Laptop:
        return Laptop(self.port, None if name is None else self.tls[name], self.kit_fingerprint)

    def local(self, role: str) -> DaemonClient:
        return DaemonClient(self.kitd.url, self.kitd.sign_in(role))

    def db(self) -> sqlite3.Connection:
        conn = sqlite3.connect(database_path(self.kitd.data_dir), timeout=10)
        conn.row_factory = sqlite3.Row
        return conn


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkKit]:
    """A kitd with the network API on, two bundles sealed, four laptops paired (lap-2 is the
    one the walk revokes, lap-4's row is taken away) and a stranger's certificate made but
    never paired."""
    workdir = tmp_path_factory.mktemp("network") / "kitd0"
    laptops_dir = workdir / "laptops"
    tls = {name: laptop_tls(laptops_dir, name) for name in (*LAPTOPS, "stranger")}
    with open_rig(workdir / "data", workdir / "office") as rig:
        sample = sample_captures()
        bundles = [seal_injected(rig, sample, f"V-{n:03d}") for n in range(2)]
        receipt_keys = {name: laptop_signer(rig, name, trust=False) for name in LAPTOPS}
        central = central_signer(rig)
        rows = {r["visit_id"]: r for r in rig.outbox.bundles(rig.conn)}
        for name in LAPTOPS:
            receipts = receipt_keys[name].certificate
            pair_laptop(
                rig.conn,
                name,
                tls[name].pem,
                tls[name].fingerprint,
                receipts.public_bytes(serialization.Encoding.PEM).decode(),
                receipts.fingerprint(hashes.SHA256()).hex(),
                dt.datetime.now(dt.UTC),
            )
    settings = {
        "network.enabled": True,
        "network.host": "127.0.0.1",
        "network.port": 0,
        "network.pairing_port": 0,
    }
    kitd = KitdProcess(workdir, settings=settings)
    kitd.start()
    try:
        port = int((kitd.data_dir / "network.port").read_text())
        certificate = x509.load_pem_x509_certificate((kitd.data_dir / "keys/tls/kit-tls.crt").read_bytes())
        yield NetworkKit(
            kitd,
            port,
            tls_fingerprint(certificate),
            tls,
            receipt_keys,
            central,
            [rows[b["id"]] for b in bundles],
        )
    finally:
        kitd.stop()


# --- the document ----------------------------------------------------------------------------


def test_the_network_document_is_valid_openapi_and_is_the_apps_routes() -> None:
    document = network_openapi_document()
    assert document["openapi"].startswith("3.1")
    validate(document)
    for schema in NETWORK_SCHEMAS.values():
        Draft202012Validator.check_schema(schema)
    app = make_network_app(Kit(parse_config("")))
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {(method, path) for path, operations in document["paths"].items() for method in operations}
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    assert all("403" in op["responses"] for ops in document["paths"].values() for op in ops.values())


# --- the kit's TLS ---------------------------------------------------------------------------


def test_the_kits_tls_credentials_are_made_once_and_kept(tmp_path: Path) -> None:
    certificate_path, key_path, certificate = kit_tls_credentials(tmp_path / "keys", "kit-7")
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert certificate.subject.rfc4514_string() == "CN=kit kit-7 TLS"
    again = kit_tls_credentials(tmp_path / "keys", "kit-7")
    assert again == (certificate_path, key_path, certificate), "a second start makes no new certificate"
    # A pair that does not belong together (cut off between the two writes) is made anew.
    other_key = kit_tls_credentials(tmp_path / "other", "kit-7")[1]
    key_path.write_bytes(other_key.read_bytes())
    assert kit_tls_credentials(tmp_path / "keys", "kit-7")[2] != certificate
    # A long kit id still fits X.520's 64 characters.
    assert len(kit_tls_credentials(tmp_path / "long", "k" * 200)[2].subject.rfc4514_string()) <= 67


def _handshake_refusal(port: int, context: ssl.SSLContext) -> str:
    """How the server's TLS refuses this client before any request: the alert's reason, or
    ``closed`` (asyncio's TLS closes the connection without flushing its alert)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw) as tls,
    ):
        try:
            data = tls.recv(1)
        except ssl.SSLError as exc:
            return str(exc.reason)
        except ConnectionError:
            return "closed"
    return "closed" if data == b"" else f"sent {data!r}"


def test_a_laptop_admitted_while_the_context_serves_connects_from_its_next_handshake(tmp_path: Path) -> None:
    """What pairing does to the running network API (kit.network_trust.admit), against a real
    TLS server: before, the handshake fails; after, it completes."""
    trust = NetworkTrust.for_kit(tmp_path / "keys", "kit-7")
    tls = laptop_tls(tmp_path / "laptop", "lap-9")
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve_one() -> None:
            connection, _ = listener.accept()
            try:
                with trust.server_context.wrap_socket(connection, server_side=True) as server:
                    server.sendall(hashlib.sha256(server.getpeercert(binary_form=True)).hexdigest().encode())
            except (ssl.SSLError, OSError):
                connection.close()

        for admitted in (False, True):
            if admitted:
                assert trust.admit(tls.pem) == tls.fingerprint
            thread = threading.Thread(target=serve_one)
            thread.start()
            if admitted:
                with (
                    socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
                    client_context(tls).wrap_socket(raw) as client,
                ):
                    assert client.recv(64).decode() == tls.fingerprint
            else:
                assert _handshake_refusal(port, client_context(tls)) == "TLSV1_ALERT_UNKNOWN_CA"
            thread.join(10)
    with pytest.raises(ValueError, match="not a PEM certificate"):
        trust.admit("a laptop")


def test_a_busy_network_port_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "kitd.toml"
        config.write_text(
            f'data_dir = "{tmp_path / "data"}"\n[api]\nport = 0\nsocket_group = "nobody-here"\n'
            f'[network]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\npairing_port = 0\n'
        )
        result = subprocess.run(
            [venv_script("kitd"), "--config", str(config)], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 1, result.stderr
    errors = [json.loads(line)["msg"] for line in result.stderr.splitlines() if '"error"' in line]
    assert errors == [
        f"cannot listen on 127.0.0.1:{port} (network.host/network.port): address already in use"
    ]
    assert "Traceback" not in result.stderr
    # Its TLS credentials were made nonetheless, for the next start.
    assert (tmp_path / "data/keys/tls/kit-tls.key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-50", (950, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("BYTES=1-1", (1, 1)),
        ("bytes=1000-", "starts past the end of the 1000-byte file"),
        ("bytes=5-4", "ends before it starts"),
        ("bytes=-0", "asks for no byte of the 1000-byte file"),
        ("bytes=0-1,5-6", "is not one range of bytes: bytes=FIRST-LAST"),
        ("items=0-1", "is not one range of bytes"),
        ("bytes=-", "is not one range of bytes"),
        # Thousands of digits are just a large number (Python refuses int() of 4300 and more).
        ("bytes=0-" + "9" * 5000, (0, 999)),
        ("bytes=" + "9" * 5000 + "-", "(5009 characters) starts past the end"),
        ("bytes=-" + "9" * 5000, (0, 999)),
    ],
)
def test_a_byte_range_is_one_range_inside_the_file(header: str, span: tuple[int, int] | str) -> None:
    if isinstance(span, tuple):
        assert byte_range(header, 1000) == span
    else:
        with pytest.raises(RangeRefused) as refused:
            byte_range(header, 1000)
        assert span in str(refused.value)


# --- the store: withdrawn orders and outcomes ------------------------------------------------


def test_an_order_withdrawn_during_its_visit_stays_for_it_and_closes_when_it_ends(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "kitd.sqlite3")
    try:
        import_orders(conn, [sample_order("A-1"), sample_order("B-1")], "", dt.date(2026, 11, 29))
        record = {
            "id": "v1",
            "order_id": "A-1",
            "state": "capturing",
            "started_at": "2026-12-01T01:00:00+00:00",
            "updated_at": "2026-12-01T01:00:00+00:00",
            "outcome": None,
        }
        save_visit(conn, record)
        flagged = dict(record, order_withdrawn=True)
        assert withdraw_order(conn, "A-1", "laptop:lap-1", flagged)["visit_running"] is True
        assert load_visit(conn, "v1")["order_withdrawn"] is True
        assert [o["order_id"] for o in pending_orders(conn, dt.date(2026, 12, 1), "Asia/Jakarta")] == ["B-1"]
        with pytest.raises(OrderNotPending, match="withdrawn by the office"):
            pending_order(conn, "A-1")
        assert pending_order(conn, "A-1", withdrawn_too=True)["name"] == "Sumiati"  # the visit seals it
        # Rescheduled: a withdrawn order does not stay pending for the new time; it closes.
        slot = {"start": "2026-12-02T09:00:00+07:00", "end": "2026-12-02T10:00:00+07:00"}
        ended = dict(
            flagged, state="ended", outcome={"code": "rescheduled", "note": None, "reschedule": slot}
        )
        facts = {"visit": "v1", "order": "A-1", "outcome": "rescheduled", "reschedule": slot}
        end_visit(conn, ended, AuditEntry("officer", "visit_ended", facts), "rescheduled", slot)
        row = conn.execute(
            "SELECT status, content, outcome FROM work_orders WHERE order_id = 'A-1'"
        ).fetchone()
        assert tuple(row) == ("done", None, "rescheduled")
        (outcome,) = outcomes_since(conn, 0, 10)
        assert (outcome["order_id"], outcome["outcome"], outcome["reschedule"]) == (
            "A-1",
            "rescheduled",
            slot,
        )
        assert outcomes_since(conn, outcome["cursor"], 10) == []
        with pytest.raises(OrderConflict, match="was withdrawn on") as closed:
            replace_order(conn, check_rows([sample_order("A-1", name="X")])[0])
        assert closed.value.code == "order_withdrawn"
        # No visit: closed at once, its personal fields gone.
        assert withdraw_order(conn, "B-1")["visit_running"] is False
        row = conn.execute(
            "SELECT status, content, withdrawn_at FROM work_orders WHERE order_id = 'B-1'"
        ).fetchone()
        assert row["status"] == "done" and row["content"] is None and row["withdrawn_at"]
        with pytest.raises(UnknownOrder):
            withdraw_order(conn, "C-1")
    finally:
        conn.close()


# --- who may connect -------------------------------------------------------------------------


def _concrete(path: str) -> str:
    return path.replace("{id}", "no-such-id")


def _refused_by_tls(laptop: Laptop, method: str, path: str) -> str:
    """Send the request; the TLS refusal that came instead of an answer (never an HTTP status)."""
    try:
        answer = laptop.request(method, path, [] if method in ("post", "put") else None)
    except ssl.SSLError as exc:
        return str(exc.reason)
    except ConnectionError as exc:  # the alert can be lost behind a reset: still no answer
        return type(exc).__name__
    raise AssertionError(f"{method} {path} was answered {answer.status} over an unpaired TLS connection")


def template(path: str) -> str:
    """The document's path for a request's: /api/v1/orders/NET-1?x=1 -> /api/v1/orders/{id}."""
    path = path.partition("?")[0]
    for collection in ("/api/v1/orders/", "/api/v1/bundles/"):
        if path.startswith(collection):
            return collection + "{id}"
    return path


def assert_documented(method: str, path: str, answer: Answer) -> None:
    """The answer's status is documented for the operation, and a JSON body has its shape (a
    HEAD is answered as its GET, without the body)."""
    document = network_openapi_document()
    head = method == "HEAD"
    if head:
        method = "GET"
        assert answer.body == b"", (path, "a HEAD answer with a body")
    responses = document["paths"][path][method.lower()]["responses"]
    assert str(answer.status) in responses, (method, path, answer.status, "undocumented status")
    content = responses[str(answer.status)].get("content", {})
    if "application/json" not in content or head:
        return
    pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in ("paths", path, method.lower()))
    shape = {**document, "$ref": f"#/{pointer}/responses/{answer.status}/content/application~1json/schema"}
    errors = list(Draft202012Validator(shape).iter_errors(answer.json()))
    assert not errors, (method, path, answer.status, [e.message for e in errors[:3]])


def test_every_path_refuses_strangers_and_a_revoked_laptop_and_serves_a_paired_one(kit: NetworkKit) -> None:
    paths = network_openapi_document()["paths"]
    operations = [(m, p) for p, ops in paths.items() for m in ops if m in HTTP_METHODS]
    assert len(operations) == 15
    # Before any request, a client that only listens: the handshake ends the connection.
    assert _handshake_refusal(kit.port, client_context(None)) in (
        "closed",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    )
    assert _handshake_refusal(kit.port, client_context(kit.tls["stranger"])) in (
        "closed",
        "TLSV1_ALERT_UNKNOWN_CA",
    )
    revoked = kit.laptop("lap-2")
    assert revoked.checked("GET", "/api/v1/status")["version"]
    # Revoked by another process (kitctl writes the kit's database directly): the next request
    # is refused, though its certificate still passes the handshake.
    conn = open_database(database_path(kit.kitd.data_dir))
    try:
        revoke_laptop(conn, "lap-2", dt.datetime.now(dt.UTC))
    finally:
        conn.close()
    paired = kit.laptop("lap-1")
    for method, path in operations:
        where = _concrete(path)
        for who in (None, "stranger"):
            reason = _refused_by_tls(kit.laptop(who), method.upper(), where)
            assert reason in ("TLSV13_ALERT_CERTIFICATE_REQUIRED", "TLSV1_ALERT_UNKNOWN_CA") or reason in (
                "ConnectionResetError",
                "BrokenPipeError",
                "RemoteDisconnected",
            ), (who, method, path, reason)
        body = [] if method in ("post", "put") else None
        refused = revoked.request(method.upper(), where, body)
        assert refused.status == 403, (method, path, refused.status, refused.body)
        assert refused.json()["error"] == "laptop_revoked" and "revoked on" in refused.json()["message"]
        served = paired.request(method.upper(), where, body)
        assert served.status != 403, (method, path, served.status, served.body)
        assert served.status < 500, (method, path, served.status, served.body)


def test_a_certificate_the_handshake_admits_but_the_database_does_not_know_is_not_paired(
    kit: NetworkKit,
) -> None:
    """The trust store only grows while the kit runs (pairing admits a certificate before it is
    recorded): a certificate that passes the handshake with no laptop row is still refused."""
    laptop = kit.laptop("lap-4")
    assert laptop.checked("GET", "/api/v1/status")["version"]
    with kit.db() as conn:
        conn.execute("DELETE FROM laptops WHERE name = 'lap-4'")
    refused = laptop.request("GET", "/api/v1/status")
    assert refused.status == 403 and refused.json()["error"] == "not_paired", refused.body


# --- bundles ---------------------------------------------------------------------------------


def test_bundles_are_listed_with_their_statements_and_come_down_whole_and_by_ranges(kit: NetworkKit) -> None:
    laptop = kit.laptop("lap-1")
    listed = {b["bundle_id"]: b for b in laptop.checked("GET", "/api/v1/bundles")["bundles"]}
    first = kit.bundles[0]
    assert {b["bundle_id"] for b in kit.bundles} <= set(listed)
    entry = listed[first["bundle_id"]]
    assert (entry["size"], entry["sha256"], entry["sealed_at"]) == (
        first["size"],
        first["sha256"],
        first["sealed_at"],
    )
    kit_signing = x509.load_pem_x509_certificate((kit.kitd.data_dir / "keys/kit.crt").read_bytes())
    on_disk = (kit.kitd.data_dir / "outbox" / f"{first['bundle_id']}.p7m").read_bytes()
    check_statement(entry["statement"], on_disk, [], kit_signing, pinned=kit_signing)
    with kit.db() as db:
        states = dict(
            db.execute("SELECT bundle_id, offered_to FROM outbox WHERE state = 'offered'").fetchall()
        )
        synced = db.execute("SELECT last_sync_at FROM laptops WHERE name = 'lap-1'").fetchone()[0]
    assert states[first["bundle_id"]] == "lap-1" and synced is not None

    path = f"/api/v1/bundles/{first['bundle_id']}"
    whole = laptop.request("GET", path)
    etag = f'"{first["sha256"]}"'
    assert whole.status == 200 and whole.body == on_disk
    assert whole.headers["Content-Type"] == "application/octet-stream"
    assert whole.headers["ETag"] == etag and whole.headers["Accept-Ranges"] == "bytes"
    size = len(on_disk)
    # A download cut after 1000 bytes, resumed from there: byte-identical.
    head = laptop.request("GET", path, headers={"Range": "bytes=0-999"})
    assert head.status == 206 and head.headers["Content-Range"] == f"bytes 0-999/{size}"
    rest = laptop.request("GET", path, headers={"Range": "bytes=1000-", "If-Range": etag})
    assert rest.status == 206 and rest.headers["Content-Range"] == f"bytes 1000-{size - 1}/{size}"
    assert head.body + rest.body == on_disk
    assert hashlib.sha256(head.body + rest.body).hexdigest() == first["sha256"]
    tail = laptop.request("GET", path, headers={"Range": "bytes=-10"})
    assert tail.status == 206 and tail.body == on_disk[-10:]
    beyond = laptop.request("GET", path, headers={"Range": f"bytes={size}-"})
    assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{size}"
    assert beyond.json() == {
        "error": "range_not_satisfiable",
        "message": f"Range 'bytes={size}-' starts past the end of the {size}-byte file",
    }
    several = laptop.request("GET", path, headers={"Range": "bytes=0-1,5-6"})
    assert several.status == 416 and "is not one range of bytes" in several.json()["message"]
    assert several.headers["ETag"] == etag and several.headers["Content-Range"] == f"bytes */{size}"
    # HEAD: the same status and headers, no body.
    bare = laptop.request("HEAD", path, headers={"Range": "bytes=0-1,5-6"})
    assert bare.status == 416 and bare.body == b"" and bare.headers["Content-Range"] == f"bytes */{size}"
    # A unit the kit does not serve is ignored (RFC 9110, 14.2): the whole file.
    items = laptop.request("GET", path, headers={"Range": "items=0-1"})
    assert items.status == 200 and items.body == on_disk and "Content-Range" not in items.headers
    # A part of another file (another ETag): the whole file, not a range of this one.
    other = laptop.request("GET", path, headers={"Range": "bytes=1000-", "If-Range": '"' + "0" * 64 + '"'})
    assert other.status == 200 and other.body == on_disk
    unknown = laptop.request("GET", "/api/v1/bundles/00000000-0000-4000-8000-000000000000")
    assert unknown.status == 404 and unknown.json()["error"] == "unknown_bundle"


# --- orders ----------------------------------------------------------------------------------


def _last_actor(kit: NetworkKit, action: str) -> str:
    with kit.db() as db:
        row = db.execute(
            "SELECT actor FROM audit_entries WHERE action = ? ORDER BY seq DESC LIMIT 1", (action,)
        ).fetchone()
    return str(row[0])


def test_orders_are_pushed_listed_replaced_and_withdrawn(kit: NetworkKit) -> None:
    laptop = kit.laptop("lap-1")
    pushed = laptop.checked("POST", "/api/v1/orders", [sample_order("NET-001"), sample_order("NET-002")])
    assert (pushed["imported"], pushed["rejected"]) == (2, [])
    assert _last_actor(kit, "orders_imported") == "laptop:lap-1"
    csv_pushed = laptop.request(
        "POST", "/api/v1/orders", orders_csv([sample_order("NET-003")]), {"Content-Type": "text/csv"}
    )
    assert csv_pushed.status == 200 and csv_pushed.json()["imported"] == 1
    bad_row = laptop.checked("POST", "/api/v1/orders", [sample_order("NET-004", nik="123")])
    assert bad_row["rejected"][0]["row"] == 1 and bad_row["rejected"][0]["errors"][0]["field"] == "nik"

    pending = {o["order_id"]: o for o in laptop.checked("GET", "/api/v1/orders?status=pending")["orders"]}
    assert {"NET-001", "NET-002", "NET-003"} <= set(pending)
    assert pending["NET-001"]["order"]["name"] == "Sumiati" and pending["NET-001"]["updated_at"] is None
    wrong = laptop.request("GET", "/api/v1/orders?status=lost")
    assert wrong.status == 400 and wrong.json()["field"] == "status"

    # Replaced whole; the same again changes nothing; a bad one is the row's report.
    path = "/api/v1/orders/NET-001"
    replaced = laptop.checked("PUT", path, sample_order("NET-001", name="Sumiati Rahayu"))
    assert replaced == {"order_id": "NET-001", "status": "pending", "changed": True, "warnings": []}
    assert laptop.checked("PUT", path, sample_order("NET-001", name="Sumiati Rahayu"))["changed"] is False
    assert _last_actor(kit, "order_replaced") == "laptop:lap-1"
    officer = kit.local("officer")
    names = {o["order_id"]: o["name"] for o in officer.checked("GET", "/api/v1/orders").json()}
    assert names["NET-001"] == "Sumiati Rahayu"
    invalid = laptop.request("PUT", path, sample_order("NET-001", kk="0000000000000000"))
    assert invalid.status == 400 and invalid.json()["rejected"][0]["errors"][0]["field"] == "kk"
    elsewhere = laptop.request("PUT", path, sample_order("NET-002"))
    assert elsewhere.status == 400 and elsewhere.json()["field"] == "order_id"
    missing = laptop.request("PUT", "/api/v1/orders/NET-404", sample_order("NET-404"))
    assert missing.status == 404 and missing.json()["error"] == "unknown_order"

    # Withdrawn with no visit: closed at once, its personal fields gone; again changes nothing.
    gone = laptop.checked("DELETE", "/api/v1/orders/NET-002")
    assert gone == {"order_id": "NET-002", "status": "withdrawn", "visit_running": False}
    assert laptop.checked("DELETE", "/api/v1/orders/NET-002") == gone
    assert _last_actor(kit, "order_withdrawn") == "laptop:lap-1"
    withdrawn = {o["order_id"]: o for o in laptop.checked("GET", "/api/v1/orders?status=withdrawn")["orders"]}
    assert withdrawn["NET-002"]["order"] is None and withdrawn["NET-002"]["withdrawn_at"]
    assert "NET-002" not in {o["order_id"] for o in officer.checked("GET", "/api/v1/orders").json()}
    late = laptop.request("PUT", "/api/v1/orders/NET-002", sample_order("NET-002"))
    assert late.status == 409 and late.json()["error"] == "order_withdrawn"
    start = officer.request("POST", "/api/v1/visits", {"order_id": "NET-002"})
    assert start.status == 404 and "withdrawn" in start.json()["message"]
    assert laptop.request("DELETE", "/api/v1/orders/NET-404").status == 404


def test_a_404_quotes_a_long_id_cut_short(kit: NetworkKit) -> None:
    """An id from the path that names nothing is quoted in the 404's one-line message, a very
    long one cut (it would otherwise come back whole, 5000 characters in one line)."""
    long_id = "x" * 5000
    officer, supervisor = kit.local("officer"), kit.local("supervisor")
    technician = kit.local("technician")
    asked = [
        (kit.laptop("lap-1"), "GET", f"/api/v1/bundles/{long_id}", None, "unknown_bundle"),
        (kit.laptop("lap-1"), "DELETE", f"/api/v1/orders/{long_id}", None, "unknown_order"),
        (supervisor, "GET", f"/api/v1/outbox/bundles/{long_id}", None, "unknown_bundle"),
        (supervisor, "POST", f"/api/v1/officers/{long_id}/unlock", None, "unknown_officer"),
        (officer, "GET", f"/api/v1/visits/{long_id}", None, "unknown_visit"),
        (officer, "POST", f"/api/v1/orders/{long_id}/outcome", {"code": "not_home"}, "unknown_order"),
        (technician, "GET", f"/api/v1/sessions/{long_id}", None, "unknown_session"),
        (technician, "POST", f"/api/v1/devices/{long_id}/capture", {}, "unknown_device"),
    ]
    for client, method, path, body, code in asked:
        answer = client.request(method, path, body)
        said = answer.json()
        assert (answer.status, said["error"]) == (404, code), (path[:40], answer.status, said)
        assert "'xxxxxxxx" in said["message"] and "(5002 characters)" in said["message"], said
        assert len(said["message"]) < 120, (path[:40], said["message"][:200])
    # An ordinary id is quoted whole, as before.
    short = supervisor.request("GET", "/api/v1/outbox/bundles/no-such-bundle").json()["message"]
    assert short == "no bundle 'no-such-bundle' in the outbox"


def test_pushed_orders_are_read_as_their_content_type_says(kit: NetworkKit) -> None:
    """Found by schemathesis (tests/test_schemathesis.py): a JSON array labelled text/csv was
    read as JSON (200, each row refused). The label is what the body is: CSV here, whose header
    has no order_id column, so the push is refused whole, naming why."""
    laptop = kit.laptop("lap-1")
    as_csv = laptop.request("POST", "/api/v1/orders", b"[null, null]", {"Content-Type": "text/csv"})
    assert as_csv.status == 400 and "no order_id column" in as_csv.json()["message"], as_csv.body
    as_json = laptop.request(
        "POST", "/api/v1/orders", orders_csv([sample_order("NET-005")]), {"Content-Type": "application/json"}
    )
    assert as_json.status == 400 and "not valid JSON" in as_json.json()["message"], as_json.body
    # Unlabelled, a body is still read by what it holds (kitctl's files, curl's -d).
    unlabelled = laptop.request("POST", "/api/v1/orders", json.dumps([sample_order("NET-005")]).encode())
    assert unlabelled.status == 200 and unlabelled.json()["imported"] == 1, unlabelled.body


def test_a_body_over_the_limit_is_a_413_every_operation_documents(kit: NetworkKit) -> None:
    """Found beside the schemathesis runs (tests/test_schemathesis.py): aiohttp refuses a body
    over 1 MiB with 413 before any handler reads it, which PUT /api/v1/orders/{id} did not
    document. Every operation that takes a body says so now (the orders import reads up to
    10 MB itself: this one is not JSON, 400)."""
    laptop = kit.laptop("lap-1")
    over = b" " * (1024 * 1024 + 1)
    document = network_openapi_document()
    taking = [(m, p) for p, ops in document["paths"].items() for m, op in ops.items() if "requestBody" in op]
    assert ("put", "/api/v1/orders/{id}") in taking
    for method, path in taking:
        answer = laptop.request(method.upper(), _concrete(path), over, {"Content-Type": "application/json"})
        if path == "/api/v1/orders":
            assert answer.status == 400, answer.body
        else:
            assert answer.status == 413 and answer.json()["error"] == "too_large", (path, answer.body)


def _except_everything(officer: DaemonClient, visit_id: str) -> dict[str, Any]:
    """Every item excepted, confirmed: the visit reaches review with no device."""
    reasons = {"finger": "amputated", "iris": "missing", "signature": "cannot_sign"}
    visit: dict[str, Any] = {}
    for item in [*FINGERS, "iris:right", "iris:left", "signature"]:
        body = {"reason": reasons[item.split(":")[0]], "confirm": True}
        visit = officer.checked("POST", f"/api/v1/visits/{visit_id}/items/{item}/except", body).json()
    assert visit["state"] == "review", visit["state"]
    return visit


def _start_visit(officer: DaemonClient, order_id: str) -> dict[str, Any]:
    visit = officer.checked("POST", "/api/v1/visits", {"order_id": order_id}).json()
    identity = {"present": ["Sumiati", "Rina"], "consent_by": "applicant"}
    return officer.checked("POST", f"/api/v1/visits/{visit['id']}/identity", identity).json()


def test_an_order_withdrawn_during_its_visit_is_flagged_and_the_visit_may_still_finish(
    kit: NetworkKit,
) -> None:
    laptop = kit.laptop("lap-1")
    assert laptop.checked("POST", "/api/v1/orders", [sample_order("NET-010")])["imported"] == 1
    officer_token = kit.kitd.sign_in("officer")
    officer = DaemonClient(kit.kitd.url, officer_token)
    visit = _start_visit(officer, "NET-010")
    assert visit["order_withdrawn"] is False
    events = EventRecorder(kit.kitd.url, officer_token)
    try:
        busy = laptop.request("PUT", "/api/v1/orders/NET-010", sample_order("NET-010", name="Other"))
        assert busy.status == 409 and busy.json()["error"] == "visit_running"
        answer = laptop.checked("DELETE", "/api/v1/orders/NET-010")
        assert answer == {"order_id": "NET-010", "status": "withdrawn", "visit_running": True}
        said = events.wait_for(lambda e: e["type"] == "order_withdrawn")["data"]
        assert said == {"order_id": "NET-010", "visit": visit["id"], "visit_running": True}
        events.wait_for(lambda e: e["type"] == "visit" and e["data"]["change"] == "order_withdrawn")
    finally:
        events.close()
    shown = officer.checked("GET", f"/api/v1/visits/{visit['id']}").json()
    assert shown["order_withdrawn"] is True and shown["state"] == "capturing"
    listed = {o["order_id"]: o for o in laptop.checked("GET", "/api/v1/orders")["orders"]}
    assert listed["NET-010"]["status"] == "withdrawn" and listed["NET-010"]["order"] is None
    assert "NET-010" not in {o["order_id"] for o in officer.checked("GET", "/api/v1/orders").json()}

    # The officer goes on; the visit finishes and is sealed; the order then closes.
    _except_everything(officer, visit["id"])
    finished = officer.checked("POST", f"/api/v1/visits/{visit['id']}/finish").json()
    assert finished["state"] == "finished" and finished["order_withdrawn"] is True
    assert finished["bundle"]["size"] > 0
    listed = {o["order_id"]: o for o in laptop.checked("GET", "/api/v1/orders")["orders"]}
    assert (listed["NET-010"]["status"], listed["NET-010"]["outcome"]) == ("withdrawn", "finished")
    with kit.db() as db:
        content = db.execute("SELECT content FROM work_orders WHERE order_id = 'NET-010'").fetchone()[0]
    assert content is None, "the withdrawn order's personal fields went when its visit ended"
    bundles = laptop.checked("GET", "/api/v1/bundles")["bundles"]
    assert finished["bundle"]["id"] in {b["bundle_id"] for b in bundles}
    outcomes = laptop.checked("GET", "/api/v1/outcomes?after=0&limit=1000")["outcomes"]
    assert {"order_id": "NET-010", "visit_id": visit["id"], "outcome": "finished"}.items() <= next(
        o for o in outcomes if o["order_id"] == "NET-010"
    ).items()
    again = laptop.request("DELETE", "/api/v1/orders/NET-010")
    assert again.status == 200 and again.json()["visit_running"] is False


def test_the_officers_screen_says_the_order_was_withdrawn_in_their_language(kit: NetworkKit) -> None:
    need_browser()
    laptop = kit.laptop("lap-1")
    assert laptop.checked("POST", "/api/v1/orders", [sample_order("NET-030")])["imported"] == 1
    officer = kit.local("officer")
    visit = _start_visit(officer, "NET-030")
    screen_kit = ScreenKit(kit.kitd, [], "Asia/Jakarta")
    try:
        with open_browser() as browser, screen_on(screen_kit, browser) as screen:
            page = screen.page
            screen_kit.sign_in_browser(page)
            shown = page.locator('main[data-screen="visit"]')
            expect(shown).to_have_attribute("data-visit-id", visit["id"])
            expect(page.get_by_test_id("order-withdrawn")).to_have_count(0)
            laptop.checked("DELETE", "/api/v1/orders/NET-030")
            # Said at once (the visit's event), in the officer's language.
            banner = page.get_by_test_id("order-withdrawn")
            expect(banner).to_have_text(re.compile(re.escape(catalogue("id")["visit.order_withdrawn"])))
            expect(banner).to_have_attribute("role", "alert")
            screen.look("visit-order-withdrawn")
    finally:
        officer.checked("POST", f"/api/v1/visits/{visit['id']}/outcome", {"code": "not_home"})


# --- outcomes --------------------------------------------------------------------------------


def test_outcomes_follow_a_cursor(kit: NetworkKit) -> None:
    laptop = kit.laptop("lap-1")
    everything = laptop.checked("GET", "/api/v1/outcomes?after=0&limit=1000")
    cursors = [o["cursor"] for o in everything["outcomes"]]
    assert cursors == sorted(cursors) and len(set(cursors)) == len(cursors)
    sealed = {o["visit_id"]: o for o in everything["outcomes"] if o["visit_id"] in ("V-000", "V-001")}
    assert {o["outcome"] for o in sealed.values()} == {"finished"} and len(sealed) == 2
    assert everything["next"] == cursors[-1]
    nothing_new = laptop.checked("GET", f"/api/v1/outcomes?after={everything['next']}")
    assert nothing_new == {"outcomes": [], "next": everything["next"]}
    for wrong in ("after=" + "9" * 5000, "limit=" + "1" * 5000):
        refused = laptop.request("GET", f"/api/v1/outcomes?{wrong}")
        assert refused.status == 400 and "characters) is not a whole number" in refused.json()["message"]
    first = laptop.checked("GET", "/api/v1/outcomes?limit=1")
    assert first["outcomes"] == everything["outcomes"][:1] and first["next"] == cursors[0]

    # A visit rescheduled on the kit: the next page holds it, with its new appointment.
    assert laptop.checked("POST", "/api/v1/orders", [sample_order("NET-020")])["imported"] == 1
    officer = kit.local("officer")
    visit = _start_visit(officer, "NET-020")
    slot = appointment_in_days(1)
    officer.checked(
        "POST", f"/api/v1/visits/{visit['id']}/outcome", {"code": "rescheduled", "reschedule": slot}
    )
    page = laptop.checked("GET", f"/api/v1/outcomes?after={everything['next']}")
    assert [(o["order_id"], o["visit_id"], o["outcome"], o["reschedule"]) for o in page["outcomes"]] == [
        ("NET-020", visit["id"], "rescheduled", slot)
    ]
    assert page["next"] == page["outcomes"][0]["cursor"] > everything["next"]
    pending = {o["order_id"]: o for o in laptop.checked("GET", "/api/v1/orders?status=pending")["orders"]}
    assert (
        pending["NET-020"]["outcome"] == "rescheduled" and pending["NET-020"]["order"]["appointment"] == slot
    )
    for query, field in (
        ("after=-1", "after"),
        ("after=x", "after"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
    ):
        refused = laptop.request("GET", f"/api/v1/outcomes?{query}")
        assert refused.status == 400 and refused.json()["field"] == field, query


# --- receipts --------------------------------------------------------------------------------


def _receipt(signer: FileSigner, kind: str, row: dict[str, Any], by: str) -> dict[str, Any]:
    statement = receipt_statement(
        kind, row["bundle_id"], row["sha256"], row["size"], dt.datetime.now(dt.UTC), by
    )
    return sign_statement(statement, signer)


def test_receipts_are_taken_only_as_the_connections_laptops_own(kit: NetworkKit) -> None:
    laptop = kit.laptop("lap-1")
    first, second = kit.bundles
    mine = _receipt(kit.receipt_keys["lap-1"], "laptop_receipt", first, "lap-1")
    # lap-3's own receipt, well signed, brought over lap-1's connection: not lap-1's to give.
    theirs = _receipt(kit.receipt_keys["lap-3"], "laptop_receipt", second, "lap-3")
    central_here = _receipt(kit.central, "central_receipt", second, "central")
    answer = laptop.checked("POST", "/api/v1/receipts", [mine, theirs, central_here])
    assert [r["result"] for r in answer["results"]] == ["accepted", "refused", "refused"]
    assert "it came from laptop 'lap-1'" in answer["results"][1]["reason"]
    assert "only laptop_receipt" in answer["results"][2]["reason"]
    assert _last_actor(kit, "bundle_acknowledged") == "laptop:lap-1"
    replay = laptop.checked("POST", "/api/v1/receipts", mine)
    assert replay["results"][0]["result"] == "duplicate"
    only_theirs = laptop.request("POST", "/api/v1/receipts", theirs)
    assert only_theirs.status == 422 and only_theirs.json()["error"] == "receipts_refused"
    # A statement that names no type or no laptop says so (not "of type 'None'").
    for missing, says in (("type", "names no type: only laptop_receipt"), ("by", "names no laptop ('by')")):
        bare = {"statement": {k: v for k, v in mine["statement"].items() if k != missing}, "signature": "x"}
        answer = laptop.request("POST", "/api/v1/receipts", bare).json()
        assert says in answer["results"][0]["reason"], answer

    wrong_door = laptop.checked(
        "POST", "/api/v1/central-receipts", [mine, _receipt(kit.central, "central_receipt", first, "central")]
    )
    assert [r["result"] for r in wrong_door["results"]] == ["refused", "accepted"]
    assert "only central_receipt" in wrong_door["results"][0]["reason"]
    shown = kit.local("supervisor").checked("GET", f"/api/v1/outbox/bundles/{first['bundle_id']}").json()
    assert shown["state"] == "delivered" and shown["acknowledged_by"] == "lap-1"
    still = kit.local("supervisor").checked("GET", f"/api/v1/outbox/bundles/{second['bundle_id']}").json()
    assert still["state"] in ("sealed", "offered")
    assert wait_until(
        lambda: laptop.checked("GET", "/api/v1/status")["outbox"]["bundles"]["delivered"] >= 1, "delivered"
    )


# --- the audit log ---------------------------------------------------------------------------


def test_a_laptop_gets_the_signed_checkpoint_and_a_consistency_proof(kit: NetworkKit) -> None:
    """What kit-sync checks at every sync: the checkpoint opens with the kit's note key (the one
    pairing hands out), its root is the tree of the entries, and a proof from an older size
    verifies against both roots."""
    laptop = kit.laptop("lap-1")
    answer = laptop.request("GET", "/api/v1/audit/checkpoint")
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain")
    note_key = (kit.kitd.data_dir / "keys" / "audit-note.key").read_text().strip()
    checkpoint = open_checkpoint(answer.body, [parse_signer_key(note_key).verifier])
    entries = kit.local("supervisor").checked("GET", "/api/v1/audit/entries?count=1000").json()["entries"]
    leaves = [entry_leaf(entry) for entry in entries[: checkpoint.size]]
    assert checkpoint.size >= 2 and tree_hash(leaves) == checkpoint.root_hash
    old = checkpoint.size // 2
    path = f"/api/v1/audit/proof/consistency?old={old}&new={checkpoint.size}"
    proof = laptop.request("GET", path)
    assert_documented("GET", "/api/v1/audit/proof/consistency", proof)
    hashes = [base64.b64decode(h) for h in proof.json()["proof"]]
    verify_consistency(old, checkpoint.size, tree_hash(leaves[:old]), checkpoint.root_hash, hashes)
    beyond = laptop.request("GET", f"/api/v1/audit/proof/consistency?old={old}&new=99999")
    assert beyond.status == 400 and beyond.json()["field"] == "new"
    assert_documented("GET", "/api/v1/audit/proof/consistency", beyond)


# --- the kit's clock -------------------------------------------------------------------------


def _clock_entries(kit: NetworkKit) -> list[dict[str, Any]]:
    with kit.db() as db:
        return [e for e in find_entries(db) if e["action"].startswith("clock_")]


def test_a_laptops_time_corrects_the_kits_clock_beyond_the_skew_and_confirms_it(kit: NetworkKit) -> None:
    laptop = kit.laptop("lap-1")
    before = laptop.checked("GET", "/api/v1/status")["clock"]
    assert before["confirmed"] is False and before["confirmed_at"] is None and before["offset_s"] == 0
    hour_ahead = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    answer = laptop.checked("POST", "/api/v1/clock", {"laptop_time": hour_ahead.isoformat()})
    try:
        assert answer["corrected"] is True and answer["by_system"] is False
        assert 3590 < answer["skew_s"] < 3610 and answer["max_skew_s"] == 120
        status = laptop.checked("GET", "/api/v1/status")["clock"]
        assert status["confirmed"] is True and status["confirmed_by"] == "lap-1"
        assert 3590 < status["offset_s"] < 3610
        kit_now = dt.datetime.fromisoformat(status["now"].replace("Z", "+00:00"))
        assert abs((kit_now - hour_ahead).total_seconds()) < 60
        corrected = _clock_entries(kit)[-1]
        assert (corrected["actor"], corrected["action"]) == ("laptop:lap-1", "clock_corrected")
        assert corrected["details"]["kit_time_before"] == answer["kit_time_before"]
        assert corrected["details"]["kit_time"] == answer["kit_time"]
        # The kit's screen says so too, in the officer's summary.
        summary = kit.local("officer").checked("GET", "/api/v1/summary").json()["clock"]
        on_screen = dt.datetime.fromisoformat(summary.pop("now"))  # the corrected clock, for the page
        assert abs((on_screen - hour_ahead).total_seconds()) < 60
        assert summary == {"confirmed": True, "confirmed_at": status["confirmed_at"], "went_back": False}
        # Within the skew: confirmed again, not corrected, nothing new in the audit log.
        count = len(_clock_entries(kit))
        near = laptop.checked(
            "POST", "/api/v1/clock", {"laptop_time": (hour_ahead + dt.timedelta(seconds=30)).isoformat()}
        )
        assert near["corrected"] is False and len(_clock_entries(kit)) == count
        # The correction is written on the corrected clock, which says so.
        assert corrected["clock_confirmed"] == 1
        assert kit.local("supervisor").checked("GET", "/api/v1/status").json()["clock"]["confirmed"]
    finally:
        back = laptop.checked("POST", "/api/v1/clock", {"laptop_time": dt.datetime.now(dt.UTC).isoformat()})
        assert back["corrected"] is True


def test_a_laptop_time_past_the_kits_certificate_is_refused(kit: NetworkKit) -> None:
    # Years ahead (a laptop's battery-dead clock, a mistyped year): taken, it would expire the
    # kit's own certificate and no visit could be sealed until another laptop set it back.
    certificate = x509.load_pem_x509_certificate((kit.kitd.data_dir / "keys/kit.crt").read_bytes())
    later = certificate.not_valid_after_utc + dt.timedelta(days=1)
    before = kit.laptop("lap-1").checked("GET", "/api/v1/status")["clock"]
    refused = kit.laptop("lap-1").request("POST", "/api/v1/clock", {"laptop_time": later.isoformat()})
    assert refused.status == 400 and refused.json()["field"] == "laptop_time", refused.body
    assert "after the kit's certificate expires" in refused.json()["message"]
    after = kit.laptop("lap-1").checked("GET", "/api/v1/status")["clock"]
    assert (after["offset_s"], after["confirmed_at"]) == (before["offset_s"], before["confirmed_at"])


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "laptop_time"),
        ({"laptop_time": "tomorrow"}, "laptop_time"),
        ({"laptop_time": "2026-11-30T12:00:00"}, "no zone"),
        ({"laptop_time": "1970-01-01T00:00:00Z"}, "not a plausible time"),
        ({"laptop_time": "2026-11-30T12:00:00Z", "extra": 1}, "extra"),
        ({"laptop_time": 1764504000}, "laptop_time"),
        ({"laptop_time": "2026-11-30T12:00:00Z\u0000"}, "a character no time has"),
        ({"laptop_time": "0001-01-01T00:00:00+14:00"}, "out of range"),
        ({"laptop_time": "9999-12-31T22:00:00-05:00"}, "out of range"),
    ],
)
def test_a_laptop_time_that_is_no_time_is_refused_naming_it(kit: NetworkKit, body: Any, says: str) -> None:
    before = kit.laptop("lap-1").checked("GET", "/api/v1/status")["clock"]
    refused = kit.laptop("lap-1").request("POST", "/api/v1/clock", body)
    assert refused.status == 400 and says in refused.json()["message"], refused.body
    after = kit.laptop("lap-1").checked("GET", "/api/v1/status")["clock"]
    assert (after["offset_s"], after["confirmed_at"]) == (before["offset_s"], before["confirmed_at"])
