"""Configuration: defaults, validation errors that name the key, and kitd's exit status 2."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from hil.rig import REPO, venv_script
from kitd.config import CONFIG_REFERENCE, THRESHOLD_TABLES, defaults, load_config, parse_config
from kitd.drivers.registry import FAMILIES
from kitd.errors import ConfigError


def test_every_key_has_a_default_and_a_meaning() -> None:
    for key, expected, default, meaning in CONFIG_REFERENCE:
        assert meaning, key
        assert isinstance(default, expected), key


def test_empty_config_is_all_defaults() -> None:
    config = parse_config("")
    assert config.values == defaults()
    assert config.devices == []


EXAMPLE = REPO / "etc" / "kitd.example.toml"


def _is_toml(line: str) -> bool:
    try:
        tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return False
    return True


def uncommented(text: str) -> str:
    """The example with its commented-out settings made live.

    The rule: a setting is documented when the example sets it, or shows it commented out as
    `# key = value` under its table's header (itself live, or commented out as `# [table]`).
    A comment line is taken as a commented-out setting or header when, without its `# `, it is
    TOML on its own; prose never is. Uncommented, the example must still be a valid config.
    """
    lines = []
    for line in text.splitlines():
        if line.startswith("# ") and line[2:].strip() and _is_toml(line[2:]):
            line = line[2:]
        lines.append(line)
    return "\n".join(lines) + "\n"


def dotted(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_example_config_is_valid_and_documents_every_key() -> None:
    config = load_config(EXAMPLE)
    assert [d.uri for d in config.devices] == ["usb:298d:1010"]
    shown_text = uncommented(EXAMPLE.read_text())
    # Valid with every commented-out setting, header and [[device]] made live: known keys of
    # the right types, real threshold names, device URIs a driver takes.
    shown_config = parse_config(shown_text)
    assert [d.id for d in shown_config.devices] == ["fingerprint", "iris_camera", "signature", "peripheral"]
    shown = dotted(tomllib.loads(shown_text))
    shown.pop("device")
    missing = [key for key, *_ in CONFIG_REFERENCE if key not in shown]
    assert missing == [], "keys the example does not document"
    wrong = {key: (shown[key], default) for key, _, default, _ in CONFIG_REFERENCE if shown[key] != default}
    assert wrong == {}, "example value, default"
    # The [quality.*] tables: one for each modality, each value shown its assessor's default.
    thresholds = {key: value for key, value in shown.items() if key.startswith("quality.")}
    assert {key.split(".")[1] for key in thresholds} == set(THRESHOLD_TABLES)
    wrong = {
        key: (value, THRESHOLD_TABLES[key.split(".")[1]][key.split(".")[2]])
        for key, value in thresholds.items()
        if value != THRESHOLD_TABLES[key.split(".")[1]][key.split(".")[2]]
    }
    assert wrong == {}, "example threshold, default"


def test_readme_documents_every_key() -> None:
    readme = (REPO / "README.md").read_text()
    for key, *_ in CONFIG_REFERENCE:
        assert f"`{key}`" in readme, key


def test_the_network_is_off_unless_asked_for_and_its_ports_default_apart() -> None:
    config = parse_config("")
    assert config["network.enabled"] is False
    assert (config["network.host"], config["network.port"], config["network.pairing_port"]) == (
        "0.0.0.0",
        8443,
        8444,
    )
    assert config["network.pairing_window_s"] == 120
    # Port 0 twice is two free ports, not one port taken twice.
    both_free = parse_config("[network]\nenabled = true\nport = 0\npairing_port = 0\npairing_window_s = 30.5")
    assert both_free["network.enabled"] is True and both_free["network.pairing_window_s"] == 30.5


def test_the_clock_is_corrected_beyond_two_minutes_and_the_system_clock_left_alone_by_default() -> None:
    config = parse_config("")
    assert config["clock.max_skew_s"] == 120 and config["clock.set_system"] is False
    tuned = parse_config("[clock]\nmax_skew_s = 2.5\nset_system = true")
    assert tuned["clock.max_skew_s"] == 2.5 and tuned["clock.set_system"] is True


def test_panel_wiring_from_the_config() -> None:
    config = parse_config(
        "[panel]\nenabled = true\npin_factory = 'socket:127.0.0.1:7000'\ncancel_pin = 26\n"
        "button_active_high = true\nbounce_time_s = 0.02\ncancel_hold_s = 1.5\n"
    )
    wiring = config.panel_wiring()
    assert wiring.buttons == {"capture": 5, "retry": 6, "skip": 13, "cancel": 26}
    assert wiring.leds == {"ready": 17, "capturing": 27, "error": 22} and wiring.buzzer == 18
    assert wiring.button_active_high and wiring.led_active_high
    assert (wiring.bounce_time_s, wiring.hold_time_s) == (0.02, 1.5)


def test_devices_get_ids_by_kind() -> None:
    config = parse_config(
        '[[device]]\nuri = "usb:298d:1010"\n[[device]]\nuri = "usb:298d:1010?serial=B"\n'
        '[[device]]\nid = "spare"\nuri = "usb:298d:1010?serial=C"\n'
    )
    assert [d.id for d in config.devices] == ["fingerprint", "fingerprint2", "spare"]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("data_dir = ", "not valid TOML"),
        ("colour = 'red'", "unknown config key 'colour'"),
        ("[api]\nprot = 8080", "unknown config key 'api.prot'"),
        ("[api]\nport = '8080'", "config key 'api.port': expected int"),
        ("[api]\nport = true", "config key 'api.port': expected int"),
        ("[api]\nport = 70000", "config key 'api.port'"),
        ("[api]\nreplay_events = 0", "config key 'api.replay_events': expected 1-9999, got 0"),
        ("[api]\nreplay_events = 10000", "config key 'api.replay_events': expected 1-9999, got 10000"),
        ("[api]\nreplay_events = 2.5", "config key 'api.replay_events': expected int"),
        ("[log]\nlevel = 'loud'", "config key 'log.level'"),
        ("[kit]\nregion_code = '35A6'", "config key 'kit.region_code': expected 4 digits"),
        ("[kit]\nregion_code = '357'", "config key 'kit.region_code': expected 4 digits"),
        ("[kit]\ntimezone = 'Asia/Surabaya'", "config key 'kit.timezone': unknown time zone"),
        ("[kit]\ntimezone = '../etc/passwd'", "config key 'kit.timezone': unknown time zone"),
        ("[visit]\nfinger_order = [1, 2, 3]", "config key 'visit.finger_order': expected each of 1-10 once"),
        ("[visit]\nfinger_order = [1, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "config key 'visit.finger_order'"),
        ("[visit]\nfinger_order = ['a', 1, 2, 3, 4, 5, 6, 7, 8, 9]", "config key 'visit.finger_order'"),
        ("[visit]\nfinger_order = 'thumbs first'", "config key 'visit.finger_order': expected list"),
        ("[auth]\nmax_pin_failures = 0", "config key 'auth.max_pin_failures': must be 1 or more"),
        ("[auth]\nmax_pin_failures = 2.5", "config key 'auth.max_pin_failures': expected int"),
        ("[signature]\ncapture_seconds = 90", "config key 'signature.capture_seconds': at most 60"),
        ("[keys]\nbackend = 'tpm'", "config key 'keys.backend': expected file or pkcs11"),
        ("[audit]\ncheckpoint_interval_s = 0", "config key 'audit.checkpoint_interval_s': must be above 0"),
        ("[outbox]\nretention_days = -1", "config key 'outbox.retention_days': must be 0 or more"),
        ("[outbox]\nretention_days = 'a week'", "config key 'outbox.retention_days': expected"),
        ("[outbox]\nreserve_visits = -3", "config key 'outbox.reserve_visits': must be 0 or more"),
        ("[outbox]\nreserve_visits = 2.5", "config key 'outbox.reserve_visits': expected int"),
        (
            "[seal]\nrequire_officer_signature = 'yes'",
            "config key 'seal.require_officer_signature': expected bool",
        ),
        (
            "[keys]\nbackend = 'pkcs11'",
            "config key 'keys.pkcs11_module': needed with keys.backend = 'pkcs11'",
        ),
        ("[devices]\nreconnect_max_s = 'soon'", "config key 'devices.reconnect_max_s'"),
        ("[network]\nenabled = 1", "config key 'network.enabled': expected bool"),
        ("[network]\nhost = 8443", "config key 'network.host': expected str"),
        ("[network]\nport = 70000", "config key 'network.port': 70000 is not a port"),
        ("[network]\nport = '8443'", "config key 'network.port': expected int"),
        ("[network]\npairing_port = -1", "config key 'network.pairing_port': -1 is not a port"),
        ("[network]\nport = 9000\npairing_port = 9000", "config key 'network.pairing_port': the same port"),
        ("[network]\npairing_window_s = 0", "config key 'network.pairing_window_s': must be above 0"),
        ("[clock]\nmax_skew_s = 0", "config key 'clock.max_skew_s': must be above 0"),
        ("[clock]\nset_system = 'yes'", "config key 'clock.set_system'"),
        ("[network]\npairing_window_s = 'two minutes'", "config key 'network.pairing_window_s': expected"),
        ("[network]\ncode = '123456'", "unknown config key 'network.code'"),
        ("[panel]\nenabled = 'yes'", "config key 'panel.enabled': expected bool"),
        ("[panel]\npin_factory = 'gpio'", "config key 'panel.pin_factory': expected lgpio or"),
        ("[panel]\npin_factory = 'socket:localhost'", "config key 'panel.pin_factory'"),
        ("[panel]\nbuzzer_pin = 40", "config key 'panel.buzzer_pin': expected a BCM GPIO number"),
        ("[panel]\ncapture_pin = 17", "config key 'panel.capture_pin': GPIO 17 is also panel.ready_led_pin"),
        ("[panel]\nbounce_time_s = -0.1", "config key 'panel.bounce_time_s'"),
        ("[panel]\ncancel_hold_s = 0", "config key 'panel.cancel_hold_s': must be above"),
        ("[firmware]\npublic_keys = 'office.pem'", "config key 'firmware.public_keys': expected list"),
        ("[firmware]\npublic_keys = ['']", "config key 'firmware.public_keys': expected a list of PEM"),
        ("[firmware]\npublic_keys = [1]", "config key 'firmware.public_keys': expected a list of PEM"),
        ("[firmware]\nallow_list = false", "config key 'firmware.allow_list': expected str"),
        ("[firmware]\nreset_timeout_s = 0", "config key 'firmware.reset_timeout_s': must be above 0"),
        ("[firmware]\nself_test_timeout_s = -1", "config key 'firmware.self_test_timeout_s': must be above"),
        ("[fingerprint]\nppi = 0", "config key 'fingerprint.ppi': expected a sensor resolution of 50-5000"),
        ("[fingerprint]\nppi = 1e308", "config key 'fingerprint.ppi': expected a sensor resolution"),
        ("[fingerprint]\nppi = inf", "config key 'fingerprint.ppi': expected a finite number, got inf"),
        ("[fingerprint]\nppi = nan", "config key 'fingerprint.ppi': expected a finite number, got nan"),
        (
            "[fingerprint]\ncapture_timeout_s = 0",
            "config key 'fingerprint.capture_timeout_s': must be above 0",
        ),
        (
            "[fingerprint]\npoll_interval_s = -0.1",
            "config key 'fingerprint.poll_interval_s': must be above 0",
        ),
        (
            "[fingerprint]\nconsecutive_passes = 0",
            "config key 'fingerprint.consecutive_passes': must be above",
        ),
        ("[fingerprint]\nkeep_best = -1", "config key 'fingerprint.keep_best': must be above 0"),
        ("[fingerprint]\nmax_attempts = -1", "config key 'fingerprint.max_attempts': must be 0 or more"),
        ("[iris]\nconsecutive_passes = 0", "config key 'iris.consecutive_passes': must be above 0"),
        ("[iris]\nkeep_best = 0", "config key 'iris.keep_best': must be above 0"),
        ("[iris]\nmax_attempts = -2", "config key 'iris.max_attempts': must be 0 or more"),
        ("[iris]\ncapture_timeout_s = inf", "config key 'iris.capture_timeout_s': expected a finite number"),
        ("[categories.odgj]\ntime_factor = -1", "config key 'categories.odgj.time_factor': must be above 0"),
        ("[categories.lansia]\nattempt_factor = 0", "config key 'categories.lansia.attempt_factor': must be"),
        ("[devices]\nhealth_interval_s = 0", "config key 'devices.health_interval_s': must be above 0"),
        ("[devices]\nreconnect_min_s = 0", "config key 'devices.reconnect_min_s': must be above 0"),
        (
            "[devices]\nreconnect_min_s = 2.0",
            "config key 'devices.reconnect_max_s': below devices.reconnect_min_s",
        ),
        (
            "[quality.fingerprint]\nmin_score = nan",
            "config key 'quality.fingerprint.min_score': expected a finite number, got nan",
        ),
        (
            "[quality.iris]\nmin_iris_diameter = -1",
            "config key 'quality.iris.min_iris_diameter': expected a number",
        ),
        (
            "[quality.signature]\nmin_points = inf",
            "config key 'quality.signature.min_points': expected a finite number, got inf",
        ),
        (
            "[[device]]\nid = 'a/b'\nuri = 'usb:298d:1010'",
            "config key 'device[0].id': 'a/b' is not a device id",
        ),
        ("[[device]]\nid = ''\nuri = 'usb:298d:1010'", "config key 'device[0].id': '' is not a device id"),
        (
            "[[device]]\nuri = 'usb:298d:1010'\n[[device]]\nid = 'spare'\nuri = 'usb:298d:1010'",
            "config key 'device[1].uri': the same device as 'fingerprint' (usb:298d:1010)",
        ),
        ("data_dir = ''", "config key 'data_dir': empty"),
        ('data_dir = "/var/lib/kit\\u0000d"', "config key 'data_dir': contains a NUL character"),
        ('[kit]\nid = "kit\\u0000"', "config key 'kit.id': contains a NUL character"),
        ("[[device]]\nuri = 'camera:http://[::1'", "device URI 'camera:http://[::1': not a URL"),
        ("[[device]]\nuri = 'camera:http://a b/'", "the URL has a space or a control character in it"),
        ("[[device]]\nuri = 'camera:http://:8080/video'", "the URL names no host"),
        ("[[device]]\nuri = 'camera:http://cam:99999/video'", "not a URL (Port out of range"),
        ("[[device]]\nuri = 'ftp:x'", "device URI 'ftp:x': unknown scheme 'ftp'"),
        ("[[device]]\nuri = 'usb:1234:5678'", "no driver for USB device 1234:5678"),
        ("[[device]]\nuri = 'usb:298d'", "expected usb:VVVV:PPPP"),
        ("[[device]]\nuri = 'usb:298d:1010?colour=red'", "unknown parameter 'colour'"),
        ("[[device]]\nid = 'x'", "config key 'device[0].uri' is required"),
        ("[[device]]\nuri = 'usb:298d:1010'\nport = 1", "unknown config key 'device[0].port'"),
        (
            "[[device]]\nuri = 'usb:298d:1010'\n[[device]]\nid = 'fingerprint'\nuri = 'usb:298d:1010'",
            "duplicate id 'fingerprint'",
        ),
    ],
)
def test_bad_config_names_what_is_wrong(text: str, names: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(names)):
        parse_config(text)


def test_every_config_the_project_ships_loads() -> None:
    shipped = sorted((Path(__file__).resolve().parent.parent / "etc").glob("*.toml"))
    assert len(shipped) >= 2
    for path in shipped:
        load_config(path)  # raises ConfigError naming the key


def test_only_the_margins_may_be_below_0() -> None:
    parse_config("[quality.iris]\nmin_margin_left_right = -0.1\nmin_margin_top_bottom = -0.4\n")
    with pytest.raises(ConfigError, match="'quality.iris.min_margin_top_bottom': expected a finite"):
        parse_config("[quality.iris]\nmin_margin_top_bottom = -inf\n")


def test_an_empty_config_path_is_refused_not_taken_for_the_defaults() -> None:
    with pytest.raises(ConfigError, match="config file: an empty path"):
        load_config("")


def test_a_data_dir_that_is_a_file_or_inside_one_is_refused(tmp_path: Path) -> None:
    afile = tmp_path / "kitd-data"
    afile.write_text("not a folder")
    for data_dir in (afile, afile / "inside"):
        with pytest.raises(
            ConfigError, match=re.escape(f"config key 'data_dir': {afile} is a file, not a folder")
        ):
            parse_config(f'data_dir = "{data_dir}"')
    parse_config(f'data_dir = "{tmp_path / "not-yet" / "made"}"')  # a folder kitd will make
    nowhere = tmp_path / "kitd-link"
    nowhere.symlink_to(tmp_path / "gone")
    with pytest.raises(
        ConfigError, match=re.escape(f"'data_dir': {nowhere} is a link to nowhere ({tmp_path}/gone)")
    ):
        parse_config(f'data_dir = "{nowhere}"')


def test_a_bad_value_names_the_file_it_is_in() -> None:
    source = Path("/etc/kitd/kitd.toml")
    for text in ("data_dir = 5", "[quality.iris]\nmin_score = 'high'", "[[device]]\nuri = 7"):
        with pytest.raises(ConfigError, match=re.escape(f"{source}: config key '")):
            parse_config(text, source)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("data_dir = [", "not valid TOML"),
        ("speed = 1", "unknown config key 'speed'"),
        ("[api]\nport = 'x'", "config key 'api.port'"),
        ("[[device]]\nuri = 'bogus:thing'", "device URI 'bogus:thing'"),
    ],
)
def test_kitd_rejects_bad_config_with_one_line_and_status_2(tmp_path: Path, text: str, names: str) -> None:
    path = tmp_path / "kitd.toml"
    path.write_text(text)
    result = subprocess.run([venv_script("kitd"), "--config", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert names in lines[0]
    assert "Traceback" not in result.stderr


def test_kitd_missing_config_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [venv_script("kitd"), "--config", str(tmp_path / "none.toml")], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"kitd: config file {tmp_path / 'none.toml'} not found"


def test_kitctl_bad_uri_and_bad_config(tmp_path: Path) -> None:
    out = tmp_path / "f.png"
    bad_uri = subprocess.run(
        [venv_script("kitctl"), "capture", "fingerprint", "--device", "bluetooth:aa", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert bad_uri.returncode == 2
    assert bad_uri.stderr.strip().splitlines() == [
        f"kitctl: device URI 'bluetooth:aa': unknown scheme 'bluetooth' (known: {', '.join(FAMILIES)})"
    ]
    config = tmp_path / "kitd.toml"
    config.write_text("[api]\nport = -1\n")
    bad_config = subprocess.run(
        [venv_script("kitctl"), "devices", "--config", str(config)], capture_output=True, text=True
    )
    assert bad_config.returncode == 2
    assert len(bad_config.stderr.strip().splitlines()) == 1
    assert "api.port" in bad_config.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("kind", "uri", "extra"),
    [
        ("fingerprint", "usb:298d:1010", []),
        ("iris", "camera:0", []),
        ("signature", "serial:/dev/ttyS0", ["--seconds", "5"]),
    ],
)
def test_kitctl_capture_from_a_device_refuses_the_daemon_s_api(
    tmp_path: Path, kind: str, uri: str, extra: list[str]
) -> None:
    out = tmp_path / "capture.out"
    result = subprocess.run(
        [venv_script("kitctl"), "capture", kind, "--device", uri, "--api", "http://127.0.0.1:1",
         "--out", str(out), *extra],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["kitctl: --api only goes with --daemon"]
    assert not out.exists()


@pytest.mark.parametrize(
    "setting",
    ["usbip://127.0.0.1:70000", "usbip://127.0.0.1:0", "usbip://127.0.0.1", "usbip://:3240", "libusb"],
)
def test_a_bad_usb_backend_is_a_config_error_naming_the_key(tmp_path: Path, setting: str) -> None:
    """One parser decides, at load: before, a port of 70000 passed loading and then every open
    raised a bare ValueError."""
    with pytest.raises(ConfigError, match="config key 'usb_backend'"):
        parse_config(f"usb_backend = '{setting}'")
    if setting != "usbip://127.0.0.1:70000":
        return  # the processes below answer every bad setting alike; one is enough to run
    path = tmp_path / "kitd.toml"
    path.write_text(f"usb_backend = '{setting}'\n[[device]]\nuri = 'usb:298d:1010'\n")
    for command in (["kitd", "--config"], ["kitctl", "devices", "--config"]):
        result = subprocess.run(
            [venv_script(command[0]), *command[1:], str(path)], capture_output=True, text=True
        )
        assert result.returncode == 2, result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert "config key 'usb_backend'" in line and setting in line


def test_good_usb_backends_load() -> None:
    for setting in ("", "usbip://127.0.0.1:3240", "usbip://[::1]:3240/"):
        assert parse_config(f"usb_backend = '{setting}'")["usb_backend"] == setting
