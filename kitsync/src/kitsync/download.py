"""One sealed bundle downloaded into a ``.part`` file, resumed with HTTP Range after a cut.

Its one job: bring the bytes of ``GET /api/v1/bundles/{id}`` into ``<final>.part`` whatever
the network does: a part left by a cut connection (in this run, retried a few times, or by a
run that was killed) is continued from its length with ``Range: bytes=N-`` and ``If-Range``
on the bundle's ETag, so that the kit sends the rest — or, if it is another file now, the
whole — and the bytes come out hashed and fsynced. Whether they are the bundle the kit's
statement describes is checked here (size and SHA-256); what to do with them is the pull's.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from kitsync.errors import DISK_FULL, ConnectionLost, LaptopDiskFull, TransferFailed
from kitsync.link import KitLink, describe

CHUNK = 1024 * 1024
ATTEMPTS = 4
# Waits before the 2nd, 3rd, 4th attempt: a car park's Wi-Fi comes back in seconds or not at all.
BACKOFF_S = (0.0, 1.0, 3.0)
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


@dataclass(frozen=True)
class ContentRange:
    start: int
    end: int  # inclusive, as RFC 9110 writes it
    total: int


def parse_content_range(value: str | None) -> ContentRange:
    """``bytes START-END/TOTAL`` (ValueError when it is not that, or not a range of TOTAL)."""
    match = CONTENT_RANGE.fullmatch((value or "").strip())
    if match is None:
        raise ValueError(f"Content-Range {value!r} is not 'bytes START-END/TOTAL'")
    start, end, total = (int(group) for group in match.groups())
    if not start <= end < total:
        raise ValueError(f"Content-Range {value!r} is not a range of {total} bytes")
    return ContentRange(start, end, total)


def range_headers(have: int, sha256: str) -> dict[str, str]:
    """What to ask for when ``have`` bytes of the file are already in the part."""
    if have <= 0:
        return {}
    # If-Range: the rest only if the kit's file is still the one of this ETag, else all of it.
    return {"Range": f"bytes={have}-", "If-Range": f'"{sha256}"'}


def resume_start(status: int, content_range: str | None, have: int, size: int) -> int:
    """Where the answer's body goes in the part: 0 for a whole file (200), ``have`` for the
    rest asked for (206); ValueError for any other answer to a download."""
    if status == 200:
        return 0
    if status != 206:
        raise ValueError(f"HTTP {status} is not an answer to a download")
    answered = parse_content_range(content_range)
    if answered != ContentRange(have, size - 1, size):
        raise ValueError(f"asked for bytes {have}-{size - 1}/{size}, the kit sent {content_range}")
    return have


def part_path(final: Path) -> Path:
    return final.with_name(final.name + ".part")


def _hash_prefix(path: Path, length: int) -> hashlib._Hash:
    digest = hashlib.sha256()
    with open(path, "rb") as part:
        left = length
        while left:
            chunk = part.read(min(CHUNK, left))
            if not chunk:
                raise OSError(f"{path} is shorter than {length} bytes")
            digest.update(chunk)
            left -= len(chunk)
    return digest


def _part_length(path: Path, size: int) -> int:
    try:
        have = path.stat().st_size
    except FileNotFoundError:
        return 0
    if have > size:  # not a prefix of this bundle: start over
        path.unlink()
        return 0
    return have


@dataclass
class Download:
    """One bundle to bring into ``part``; ``progress(done)`` is told the bytes in the part."""

    link: KitLink
    bundle_id: str
    size: int
    sha256: str
    part: Path
    progress: Callable[[int], None] = lambda done: None
    attempts: int = ATTEMPTS
    resumed_from: int = 0  # bytes a part from earlier held when this run began
    _whole: bool = False  # the last attempt had the kit send the whole file

    def run(self) -> None:
        """The whole bundle in ``part``, fsynced and matching size and SHA-256; TransferFailed
        when the network or the kit does not let it come (the part stays, to be resumed)."""
        self.resumed_from = _part_length(self.part, self.size)
        failure, lost = "", False
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)])
            try:
                if self._attempt():
                    return
                failure = "its SHA-256 is not the one in the kit's statement"
                if self._whole:
                    break  # the kit sent all of it, and it is wrong: again would be the same
            except _Cut as exc:
                failure = str(exc)
                lost = True
            else:
                lost = False
        raise (ConnectionLost if lost else TransferFailed)(
            f"bundle {self.bundle_id}: {failure} ({self.attempts} attempts; pull again to resume)"
        )

    def _attempt(self) -> bool:
        """One request: True when the part is whole and right, False when it came whole but
        wrong (it is removed), _Cut when the connection broke (the part keeps what came)."""
        have = _part_length(self.part, self.size)
        digest = _hash_prefix(self.part, have) if have else hashlib.sha256()
        self.progress(have)
        self._whole = False
        if have < self.size:
            digest = self._fetch(have, digest)
        if digest.hexdigest() == self.sha256:
            return True
        self.part.unlink()
        return False

    def _fetch(self, have: int, digest: hashlib._Hash) -> hashlib._Hash:
        path = f"/api/v1/bundles/{quote(self.bundle_id, safe='')}"
        try:
            response = self.link.send("GET", path, headers=range_headers(have, self.sha256))
        except TransferFailed as exc:  # unreachable for now, or cut before the answer: try again
            raise _Cut(str(exc)) from None
        try:
            if response.status == 416:
                # The kit says the part cannot be a prefix of its file: start over.
                response.read()
                self.part.unlink(missing_ok=True)
                raise _Cut("the kit refused to resume it (416)")
            if response.status not in (200, 206):
                status, answer = response.status, _answer(response)
                what = f"bundle {self.bundle_id}"
                if status == 404:
                    raise TransferFailed(f"{what}: the kit no longer has it (404)")
                raise self.link.refusal(what, status, answer)
            try:
                start = resume_start(response.status, response.getheader("Content-Range"), have, self.size)
            except ValueError as exc:
                raise TransferFailed(f"bundle {self.bundle_id}: {exc}") from None
            if start == 0:
                digest = hashlib.sha256()
                self._whole = True
            expected = self.size - start
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) != expected:
                raise TransferFailed(
                    f"bundle {self.bundle_id}: the kit sends {length} bytes, the statement says {expected}"
                )
            self._receive(response, start, expected, digest)
        except (OSError, http.client.HTTPException) as exc:
            self.link.close()
            if isinstance(exc, OSError) and exc.errno in DISK_FULL:
                # The laptop's own disk, not the network: trying again at once would not help.
                raise LaptopDiskFull(
                    f"bundle {self.bundle_id}: this laptop's disk is full ({self.part.parent}): free "
                    f"at least {self.size // 1_000_000 + 1} MB and pull again (what came is kept, to resume)"
                ) from None
            raise _Cut(f"the download broke off: {describe(exc)}") from None
        return digest

    def _receive(
        self, response: http.client.HTTPResponse, start: int, expected: int, digest: hashlib._Hash
    ) -> None:
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)
        fd = os.open(self.part, flags, 0o600)
        with os.fdopen(fd, "wb") as part:
            part.truncate(start)
            part.seek(start)
            done = 0
            try:
                while done < expected:
                    chunk = response.read(min(CHUNK, expected - done))
                    if not chunk:
                        # http.client returns b"" when a connection with a Content-Length is cut.
                        self.link.close()
                        raise _Cut(f"the connection broke off after {start + done} of {self.size} bytes")
                    part.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    self.progress(start + done)
            finally:
                # What came is kept for the next attempt, durable so that a power cut keeps it too.
                part.flush()
                os.fsync(part.fileno())


class _Cut(Exception):
    """This attempt broke off; the next resumes it."""


def _answer(response: http.client.HTTPResponse) -> object:
    try:
        # A 403 the link looked into is read already (KitLink.send keeps its body as .data).
        return json.loads(getattr(response, "data", None) or response.read())
    except (ValueError, OSError, http.client.HTTPException):
        return None
