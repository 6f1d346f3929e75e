"""kitctl on a technician's slips (an output it may not write, endless seconds, a bad daemon
address or token, a data_dir with no kit): one line naming what was wrong, the right exit code."""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import socketserver
import subprocess
import threading
from pathlib import Path

import cv2
import pytest

from hil.rig import venv_script
from hil.synthetic_eye import EyeParams, render
from kitd.cli.daemon_client import DaemonClient, api_url_from_config
from kitd.config import api_url, parse_config
from kitd.errors import ConfigError


def kitctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([venv_script("kitctl"), *args], capture_output=True, text=True, timeout=60)


def test_an_output_folder_it_may_not_write_in_is_named_in_one_line(tmp_path: Path) -> None:
    eye = tmp_path / "eye.png"
    assert cv2.imwrite(str(eye), render(EyeParams(seed=3))[0])
    # /proc takes no new files, whoever asks (root included; it says ENOENT where a folder of
    # another owner says EACCES): the message is the system's reason, named by the file asked for.
    out = "/proc/kitd-eye.png"
    result = kitctl("capture", "iris", "--device", f"camera:file:{eye}", "--raw", "--out", out)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"kitctl: {out}: No such file or directory"]


def test_endless_seconds_are_refused_as_an_argument(tmp_path: Path) -> None:
    for command in (("iris", "--timeout"), ("fingerprint", "--timeout"), ("signature", "--seconds")):
        result = kitctl("capture", *command, "inf", "--out", str(tmp_path / "x"))
        assert result.returncode == 2, command
        assert "'inf' is not a number of seconds" in result.stderr and "Traceback" not in result.stderr


def test_a_daemon_address_or_token_that_cannot_be_sent_is_one_line(tmp_path: Path) -> None:
    out = str(tmp_path / "eye.png")
    for address, says in (
        (
            "http://127.0.0.1:99999",
            "kitctl: daemon address 'http://127.0.0.1:99999': Port out of range 0-65535",
        ),
        ("http://[::1", "kitctl: daemon address 'http://[::1': Invalid IPv6 URL"),
    ):
        result = kitctl("capture", "iris", "--daemon", "--api", address, "--out", out)
        assert result.returncode == 1 and result.stderr.strip().splitlines() == [says]
    for token in ("a\nb", "kunci rahasia", "ユニ"):
        result = kitctl(
            "capture", "iris", "--daemon", "--api", "http://127.0.0.1:9", "--token", token, "--out", out
        )
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            "kitctl: --token (or $KITD_TOKEN): a sign-in token is printable ASCII, no spaces"
        ]


def test_a_data_dir_with_no_kit_is_named_not_made(tmp_path: Path) -> None:
    """A typo in data_dir must not read as an empty kit (nor sign a checkpoint of one with a
    new key): commands on what a kit holds say where they looked and make nothing there."""
    config = tmp_path / "kitd.toml"
    config.write_text(f'data_dir = "{tmp_path / "kitd-typo"}"\n')
    for command in (
        ("audit", "checkpoint"),
        ("audit", "verify"),
        ("outbox", "list"),
        ("orders", "list"),
        ("officers", "list"),
        ("officers", "unlock", "198501012010011001"),
    ):
        result = kitctl(*command, "--config", str(config))
        assert result.returncode == 2, command
        assert result.stderr.strip().splitlines() == [
            f"kitctl: no kit database at {tmp_path / 'kitd-typo' / 'kitd.sqlite3'} (data_dir of {config}): "
            "is data_dir right? kitd's first start, kitctl officers add or orders import make it"
        ]
    assert kitctl("laptops", "list", "--config", str(config)).returncode == 2
    assert not (tmp_path / "kitd-typo").exists()


def test_a_stopped_daemon_is_said_to_be_not_running_not_an_address(tmp_path: Path) -> None:
    # kitd stopped cleanly leaves no socket and no port file: its config's port 0 is no address.
    config = tmp_path / "kitd.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n[api]\nport = 0\n')
    for command in (("diag", "--quick"), ("diag", "--history")):
        result = kitctl(*command, "--config", str(config))
        said = result.stderr.strip().splitlines()
        assert result.returncode != 0 and len(said) == 1, (command, result.stderr)
        assert f"kitd is not running for data_dir {tmp_path}" in said[0] and ":0" not in said[0], said
    result = subprocess.run(
        [venv_script("kitfw"), "list", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert "kitd is not running" in result.stderr and result.returncode != 0, result.stderr


def test_an_ipv6_or_any_address_api_host_is_reached_by_a_url_that_works(tmp_path: Path) -> None:
    for host, url in (
        ("::1", "http://[::1]:8080"),
        ("::", "http://[::1]:8080"),
        ("", "http://127.0.0.1:8080"),
    ):
        config = parse_config(f'data_dir = "{tmp_path}"\n[api]\nhost = "{host}"\nport = 8080\n')
        assert api_url_from_config(config) == url == api_url(host, 8080)  # kitctl's and kitd's
        DaemonClient(url)._connection(1.0)[0].close()  # raises DaemonUnreachable on a URL it cannot use


def test_the_ink_is_not_written_over_the_recording(tmp_path: Path) -> None:
    out = tmp_path / "sig.json"
    result = kitctl(
        "capture", "signature", "--daemon", "--seconds", "1", "--out", str(out), "--png", str(out)
    )
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.strip().splitlines() == [
        f"kitctl: --png {out}: the same file as --out (the ink would replace the recording)"
    ]


class _NotKitd(http.server.BaseHTTPRequestHandler):
    """A web server that is not a kit's (a router's login page at the address typed)."""

    content_type = "text/html"

    def _body(self) -> bytes:
        return b"<html>router login</html>"

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _page(self) -> None:
        self._send(self._body(), self.content_type)

    do_GET = do_POST = _page

    def log_message(self, *args: object) -> None:
        pass


def test_an_address_where_something_else_answers_is_said_so(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotKitd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for command in (
            ("diag",),
            ("diag", "--history"),
            ("capture", "iris", "--daemon", "--out", str(tmp_path / "eye.png")),
        ):
            result = kitctl(*command, "--api", url)
            assert result.returncode == 1, command
            (line,) = result.stderr.strip().splitlines()
            assert "the answer is not JSON: is this the address of a kitd?" in line, line
    finally:
        server.shutdown()
        server.server_close()


class _OtherJson(_NotKitd):
    """A server that answers JSON, but not kitd's: an empty object or array (self.server.body)."""

    content_type = "application/json"

    def _body(self) -> bytes:
        return self.server.body  # type: ignore[attr-defined]


def test_json_of_another_shape_is_said_so_naming_what_kitd_would_answer(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtherJson)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for body, commands in (
            (
                b"{}",
                (
                    (("diag",), "DiagnosticsRun (no 'run_id')"),
                    (("diag", "--history"), "DiagnosticsRuns (no 'runs')"),
                    (("diag", "--history", "--check", "unit.disk"), "CheckHistory (no 'check')"),
                    (("diag", "--out", str(tmp_path / "report")), "DiagnosticsReport (no 'statement')"),
                    (("laptops", "pair"), "PairingWindow (no 'open')"),
                    (
                        ("capture", "iris", "--daemon", "--out", str(tmp_path / "eye.png")),
                        "DeviceList (the JSON is an object, not an array)",
                    ),
                ),
            ),
            (b"[]", ((("diag",), "DiagnosticsRun (the JSON is an array, not an object)"),)),
            (b'{"open": true, "paired": null}', ((("laptops", "pair"), "PairingWindow (no 'code')"),)),
            (
                b'{"runs": [{}], "check": "x", "findings": []}',
                ((("diag", "--history"), "DiagnosticsRuns (runs[0].run_id is missing)"),),
            ),
            (
                b'[{"id": 5}]',
                ((("capture", "iris", "--daemon", "--out", str(tmp_path / "e.png")), "DeviceList"),),
            ),
        ):
            server.body = body  # type: ignore[attr-defined]
            for command, says in commands:
                result = kitctl(*command, "--api", url)
                assert result.returncode == 1, (body, command, result.stderr)
                (line,) = result.stderr.strip().splitlines()
                assert f"the answer is not kitd's {says}" in line and "a kitd?" in line, line
        # kitfw, the same client: its list and rollback (a KeyError's traceback before).
        server.body = b"{}"  # type: ignore[attr-defined]
        for command, says in ((("list",), "Firmware (no 'device')"), (("rollback",), "FirmwareOperation")):
            result = subprocess.run(
                [venv_script("kitfw"), *command, "--api", url, "--token", "t"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 1, (command, result.stderr)
            (line,) = result.stderr.strip().splitlines()
            assert line.startswith(f"kitfw: the answer is not kitd's {says}") and "a kitd?" in line, line
    finally:
        server.shutdown()
        server.server_close()


class _ErrorPage(_NotKitd):
    """A web server answering every request with an error page of status self.server.status."""

    def _page(self) -> None:
        status = self.server.status  # type: ignore[attr-defined]
        self._send(f"<html>{status}</html>".encode(), "text/html", status)

    do_GET = do_POST = _page


def test_an_error_without_kitd_s_message_is_said_for_what_it_is(tmp_path: Path) -> None:
    """Another server's 404 page: the wrong address; a 500 without kitd's JSON: a failure in
    kitd, whose log says more."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ErrorPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        for status, says in (
            (404, "HTTP 404, not a kitd error: is this the address of a kitd?"),
            (500, "HTTP 500 without kitd's error message: see kitd's log (journalctl -u kitd)"),
        ):
            server.status = status  # type: ignore[attr-defined]
            for command in (("diag",), ("laptops", "pair")):
                result = kitctl(*command, "--api", url)
                assert result.returncode == 1, command
                (line,) = result.stderr.strip().splitlines()
                assert line.endswith(says), line
    finally:
        server.shutdown()
        server.server_close()


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def test_over_the_kit_s_socket_an_answer_unlike_kitd_s_asks_for_its_version(tmp_path: Path) -> None:
    """Only kitd makes the kit's socket: an answer of another shape there is another kitd
    version's, not another server's."""
    path = tmp_path / "kitd.sock"
    server = _UnixServer(str(path), _OtherJson)
    server.body = b"{}"  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = kitctl("diag", "--api", f"unix:{path}")
        assert result.returncode == 1
        (line,) = result.stderr.strip().splitlines()
        assert line.endswith("the answer is not kitd's DiagnosticsRun (no 'run_id'): "
                             "is kitd of the same version as kitctl?"), line  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()


def test_a_token_is_checked_only_where_it_is_sent() -> None:
    assert DaemonClient("unix:/run/kitd/kitd.sock", "a\nb").token is None  # the socket needs none
    with pytest.raises(ConfigError, match="printable ASCII"):
        DaemonClient("http://127.0.0.1:8080", "a\nb")


class _PadThenPage(_NotKitd):
    """A server that lists one signature pad as kitd does, then answers its capture with a page."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        pad = {"id": "pad", "kind": "signature", "uri": "serial:/dev/ttyS1", "status": "ready", "detail": {}}
        body = json.dumps([{**pad, "model": None, "serial": None, "firmware": None}]).encode()
        self._send(body, "application/json")


def test_a_capture_answered_with_a_page_is_one_line(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PadThenPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        out = str(tmp_path / "sig.json")
        result = kitctl("capture", "signature", "--daemon", "--seconds", "1", "--api", url, "--out", out)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == (
            "kitctl: daemon: the answer is not JSON: is this the address of a kitd?"
        )
        result = kitctl("capture", "iris", "--daemon", "pad", "--api", url, "--out", str(tmp_path / "e.png"))
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            "kitctl: the daemon's device 'pad' is not an iris camera (its kind: signature)"
        ]
    finally:
        server.shutdown()
        server.server_close()


def test_a_one_frame_replay_says_why_its_passing_frame_is_not_enough(tmp_path: Path) -> None:
    """One frame that passes its checks, replayed where the gate wants 3 in a row: the
    message says the replay ended (not that no frame passed), and --force says what held it."""
    eye = tmp_path / "eye.png"
    assert cv2.imwrite(str(eye), render(EyeParams(seed=3))[0])
    uri = f"camera:file:{eye}"
    gated = kitctl("capture", "iris", "--device", uri, "--out", str(tmp_path / "gated.png"))
    assert gated.returncode == 1 and not (tmp_path / "gated.png").exists()
    said = gated.stderr.strip().splitlines()[-1]
    assert f"{uri}: 1 frame passed but never 3 in a row before the replay ended (best score" in said, said
    forced = kitctl("capture", "iris", "--device", uri, "--force", "--out", str(tmp_path / "forced.png"))
    assert forced.returncode == 0 and (tmp_path / "forced.png").exists()
    held = "its checks pass, but 1 frame passed but never 3 in a row before the replay ended)"
    assert held in forced.stderr and "failing: )" not in forced.stderr


def test_bad_arguments_of_diag_and_audit_exit_2_before_anything_runs(tmp_path: Path) -> None:
    """Port 9 answers nothing: a command that got as far as the daemon would exit 1."""
    daemon = ("--api", "http://127.0.0.1:9")
    for limit in ("0", "501", "ten", "-3"):
        result = kitctl("diag", "--history", "--limit", limit, *daemon)
        assert result.returncode == 2, limit
        assert f"argument --limit: '{limit}' is not a whole number from 1 to 500" in result.stderr
    result = kitctl("audit", "show", "--since", "yesterday", "--config", str(tmp_path / "none.toml"))
    assert result.returncode == 2
    assert "argument --since: 'yesterday' is not an ISO 8601 date or time" in result.stderr
    # A date that is one, but no UTC time can be (it was an OverflowError's traceback).
    for edge in ("0001-01-01T00:00+01:00", "9999-12-31T23:59-14:00"):
        result = kitctl("audit", "show", "--since", edge, "--config", str(tmp_path / "none.toml"))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert f"argument --since: '{edge}' is outside the years a UTC time can have" in result.stderr
    afile = tmp_path / "reports"
    afile.write_text("")
    for out in (afile, afile / "today"):
        result = kitctl("diag", "--out", str(out), *daemon)
        assert result.returncode == 2
        assert result.stderr == f"kitctl diag: --out {out}: {afile} is a file, not a folder\n"


def test_bytes_that_are_no_http_answer_are_quoted_on_one_line() -> None:
    """Something listening that answers bytes, not HTTP: its reply is quoted escaped, never as it
    came (a NUL and a line break split the one line the technician reads)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                peer, _ = listener.accept()
                with peer:
                    peer.recv(4096)
                    peer.sendall(b"\x00\xff garbage\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    try:
        result = kitctl("diag", "--api", f"http://127.0.0.1:{listener.getsockname()[1]}")
        assert result.returncode == 1, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert "daemon unreachable at http://127.0.0.1:" in line and "\\x00" in line, line
    finally:
        listener.close()
