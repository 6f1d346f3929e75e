"""The kit's configuration: a TOML file, every key with a documented default.

`load_config` reads and validates the file and returns a `KitConfig`; any wrong
value raises `ConfigError` naming the key. `CONFIG_REFERENCE` is the single source
of the keys, their types, defaults and meaning (the README's reference is made
from it).
"""

from __future__ import annotations

import math
import re
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kitformats.named_files import MAX_CONFIG_FILE, read_named_file

from kitd.capture import fingerprint_quality, iris_quality, signature_quality
from kitd.drivers.panel import PanelWiring, check_target
from kitd.drivers.registry import BAUD_RATES, DriverSettings, device_kind
from kitd.drivers.usbip_address import parse_backend_setting
from kitd.durable_files import why_no_folder
from kitd.errors import ConfigError
from kitd.events import REPLAY_EVENTS, SUBSCRIBER_QUEUE

DEFAULT_CONFIG_PATH = Path("/etc/kitd/kitd.toml")

# (key, type, default, meaning). Nested tables are dotted keys.
CONFIG_REFERENCE: list[tuple[str, type | tuple[type, ...], Any, str]] = [
    ("data_dir", str, "/var/lib/kitd", "Directory for all of the daemon's state."),
    ("api.host", str, "127.0.0.1", "Address the local HTTP API listens on."),
    ("api.port", int, 8080, "Port of the HTTP API; 0 picks a free one (written to data_dir/api.port)."),
    ("log.level", str, "info", "Lowest level logged to stderr: debug, info, warning, error."),
    ("kit.id", str, "", "This kit's name in its bundles and logs; empty: the host name."),
    (
        "kit.region_code",
        str,
        "",
        "The region the kit serves, 4 digits (province and regency, as NIK digits 1-4); an order "
        "whose NIK names another region is imported with a warning. Empty: no check.",
    ),
    (
        "kit.timezone",
        str,
        "Asia/Jakarta",
        "The kit's day for appointment lists (IANA zone: Asia/Jakarta WIB, Asia/Makassar WITA, "
        "Asia/Jayapura WIT).",
    ),
    (
        "keys.backend",
        str,
        "file",
        "Where the kit's signing key lives: file (data_dir/keys/kit.key, mode 0600; development "
        "and the simulation kit) or pkcs11 (a token: a secure element or TPM through its PKCS#11 "
        "module; the key never leaves it).",
    ),
    ("keys.pkcs11_module", str, "", "The token's PKCS#11 module (path of its .so), for backend pkcs11."),
    ("keys.token_label", str, "kit", "Label of the token that holds the kit's key, for backend pkcs11."),
    ("keys.key_label", str, "kit-signing", "Label of the kit's key in the token, for backend pkcs11."),
    (
        "keys.pin_file",
        str,
        "",
        "File holding the token's user PIN on one line, readable by the daemon only (0600); the "
        "PIN itself never goes in this configuration. For backend pkcs11.",
    ),
    (
        "seal.require_officer_signature",
        bool,
        True,
        "A visit is finished only with its officer's signature (their credential open by their "
        "sign-in); false lets the kit seal it alone, the manifest saying officer_signed false.",
    ),
    (
        "outbox.retention_days",
        (int, float),
        7,
        "Days a bundle stays in the outbox after the central office's receipt; then its files "
        "are erased. A bundle the office has not acknowledged is never erased.",
    ),
    (
        "outbox.reserve_visits",
        int,
        10,
        "A visit starts only while free disk covers this many full visits' bundles (384 KiB "
        "each); 0 turns the check off.",
    ),
    (
        "audit.checkpoint_interval_s",
        (int, float),
        300,
        "How often the kit signs a checkpoint of its audit log when entries were added (it also "
        "signs one after every sealed bundle).",
    ),
    (
        "auth.idle_lock_s",
        (int, float),
        300,
        "A sign-in token ends after this many seconds without use; the officer signs in again.",
    ),
    (
        "api.socket_group",
        str,
        "kitd",
        "Group of data_dir/kitd.sock (mode 0660), kitctl's way in on the kit without a token, as a "
        "technician: membership is shell access to the kit. If it does not exist, the socket is the "
        "daemon's user's only (0600).",
    ),
    (
        "api.replay_events",
        int,
        REPLAY_EVENTS,
        "Events kept for a client of /api/v1/events that reconnects (the touch screen): it first "
        "gets the ones it missed; one that missed more is told so (a `gap` event) and asks the kit "
        f"for its state again. 1-{SUBSCRIBER_QUEUE - 1}.",
    ),
    # The network API for paired field laptops (kitd.api.network), off unless asked for.
    (
        "network.enabled",
        bool,
        False,
        "Whether the kit serves paired field laptops over HTTPS (mutual TLS 1.3) on network.port, "
        "and opens a pairing listener on network.pairing_port while a supervisor's pairing window is.",
    ),
    (
        "network.host",
        str,
        "0.0.0.0",
        "Address the network API and the pairing listener listen on (0.0.0.0: every interface).",
    ),
    (
        "network.port",
        int,
        8443,
        "Port of the network API for paired laptops; 0 picks a free one (written to data_dir/network.port).",
    ),
    (
        "network.pairing_port",
        int,
        8444,
        "Port a laptop pairs on (kit-sync pair HOST:PORT CODE), listening only while a pairing "
        "window is open; 0 picks a free one.",
    ),
    (
        "network.pairing_window_s",
        (int, float),
        120,
        "How long a pairing window (and its 6-digit code) stays open.",
    ),
    # The kit's clock (kitd.clock): laptops confirm it at every sync.
    (
        "clock.max_skew_s",
        (int, float),
        120,
        "A laptop's time further than this from the kit's (seconds) corrects the kit's clock; "
        "nearer, it only confirms it.",
    ),
    (
        "clock.set_system",
        bool,
        False,
        "Whether a correction sets the machine's clock (clock_settime, CAP_SYS_TIME: the kit's "
        "systemd unit grants it); off, the kit keeps its own offset in data_dir/clock.json.",
    ),
    (
        "auth.max_pin_failures",
        int,
        5,
        "Wrong PINs in a row that lock an officer until a supervisor unlocks them.",
    ),
    (
        "usb_backend",
        str,
        "",
        "How pyusb reaches USB devices: empty for the system's libusb, "
        "or usbip://HOST:PORT for a USB/IP server (the simulation rig).",
    ),
    ("devices.reconnect_min_s", (int, float), 0.2, "First retry delay for a disconnected device."),
    ("devices.reconnect_max_s", (int, float), 1.0, "Longest retry delay (backoff doubles up to it)."),
    (
        "devices.health_interval_s",
        (int, float),
        1.0,
        "How often a ready device's presence is checked (bus enumeration, no I/O to the device).",
    ),
    (
        "devices.battery_interval_s",
        (int, float),
        60.0,
        "How often the peripheral's battery gauge is read for the touch screen's status bar.",
    ),
    ("fingerprint.ppi", (int, float), 385, "NB-1010-U resolution from the vendor's datasheet."),
    ("fingerprint.poll_interval_s", (int, float), 0.1, "Pause between finger-presence polls."),
    (
        "fingerprint.capture_timeout_s",
        (int, float),
        20.0,
        "Default time to wait for a finger when a request names none.",
    ),
    (
        "fingerprint.consecutive_passes",
        int,
        1,
        "A gated capture ends after this many passing presses in a row.",
    ),
    ("fingerprint.keep_best", int, 3, "How many of the best presses a capture keeps."),
    (
        "fingerprint.max_attempts",
        int,
        0,
        "Presses before a gated capture gives up with its best (forced); 0: only the timeout limits it.",
    ),
    # Applicants who need patience get more time and attempts, never lower thresholds.
    *(
        entry
        for category, factor in (("lansia", 2.0), ("disabilitas", 2.0), ("odgj", 3.0), ("lainnya", 1.0))
        for entry in (
            (
                f"categories.{category}.time_factor",
                (int, float),
                factor,
                f"Capture session timeouts are multiplied by this for the '{category}' category.",
            ),
            (
                f"categories.{category}.attempt_factor",
                (int, float),
                factor,
                f"Attempt limits are multiplied by this for the '{category}' category.",
            ),
        )
    ),
    (
        "visit.finger_order",
        list,
        list(range(1, 11)),
        "The order a visit takes the fingers in: each FGP position 1-10 once (1 right thumb .. 5 right "
        "little, 6 left thumb .. 10 left little).",
    ),
    ("iris.width", int, 640, "Frame width asked of a V4L2 iris camera and expected from an HTTP stream."),
    ("iris.height", int, 480, "Frame height asked of a V4L2 iris camera and expected from an HTTP stream."),
    (
        "iris.fps",
        (int, float),
        30,
        "Nominal frame rate: asked of a V4L2 camera; estimates frames missed by a live stream; "
        "paces image-sequence replay.",
    ),
    ("iris.open_timeout_s", (int, float), 2.0, "How long opening a camera stream may take."),
    (
        "iris.read_timeout_s",
        (int, float),
        1.0,
        "A live stream with no new frame (or only identical ones) for this long is stalled: "
        "released and reopened with backoff (devices.reconnect_min_s .. reconnect_max_s).",
    ),
    ("iris.capture_timeout_s", (int, float), 10.0, "Default time a capture waits for an intact frame."),
    (
        "iris.consecutive_passes",
        int,
        3,
        "A gated iris capture ends after this many judged frames in a row pass "
        "(half a second at iris.judge_fps 6).",
    ),
    ("iris.keep_best", int, 5, "How many of the best frames a gated iris capture keeps."),
    (
        "iris.max_attempts",
        int,
        0,
        "Frames judged before a gated iris capture gives up with its best (forced); 0: only the timeout.",
    ),
    (
        "iris.judge_fps",
        (int, float),
        6,
        "Frames a second the daemon judges per camera, shared by the preview's overlay, sessions "
        "and captures (judging costs ~5x showing a frame; 6 keeps a preview and a session under "
        "a fifth of a core here); 0 judges every frame.",
    ),
    ("iris.preview_width", int, 480, "Width of the live preview in pixels (scaled down, never up)."),
    ("iris.preview_quality", int, 80, "JPEG quality of the live preview, 1-100."),
    (
        "signature.baud",
        int,
        38400,
        "Line rate of a signature pad whose URI names none (ISDV4 pads: 38400, some 19200).",
    ),
    (
        "signature.capture_seconds",
        (int, float),
        30.0,
        "Longest recording when a signature capture request names no seconds, and a visit's "
        "signature session's time limit; at most 60 (what a sealed bundle's pen time series holds).",
    ),
    (
        "signature.pen_lift_stop_s",
        (int, float),
        2.0,
        "A recording ends once no pen packet at all has arrived for this long after the first tip-down.",
    ),
    # The physical panel (kitd/drivers/panel.py): four buttons, three LEDs, a buzzer on GPIO.
    (
        "panel.enabled",
        bool,
        False,
        "Whether the kit has the panel; without it the kit works from the touch screen alone.",
    ),
    (
        "panel.pin_factory",
        str,
        "lgpio",
        "How the panel's pins are reached: lgpio (the kit's GPIO header, the 'kit' extra) or "
        "socket:HOST:PORT (the panel simulator, hil/panel_sim.py).",
    ),
    *(
        (f"panel.{name}_pin", int, pin, f"BCM number of the {what}.")
        for name, pin, what in (
            ("capture", 5, "Capture/Next button"),
            ("retry", 6, "Retry button"),
            ("skip", 13, "Skip button"),
            ("cancel", 19, "Cancel button"),
            ("ready_led", 17, "ready LED (green)"),
            ("capturing_led", 27, "capturing LED (amber)"),
            ("error_led", 22, "error LED (red)"),
            ("buzzer", 18, "buzzer (a passive piezo, driven by PWM)"),
        )
    ),
    (
        "panel.button_active_high",
        bool,
        False,
        "Buttons connect their pin to 3.3 V when pressed (the pin pulled down); false: to ground "
        "(pulled up, pressed reads 0).",
    ),
    ("panel.led_active_high", bool, True, "LEDs light when their pin is high; false: when it is low."),
    (
        "panel.bounce_time_s",
        (int, float),
        0.05,
        "Contact bounce ignored after a button's change (gpiozero's bounce_time); 0: none.",
    ),
    (
        "panel.cancel_hold_s",
        (int, float),
        2.0,
        "How long Cancel is held (a rising tone meanwhile) to put the visit in ending; released "
        "earlier, nothing happens.",
    ),
    # The peripheral's firmware (firmware_tools, kitfw): what an image must be to go in.
    (
        "firmware.public_keys",
        list,
        [],
        "PEM public keys (imgtool getpub --encoding pem) whose signatures an image may carry: "
        "ECDSA P-256 or Ed25519. Empty: no image is accepted.",
    ),
    (
        "firmware.allow_list",
        str,
        "",
        "File of the image hashes that may go in, one lowercase hex SHA-256 a line, # comments; "
        "empty: any image signed by a pinned key.",
    ),
    (
        "firmware.reset_timeout_s",
        (int, float),
        30,
        "How long an upload waits for the peripheral to come back after its reset.",
    ),
    (
        "firmware.self_test_timeout_s",
        (int, float),
        10,
        "How long the new image's self-test may take before the image is left unconfirmed.",
    ),
]

# The panel's pins by part: (button or LED name, its config key).
PANEL_BUTTON_KEYS = {name: f"panel.{name}_pin" for name in ("capture", "retry", "skip", "cancel")}
PANEL_LED_KEYS = {name: f"panel.{name}_led_pin" for name in ("ready", "capturing", "error")}

# Where the kit's signing key may live (kitd.crypto.kit_keys).
KEY_BACKENDS = ("file", "pkcs11")

# A visit's signature session records for capture_seconds plus a 5 s margin; the ISO/IEC
# 19794-7 time channel of the sealed bundle counts milliseconds in 16 bits (65.5 s).
MAX_SEALED_SIGNATURE_S = 60.0

POSITIVE_KEYS = (
    "devices.battery_interval_s",
    "audit.checkpoint_interval_s",
    "auth.idle_lock_s",
    "network.pairing_window_s",
    "clock.max_skew_s",
    "iris.width",
    "iris.height",
    "iris.fps",
    "iris.open_timeout_s",
    "iris.read_timeout_s",
    "iris.capture_timeout_s",
    "iris.preview_width",
    "signature.capture_seconds",
    "signature.pen_lift_stop_s",
    "firmware.reset_timeout_s",
    "firmware.self_test_timeout_s",
    "devices.reconnect_min_s",
    "devices.reconnect_max_s",
    "devices.health_interval_s",
    "fingerprint.poll_interval_s",
    "fingerprint.capture_timeout_s",
    "fingerprint.consecutive_passes",
    "fingerprint.keep_best",
    "iris.consecutive_passes",
    "iris.keep_best",
    *(key for key, _, _, _ in CONFIG_REFERENCE if key.startswith("categories.")),
)
# Keys that may be 0 (what 0 means is in each key's description) but not below it.
NON_NEGATIVE_KEYS = (
    "iris.judge_fps",
    "outbox.retention_days",
    "outbox.reserve_visits",
    "fingerprint.max_attempts",
    "iris.max_attempts",
)

# Per-device keys of a [[device]] entry.
DEVICE_KEYS: dict[str, tuple[type | tuple[type, ...], Any, str]] = {
    "id": (str, None, "Name of the device in the API (default: its kind, numbered if repeated)."),
    "uri": (str, None, "Where the device is: usb:298d:1010[?serial=...], serial:PATH[?baud=38400]."),
}

SIGNED_THRESHOLD_PREFIX = "min_margin_"
DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")

LOG_LEVELS = ("debug", "info", "warning", "error")
CATEGORIES = ("lansia", "disabilitas", "odgj", "lainnya")

# Quality thresholds: `[quality.MODALITY]` tables whose key names and defaults belong
# to the assessor, so that they are written down once.
THRESHOLD_TABLES: dict[str, Mapping[str, float]] = {
    "fingerprint": fingerprint_quality.DEFAULT_THRESHOLDS,
    "iris": iris_quality.DEFAULT_THRESHOLDS,
    "signature": signature_quality.DEFAULT_THRESHOLDS,
}


def threshold_defaults(modality: str) -> dict[str, float]:
    """The built-in thresholds of a modality's assessor."""
    return dict(THRESHOLD_TABLES[modality])


@dataclass
class DeviceConfig:
    """One configured device: its id and URI."""

    id: str
    uri: str


@dataclass
class KitConfig:
    """The validated configuration; `values` holds every dotted key."""

    values: dict[str, Any]
    devices: list[DeviceConfig] = field(default_factory=list)
    source: Path | None = None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def thresholds(self, modality: str) -> dict[str, float]:
        """The `[quality.MODALITY]` thresholds this config overrides (the rest stay built in)."""
        prefix = f"quality.{modality}."
        return {k.removeprefix(prefix): v for k, v in self.values.items() if k.startswith(prefix)}

    @property
    def data_dir(self) -> Path:
        return Path(self.values["data_dir"])

    @property
    def kit_id(self) -> str:
        """``kit.id``, or the host name when it is empty."""
        return str(self.values["kit.id"]) or socket.gethostname()

    def panel_wiring(self) -> PanelWiring:
        """The panel's pins and wiring, from this configuration."""
        v = self.values
        return PanelWiring(
            buttons={name: int(v[key]) for name, key in PANEL_BUTTON_KEYS.items()},
            leds={name: int(v[key]) for name, key in PANEL_LED_KEYS.items()},
            buzzer=int(v["panel.buzzer_pin"]),
            button_active_high=bool(v["panel.button_active_high"]),
            led_active_high=bool(v["panel.led_active_high"]),
            bounce_time_s=float(v["panel.bounce_time_s"]),
            hold_time_s=float(v["panel.cancel_hold_s"]),
        )

    def driver_settings(self) -> DriverSettings:
        """What the drivers are built with, from this configuration."""
        v = self.values
        return DriverSettings(
            usb_backend=v["usb_backend"],
            fingerprint_ppi=float(v["fingerprint.ppi"]),
            camera_size=(int(v["iris.width"]), int(v["iris.height"])),
            camera_fps=float(v["iris.fps"]),
            camera_open_timeout_s=float(v["iris.open_timeout_s"]),
            camera_read_timeout_s=float(v["iris.read_timeout_s"]),
            reconnect_min_s=float(v["devices.reconnect_min_s"]),
            reconnect_max_s=float(v["devices.reconnect_max_s"]),
            signature_baud=int(v["signature.baud"]),
        )


def defaults() -> dict[str, Any]:
    return {key: default for key, _, default, _ in CONFIG_REFERENCE}


def dotted_keys(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested table as one level of dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(dotted_keys(value, dotted + "."))
        else:
            flat[dotted] = value
    return flat


def _check_type(key: str, value: Any, expected: type | tuple[type, ...], where: str = "") -> None:
    types = expected if isinstance(expected, tuple) else (expected,)
    # bool is an int in Python; a config that says `port = true` is still wrong.
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        names = " or ".join("number" if t is float else t.__name__ for t in types)
        raise ConfigError(f"{where}config key '{key}': expected {names}, got {value!r}")
    # A path, a URI or a name with a NUL in it reaches no file or device: the OS refuses it
    # wherever it is first used, far from the config.
    if isinstance(value, str) and "\x00" in value:
        raise ConfigError(f"{where}config key '{key}': contains a NUL character (\\u0000)")


def parse_config(text: str, source: Path | None = None) -> KitConfig:
    """Validate TOML text into a KitConfig; raise ConfigError naming the bad key."""
    where = f"{source}: " if source else ""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}not valid TOML: {exc}") from None
    device_tables = raw.pop("device", [])
    if not isinstance(device_tables, list):
        raise ConfigError(f"{where}config key 'device': expected [[device]] tables")
    values = defaults()
    reference = {key: expected for key, expected, _, _ in CONFIG_REFERENCE}
    for key, value in dotted_keys(raw).items():
        if key.startswith("quality."):
            _check_threshold(f"{where}", key, value)
            values[key] = value
            continue
        if key not in reference:
            raise ConfigError(f"{where}unknown config key '{key}'")
        _check_type(key, value, reference[key], where)
        _check_finite(where, key, value)
        values[key] = value
    if not values["data_dir"]:
        raise ConfigError(f"{where}config key 'data_dir': empty (the data would land wherever kitd started)")
    blocked = why_no_folder(Path(values["data_dir"]))
    if blocked is not None:
        raise ConfigError(f"{where}config key 'data_dir': {blocked}")
    if values["log.level"] not in LOG_LEVELS:
        raise ConfigError(f"{where}config key 'log.level': expected one of {', '.join(LOG_LEVELS)}")
    region = values["kit.region_code"]
    if region and not (len(region) == 4 and region.isascii() and region.isdigit()):
        raise ConfigError(f"{where}config key 'kit.region_code': expected 4 digits or empty, got {region!r}")
    if not _known_zone(values["kit.timezone"]):
        raise ConfigError(
            f"{where}config key 'kit.timezone': unknown time zone {values['kit.timezone']!r} "
            "(e.g. Asia/Jakarta, Asia/Makassar, Asia/Jayapura)"
        )
    order = values["visit.finger_order"]
    if not all(type(n) is int for n in order) or sorted(order) != list(range(1, 11)):
        raise ConfigError(
            f"{where}config key 'visit.finger_order': expected each of 1-10 once, got {order!r}"
        )
    if values["auth.max_pin_failures"] < 1:
        raise ConfigError(f"{where}config key 'auth.max_pin_failures': must be 1 or more")
    for key in ("api.port", "network.port", "network.pairing_port"):
        if not 0 <= values[key] <= 65535:
            raise ConfigError(f"{where}config key '{key}': {values[key]} is not a port")
    if values["network.port"] and values["network.port"] == values["network.pairing_port"]:
        raise ConfigError(f"{where}config key 'network.pairing_port': the same port as network.port")
    for key in POSITIVE_KEYS:
        if not values[key] > 0:
            raise ConfigError(f"{where}config key '{key}': must be above 0, got {values[key]!r}")
    for key in NON_NEGATIVE_KEYS:
        if not values[key] >= 0:
            raise ConfigError(f"{where}config key '{key}': must be 0 or more, got {values[key]!r}")
    if values["devices.reconnect_max_s"] < values["devices.reconnect_min_s"]:
        raise ConfigError(f"{where}config key 'devices.reconnect_max_s': below devices.reconnect_min_s")
    low, high = fingerprint_quality.PLAUSIBLE_PPI
    if not low <= values["fingerprint.ppi"] <= high:
        raise ConfigError(
            f"{where}config key 'fingerprint.ppi': expected a sensor resolution of {low:g}-{high:g}, "
            f"got {values['fingerprint.ppi']!r}"
        )
    if values["keys.backend"] not in KEY_BACKENDS:
        raise ConfigError(
            f"{where}config key 'keys.backend': expected file or pkcs11, got {values['keys.backend']!r}"
        )
    if values["keys.backend"] == "pkcs11":
        for key in ("keys.pkcs11_module", "keys.pin_file", "keys.token_label", "keys.key_label"):
            if not values[key]:
                raise ConfigError(f"{where}config key '{key}': needed with keys.backend = 'pkcs11'")
    if values["signature.capture_seconds"] > MAX_SEALED_SIGNATURE_S:
        raise ConfigError(
            f"{where}config key 'signature.capture_seconds': at most {MAX_SEALED_SIGNATURE_S:g} "
            "(a sealed bundle's pen time series holds 65.5 s), got "
            f"{values['signature.capture_seconds']!r}"
        )
    if not 1 <= values["api.replay_events"] < SUBSCRIBER_QUEUE:
        raise ConfigError(
            f"{where}config key 'api.replay_events': expected 1-{SUBSCRIBER_QUEUE - 1}, "
            f"got {values['api.replay_events']!r}"
        )
    if not 1 <= values["iris.preview_quality"] <= 100:
        raise ConfigError(f"{where}config key 'iris.preview_quality': expected 1-100")
    try:
        parse_backend_setting(values["usb_backend"])
    except ValueError as exc:
        raise ConfigError(f"{where}config key 'usb_backend': {exc}") from None
    if values["signature.baud"] not in BAUD_RATES:
        rates = ", ".join(map(str, BAUD_RATES))
        raise ConfigError(f"{where}config key 'signature.baud': expected one of {rates}")
    _check_panel(values, where)
    keys = values["firmware.public_keys"]
    if not all(isinstance(path, str) and path for path in keys):
        raise ConfigError(
            f"{where}config key 'firmware.public_keys': expected a list of PEM file paths, got {keys!r}"
        )
    devices = _parse_devices(device_tables, where)
    return KitConfig(values=values, devices=devices, source=source)


def _check_panel(values: dict[str, Any], where: str) -> None:
    try:
        check_target(values["panel.pin_factory"])
    except ValueError as exc:
        raise ConfigError(f"{where}config key 'panel.pin_factory': expected lgpio or {exc}") from None
    pins = [key for key in values if key.startswith("panel.") and key.endswith("_pin")]
    for key in pins:
        if not 0 <= values[key] <= 27:
            raise ConfigError(f"{where}config key '{key}': expected a BCM GPIO number 0-27")
    for key in pins:
        twin = next((k for k in pins if k != key and values[k] == values[key]), None)
        if twin is not None:
            raise ConfigError(f"{where}config key '{key}': GPIO {values[key]} is also {twin}")
    if not 0 <= values["panel.bounce_time_s"] < 1:
        raise ConfigError(f"{where}config key 'panel.bounce_time_s': expected 0 or more, under 1")
    if not values["panel.cancel_hold_s"] > values["panel.bounce_time_s"]:
        raise ConfigError(f"{where}config key 'panel.cancel_hold_s': must be above panel.bounce_time_s")


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _check_threshold(where: str, key: str, value: Any) -> None:
    _, modality, name = (key.split(".", 2) + ["", ""])[:3]
    if modality not in THRESHOLD_TABLES or not name:
        raise ConfigError(
            f"{where}unknown config key '{key}' (quality tables: {', '.join(THRESHOLD_TABLES)})"
        )
    known = threshold_defaults(modality)
    if name not in known:
        raise ConfigError(f"{where}unknown config key '{key}' (thresholds: {', '.join(known)})")
    _check_type(key, value, (int, float), where)
    # Every threshold is a size, a share, a grey, a count or a score, none below 0, except the
    # margins: a camera whose frames may cut the iris sets them negative.
    _check_finite(where, key, value)
    if value < 0 and not name.startswith(SIGNED_THRESHOLD_PREFIX):
        raise ConfigError(f"{where}config key '{key}': expected a number 0 or more, got {value!r}")


def _check_finite(where: str, key: str, value: Any) -> None:
    """nan and inf are floats TOML allows; no setting of the kit means either."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}config key '{key}': expected a finite number, got {value!r}")


def _parse_devices(tables: list[Any], where: str) -> list[DeviceConfig]:
    devices: list[DeviceConfig] = []
    counts: dict[str, int] = {}
    for index, table in enumerate(tables):
        label = f"device[{index}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}config key '{label}': expected a table")
        for key, value in table.items():
            if key not in DEVICE_KEYS:
                raise ConfigError(f"{where}unknown config key '{label}.{key}'")
            _check_type(f"{label}.{key}", value, DEVICE_KEYS[key][0], where)
        if "uri" not in table:
            raise ConfigError(f"{where}config key '{label}.uri' is required")
        uri = table["uri"]
        try:
            kind = device_kind(uri)
        except ConfigError as exc:
            raise ConfigError(f"{where}config key '{label}.uri': {exc}") from None
        device_id = table.get("id")
        if device_id is None:
            counts[kind] = counts.get(kind, 0) + 1
            device_id = kind if counts[kind] == 1 else f"{kind}{counts[kind]}"
        if any(d.id == device_id for d in devices):
            raise ConfigError(f"{where}config key '{label}.id': duplicate id '{device_id}'")
        # The id is a path segment of the API (/api/v1/devices/ID) and a word on the screen.
        if not DEVICE_ID.fullmatch(device_id):
            raise ConfigError(
                f"{where}config key '{label}.id': {device_id!r} is not a device id "
                "(1-32 letters, digits, _ or -)"
            )
        twin = next((d for d in devices if d.uri == uri), None)
        if twin is not None:
            # Two entries would fight over one device: the second one always 'held by kitd'.
            raise ConfigError(f"{where}config key '{label}.uri': the same device as '{twin.id}' ({uri})")
        devices.append(DeviceConfig(id=device_id, uri=uri))
    return devices


def api_url(host: str, port: int) -> str:
    """The URL that reaches an API listening on `host`:`port` from this machine: an IPv6
    address bracketed (http://[::1]:8080); "", "::" and 0.0.0.0 (every address) on loopback."""
    host = {"": "127.0.0.1", "::": "::1", "0.0.0.0": "127.0.0.1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def load_config(path: Path | str | None = None) -> KitConfig:
    """Read the config file (default /etc/kitd/kitd.toml); ConfigError on any problem."""
    if path is not None and not str(path):
        raise ConfigError("config file: an empty path (was a variable meant to hold it unset?)")
    source = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        text = read_named_file(source, MAX_CONFIG_FILE).decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {source} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"config file {source} cannot be read: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    return parse_config(text, source)


def builtin_config() -> KitConfig:
    """The built-in defaults, for commands that need no config file."""
    return KitConfig(values=defaults())
