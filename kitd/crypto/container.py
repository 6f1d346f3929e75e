"""The bundle's container: a deterministic POSIX tar of the transaction and its manifest.

Its one job: :func:`pack_container` lays named files into a ustar archive that is the same
bytes for the same files whatever the machine, the clock or the user (names sorted, times,
owners and groups zero, mode 0644), so that a re-sealed bundle can be compared byte for
byte; :func:`unpack_container` reads one back and refuses anything but plain files with
plain names.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping

from kitd.errors import KitError

# What a container holds; a signature's time series travels inside the transaction.
TRANSACTION_NAME = "transaction.an2"
MANIFEST_NAME = "manifest.json"
MAX_MEMBERS = 16


class ContainerError(KitError):
    """The container is not the tar a kit writes."""


def pack_container(files: Mapping[str, bytes]) -> bytes:
    """A ustar archive of ``files`` (name -> bytes), sorted by name, with no time or owner."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def unpack_container(data: bytes) -> dict[str, bytes]:
    """The files of a container; links, folders, paths and repeated names are refused."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if len(files) >= MAX_MEMBERS:
                    raise ContainerError(f"the container holds more than {MAX_MEMBERS} files")
                if not member.isfile() or "/" in member.name or member.name.startswith("."):
                    raise ContainerError(f"the container holds '{member.name}', not a plain file")
                if member.name in files:
                    raise ContainerError(f"the container holds '{member.name}' twice")
                reader = tar.extractfile(member)
                files[member.name] = reader.read() if reader else b""
    except tarfile.TarError as exc:
        raise ContainerError(f"the container is not a tar archive ({exc})") from None
    for name in (TRANSACTION_NAME, MANIFEST_NAME):
        if name not in files:
            raise ContainerError(f"the container has no {name}")
    return files
