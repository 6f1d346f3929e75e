"""Files a person names on a command line or in a setting (a config, an image, a document),
read to a limit: /dev/zero, a FIFO fed for ever or a disk image named by mistake would
otherwise fill the memory before any check of the contents could refuse it.

A file past the limit is an OSError (EFBIG) whose strerror says so, so that every reader's
own "cannot read X: <reason>" line says it too.
"""

from __future__ import annotations

import errno
from pathlib import Path

MiB = 1024 * 1024
# Larger than anything the kit reads from a person's file: a bundle is at most 384 KiB, an
# image a few MiB (a large TIFF some tens), a firmware image at most 1 MiB.
MAX_NAMED_FILE = 64 * MiB
MAX_CONFIG_FILE = 1 * MiB  # a config is a few KiB


def read_named_file(path: Path | str, limit: int = MAX_NAMED_FILE) -> bytes:
    """The bytes of the file at `path`; OSError as Path.read_bytes raises it, and one with
    errno EFBIG when the file holds more than `limit` bytes (only limit + 1 are read)."""
    with open(path, "rb") as source:
        data = source.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"more than {_size(limit)}: not a file of this kind")
    return data


def _size(limit: int) -> str:
    return f"{limit // MiB} MiB" if limit % MiB == 0 else f"{limit} bytes"
