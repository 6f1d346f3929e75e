"""Where the laptop keeps what it knows of each kit it is paired with.

Its one job: the data directory (``--data-dir``, else ``KIT_SYNC_HOME``, else the platform's
per-user data folder), one directory per kit under ``kits/<kit_id>/`` with its file names,
its ``kit.json`` (kit id, address, the laptop's name there, when paired), and the choice of
a kit when the command line names none.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kitsync.durable_files import write_atomically
from kitsync.errors import NotPaired, SyncError, UsageProblem

APP_NAME = "kit-sync"
KITS = "kits"
# A kit id becomes a directory name: nothing that could climb out of kits/ or hide there.
KIT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def data_dir(
    explicit: str | None,
    environ: Mapping[str, str],
    platform: str,
    home: Path,
) -> Path:
    """The laptop's data directory: the option, the environment, or the platform's place for
    per-user application data (``platform`` as ``os.name``: "nt" is Windows)."""
    if explicit:
        return Path(explicit)
    if environ.get("KIT_SYNC_HOME"):
        return Path(environ["KIT_SYNC_HOME"])
    if platform == "nt":
        base = environ.get("LOCALAPPDATA")
        return Path(base) / APP_NAME if base else home / "AppData" / "Local" / APP_NAME
    if environ.get("XDG_DATA_HOME"):
        return Path(environ["XDG_DATA_HOME"]) / APP_NAME
    return home / ".local" / "share" / APP_NAME


def default_data_dir(explicit: str | None = None) -> Path:
    """:func:`data_dir` for this process and this machine."""
    return data_dir(explicit, os.environ, os.name, Path.home())


@dataclass(frozen=True)
class KitFiles:
    """The files of one kit's directory."""

    root: Path

    @property
    def kit_id(self) -> str:
        return self.root.name

    @property
    def kit_json(self) -> Path:
        return self.root / "kit.json"

    @property
    def kit_tls_certificate(self) -> Path:
        return self.root / "kit-tls.crt"

    @property
    def kit_signing_certificate(self) -> Path:
        return self.root / "kit-signing.crt"

    @property
    def audit_note_key(self) -> Path:
        return self.root / "audit-note-key.txt"

    @property
    def laptop_tls_key(self) -> Path:
        return self.root / "laptop-tls.key"

    @property
    def laptop_tls_certificate(self) -> Path:
        return self.root / "laptop-tls.crt"

    @property
    def laptop_receipts_key(self) -> Path:
        return self.root / "laptop-receipts.key"

    @property
    def laptop_receipts_certificate(self) -> Path:
        return self.root / "laptop-receipts.crt"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.sqlite"

    @property
    def pull_lock(self) -> Path:
        return self.root / "pull.lock"


@dataclass(frozen=True)
class KitRecord:
    """``kit.json``: which kit, where its network API listens, and this laptop's name there."""

    kit_id: str
    host: str
    port: int
    laptop_name: str
    paired_at: str
    pairing_port: int | None = None

    @property
    def address(self) -> str:
        return join_address(self.host, self.port)


def join_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _host_problem(host: str) -> str | None:
    """Why `host` is no host name or IP address a connection can be made to, or None."""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in host):
        return "the host has a space or a control character in it"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"{host!r} is not an IPv6 address"
        return None
    try:
        host.encode("idna")  # each name's part 1-63 characters, as DNS has them
    except UnicodeError:
        return f"{host!r} is not a host name (each part between dots is 1-63 characters)"
    return None


def split_address(text: str, default_port: int) -> tuple[str, int]:
    """HOST, HOST:PORT, [IPv6] or [IPv6]:PORT as (host, port); UsageProblem names what is wrong."""
    text = text.strip()
    port_text = ""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise UsageProblem(f"address {text!r}: an IPv6 address is written [ADDRESS]:PORT")
        port_text = rest[1:]
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host = text  # a bare IPv6 address has several colons and no port
    if not host:
        raise UsageProblem(f"address {text!r} has no host")
    problem = _host_problem(host)
    if problem:
        raise UsageProblem(f"address {text!r}: {problem}")
    if port_text == "" and (text.endswith(":")):
        raise UsageProblem(f"address {text!r}: the port after ':' is missing")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageProblem(f"address {text!r}: port {port_text!r} is not a number from 1 to 65535")
    return host, int(port_text)


def read_kit_record(files: KitFiles) -> KitRecord:
    """The kit's ``kit.json``, its fields checked (a damaged one names the field)."""
    try:
        data = json.loads(files.kit_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotPaired(f"{files.root}: no kit.json: this kit is not paired (kit-sync pair)") from None
    except (OSError, ValueError) as exc:
        raise SyncError(f"{files.kit_json}: cannot read it: {exc}") from None
    if not isinstance(data, dict):
        raise SyncError(f"{files.kit_json}: not a JSON object")
    for name in ("kit_id", "host", "laptop_name", "paired_at"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise SyncError(f"{files.kit_json}: '{name}' is not a non-empty string")
    for name in ("port", "pairing_port"):
        value = data.get(name)
        if name == "pairing_port" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise SyncError(f"{files.kit_json}: '{name}' is not a port number")
    return KitRecord(
        data["kit_id"],
        data["host"],
        data["port"],
        data["laptop_name"],
        data["paired_at"],
        data.get("pairing_port"),
    )


def write_kit_record(files: KitFiles, record: KitRecord) -> None:
    data: dict[str, Any] = asdict(record)
    write_atomically(files.kit_json, (json.dumps(data, indent=2) + "\n").encode())


def paired_kits(home: Path) -> list[KitFiles]:
    """Every kit directory with a ``kit.json``, by kit id."""
    root = home / KITS
    try:
        entries = sorted(root.iterdir())
    except FileNotFoundError:
        return []
    return [
        KitFiles(entry)
        for entry in entries
        if KIT_ID.fullmatch(entry.name) and (entry / "kit.json").is_file()
    ]


def kit_files(home: Path, kit_id: str) -> KitFiles:
    if not KIT_ID.fullmatch(kit_id):
        raise UsageProblem(f"kit {kit_id!r} is not a kit id (letters, digits, '.', '_', '-')")
    return KitFiles(home / KITS / kit_id)


def choose_kit(home: Path, kit_id: str | None) -> KitFiles:
    """The kit named, or the only one paired; NotPaired or UsageProblem say why not."""
    kits = paired_kits(home)
    names = ", ".join(k.kit_id for k in kits)
    if kit_id is not None:
        files = kit_files(home, kit_id)
        if files not in kits:
            paired = f"paired: {names}" if kits else "no kit is paired"
            raise NotPaired(f"kit {kit_id} is not paired with this laptop ({paired}; data in {home})")
        return files
    if not kits:
        raise NotPaired(f"no kit is paired with this laptop (data in {home}): kit-sync pair HOST CODE")
    if len(kits) > 1:
        raise UsageProblem(f"{len(kits)} kits are paired, name one: {names}")
    return kits[0]
