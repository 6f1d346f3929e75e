"""The diagnostics report for the vendor: one run and what the kit knows around it, signed.

Its one job: put a diagnostics run (kitd.services.diagnostics) together with kitd's, Python's
and the OS's versions, the configuration with its secrets redacted, the devices' last statuses
and the daemon's recent log lines into one statement (kitformats.report_statements), scrubbed
so that it leaves the kit with no full NIK, no credential and nothing biometric, and sign it
with the kit's key (file or token: the daemon holds it; kitctl may not). A key that cannot sign
still gives the report, unsigned and saying why: a broken key is when the vendor needs one most.
"""

from __future__ import annotations

import datetime as dt
import logging
import platform
import re
from pathlib import Path
from typing import Any

from kitformats.report_statements import REPORT_KIND
from kitformats.statements import sign_statement

from kitd import __version__
from kitd.logs import recent_lines
from kitd.store.audit import mask_niks

log = logging.getLogger("kitd.diagnostics")

REDACTED = "[redacted]"
# A configuration key whose name says it holds a secret itself. Names of where a secret is
# (keys.pin_file), of a token or key (keys.token_label) and GPIO numbers (panel.capture_pin)
# are not secrets: the vendor needs them to see what is wrong.
SECRET_WORDS = frozenset({"password", "passphrase", "secret", "credential", "apikey"})
# These say a secret only as the name's last word: a PIN, an API token; not a PIN's failures.
SECRET_LAST_WORDS = frozenset({"pin", "token", "key"})
NOT_SECRET_ENDINGS = ("_file", "_path", "_dir", "_label", "_module")
GPIO_PREFIX = "panel."
# user:password@ in a URI (a camera's stream URL may carry one), and query parameters that
# carry a credential.
URI_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s\"']+@")
SECRET_QUERY = re.compile(
    r"(?P<name>[?&;](?:access_token|api_key|apikey|auth|key|pass|password|pin|secret|sig|signature|token)=)"
    r"[^&;#\s\"']*",
    re.IGNORECASE,
)
# A run of base64 or hex this long is no word a person wrote: an image, a template or a key
# that slipped into a value or a log line. Digests (64 hex) stay readable, and so do long
# paths (a slash every few words; base64 has one in 64 characters).
BLOB = re.compile(r"[A-Za-z0-9+/=_-]{160,}")
PATH_SLASHES_PER_CHAR = 1 / 32
# Values under these names are biometric in any form but a number (a count, a score) or a
# few words (a timestamp, a status): a frame, a template, a pen trace.
SHORT_TEXT = 64
BIOMETRIC_NAMES = re.compile(
    r"image|frame|png|jpe?g|wsq|jp2|template|minutia|iris_code|trace|strokes|points|pixels", re.IGNORECASE
)
WITHHELD = "[withheld: biometric data never leaves the kit in a report]"


def secret_key(key: str) -> bool:
    """Whether configuration ``key`` (dotted) holds a secret by its name."""
    last = key.rpartition(".")[2].lower()
    if last.endswith(NOT_SECRET_ENDINGS) or (key.startswith(GPIO_PREFIX) and last.endswith("_pin")):
        return False
    words = last.split("_")
    return bool(SECRET_WORDS & set(words)) or words[-1] in SECRET_LAST_WORDS


def redact_text(text: str) -> str:
    """``text`` with every URI's user:password and every credential query parameter redacted."""
    text = URI_USERINFO.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    return SECRET_QUERY.sub(lambda m: f"{m.group('name')}{REDACTED}", text)


def _elide(text: str) -> str:
    def blob(match: re.Match[str]) -> str:
        found = match.group()
        if found.count("/") > len(found) * PATH_SLASHES_PER_CHAR:
            return found
        return f"[{len(found)} characters elided]"

    return BLOB.sub(blob, text)


def _plain_fact(value: Any) -> bool:
    return isinstance(value, bool | int | float | type(None)) or (
        isinstance(value, str) and len(value) <= SHORT_TEXT
    )


def scrub(value: Any, name: str = "") -> Any:
    """``value`` fit to leave the kit: NIKs masked (kitd.store.audit's masking), credentials in
    URIs redacted, blobs elided, and anything under a biometric name withheld."""
    if BIOMETRIC_NAMES.search(name) and not _plain_fact(value):
        return WITHHELD
    if isinstance(value, str):
        return _elide(redact_text(mask_niks(value)))
    if isinstance(value, dict):
        return {scrub(str(k)): scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, name) for v in value]
    return mask_niks(value)  # a NIK given as a number


def configuration(config: Any) -> dict[str, Any]:
    """The configuration as the daemon runs it, secrets redacted, saying which and why."""
    values: dict[str, Any] = {}
    redacted: list[str] = []
    for key, value in sorted(config.values.items()):
        if secret_key(key) and value not in ("", None):
            values[key] = REDACTED
            redacted.append(key)
            continue
        shown = redact_text(value) if isinstance(value, str) else value
        if shown != value:
            redacted.append(f"{key} (credentials in its URI)")
        values[key] = shown
    devices = []
    for device in config.devices:
        uri = redact_text(device.uri)
        if uri != device.uri:
            redacted.append(f"device {device.id}: uri (credentials in it)")
        devices.append({"id": device.id, "uri": uri})
    return {
        "source": None if config.source is None else str(config.source),
        "values": values,
        "devices": devices,
        "redacted": redacted,
        "redaction": "Values of keys named like a password, secret, token or PIN; user:password "
        "and credential query parameters (token=, key=, ...) in URIs. Paths and labels stay (the "
        "token's PIN is never in the configuration: keys.pin_file names its file).",
    }


def software() -> dict[str, Any]:
    return {
        "kitd": __version__,
        "python": platform.python_version(),
        "os": platform.platform(),
        "os_release": _os_release(),
        "machine": platform.machine(),
    }


def _os_release(path: Path = Path("/etc/os-release")) -> str | None:
    try:
        fields = dict(
            line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and line[:1] != "#"
        )
    except OSError:
        return None
    return fields.get("PRETTY_NAME", "").strip('"') or None


def device_states(kit: Any) -> list[dict[str, Any]]:
    """Each device's last status and why, as /api/v1/devices says it (its plain facts only)."""
    states = []
    for device in kit.devices():
        detail = device.get("detail", {})
        states.append(
            {
                "id": device["id"],
                "kind": device["kind"],
                "uri": device["uri"],
                "model": device.get("model"),
                "serial": device.get("serial"),
                "firmware": device.get("firmware"),
                "status": device["status"],
                "reason": detail.get("status_reason"),
                "since": detail.get("status_since"),
                "detail": {
                    k: v
                    for k, v in detail.items()
                    if k not in ("status_reason", "status_since") and isinstance(v, str | int | float | bool)
                },
            }
        )
    return states


def recent_log() -> dict[str, Any]:
    """The daemon's last log lines, from its memory (kitd.logs): empty, saying so, when none."""
    lines = recent_lines()
    if lines is None:
        return {
            "source": None,
            "lines": [],
            "note": "This daemon keeps no log lines in memory (its logging was not set up by kitd): "
            "see its journal (journalctl -u kitd).",
        }
    return {
        "source": "the daemon's memory: its last lines since it started, as written to stderr "
        "(the whole log: journalctl -u kitd on the kit)",
        "lines": lines,
        "note": None,
    }


def report_statement(kit: Any, run: dict[str, Any], now: dt.datetime | None = None) -> dict[str, Any]:
    """What the kit states in a report of ``run``, scrubbed (see :func:`scrub`)."""
    statement = {
        "kind": REPORT_KIND,
        "kit_id": kit.config.kit_id,
        "created_at": (now or kit.clock.now()).astimezone(dt.UTC).isoformat(timespec="seconds"),
        "run": run,
        "software": software(),
        "configuration": configuration(kit.config),
        "devices": device_states(kit),
        "log": recent_log(),
    }
    scrubbed = scrub(statement)
    # The kind and the kit's name are checked against the certificate: never rewritten.
    scrubbed["kind"], scrubbed["kit_id"] = REPORT_KIND, kit.config.kit_id
    return scrubbed


def signed_report(keys: Any, kit_id: str, statement: dict[str, Any]) -> dict[str, Any]:
    """``statement`` signed by the kit's key (a blocking call: the token may be slow); when the
    key cannot sign, the statement with ``signature`` null and ``unsigned`` saying why."""
    try:
        return sign_statement(statement, keys.kit_signer(kit_id))
    except Exception as exc:  # noqa: BLE001 - whatever broke the key, the report still goes out
        reason = f"{type(exc).__name__}: {exc}"
        log.warning("a diagnostics report could not be signed: %s", reason)
        return {"statement": statement, "signature": None, "unsigned": reason}
