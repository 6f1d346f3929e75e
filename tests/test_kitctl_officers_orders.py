"""kitctl officers and kitctl orders, run as a technician runs them (a real process)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

from hil.rig import venv_script
from hil.sample_orders import orders_csv, sample_order

SUPERVISOR_NIP = "197503152000031001"


def kitctl(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [venv_script("kitctl"), *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


def make_config(tmp_path: Path) -> Path:
    config = tmp_path / "kitd.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[kit]\nregion_code = "3576"\n')
    return config


def test_first_supervisor_and_the_officer_commands(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    add = ["officers", "add", "--nip", SUPERVISOR_NIP, "--name", "Siti Aminah", "--role", "supervisor"]
    refused = kitctl(config, *add, stdin="482913\n")
    assert refused.returncode == 1 and "not a terminal" in refused.stderr and "--pin-stdin" in refused.stderr
    assert "Traceback" not in refused.stderr
    done = kitctl(config, *add, "--pin-stdin", stdin="482913\n")
    assert done.returncode == 0, done.stderr
    again = kitctl(config, *add, "--pin-stdin", stdin="482913\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    bad = kitctl(
        config,
        "officers",
        "add",
        "--nip",
        "1975",
        "--name",
        "X",
        "--role",
        "officer",
        "--pin-stdin",
        stdin="1\n",
    )
    assert bad.returncode == 1 and "NIP must be 18 digits" in bad.stderr
    listed = json.loads(kitctl(config, "officers", "list", "--json").stdout)
    assert listed == [
        {
            "nip": SUPERVISOR_NIP,
            "name": "Siti Aminah",
            "role": "supervisor",
            "active": True,
            "locked": False,
            "language": "id",  # the touch screen's, Bahasa Indonesia until the officer chooses
        }
    ]
    # The kit's last active supervisor stays: nobody could import orders or unlock officers.
    last = kitctl(config, "officers", "deactivate", SUPERVISOR_NIP)
    assert last.returncode == 1 and "last active supervisor: add another supervisor first" in last.stderr
    other = ["officers", "add", "--nip", "198002022010012002", "--name", "Dewi", "--role", "supervisor"]
    assert kitctl(config, *other, "--pin-stdin", stdin="573920\n").returncode == 0
    assert kitctl(config, "officers", "deactivate", SUPERVISOR_NIP).returncode == 0
    assert "inactive" in kitctl(config, "officers", "list").stdout
    unknown = kitctl(config, "officers", "unlock", "199001012015011003")
    assert unknown.returncode == 1 and "no officer with NIP '199001012015011003'" in unknown.stderr


def test_pin_is_asked_twice_on_a_terminal(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    add = ["officers", "add", "--nip", SUPERVISOR_NIP, "--name", "Siti", "--role", "supervisor"]
    pid, fd = pty.fork()
    if pid == 0:  # the child: kitctl on a terminal
        os.execv(venv_script("kitctl"), [venv_script("kitctl"), *add, "--config", str(config)])
    output = b""
    for answer in (b"482913\n", b"482913\n"):
        while b"PIN" not in output.split(b"\n")[-1]:
            output += os.read(fd, 1024)
        os.write(fd, answer)
        output = b""
    rest = b""
    try:
        while chunk := os.read(fd, 1024):
            rest += chunk
    except OSError:
        pass  # the terminal closes when kitctl exits
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, rest
    assert b"added supervisor Siti" in rest


def test_orders_import_reports_rows_and_lists(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    orders = tmp_path / "orders.csv"
    orders.write_bytes(orders_csv([sample_order("MJK-001"), sample_order("MJK-002", sex="L")]))
    result = kitctl(config, "orders", "import", str(orders))
    assert result.returncode == 1  # a row was rejected
    assert "imported 1, unchanged 0, rejected 1" in result.stdout
    assert "row 2 (MJK-002) rejected: nik:" in result.stdout
    report = json.loads(kitctl(config, "orders", "import", str(orders), "--json").stdout)
    assert report["unchanged"] == 1 and report["rejected"][0]["row"] == 2
    listed = json.loads(kitctl(config, "orders", "list", "--day", "2026-12-01", "--json").stdout)
    assert [o["order_id"] for o in listed] == ["MJK-001"]
    good = tmp_path / "good.json"
    good.write_text(json.dumps([sample_order("MJK-003")]))
    assert kitctl(config, "orders", "import", str(good)).returncode == 0
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps([{}] * 10_001))
    refused = kitctl(config, "orders", "import", str(huge))
    assert refused.returncode == 1 and "refused" in refused.stderr and "row limit" in refused.stderr
    missing = kitctl(config, "orders", "import", str(tmp_path / "nope.csv"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    bad_day = kitctl(config, "orders", "list", "--day", "1 Desember")
    assert bad_day.returncode == 2 and "YYYY-MM-DD" in bad_day.stderr
