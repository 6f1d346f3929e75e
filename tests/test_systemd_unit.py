"""dist/kitd.service: systemd's own offline security analysis scores it 2.5 or better, it runs
as the kitd user with only the kit's devices, and its directories are the daemon's;
dist/kitd-screen.service shows the kit's app in a kiosk browser whose profile is in memory,
as a user of its own that has the display and not the kit's devices."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from hil.rig import REPO
from kitd.config import DEFAULT_CONFIG_PATH, defaults
from kitd.services.claims import RUN_LOCK_DIR

UNIT = REPO / "dist" / "kitd.service"
SYSUSERS = REPO / "dist" / "sysusers.d" / "kitd.conf"
UDEV_RULES = REPO / "dist" / "udev" / "70-kitd.rules"
MAX_EXPOSURE = 2.5
# systemd-analyze prints the table's marks (✓ ✗) only in a UTF-8 locale.
ENV = {**os.environ, "LC_ALL": "C.UTF-8", "SYSTEMD_COLORS": "0"}

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (Debian package systemd)",
)


def unit_settings(path: Path) -> dict[str, dict[str, list[str]]]:
    """Each section's keys and every value assigned to them, in order (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def only(service: dict[str, list[str]], key: str) -> str:
    values = service.get(key)
    assert values is not None and len(values) == 1, f"{key}= is set {values or 'never'}"
    return values[0]


@pytest.fixture(scope="module")
def security() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )


def overall_exposure(output: str) -> float:
    found = re.search(r"Overall exposure level for kitd\.service: (\d+(?:\.\d+)?) ", output)
    assert found, f"no overall exposure line in:\n{output}"
    return float(found.group(1))


def remaining_exposures(output: str) -> set[str]:
    """The table's settings still marked ✗ with an exposure score."""
    return {
        line.split()[1]
        for line in output.splitlines()
        if line.startswith("✗") and re.search(r"\s\d+\.\d+$", line.rstrip())
    }


@needs_systemd_analyze
def test_security_analysis_scores_at_most_2_5(security) -> None:
    assert security.returncode == 0, security.stderr
    exposure = overall_exposure(security.stdout)
    print(f"systemd-analyze security --offline=true dist/kitd.service: {exposure}")
    assert exposure <= MAX_EXPOSURE, security.stdout


@needs_systemd_analyze
def test_readme_lists_each_remaining_exposure_with_its_reason(security) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("Remaining exposure", 1)[1].split("\n#", 1)[0]
    listed = set(re.findall(r"^- `([^`]+)` — \S", section, re.MULTILINE))
    assert listed == remaining_exposures(security.stdout)


@needs_systemd_analyze
def test_unit_verifies_but_for_the_missing_installation() -> None:
    """`systemd-analyze verify` finds nothing in the unit. On a machine without the
    installation it reports, and may report, only that /opt/kitd/.venv/bin/kitd is missing."""
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    exec_start = only(unit_settings(UNIT)["Service"], "ExecStart").split()[0]
    missing = f"kitd.service: Command {exec_start} is not executable: No such file or directory"
    lines = [line for line in (verify.stdout + verify.stderr).splitlines() if "kitd.service" in line]
    assert [line for line in lines if line != missing] == []
    if Path(exec_start).exists():
        assert verify.returncode == 0, verify.stderr
    else:
        assert lines == [missing]


def test_runs_as_kitd_without_privileges() -> None:
    service = unit_settings(UNIT)["Service"]
    assert only(service, "User") == "kitd"
    assert only(service, "Group") == "kitd"
    assert "DynamicUser" not in service
    assert "SupplementaryGroups" not in service
    assert only(service, "CapabilityBoundingSet") == ""
    assert only(service, "AmbientCapabilities") == ""
    assert only(service, "NoNewPrivileges") == "yes"
    assert only(service, "ProtectSystem") == "strict"
    assert only(service, "ProtectHome") == "yes"
    assert only(service, "PrivateTmp") == "yes"
    assert only(service, "UMask") == "0077"
    assert only(service, "SystemCallArchitectures") == "native"
    assert service["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    # A refused call fails with EPERM rather than killing the daemon (OpenBLAS's mbind()).
    assert only(service, "SystemCallErrorNumber") == "EPERM"
    assert only(service, "IPAddressDeny") == "any"
    assert only(service, "IPAddressAllow") == "localhost"


def test_devices_are_the_kits_and_no_others() -> None:
    sections = unit_settings(UNIT)
    service = sections["Service"]
    assert only(service, "DevicePolicy") == "closed"
    # PrivateDevices= would hide /dev/bus/usb, the serial ports, the camera and the GPIO chip.
    assert "PrivateDevices" not in service
    allowed = {value.split()[0]: value.split()[1] for value in service["DeviceAllow"]}
    assert allowed == {
        "char-usb_device": "rw",
        "char-ttyUSB": "rw",
        "char-ttyACM": "rw",
        "char-video4linux": "rw",
        "char-gpiochip": "rw",
    }
    # The modules registering the serial and video majors load before the filter is made.
    for module in ("usbserial", "cdc_acm", "videodev"):
        for key in ("Wants", "After"):
            assert any(f"modprobe@{module}.service" in v.split() for v in sections["Unit"][key]), (
                key,
                module,
            )


def test_directories_are_the_daemons() -> None:
    service = unit_settings(UNIT)["Service"]
    assert Path("/var/lib") / only(service, "StateDirectory") == Path(defaults()["data_dir"])
    example = tomllib.loads((REPO / "etc" / "kitd.example.toml").read_text())
    assert Path(example["data_dir"]) == Path(defaults()["data_dir"])
    assert Path("/run") / only(service, "RuntimeDirectory") == RUN_LOCK_DIR
    # The configuration is read only: ProtectSystem=strict with no writable exception.
    assert "ConfigurationDirectory" not in service
    assert "ReadWritePaths" not in service
    assert only(service, "ExecStart") == f"/opt/kitd/.venv/bin/kitd --config {DEFAULT_CONFIG_PATH}"
    assert only(service, "WorkingDirectory") == str(RUN_LOCK_DIR)


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
def test_sysusers_file_makes_the_kitd_system_user(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)],
        check=True,
        capture_output=True,
        env=ENV,
        timeout=60,
    )
    users = {
        line.split(":")[0]: line.split(":") for line in (tmp_path / "etc/passwd").read_text().splitlines()
    }
    groups = {
        line.split(":")[0]: line.split(":") for line in (tmp_path / "etc/group").read_text().splitlines()
    }
    name, _, uid, gid, _, home, shell = users["kitd"]
    assert int(uid) < 1000, "a system user"
    assert groups["kitd"][2] == gid
    assert home == defaults()["data_dir"]
    assert shell.endswith("nologin")


def test_udev_rules_give_the_kits_devices_to_group_kitd() -> None:
    rules = [
        line
        for line in UDEV_RULES.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    token = re.compile(r'^[A-Z]+(\{[^}]+\})?(==|!=|:=|\+=|=)"[^"]*"$')
    for rule in rules:
        for part in rule.split(", "):
            assert token.match(part), f"not a udev key: {part!r} in {rule!r}"
        assert 'GROUP:="kitd"' in rule and 'MODE:="0660"' in rule, rule
    subsystems = {re.search(r'SUBSYSTEM=="([^"]+)"', rule).group(1): rule for rule in rules}
    assert set(subsystems) == {"usb", "tty", "video4linux", "gpio"}
    assert 'ATTR{idVendor}=="298d"' in subsystems["usb"]
    assert 'ATTR{idProduct}=="1010"' in subsystems["usb"]


SCREEN_UNIT = REPO / "dist" / "kitd-screen.service"
SCREEN_SYSUSERS = REPO / "dist" / "sysusers.d" / "kitd-screen.conf"


def test_the_kiosk_browser_shows_the_kits_own_app_from_a_profile_in_memory(tmp_path: Path) -> None:
    # Continued lines (ending in a backslash) joined, as systemd reads them.
    joined = tmp_path / SCREEN_UNIT.name
    joined.write_text(SCREEN_UNIT.read_text().replace("\\\n", " "))
    service = unit_settings(joined)["Service"]
    command = only(service, "ExecStart").split()
    settings = defaults()
    assert command[-1] == f"http://{settings['api.host']}:{settings['api.port']}/"
    assert "--kiosk" in command and "--incognito" in command
    runtime = "/run/" + only(service, "RuntimeDirectory")
    profile = next(arg.split("=", 1)[1] for arg in command if arg.startswith("--user-data-dir="))
    assert profile.startswith(runtime + "/"), "the profile lives under the RuntimeDirectory (a tmpfs)"
    assert "--disk-cache-dir=/dev/null" in command
    # Never as kitd: the browser reaches the kit only through its API.
    assert only(service, "User") == "kitd-screen"


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
def test_the_kiosk_user_has_the_display_but_not_the_kits_devices(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS), str(SCREEN_SYSUSERS)],
        check=True,
        capture_output=True,
        env=ENV,
        timeout=60,
    )
    members = {
        line.split(":")[0]: line.split(":")[3].split(",")
        for line in (tmp_path / "etc/group").read_text().splitlines()
    }
    assert "kitd-screen" not in members["kitd"]
    for group in ("video", "input", "render"):
        assert "kitd-screen" in members[group], group


# Not in dist/kitd.service.d/: systemd would apply a drop-in there to dist/kitd.service itself.
SET_CLOCK = REPO / "dist" / "drop-ins" / "kitd-set-clock.conf"


@needs_systemd_analyze
def test_the_set_clock_drop_in_grants_the_clock_and_nothing_else(tmp_path: Path, security) -> None:
    """For kits with clock.set_system on: CAP_SYS_TIME and the @clock calls, no other privilege,
    and the unit with it still scores within MAX_EXPOSURE."""
    drop_in = unit_settings(SET_CLOCK)["Service"]
    assert drop_in == {
        "CapabilityBoundingSet": ["CAP_SYS_TIME"],
        "AmbientCapabilities": ["CAP_SYS_TIME"],
        "ProtectClock": ["no"],
        "SystemCallFilter": ["@clock"],
    }
    # The unit as systemd merges it: the drop-in's assignments after the unit's own.
    added = "\n".join(f"{key}={value}" for key, values in drop_in.items() for value in values)
    merged = tmp_path / "kitd.service"
    merged.write_text(UNIT.read_text().replace("[Install]", f"{added}\n\n[Install]"))
    analysed = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(merged)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert analysed.returncode == 0, analysed.stderr
    assert overall_exposure(analysed.stdout) <= MAX_EXPOSURE, analysed.stdout
    new = remaining_exposures(analysed.stdout) - remaining_exposures(security.stdout)
    # The clock's calls are among @privileged's, and the capability is an ambient one: all five
    # marks are the clock, and only the clock.
    assert new == {
        "SystemCallFilter=~@clock",
        "SystemCallFilter=~@privileged",
        "CapabilityBoundingSet=~CAP_SYS_TIME",
        "AmbientCapabilities=",
        "ProtectClock=",
    }
    print(f"with {SET_CLOCK.name}: exposure {overall_exposure(analysed.stdout)}")
