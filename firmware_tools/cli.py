"""kitfw: the technician's command line for the peripheral's firmware images.

`info` and `verify` read an image file and work offline on any machine; `list`, `upload` and
`rollback` go through the kit's daemon (firmware_tools.remote).
Exit status: 0 success (verify: accepted), 1 refused or failed, 2 bad arguments or an
unreadable file, key, allow-list or configuration.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from typing import Any

from kitformats.named_files import read_named_file

from firmware_tools.image_checks import (
    AllowListError,
    Finding,
    KeyFileError,
    PinnedKey,
    accepted,
    read_allow_list,
    read_public_keys,
    verify_image,
)
from firmware_tools.mcuboot_image import (
    HASH_TLV_ALGORITHMS,
    ImageFormatError,
    ImageVersion,
    McubootImage,
    Tlv,
    parse_image,
    parse_version,
)


class UsageError(Exception):
    """A bad argument or an unreadable input: one line, exit 2."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that exits 2 with one line instead of the usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"kitfw: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="kitfw", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    info = sub.add_parser("info", help="header, version, sizes and TLVs of an MCUboot image")
    info.add_argument("image", metavar="IMAGE")
    info.add_argument("--json", action="store_true", help="one JSON object")
    info.set_defaults(func=run_info)

    verify = sub.add_parser(
        "verify", help="hash, signature by a pinned key, version and allow-list of an image (offline)"
    )
    verify.add_argument("image", metavar="IMAGE")
    verify.add_argument(
        "--config", metavar="PATH", help="the kit's configuration (default /etc/kitd/kitd.toml)"
    )
    verify.add_argument(
        "--key",
        metavar="PEM",
        action="append",
        help="a pinned public key instead of firmware.public_keys (repeatable)",
    )
    verify.add_argument(
        "--allow-list", metavar="FILE", help="image hashes allowed in, instead of firmware.allow_list"
    )
    verify.add_argument("--running", metavar="VERSION", help="the running image's version, e.g. 1.2.0")
    verify.add_argument("--allow-downgrade", action="store_true", help="accept an image older than --running")
    verify.add_argument("--json", action="store_true", help="one JSON object")
    verify.set_defaults(func=run_verify)

    slots = sub.add_parser("list", help="the peripheral's image slots (through the daemon)")
    slots.add_argument(
        "--config", metavar="PATH", help="the kit's configuration (default /etc/kitd/kitd.toml)"
    )
    slots.add_argument("--json", action="store_true", help="one JSON object")
    _add_daemon_options(slots)
    slots.set_defaults(func=_remote("list_slots"))

    upload = sub.add_parser("upload", help="verify, upload, test and confirm an image (through the daemon)")
    upload.add_argument("image", metavar="IMAGE")
    upload.add_argument(
        "--config", metavar="PATH", help="the kit's configuration (default /etc/kitd/kitd.toml)"
    )
    upload.add_argument(
        "--allow-downgrade", action="store_true", help="accept an image older than the running one"
    )
    upload.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_daemon_options(upload)
    upload.set_defaults(func=_remote("upload"))

    rollback = sub.add_parser("rollback", help="go back to the other slot's image (through the daemon)")
    rollback.add_argument(
        "--config", metavar="PATH", help="the kit's configuration (default /etc/kitd/kitd.toml)"
    )
    _add_daemon_options(rollback)
    rollback.set_defaults(func=_remote("rollback"))
    return parser


def _add_daemon_options(parser: argparse.ArgumentParser) -> None:
    """--api and --token, as kitctl's (the socket in data_dir when neither is given)."""
    parser.add_argument(
        "--api",
        metavar="URL",
        help="the daemon's TCP API, e.g. http://127.0.0.1:8080, with a sign-in token "
        "(default: the daemon's socket in data_dir, no token needed)",
    )
    parser.add_argument("--token", metavar="TOKEN", help="sign-in token for --api (default: $KITD_TOKEN)")


def _remote(name: str) -> Any:
    """The daemon-side command ``name``, imported when it runs: kitd's client and configuration
    load the kit's capture code, which ``info`` and ``verify`` on a laptop need not wait for."""

    def command(args: argparse.Namespace) -> Any:
        from firmware_tools import remote

        return getattr(remote, name)(args)

    return command


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        sys.stderr.write(f"kitfw: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("kitfw: interrupted\n")
        return 130


def read_image_file(path: str) -> bytes:
    try:
        return read_named_file(path)
    except OSError as exc:
        raise UsageError(f"cannot read image {path}: {exc.strerror or exc}") from None


# --- info -------------------------------------------------------------------------------


def run_info(args: argparse.Namespace) -> int:
    data = read_image_file(args.image)
    try:
        image = parse_image(data)
    except ImageFormatError as exc:
        sys.stderr.write(f"kitfw: {args.image}: {exc}\n")
        return 1
    described = describe_image(image)
    if args.json:
        print(json.dumps({"image": args.image, **described}, indent=2))
        return 0
    header = described["header"]
    print(f"image          {args.image}")
    print(f"version        {described['version']}")
    print(
        f"header         {header['hdr_size']} bytes, load address 0x{header['load_addr']:08x}, "
        f"flags 0x{header['flags']:08x}{' ' + ','.join(header['flag_names']) if header['flag_names'] else ''}"
    )
    print(f"body           {described['body_size']} bytes")
    print(f"protected TLVs {header['protect_tlv_size']} bytes")
    print(
        f"image size     {described['total_size']} bytes"
        + (
            f" (+{described['trailing_size']} bytes of padding and trailer)"
            if described["trailing_size"]
            else ""
        )
    )
    print(
        f"hash           {described['computed_hash']} ({described['hash_algorithm']} of header, body and "
        f"protected TLVs; {'matches' if described['hash_matches'] else 'does NOT match'} the hash TLV)"
    )
    for tlv in described["protected_tlvs"] + described["tlvs"]:
        area = "protected" if tlv["protected"] else "tlv"
        value = f" {tlv['value']}" if tlv.get("value") is not None else ""
        print(f"{area:<10} {tlv['name']:<12} type 0x{tlv['type']:02x} len {tlv['length']:>4}{value}")
    return 0


def describe_image(image: McubootImage) -> dict[str, Any]:
    """Everything `kitfw info` shows, as JSON-able values."""
    header = image.header
    return {
        "version": str(header.version),
        "header": {
            "magic": header.magic,
            "load_addr": header.load_addr,
            "hdr_size": header.hdr_size,
            "protect_tlv_size": header.protect_tlv_size,
            "img_size": header.img_size,
            "flags": header.flags,
            "flag_names": header.flag_names,
            "version": _version_json(header.version),
        },
        "body_size": image.body_size,
        "total_size": image.total_size,
        "trailing_size": image.trailing_size,
        "hash_algorithm": image.hash_algorithm,
        "image_hash": image.image_hash.hex() if image.image_hash is not None else None,
        "computed_hash": image.computed_hash().hex(),
        "hash_matches": image.image_hash == image.computed_hash(),
        "protected_tlvs": [_tlv_json(tlv, True) for tlv in image.protected_tlvs],
        "tlvs": [_tlv_json(tlv, False) for tlv in image.tlvs],
    }


def _version_json(version: ImageVersion) -> dict[str, int]:
    return {
        "major": version.major,
        "minor": version.minor,
        "revision": version.revision,
        "build": version.build,
    }


def _tlv_json(tlv: Tlv, protected: bool) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": tlv.name,
        "type": tlv.type,
        "length": len(tlv.value),
        "protected": protected,
        "offset": tlv.offset,
        "value": tlv.value.hex(),
    }
    if tlv.type in HASH_TLV_ALGORITHMS:
        described["algorithm"] = HASH_TLV_ALGORITHMS[tlv.type]
    if tlv.name == "SEC_CNT" and len(tlv.value) == 4:
        described["security_counter"] = struct.unpack("<I", tlv.value)[0]
    return described


# --- verify -----------------------------------------------------------------------------


def run_verify(args: argparse.Namespace) -> int:
    data = read_image_file(args.image)
    running = None
    if args.running is not None:
        try:
            running = parse_version(args.running)
        except ImageFormatError as exc:
            raise UsageError(f"--running: {exc}") from None
    keys, allow_list = _pinned_keys_and_allow_list(args)
    findings = verify_image(
        data, keys, allow_list, running_version=running, allow_downgrade=args.allow_downgrade
    )
    ok = accepted(findings)
    if args.json:
        print(
            json.dumps(
                {
                    "image": args.image,
                    "accepted": ok,
                    "findings": [{"check": f.check, "ok": f.ok, "reason": f.reason} for f in findings],
                },
                indent=2,
            )
        )
    else:
        for finding in findings:
            print(_finding_line(finding))
        print(f"{args.image}: {'accepted' if ok else 'refused'}")
    return 0 if ok else 1


def _finding_line(finding: Finding) -> str:
    return f"{'ok' if finding.ok else 'REFUSED':<8} {finding}"


def _pinned_keys_and_allow_list(args: argparse.Namespace) -> tuple[list[PinnedKey], frozenset[bytes] | None]:
    """--key and --allow-list where given, the rest from the kit's configuration."""
    values: dict[str, Any] = {}
    if args.config is not None or args.key is None or args.allow_list is None:
        values = _config_values(args.config)
    key_paths = args.key if args.key is not None else values.get("firmware.public_keys", [])
    allow_path = args.allow_list if args.allow_list is not None else values.get("firmware.allow_list", "")
    try:
        keys = read_public_keys(key_paths)
        allow_list = read_allow_list(allow_path) if allow_path else None
    except (KeyFileError, AllowListError) as exc:
        raise UsageError(str(exc)) from None
    return keys, allow_list


def _config_values(path: str | None) -> dict[str, Any]:
    """The configuration's values: PATH, else /etc/kitd/kitd.toml when present, else the defaults."""
    from kitd.config import DEFAULT_CONFIG_PATH, builtin_config, load_config
    from kitd.errors import ConfigError

    try:
        if path is not None:
            return load_config(path).values
        if DEFAULT_CONFIG_PATH.exists():
            return load_config(DEFAULT_CONFIG_PATH).values
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return builtin_config().values


if __name__ == "__main__":
    sys.exit(main())
