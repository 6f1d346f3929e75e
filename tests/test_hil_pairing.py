"""HIL: pairing a field laptop with the real daemon, over real TLS on loopback.

Its one job: a supervisor opens a window on the local API (or a technician with ``kitctl
laptops pair``) and a laptop — a small client here, on kitformats.pairing alone, pinning the
certificate its TLS handshake showed — pairs with the code: the kit records it, admits its
TLS certificate to the network API and closes the window. Five wrong codes close the window,
and so does its time. A relay that terminates TLS between laptop and kit (its own
certificate toward the laptop) and forwards everything makes neither side accept, and cannot
pair certificates of its own. The pairing port listens only while a window is open; it serves
its own OpenAPI document, whose paths are the port's routes and whose schemas the port's
answers (paired, wrong code, refusals) keep.
"""

from __future__ import annotations

import http.client
import http.server
import json
import signal
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from jsonschema import Draft202012Validator
from kitformats.link_certificates import Use, private_key_pem
from kitformats.link_certificates import self_signed as link_certificate
from kitformats.pairing import (
    CONFIRM_PATH,
    START_PATH,
    ConfirmationFailed,
    LaptopExchange,
    confirm_body,
    fingerprint,
    read_paired,
    read_start_answer,
    start_body,
)
from openapi_spec_validator import validate

from hil.pytest_plugin import RigLogs
from hil.rig import KitdProcess, venv_script, wait_until
from kitd.api.pairing import pairing_app
from kitd.api.pairing_openapi import MAX_PAIRING_BODY, PAIRING_OPENAPI_PATH, pairing_openapi_document
from kitd.cli.daemon_client import DaemonClient
from kitd.config import parse_config
from kitd.kit import Kit

HOST = "127.0.0.1"


# --- a laptop, as kit-sync would be -------------------------------------------------------


@dataclass
class Credential:
    pem: str
    certificate_path: Path
    key_path: Path

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(x509.load_pem_x509_certificate(self.pem.encode()))


def self_signed(directory: Path, name: str, use: Use) -> Credential:
    """A key and its certificate in the link's profile (kitformats.link_certificates), as files."""
    key, certificate = link_certificate(name, use)
    directory.mkdir(parents=True, exist_ok=True)
    stem = name.replace(" ", "-")
    certificate_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    certificate_path.write_text(pem)
    key_path.write_bytes(private_key_pem(key))
    return Credential(pem, certificate_path, key_path)


@dataclass
class Laptop:
    name: str
    tls: Credential
    receipts: Credential


def new_laptop(directory: Path, name: str) -> Laptop:
    return Laptop(
        name,
        self_signed(directory, f"{name} tls", "tls-client"),
        self_signed(directory, f"{name} receipts", "signing"),
    )


class PairingConnection:
    """One HTTPS connection to a pairing port as a laptop makes it: TLS 1.3, any certificate
    taken in the handshake (the code decides), its SHA-256 kept for the transcript."""

    def __init__(self, port: int) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.connection = http.client.HTTPSConnection(HOST, port, context=context, timeout=20)
        self.connection.connect()
        self.peer_fingerprint = fingerprint(self.connection.sock.getpeercert(binary_form=True))
        self.headers: http.client.HTTPMessage | None = None  # the last answer's

    def post(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        return self.send("POST", path, json.dumps(body).encode())

    def send(
        self, method: str, path: str, data: bytes | None = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """Any request, its body as given; the answer's status and JSON."""
        headers = {} if data is None else {"Content-Type": content_type}
        self.connection.request(method, path, body=data, headers=headers)
        response = self.connection.getresponse()
        self.headers = response.headers
        assert response.headers.get_content_type() == "application/json", (method, path, response.status)
        return response.status, json.loads(response.read())

    def close(self) -> None:
        self.connection.close()


@dataclass
class Attempt:
    """What a laptop's pairing came to: each answer, and whether the laptop accepted the kit."""

    start: tuple[int, dict[str, Any]]
    confirm: tuple[int, dict[str, Any]] | None = None
    accepted: bool = False
    why: str = ""
    kit_fingerprint: bytes = b""


def pair(laptop: Laptop, port: int, code: str) -> Attempt:
    """kitd-pairing/1 from the laptop's side, at ``port`` (the kit's, or a relay's)."""
    connection = PairingConnection(port)
    try:
        exchange = LaptopExchange(code)
        body = start_body(laptop.name, laptop.tls.pem, laptop.receipts.pem, exchange)
        attempt = Attempt(connection.post(START_PATH, body), kit_fingerprint=connection.peer_fingerprint)
        if attempt.start[0] != 200:
            return attempt
        started = read_start_answer(attempt.start[1])
        confirmation = exchange.confirm(
            started.message,
            connection.peer_fingerprint,
            laptop.tls.fingerprint,
            laptop.receipts.fingerprint,
            laptop.name,
        )
        attempt.confirm = connection.post(CONFIRM_PATH, confirm_body(started.exchange, confirmation))
        if attempt.confirm[0] == 200:
            try:
                exchange.check_kit(read_paired(attempt.confirm[1]).confirmation)
                attempt.accepted = True
            except ConfirmationFailed as exc:
                attempt.why = str(exc)
        return attempt
    finally:
        connection.close()


def refused(port: int) -> bool:
    """Whether nothing listens on ``port`` (the pairing port closed)."""
    try:
        socket.create_connection((HOST, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


# --- a relay between the laptop and the kit -----------------------------------------------


@dataclass
class Relay:
    """An HTTPS server with its own certificate that forwards each request's body to the kit's
    pairing port (over its own TLS connection) and the kit's answer back. ``rewrite`` may
    change a start on its way; ``forge`` answers the laptop 200 when the kit refused."""

    kit_port: int
    credential: Credential
    rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    forge: bool = False
    kit_answers: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    port: int = 0

    def __enter__(self) -> Relay:
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == START_PATH and relay.rewrite is not None:
                    body = relay.rewrite(body)
                status, answer = relay.kit.post(self.path, body)
                relay.kit_answers.append((self.path, status, answer))
                if relay.forge and self.path == CONFIRM_PATH and status != 200:
                    status, answer = 200, relay.forged_answer()
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.credential.certificate_path, self.credential.key_path)
        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True  # a laptop's kept-alive connection ends with the test
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.kit = PairingConnection(self.kit_port)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def forged_answer(self) -> dict[str, Any]:
        started = next(answer for path, _, answer in self.kit_answers if path == START_PATH)
        return {
            "confirmation": "00" * 32,
            "kit_id": started["kit_id"],
            "laptop_name": "lap-relayed",
            "network_port": 8443,
            "kit_signing_certificate": None,
            "audit_note_key": None,
        }

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.kit.close()


# --- the kit ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class PairingKit:
    kitd: KitdProcess
    supervisor: DaemonClient
    pairing_port: int
    laptops_dir: Path

    def open_window(self, seconds: float | None = None) -> dict[str, Any]:
        body = None if seconds is None else {"seconds": seconds}
        reply = self.supervisor.checked("POST", "/api/v1/pairing", body)
        assert reply.status == 201 and reply.headers["Cache-Control"] == "no-store"
        return reply.json()

    def window(self) -> dict[str, Any]:
        return self.supervisor.checked("GET", "/api/v1/pairing").json()

    def laptops(self) -> dict[str, dict[str, Any]]:
        done = self.kitd.kitctl("laptops", "list", "--json", "--config", str(self.kitd.config_path))
        assert done.returncode == 0, done.stderr
        return {row["name"]: row for row in json.loads(done.stdout)}


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PairingKit]:
    """One kit for the module, its network API on (any port) and its pairing port fixed (so
    that it can be seen closed before any window opens)."""
    workdir = tmp_path_factory.mktemp("pairing")
    port = free_port()
    settings = {
        "network.enabled": True,
        "network.host": HOST,
        "network.port": 0,
        "network.pairing_port": port,
    }
    kitd = KitdProcess(workdir / "kitd", settings=settings)
    kitd.start()
    try:
        yield PairingKit(kitd, DaemonClient(kitd.url, kitd.sign_in("supervisor")), port, workdir / "laptops")
    finally:
        kitd.stop()


@pytest.fixture
def kit(rig: PairingKit, rig_logs: RigLogs) -> PairingKit:
    """The module's kit, no window open, its log shown when a test fails."""
    rig_logs.add("kitd", rig.kitd.logs)
    rig.supervisor.checked("DELETE", "/api/v1/pairing")
    wait_until(lambda: refused(rig.pairing_port), "the pairing port closed")
    return rig


def events_until(kitd: KitdProcess, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The kit's pairing events since its start (replayed, then live) up to the one ``done`` says."""
    connection = http.client.HTTPConnection(HOST, int(kitd.url.rsplit(":", 1)[1]), timeout=20)
    connection.request("GET", "/api/v1/events", headers={**kitd.auth_headers, "Last-Event-ID": "0"})
    response = connection.getresponse()
    seen: list[dict[str, Any]] = []
    kind = ""
    try:
        while True:
            line = response.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: ") and kind == "pairing":
                seen.append(json.loads(line.removeprefix("data: ")))
                if done(seen[-1]):
                    return seen
    finally:
        connection.close()


# --- the tests ----------------------------------------------------------------------------


def test_a_laptop_pairs_with_the_right_code(kit: PairingKit) -> None:
    assert refused(kit.pairing_port)  # no window: nothing listens
    window = kit.open_window()
    assert window["open"] is True and window["paired"] is None
    assert len(window["code"]) == 6 and window["code"].isdigit()
    assert window["attempts_left"] == 5 and window["port"] == kit.pairing_port
    assert 0 < window["seconds_left"] <= 120
    laptop = new_laptop(kit.laptops_dir, "lap-1")

    attempt = pair(laptop, window["port"], window["code"])
    assert attempt.start[0] == 200 and attempt.confirm is not None, attempt
    assert attempt.confirm[0] == 200 and attempt.accepted, attempt
    # What the laptop pins is what the kit says its certificate is.
    assert attempt.kit_fingerprint.hex() == window["kit_tls_fingerprint"]
    paired = attempt.confirm[1]
    assert paired["laptop_name"] == "lap-1" and paired["kit_id"] == attempt.start[1]["kit_id"]
    assert paired["kit_signing_certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert paired["audit_note_key"].startswith(f"e-ktp-kit/{paired['kit_id']}/audit+")

    # Recorded, the window closed and its port with it.
    now = kit.window()
    assert now["open"] is False and now["paired"] == "lap-1" and "code" not in now
    row = kit.laptops()["lap-1"]
    assert row["tls_fingerprint"] == laptop.tls.fingerprint.hex()
    assert row["receipt_fingerprint"] == laptop.receipts.fingerprint.hex()
    assert row["paired_at"] and row["revoked_at"] is None and row["last_sync_at"] is None
    wait_until(lambda: refused(kit.pairing_port), "the pairing port closed after the pairing")
    entries = kit.supervisor.checked("GET", "/api/v1/audit/entries?count=1000").json()["entries"]
    entry = next(e for e in entries if e["action"] == "laptop_paired")
    assert entry["details"] == {
        "laptop": "lap-1",
        "tls_fingerprint": laptop.tls.fingerprint.hex(),
        "receipt_fingerprint": laptop.receipts.fingerprint.hex(),
    }

    # The running network API lets the laptop in from now on (its certificate admitted live).
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.load_cert_chain(laptop.tls.certificate_path, laptop.tls.key_path)
    network = http.client.HTTPSConnection(HOST, paired["network_port"], context=context, timeout=20)
    network.request("GET", "/api/v1/status")
    assert network.getresponse().status == 200
    network.close()

    # The events said so, and never the code.
    events = events_until(kit.kitd, lambda e: e["state"] == "paired")
    assert events[-1] == {"state": "paired", "laptop_name": "lap-1"}
    assert {"state": "closed", "why": "paired"} in events
    assert all(window["code"] not in json.dumps(e) for e in events)

    # A second laptop cannot take the name, nor the first laptop's certificates another name.
    window = kit.open_window()
    twin = new_laptop(kit.laptops_dir, "lap-1b")
    for name, who in (("lap-1", twin), ("lap-1c", laptop)):
        attempt = pair(Laptop(name, who.tls, who.receipts), window["port"], window["code"])
        assert attempt.start[0] == 409 and attempt.start[1]["error"] == "laptop_name_taken", attempt
    assert kit.window()["attempts_left"] == 5  # a refused start guessed nothing


def test_five_wrong_codes_close_the_window(kit: PairingKit) -> None:
    window = kit.open_window()
    wrong = f"{(int(window['code']) + 1) % 10**6:06d}"
    laptop = new_laptop(kit.laptops_dir, "lap-2")
    for left in (4, 3, 2, 1, 0):
        attempt = pair(laptop, window["port"], wrong)
        assert attempt.confirm is not None and attempt.confirm[0] == 401, attempt
        assert attempt.confirm[1]["error"] == "wrong_code" and attempt.confirm[1]["attempts_left"] == left
        assert not attempt.accepted
    assert kit.window()["open"] is False and kit.window()["paired"] is None
    wait_until(lambda: refused(kit.pairing_port), "the pairing port closed after five wrong codes")
    assert "lap-2" not in kit.laptops()

    # Five starts never confirmed use the window up too: the sixth is refused.
    window = kit.open_window()
    connection = PairingConnection(window["port"])
    try:
        for _ in range(5):
            body = start_body("lap-2", laptop.tls.pem, laptop.receipts.pem, LaptopExchange(window["code"]))
            assert connection.post(START_PATH, body)[0] == 200
        status, answer = connection.post(START_PATH, body)
        assert status == 403 and answer["error"] == "pairing_closed", answer
        # A malformed start names its field.
        status, answer = connection.post(START_PATH, {**body, "tls_certificate": "nope"})
        assert status == 400 and answer["field"] == "tls_certificate", answer
    finally:
        connection.close()


def test_the_window_expires(kit: PairingKit) -> None:
    window = kit.open_window(seconds=1)
    assert window["seconds_left"] <= 1
    wait_until(lambda: not kit.window()["open"], "the window expired")
    events = events_until(kit.kitd, lambda e: e.get("why") == "expired")
    assert events[-1] == {"state": "closed", "why": "expired"}
    wait_until(lambda: refused(kit.pairing_port), "the pairing port closed when the window expired")
    with pytest.raises(ConnectionRefusedError):
        pair(new_laptop(kit.laptops_dir, "lap-3"), window["port"], window["code"])


def test_a_relay_makes_neither_side_accept_and_cannot_pair_its_own_certificates(kit: PairingKit) -> None:
    window = kit.open_window()
    laptop = new_laptop(kit.laptops_dir, "lap-4")
    relay_tls = self_signed(kit.laptops_dir, "relay server", "tls-server")
    relay_laptop = new_laptop(kit.laptops_dir, "relay-laptop")

    # It forwards everything, and when the kit refuses, tells the laptop it paired.
    with Relay(window["port"], relay_tls, forge=True) as relay:
        attempt = pair(laptop, relay.port, window["code"])
    assert attempt.kit_fingerprint == relay_tls.fingerprint  # the laptop saw the relay's certificate
    assert [(path, status) for path, status, _ in relay.kit_answers] == [
        (START_PATH, 200),
        (CONFIRM_PATH, 401),
    ]
    assert relay.kit_answers[1][2]["error"] == "wrong_code"
    assert attempt.confirm is not None and attempt.confirm[0] == 200  # forged ...
    assert not attempt.accepted and "does not match" in attempt.why  # ... and refused by the laptop

    # It swaps in certificates of its own: the kit refuses them.
    def own_certificates(body: dict[str, Any]) -> dict[str, Any]:
        return {
            **body,
            "tls_certificate": relay_laptop.tls.pem,
            "receipt_certificate": relay_laptop.receipts.pem,
        }

    with Relay(window["port"], relay_tls, rewrite=own_certificates) as relay:
        attempt = pair(laptop, relay.port, window["code"])
    assert attempt.confirm is not None and attempt.confirm[0] == 401 and not attempt.accepted

    # The window stood throughout, nobody paired: the laptop, straight to the kit, pairs with
    # the same code, and no laptop of the kit's has the relay's certificates.
    now = kit.window()
    assert (now["open"], now["attempts_left"], now["paired"]) == (True, 3, None)
    attempt = pair(laptop, window["port"], window["code"])
    assert attempt.accepted, attempt
    known = kit.laptops()
    assert known["lap-4"]["tls_fingerprint"] == laptop.tls.fingerprint.hex()
    assert known["lap-4"]["receipt_fingerprint"] == laptop.receipts.fingerprint.hex()
    relays = {relay_laptop.tls.fingerprint.hex(), relay_laptop.receipts.fingerprint.hex()}
    assert not relays & {
        fp for row in known.values() for fp in (row["tls_fingerprint"], row["receipt_fingerprint"])
    }


def test_kitctl_pairs_a_laptop_revokes_it_and_ctrl_c_closes_the_window(kit: PairingKit) -> None:
    def kitctl_pair() -> tuple[subprocess.Popen[str], str, int]:
        process = subprocess.Popen(
            [venv_script("kitctl"), "laptops", "pair", "--config", str(kit.kitd.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=kit.kitd.env,
        )
        assert process.stdout is not None
        code = process.stdout.readline().strip().removeprefix("pairing code: ")
        port = int(process.stdout.readline().split(":")[-1].split()[0])
        return process, code, port

    process, code, port = kitctl_pair()
    try:
        assert len(code) == 6 and port == kit.pairing_port
        assert pair(new_laptop(kit.laptops_dir, "lap-5"), port, code).accepted
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0 and "paired laptop lap-5" in out, (out, err)

    done = kit.kitd.kitctl("laptops", "revoke", "lap-5", "--config", str(kit.kitd.config_path))
    assert done.returncode == 0 and "revoked laptop lap-5" in done.stdout, done.stderr
    text = kit.kitd.kitctl("laptops", "list", "--config", str(kit.kitd.config_path)).stdout
    assert "lap-5  REVOKED" in text
    # A revoked name is never given again.
    window = kit.open_window()
    attempt = pair(new_laptop(kit.laptops_dir, "lap-5"), window["port"], window["code"])
    assert attempt.start[0] == 409 and "revoked" in attempt.start[1]["message"], attempt

    process, code, port = kitctl_pair()
    try:
        wait_until(lambda: kit.window()["open"], "kitctl opened the window")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and "the pairing window is closed" in err, err
    assert kit.window()["open"] is False
    wait_until(lambda: refused(port), "the pairing port closed on Ctrl-C")


# --- the pairing port's document ----------------------------------------------------------


def test_the_pairing_apps_routes_are_its_documents_paths() -> None:
    app = pairing_app(Kit(parse_config("")))
    # aiohttp answers HEAD for every GET by itself; the document lists what is served on purpose.
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    paths = pairing_openapi_document()["paths"]
    documented = {(method, path) for path, operations in paths.items() for method in operations}
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    assert served == {("post", START_PATH), ("post", CONFIRM_PATH), ("get", PAIRING_OPENAPI_PATH)}


def test_another_method_on_the_pairing_port_is_405_naming_the_allowed_one(kit: PairingKit) -> None:
    """Found by schemathesis (tests/test_schemathesis.py): the pairing port answered TRACE on
    its steps 405 without Allow, which RFC 9110 (15.5.6) requires; the local API kept it."""
    window = kit.open_window()
    connection = PairingConnection(window["port"])
    try:
        for path, body in (
            (
                START_PATH,
                {"laptop_name": "0", "tls_certificate": "0", "receipt_certificate": "0", "message": "0"},
            ),
            (CONFIRM_PATH, {"exchange": "", "confirmation": "0" * 64}),
        ):
            status, answer = connection.send("TRACE", path, json.dumps(body).encode())
            assert status == 405 and answer["error"] == "method_not_allowed", (path, answer)
            assert connection.headers is not None and connection.headers["Allow"] == "POST", path
    finally:
        connection.close()
    assert kit.window()["attempts_left"] == window["attempts_left"]
    kit.supervisor.checked("DELETE", "/api/v1/pairing")


def _schema(document: dict[str, Any], pointer: str, body: Any) -> list[str]:
    """What is wrong with ``body`` against the document's schema at ``pointer`` (its $refs resolved
    in the document)."""
    shape = {**document, "$ref": f"#/{pointer}"}
    return [error.message for error in Draft202012Validator(shape).iter_errors(body)]


def _operation(path: str, method: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in ("paths", path, method))


def request_errors(document: dict[str, Any], path: str, body: Any) -> list[str]:
    """What is wrong with a laptop's body against the document's request schema for ``path``."""
    return _schema(document, f"{_operation(path, 'post')}/requestBody/content/application~1json/schema", body)


def assert_documented(document: dict[str, Any], method: str, path: str, status: int, body: Any) -> None:
    """The answer's status is documented for the operation, and its JSON has that answer's shape."""
    assert str(status) in document["paths"][path][method]["responses"], (method, path, status, body)
    pointer = f"{_operation(path, method)}/responses/{status}/content/application~1json/schema"
    assert not (wrong := _schema(document, pointer, body)), (method, path, status, body, wrong[:3])


def test_the_pairing_port_serves_its_document_and_answers_as_it_says(kit: PairingKit) -> None:
    document = pairing_openapi_document()
    window = kit.open_window()
    laptop = new_laptop(kit.laptops_dir, "lap-6")
    answers: list[tuple[str, str, int, Any]] = []
    connection = PairingConnection(window["port"])
    try:
        status, served = connection.send("GET", PAIRING_OPENAPI_PATH)
        assert status == 200 and served == document
        validate(served)

        # Malformed bodies, each a 400 (naming the field when there is one) that uses no attempt.
        malformed = [
            (START_PATH, None, "application/json", None),
            (START_PATH, b"{not json", "application/json", None),
            (START_PATH, b'{"laptop_name": "lap-6"}', "text/plain", None),
            (START_PATH, b"[]", "application/json", None),
            (START_PATH, b'{"laptop_name": "no spaces"}', "application/json", "laptop_name"),
            (CONFIRM_PATH, b'{"exchange": "x", "confirmation": "zz"}', "application/json", "confirmation"),
        ]
        # One key in both jobs, or a receipts certificate to connect with: refused, no attempt used.
        for tls, receipts, field in (
            (laptop.tls.pem, laptop.tls.pem, "receipt_certificate"),
            (laptop.receipts.pem, laptop.receipts.pem, "tls_certificate"),
        ):
            body = start_body("lap-6", tls, receipts, LaptopExchange(window["code"]))
            malformed.append((START_PATH, json.dumps(body).encode(), "application/json", field))
        for path, data, content_type, field_named in malformed:
            status, answer = connection.send("POST", path, data, content_type)
            assert status == 400 and answer["error"] == "bad_request", (path, data, answer)
            assert answer.get("field") == field_named, (path, data, answer)
            answers.append(("post", path, status, answer))
        body = confirm_body("no-such-exchange", bytes(32))
        assert not request_errors(document, CONFIRM_PATH, body)
        status, answer = connection.send("POST", CONFIRM_PATH, json.dumps(body).encode())
        assert status == 404 and answer["error"] == "unknown_exchange", answer
        answers.append(("post", CONFIRM_PATH, status, answer))
    finally:
        connection.close()
    assert kit.window()["attempts_left"] == 5

    # A wrong code, then the right one.
    wrong = pair(laptop, window["port"], f"{(int(window['code']) + 1) % 10**6:06d}")
    assert wrong.confirm is not None and wrong.confirm[0] == 401 and wrong.confirm[1]["attempts_left"] == 4
    right = pair(laptop, window["port"], window["code"])
    assert right.accepted and right.confirm is not None, right
    for attempt in (wrong, right):
        answers.append(("post", START_PATH, *attempt.start))
        answers.append(("post", CONFIRM_PATH, *attempt.confirm))

    # In a new window: the name is taken now (409); five starts use the window up, and the sixth
    # finds it closed (403); a body over the limit is refused unread (413).
    window = kit.open_window()
    connection = PairingConnection(window["port"])
    try:
        taken = start_body("lap-6", laptop.tls.pem, laptop.receipts.pem, LaptopExchange(window["code"]))
        status, answer = connection.post(START_PATH, taken)
        assert status == 409 and answer["error"] == "laptop_name_taken", answer
        assert "pair under another name (--name)" in answer["message"]  # what the laptop can do
        answers.append(("post", START_PATH, status, answer))
        other = new_laptop(kit.laptops_dir, "lap-7")
        for _ in range(6):
            body = start_body("lap-7", other.tls.pem, other.receipts.pem, LaptopExchange(window["code"]))
            assert not request_errors(document, START_PATH, body)
            answers.append(("post", START_PATH, *connection.post(START_PATH, body)))
        assert [status for _, _, status, _ in answers[-6:]] == [200] * 5 + [403]
        assert answers[-1][3]["error"] == "pairing_closed", answers[-1]
    finally:
        connection.close()
    connection = PairingConnection(window["port"])
    try:
        status, answer = connection.send("POST", START_PATH, b" " * (MAX_PAIRING_BODY + 1))
        assert status == 413 and answer["error"] == "too_large", answer
        answers.append(("post", START_PATH, status, answer))
    finally:
        connection.close()
    kit.supervisor.checked("DELETE", "/api/v1/pairing")

    for method, path, status, answer in answers:
        assert_documented(document, method, path, status, answer)
    assert {(path, status) for _, path, status, _ in answers} == {
        (START_PATH, 200),
        (START_PATH, 400),
        (START_PATH, 403),
        (START_PATH, 409),
        (START_PATH, 413),
        (CONFIRM_PATH, 200),
        (CONFIRM_PATH, 400),
        (CONFIRM_PATH, 401),
        (CONFIRM_PATH, 404),
    }
