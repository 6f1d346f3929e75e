"""Bounded schemathesis runs against the real kitd's own OpenAPI documents: the local API's,
the network API's (as a paired laptop, over mutual TLS) and the pairing port's (while a window
is open). No 5xx, no response outside the document's schemas, no undocumented status, a 405
that names what is allowed.

Bounded so that `make test` stays short: a few examples an operation, deterministic, and the
kit's devices configured but absent (a reader on a USB/IP port nobody serves, a camera at a URL
nobody answers), so that every request is checked and answered — 400, 404, 409, 503 — without
waiting on a finger or an eye. Captures on live simulators are the HIL tests' job. The
network API's kit holds sealed bundles and orders, whose ids (and ranges of bytes) the fuzzer
is given half the time, so that it reaches past the 404s. A longer run: raise MAX_EXAMPLES
(e.g. 500) and run this file alone."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from hil.field_laptop import KitSync, network_kit, outbox_rows, seal_bundles
from hil.outbox_rig import sample_captures
from hil.pytest_plugin import RigLogs
from hil.rig import venv_script
from hil.sample_orders import sample_order
from hil.sample_visit import SampleVisit
from kitd.cli.daemon_client import DaemonClient

MAX_EXAMPLES = 20
# What schemathesis takes as refusing a body outside the schema — its own list, and 413: a body
# over an API's limit (1 MiB; the pairing port's 64 KiB) is refused unread, whatever it holds,
# and every operation that takes a body documents that 413.
REJECTIONS = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def schemathesis(location: str, workdir: Path, options: Sequence[str], config: str = "") -> str:
    """``st run`` of the document at ``location``, bounded and deterministic, every check on
    but those ``options`` exclude, with ``config`` as its schemathesis.toml; its output (the
    test fails when the run does)."""
    config_file = workdir / "schemathesis.toml"
    config_file.write_text(
        f"[checks.negative_data_rejection]\nexpected-statuses = {json.dumps(REJECTIONS)}\n\n{config}"
    )
    result = subprocess.run(
        [
            venv_script("st"),
            "--no-color",
            "--config-file",
            str(config_file),
            "run",
            location,
            "--checks",
            "all",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--generation-deterministic",
            "--request-timeout",
            "30",
            "--report-dir",
            str(workdir / "report"),
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=workdir,
    )
    tail = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, tail
    assert "Tested:" in result.stdout, tail
    return result.stdout


def test_the_api_keeps_its_own_document(start_kitd, tmp_path: Path) -> None:
    kitd = start_kitd(
        devices=[
            {"id": "fingerprint", "uri": "usb:298d:1010"},
            {"id": "iris", "uri": f"camera:http://127.0.0.1:{_closed_port()}/eye.mjpg"},
        ],
        settings={
            "usb_backend": f"usbip://127.0.0.1:{_closed_port()}",
            # The fuzzer's wrong PINs (POST /api/v1/auth/pin) would lock the technician it signs
            # in as, ending its token: every later request a 401, the run hollow. The lock has
            # its own test (test_hil_sign_in.py).
            "auth.max_pin_failures": 1_000_000,
        },
    )
    output = schemathesis(
        f"{kitd.url}/api/v1/openapi.json",
        tmp_path,
        [
            # 502, 503 and 504 are the kit's documented answers for a device that misbehaves, is
            # away or stays silent (503 here: the devices are absent); a crash would be a 500,
            # which no operation documents, so status_code_conformance still catches it.
            # A schema-valid body can still be refused on its meaning (an iris session asked of
            # a fingerprint reader): 400 naming the field, which positive_data_acceptance counts
            # as a rejection of valid data.
            "--exclude-checks",
            "not_a_server_error,positive_data_acceptance",
            # The two streams run until the client leaves; their own tests cover them.
            "--exclude-path",
            "/api/v1/stream/iris.mjpg",
            "--exclude-path",
            "/api/v1/events",
            # Signed in as the simulation's technician; signing out would end the run's token.
            "--header",
            f"Authorization: Bearer {kitd.token}",
            "--exclude-path",
            "/api/v1/auth/signout",
        ],
    )
    # Its token held to the end: no operation answered only 401 (the supervisors' own answer a
    # technician 403 only, as they should).
    assert "401 Unauthorized (" not in output, output[-8000:]
    assert kitd.process is not None and kitd.process.poll() is None  # the daemon is still up


@pytest.fixture(scope="module")
def sample() -> SampleVisit:
    return sample_captures()


# Ranges a laptop resuming a download asks, and some no file has (backwards, two ranges, past
# any file and any 64-bit integer): one of these half the time, since a random string is
# rarely a range at all.
BYTE_RANGES = [
    "bytes=0-99",
    "bytes=100-",
    "bytes=-10",
    "bytes=0-0",
    "bytes=5-4",
    "bytes=0-1,5-6",
    f"bytes={2**70}-",
]


def _kit_data(ids: Sequence[str]) -> str:
    """A schemathesis.toml that gives the ``{id}`` of orders and bundles one of the kit's own
    ``ids`` half the time, and a bundle's Range a range of bytes: random ones reach only the
    404, real ones the ranges of a sealed file, the replacement and withdrawal of an order."""
    kit_id = '"path.id" = { dictionary = "kit-ids", probability = 0.5 }'
    byte_range = '"header.Range" = { dictionary = "byte-ranges", probability = 0.5 }'
    operations = {"/api/v1/orders/{id}": kit_id, "/api/v1/bundles/{id}": f"{kit_id}, {byte_range}"}
    text = f"[dictionaries.kit-ids]\nvalues = {json.dumps(list(ids))}\n\n"
    text += f"[dictionaries.byte-ranges]\nvalues = {json.dumps(BYTE_RANGES)}\n"
    for path, parameters in operations.items():
        text += f'\n[[operations]]\ninclude-path = "{path}"\nparameters = {{ {parameters} }}\n'
    return text


def test_the_network_api_keeps_its_own_document(
    tmp_path: Path, rig_logs: RigLogs, sample: SampleVisit
) -> None:
    """As a laptop paired by the real kit-sync, with the kit holding something to list:
    sealed bundles (their visits' outcomes) and pending orders."""
    # The fuzzer may correct the kit's clock (POST /api/v1/clock): never the machine's.
    kitd = network_kit(tmp_path / "kit", {"clock.set_system": False})
    seal_bundles(kitd.workdir, sample, 2)
    rig_logs.add("kitd", kitd.logs)
    kitd.start()
    try:
        laptop = KitSync(tmp_path / "laptop")
        record = laptop.pair(kitd, "lap-fuzz")
        orders = [sample_order(f"FUZZ-00{n}") for n in (1, 2)]
        orders_file = tmp_path / "orders.json"
        orders_file.write_text(json.dumps(orders))
        pushed = laptop.run("push-orders", orders_file)
        assert pushed.returncode == 0, pushed.stderr
        files = laptop.kit_record().parent
        schemathesis(
            f"https://127.0.0.1:{record['port']}/api/v1/openapi.json",
            tmp_path,
            [
                # The laptop's own TLS client certificate, as kit-sync made and paired it.
                "--request-cert",
                str(files / "laptop-tls.crt"),
                "--request-cert-key",
                str(files / "laptop-tls.key"),
                # The kit's certificate is self-signed with no name for 127.0.0.1 (a laptop pins
                # its fingerprint instead: kit-sync's tests): no CA bundle could verify it, so
                # the fuzzer does not; it talks to the kit this test started, on loopback.
                "--tls-verify",
                "false",
                # A schema-valid order or receipt is still refused on its meaning (a NIK whose
                # digits do not add up, a receipt not signed): 400 or 422 with the reasons.
                # ensure_resource_availability takes a 2xx POST to a collection as having made
                # the item its answer names; the only order ids POST /api/v1/orders answers
                # are in its import report, and the link schemathesis infers takes those of
                # the rows it refused (rejected[*].order_id: DELETE /api/v1/orders/None, 404).
                # No POST of this API makes a resource it names, so the check has nothing
                # true to find here; schemathesis cannot turn it off for one link alone.
                "--exclude-checks",
                "positive_data_acceptance,ensure_resource_availability",
            ],
            _kit_data([*(o["order_id"] for o in orders), *outbox_rows(kitd)]),
        )
        assert kitd.process is not None and kitd.process.poll() is None  # the daemon is still up
    finally:
        kitd.stop()


def test_the_pairing_port_keeps_its_own_document(tmp_path: Path, rig_logs: RigLogs) -> None:
    """While a supervisor's window is open. A start uses one of the window's five attempts only
    once it holds two P-256 certificates and a SPAKE2 message that are sound, which a fuzzer
    working from the schemas does not make: every request it sends is refused before, and the
    window stays open for the real kit-sync to pair with afterwards. (Were a start to slip
    through, the window would close when its attempts ran out, as it should: the port stops
    listening, and this test says so rather than blaming the fuzzer's refused connections.)"""
    kitd = network_kit(tmp_path / "kit")
    rig_logs.add("kitd", kitd.logs)
    kitd.start()
    try:
        supervisor = DaemonClient(kitd.url, kitd.sign_in("supervisor"))
        window = supervisor.checked("POST", "/api/v1/pairing").json()
        try:
            schemathesis(
                f"https://127.0.0.1:{window['port']}/pairing/v1/openapi.json",
                tmp_path,
                [
                    # The kit's certificate is self-signed with no name for 127.0.0.1: a laptop
                    # hashes what its handshake shows into the pairing instead.
                    "--tls-verify",
                    "false",
                    # A schema-valid start is still refused on its meaning (no certificate in
                    # its PEM, no SPAKE2 point in its message): 400 naming the field.
                    "--exclude-checks",
                    "positive_data_acceptance",
                ],
            )
        finally:
            state = supervisor.checked("GET", "/api/v1/pairing").json()
            assert state["open"], f"the window closed under the fuzzer: {state}"
        assert state["attempts_left"] == window["attempts_left"], state
        laptop = KitSync(tmp_path / "laptop")
        paired = laptop.run("pair", f"127.0.0.1:{window['port']}", window["code"], "--name", "lap-fuzz")
        assert paired.returncode == 0, paired.stderr
    finally:
        kitd.stop()
