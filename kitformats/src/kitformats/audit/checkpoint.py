"""C2SP tlog-checkpoints: a log's origin, tree size and root hash as a note text, and back.

Its one job: the text of c2sp.org/tlog-checkpoint — the origin line, the tree size in
decimal without leading zeros, the base64 root hash, then optional non-empty extension
lines, each ending in a newline — written and read strictly, every error naming its line.
Signing and opening one are the signed-note's job (:mod:`kitformats.audit.note`); the two helpers
here only join them.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kitformats.audit.merkle import HASH_SIZE
from kitformats.audit.note import SignerKey, VerifierKey, open_note, sign_note
from kitformats.errors import KitError

# A tree size fits a signed 64-bit integer: Go's tlog (int64) and SQLite's INTEGER hold no more.
MAX_TREE_SIZE = 2**63 - 1

_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class MalformedCheckpoint(KitError):
    """A checkpoint text breaks the tlog-checkpoint format (the message names the line)."""


@dataclass(frozen=True)
class Checkpoint:
    """What a log commits to: its origin, how many entries it has, and their root hash."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """The checkpoint's note text; :class:`MalformedCheckpoint` if a field cannot be written."""
    lines = [
        checkpoint.origin,
        str(checkpoint.size),
        base64.b64encode(checkpoint.root_hash).decode("ascii"),
        *checkpoint.extensions,
    ]
    text = "".join(line + "\n" for line in lines)
    # Writing only what reading accepts keeps the two from drifting apart.
    if parse_checkpoint(text) != checkpoint:
        raise MalformedCheckpoint(f"checkpoint {checkpoint!r} cannot be written as it is")
    return text


def parse_checkpoint(text: str) -> Checkpoint:
    """A checkpoint from its note text, strictly; :class:`MalformedCheckpoint` names the bad line."""
    if not text.endswith("\n"):
        raise MalformedCheckpoint("malformed checkpoint: the text does not end in a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpoint(f"malformed checkpoint: {len(lines)} lines, at least 3 needed")
    for number, line in enumerate(lines, start=1):
        if not line:
            raise MalformedCheckpoint(f"malformed checkpoint: line {number} is empty")
        if any(char < " " for char in line):
            raise MalformedCheckpoint(f"malformed checkpoint: line {number} has a control character")
    origin, size_line, hash_line, *extensions = lines
    return Checkpoint(origin, _tree_size(size_line), _root_hash(hash_line), tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[SignerKey]) -> str:
    """The checkpoint as a signed note (the spec wants the log's key named like its origin)."""
    return sign_note(format_checkpoint(checkpoint), signers)


def open_checkpoint(note: str | bytes, known: Iterable[VerifierKey]) -> Checkpoint:
    """The checkpoint of a signed note that a known key vouches for (errors of both formats)."""
    return parse_checkpoint(open_note(note, known).text)


def _tree_size(line: str) -> int:
    if not _DECIMAL.fullmatch(line):
        raise MalformedCheckpoint(
            f"malformed checkpoint: line 2 (tree size) {line!r} is not a decimal number without leading zeros"
        )
    size = int(line)
    if size > MAX_TREE_SIZE:
        raise MalformedCheckpoint(f"malformed checkpoint: line 2 (tree size) {line} is above 2^63 - 1")
    return size


def _root_hash(line: str) -> bytes:
    try:
        root = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        root = None
    if root is None or base64.b64encode(root).decode("ascii") != line:
        raise MalformedCheckpoint(
            f"malformed checkpoint: line 3 (root hash) {line!r} is not canonical base64"
        )
    if len(root) != HASH_SIZE:
        raise MalformedCheckpoint(
            f"malformed checkpoint: line 3 (root hash) is {len(root)} bytes, not a {HASH_SIZE}-byte SHA-256"
        )
    return root
