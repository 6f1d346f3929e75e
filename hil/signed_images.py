"""Signed peripheral firmware images made by the real imgtool, for tests, the HIL rig and benchmarks.

Keys are made with `imgtool keygen`, public halves with `imgtool getpub --encoding pem` (what
the kit pins in firmware.public_keys) and images with `imgtool sign`, each a subprocess, so
what kitfw and the simulator read is exactly what the office's build would produce.
(hil/firmware_images.py builds unsigned images in-process, without imgtool.)
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

from firmware_tools.mcuboot_image import parse_image

# imgtool's -t names of the two key types the kit takes.
KEY_TYPES = ("ecdsa-p256", "ed25519")
HEADER_SIZE = 0x200
SLOT_SIZE = 0x40000


class ImgtoolError(RuntimeError):
    """imgtool exited non-zero; the message holds its command and output."""


def imgtool_path() -> str:
    """The imgtool console script beside the running interpreter (the venv's), else on PATH."""
    candidate = Path(sys.executable).parent / "imgtool"
    return str(candidate) if candidate.exists() else (shutil.which("imgtool") or "imgtool")


def run_imgtool(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run imgtool with args; ImgtoolError when check and it fails."""
    command = [imgtool_path(), *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise ImgtoolError(f"{' '.join(command)} exited {result.returncode}: {result.stdout}{result.stderr}")
    return result


def make_key(workdir: Path, key_type: str, name: str | None = None) -> Path:
    """A new private key (imgtool keygen -t KEY_TYPE) at workdir/NAME.pem (NAME: the key type)."""
    if key_type not in KEY_TYPES:
        raise ValueError(f"key type {key_type!r}: expected one of {', '.join(KEY_TYPES)}")
    path = Path(workdir) / f"{name or key_type}.pem"
    run_imgtool("keygen", "-k", path, "-t", key_type)
    return path


def public_pem(private_key: Path) -> Path:
    """The key's public half as PEM (imgtool getpub --encoding pem), beside it as NAME.pub.pem."""
    path = private_key.with_suffix(".pub.pem")
    run_imgtool("getpub", "--encoding", "pem", "-k", private_key, "-o", path)
    return path


def write_body(path: Path, body_size: int, seed: int = 0) -> Path:
    """Pseudo-random bytes (the same for the same seed) standing for a firmware binary."""
    path.write_bytes(random.Random(seed).randbytes(body_size))
    return path


def sign_image(
    workdir: Path,
    key_type: str | None,
    version: str,
    body_size: int,
    *,
    key: Path | None = None,
    name: str | None = None,
    seed: int = 0,
    pad: bool = False,
    extra_args: tuple[str, ...] = (),
) -> Path:
    """An image made by imgtool sign (0x200 header, 256 KiB slot) in workdir; its path.

    key_type None makes an image with a hash and no signature. key reuses a private key
    (else workdir/KEY_TYPE.pem, made on first use); pad fills the slot with MCUboot's trailer.
    """
    workdir = Path(workdir)
    if key_type is not None and key is None:
        key = workdir / f"{key_type}.pem"
        if not key.exists():
            make_key(workdir, key_type)
    stem = name or f"{key_type or 'unsigned'}-{version}-{body_size}-{seed}"
    body = write_body(workdir / f"{stem}.body", body_size, seed)
    out = workdir / f"{stem}.bin"
    args: list[str | Path] = [
        "sign",
        "--header-size",
        hex(HEADER_SIZE),
        "--pad-header",
        "--align",
        "4",
        "--version",
        version,
        "--slot-size",
        hex(SLOT_SIZE),
    ]
    if key is not None:
        args += ["--key", key]
    if pad:
        args.append("--pad")
    run_imgtool(*args, *extra_args, body, out)
    return out


def image_sha256(image: Path) -> str:
    """The image hash (its SHA256 TLV's value) in lowercase hex, as an allow-list line holds it."""
    parsed = parse_image(image.read_bytes())
    if parsed.image_hash is None:
        raise ValueError(f"{image} has no hash TLV")
    return parsed.image_hash.hex()
