"""The diagnostics report for the vendor, without a daemon (kitd.services.diagnostics_report,
kitd.cli.diag_report, kitformats.report_statements): what is redacted from the configuration,
what is scrubbed from anything that leaves the kit (NIKs, credentials in URIs, blobs, biometric
values), the page's order and escaping, and the signature checked with the kit's certificate
alone (a changed byte, another kit's certificate and an unsigned report are refused)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kitformats.report_statements import REPORT_KIND, ReportRejected, check_report
from kitformats.signing import FileSigner

from kitd.cli import main as kitctl
from kitd.cli.diag_report import report_page, write_report
from kitd.config import parse_config
from kitd.logs import RecentLines
from kitd.schemas import check
from kitd.services.diagnostics_report import (
    REDACTED,
    WITHHELD,
    configuration,
    recent_log,
    report_statement,
    scrub,
    secret_key,
    signed_report,
)

NIK = "3576014703480001"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4).decode()


def kit_credential(kit_id: str) -> FileSigner:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"kit {kit_id}")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return FileSigner(key, certificate)


def finding(check_id: str, status: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    message = None if status == "ok" else {"id": f"Perbaiki {check_id}.", "en": f"Fix {check_id}."}
    return {
        "id": check_id,
        "device": None,
        "status": status,
        "values": values or {},
        "message": message,
        "duration_s": 0.01,
    }


def sample_run() -> dict[str, Any]:
    checks = [
        finding("unit.battery", "not_available"),
        finding("unit.clock", "ok", {"now": "2026-01-01T00:00:00+00:00"}),
        finding("unit.cpu_temperature", "warning", {"celsius": 72.5}),
        finding("fingerprint.present", "failed", {"reason": "<gone> & 'away'", "uri": "usb:298d:1010"}),
    ]
    counts = {s: sum(c["status"] == s for c in checks) for s in ("ok", "warning", "failed", "not_available")}
    return {
        "run_id": "0123456789ab",
        "quick": False,
        "started_at": "2026-01-01T00:00:00+00:00",
        "duration_s": 0.5,
        "kit": {"id": "K-1", "version": "0.1.0"},
        "status": "failed",
        "counts": counts,
        "checks": checks,
        "stored": True,
    }


CONFIG = f"""
data_dir = "/var/lib/kitd"
kit.id = "K-1"
usb_backend = "usbip://127.0.0.1:3240"
[keys]
backend = "pkcs11"
pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"
pin_file = "/etc/kitd/token.pin"
[[device]]
id = "iris_camera"
uri = "camera:http://tech:s3cret@10.0.0.9/stream.mjpg?token=abc&fps=30"
[[device]]
id = "fingerprint"
uri = "usb:298d:1010"
[[device]]
id = "signature"
uri = "serial:/dev/ttyUSB{NIK[:2]}"
"""


def fake_kit() -> SimpleNamespace:
    config = parse_config(CONFIG)
    devices = [
        {
            "id": "iris_camera",
            "uri": config.devices[0].uri,
            "kind": "iris_camera",
            "model": "sim",
            "serial": None,
            "firmware": None,
            "status": "error",
            "detail": {
                "status_reason": f"stream http://tech:s3cret@10.0.0.9/ ended (order {NIK})",
                "status_since": "2026-01-01T00:00:00Z",
                "fps": 29.5,
                "last_frame": PNG,
            },
        }
    ]
    clock = SimpleNamespace(now=lambda: dt.datetime.now(dt.UTC))
    return SimpleNamespace(config=config, devices=lambda: devices, clock=clock)


def test_which_configuration_keys_hold_a_secret_by_their_name() -> None:
    assert secret_key("keys.token_pin") and secret_key("network.password") and secret_key("sync.api_token")
    # Where a secret is, a token's or a key's name and the panel's GPIO numbers are no secrets.
    for key in ("keys.pin_file", "keys.token_label", "keys.key_label", "keys.pkcs11_module"):
        assert not secret_key(key), key
    assert not secret_key("panel.capture_pin") and not secret_key("panel.ready_led_pin")
    assert not secret_key("auth.max_pin_failures") and not secret_key("keys.backend")
    assert not secret_key("panel.pin_factory") and secret_key("sync.secret_key")


def test_the_configuration_keeps_paths_and_redacts_credentials_in_uris() -> None:
    shown = configuration(parse_config(CONFIG))
    values = shown["values"]
    assert values["keys.pin_file"] == "/etc/kitd/token.pin" and values["keys.backend"] == "pkcs11"
    assert values["usb_backend"] == "usbip://127.0.0.1:3240" and values["panel.capture_pin"] == 5
    camera = shown["devices"][0]["uri"]
    assert "s3cret" not in camera and "abc" not in camera and "tech" not in camera
    assert camera == f"camera:http://{REDACTED}@10.0.0.9/stream.mjpg?token={REDACTED}&fps=30"
    assert shown["redacted"] == ["device iris_camera: uri (credentials in it)"]
    assert "PIN" in shown["redaction"]


def test_scrubbing_masks_niks_and_withholds_blobs_and_biometric_values() -> None:
    out = scrub(
        {
            "line": f"order MJK-1 NIK {NIK} at /tmp/{'a' * 30}/{'b' * 30}/{'c' * 30}/{'d' * 30}/{'e' * 30}/f",
            "number": int(NIK),
            "digest": "ab" * 32,
            "frames_dropped": 3,
            "last_frame_at": "2026-01-01T00:00:00Z",
            "image": PNG,
            "points": [[1, 2, 0.5], [2, 3, 0.6]],
            "log": f'{{"msg": "got {PNG}"}}',
        }
    )
    text = json.dumps(out)
    assert NIK not in text and "357601********01" in text and out["number"] == "357601********01"
    assert out["digest"] == "ab" * 32 and out["frames_dropped"] == 3
    assert out["last_frame_at"] == "2026-01-01T00:00:00Z"  # a few words under a frame's name stay
    assert out["image"] == WITHHELD and out["points"] == WITHHELD
    assert PNG[:40] not in out["log"] and "characters elided" in out["log"]
    assert "/" + "e" * 30 + "/f" in out["line"]  # a long path is no blob


def test_the_statement_holds_the_run_and_its_surroundings_and_no_secret() -> None:
    assert recent_log()["lines"] == [] and "journalctl" in recent_log()["note"]  # not set up: says so
    root, memory = logging.getLogger(), RecentLines(10)
    root.addHandler(memory)  # as kitd.logs.setup_logging installs it in the daemon
    try:
        logging.getLogger("kitd.test").error("camera http://tech:s3cret@10.0.0.9/ failed for NIK %s", NIK)
        statement = report_statement(fake_kit(), sample_run())
    finally:
        root.removeHandler(memory)
    check("DiagnosticsReportStatement", statement)
    assert statement["kind"] == REPORT_KIND and statement["kit_id"] == "K-1"
    assert statement["software"]["python"] and statement["software"]["kitd"] == "0.1.0"
    device = statement["devices"][0]
    assert device["status"] == "error" and "357601********01" in device["reason"]
    assert device["detail"] == {"fps": 29.5, "last_frame": WITHHELD}
    text = json.dumps(statement)
    for leak in (NIK, "s3cret", PNG[:40]):
        assert leak not in text, leak
    assert "357601********01" in statement["log"]["lines"][-1] and statement["log"]["note"] is None


def test_a_signed_report_verifies_with_the_kits_certificate_alone(tmp_path: Path) -> None:
    credential, other = kit_credential("K-1"), kit_credential("K-1")
    keys = SimpleNamespace(kit_signer=lambda kit_id: credential)
    report = signed_report(keys, "K-1", report_statement(fake_kit(), sample_run()))
    check("DiagnosticsReport", report)
    assert check_report(report, credential.certificate)["run"]["run_id"] == "0123456789ab"
    with pytest.raises(ReportRejected):
        check_report(report, other.certificate)  # another kit's (same name, other key)
    changed = json.loads(json.dumps(report))
    changed["statement"]["run"]["status"] = "ok"
    with pytest.raises(ReportRejected, match="signature"):
        check_report(changed, credential.certificate)
    json_path, _ = write_report(report, tmp_path / "out")
    cert = tmp_path / "kit.crt"
    cert.write_bytes(credential.certificate.public_bytes(serialization.Encoding.PEM))
    assert kitctl(["diag", "--verify", str(json_path), "--kit-cert", str(cert)]) == 0
    data = bytearray(json_path.read_bytes())
    at = data.index(b'"failed"') + 1  # a status the kit signed, one byte changed
    data[at] ^= 0x01
    flipped = tmp_path / "flipped.json"
    flipped.write_bytes(bytes(data))
    assert kitctl(["diag", "--verify", str(flipped), "--kit-cert", str(cert)]) == 1
    assert kitctl(["diag", "--verify", str(flipped)]) == 2  # no certificate: bad usage
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert kitctl(["diag", "--verify", str(deep), "--kit-cert", str(cert)]) == 1


def test_a_key_that_cannot_sign_still_gives_the_report_saying_so() -> None:
    def broken(kit_id: str) -> FileSigner:
        raise OSError(5, "Input/output error")

    report = signed_report(
        SimpleNamespace(kit_signer=broken), "K-1", report_statement(fake_kit(), sample_run())
    )
    check("DiagnosticsReport", report)
    assert report["signature"] is None and "Input/output error" in report["unsigned"]
    with pytest.raises(ReportRejected, match="not signed"):
        check_report(report, kit_credential("K-1").certificate)
    assert "NOT SIGNED" in report_page(report)


def test_the_page_lists_failures_first_and_escapes_every_text() -> None:
    report = {"statement": report_statement(fake_kit(), sample_run()), "signature": "c2ln"}
    page = report_page(report)
    order = [page.index(f"check-{c}") for c in ("fingerprint.present", "unit.cpu_temperature")]
    order += [page.index(f"check-{c}") for c in ("unit.clock", "unit.battery")]
    assert order == sorted(order)
    assert page.index("Failed (1)") < page.index("Warnings (1)") < page.index("OK (1)")
    assert page.index("OK (1)") < page.index("Not available (1)")
    assert "&lt;gone&gt; &amp; &#x27;away&#x27;" in page and "<gone>" not in page
    assert "Perbaiki fingerprint.present." in page and "Fix fingerprint.present." in page


@pytest.mark.parametrize(
    "args",
    [
        ["diag", "--verify", "r.json", "--quick"],
        ["diag", "--kit-cert", "kit.crt"],
        ["diag", "--history", "--out", "dir"],
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert kitctl(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("kitctl diag: ")
