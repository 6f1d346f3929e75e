"""The audit log's Merkle tree: RFC 6962 / RFC 9162 tree hashes, inclusion and consistency proofs.

Its one job: the arithmetic of a Merkle tree log, as RFC 9162 section 2.1 defines it, with no
storage of its own. A leaf's hash is SHA-256(0x00 || entry) and a node's SHA-256(0x01 || left
|| right); the tree of n leaves splits at the largest power of two smaller than n.

How the kit is meant to store it: every entry's leaf hash (and, if it likes, every *perfect*
subtree hash that an append completes, see :func:`frontier_append`) sits in the database. A
proof then asks a :data:`RangeHash` for O(log n) node hashes; :func:`range_hash_from_subtrees`
answers each from O(log n) stored perfect subtrees, so a proof in a 100,000-entry log reads
a few hundred hashes instead of hashing the whole log. :func:`subtree_levels` builds those
perfect subtrees from a list of leaf hashes in one pass when nothing was stored.

Verification never trusts the proof's length or shape: it follows RFC 9162 sections 2.1.3.2
and 2.1.4.2 step by step and raises :class:`ProofFailed` with one sentence saying why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from kitformats.errors import KitError

HASH_SIZE = 32

# RFC 9162 2.1.1: the hash of an empty list is the hash of an empty string.
EMPTY_TREE_HASH = hashlib.sha256(b"").digest()

RangeHash = Callable[[int, int], bytes]
"""``(start, end)`` → MTH(D[start:end]), the hash of leaves ``start .. end-1``.

The proof functions ask only for ranges that are nodes of the tree: a perfect subtree, or a
subtree on the tree's right edge whose start is a multiple of the smallest power of two not
below its size.
"""

SubtreeHash = Callable[[int, int], bytes]
"""``(level, index)`` → the hash of the perfect subtree over leaves ``index·2^level`` up to
``(index+1)·2^level - 1``; level 0 is the leaf hashes themselves."""


class ProofFailed(KitError):
    """A proof does not prove what it claims; the message says which check failed."""


@dataclass(frozen=True)
class Subtree:
    """A perfect subtree's hash and place: what an append completes and the kit may store."""

    level: int
    index: int
    hash: bytes


def leaf_hash(data: bytes) -> bytes:
    """The hash of one entry: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (``size`` ≥ 2): where MTH splits."""
    if size < 2:
        raise ValueError(f"a tree of {size} leaves has no split point")
    return 1 << ((size - 1).bit_length() - 1)


def frontier_append(
    frontier: Sequence[bytes], size: int, leaf: bytes
) -> tuple[tuple[bytes, ...], list[Subtree]]:
    """Append one leaf hash to a tree of ``size`` leaves given by its frontier.

    The frontier is the hashes of the tree's maximal perfect subtrees, largest (leftmost)
    first: one per set bit of ``size``. Returns the new frontier and every perfect subtree
    the append completed (the new leaf itself first), which is what the kit stores so that
    :func:`range_hash_from_subtrees` can answer proofs later.
    """
    if len(frontier) != size.bit_count():
        raise ValueError(
            f"a frontier of a tree of {size} leaves has {size.bit_count()} hashes, not {len(frontier)}"
        )
    hashes = list(frontier)
    completed = [Subtree(0, size, leaf)]
    level, index, current = 0, size, leaf
    # An odd index is a right child: its left sibling is the frontier's last subtree.
    while index & 1:
        current = node_hash(hashes.pop(), current)
        level, index = level + 1, index >> 1
        completed.append(Subtree(level, index, current))
    hashes.append(current)
    return tuple(hashes), completed


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The root hash of the tree a frontier describes (the empty tree's for no hashes)."""
    if not frontier:
        return EMPTY_TREE_HASH
    root = frontier[-1]
    # The right edge folds from the smallest subtree leftwards, as MTH's split does.
    for left in reversed(frontier[:-1]):
        root = node_hash(left, root)
    return root


def tree_hash(leaves: Iterable[bytes]) -> bytes:
    """MTH of a list of leaf hashes, in one pass and O(log n) memory."""
    stack: list[bytes] = []
    size = 0
    for leaf in leaves:
        current, index = leaf, size
        while index & 1:
            current = node_hash(stack.pop(), current)
            index >>= 1
        stack.append(current)
        size += 1
    return frontier_root(stack)


def subtree_levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """Every perfect subtree hash of a log: ``levels[level][index]``, level 0 being ``leaves``."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return levels


def perfect_pieces(start: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` that make up the node ``[start, end)``, left first."""
    size = end - start
    if size < 1:
        raise ValueError(f"the range [{start}, {end}) holds no leaves")
    if start % (1 << (size - 1).bit_length()):
        raise ValueError(f"the range [{start}, {end}) is not a node of a Merkle tree")
    pieces = []
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            pieces.append((level, start >> level))
            start += 1 << level
    return pieces


def range_hash_from_subtrees(subtree: SubtreeHash) -> RangeHash:
    """A :data:`RangeHash` that reads only perfect subtree hashes, O(log n) of them per node."""

    def range_hash(start: int, end: int) -> bytes:
        pieces = perfect_pieces(start, end)
        current = subtree(*pieces[-1])
        for level, index in reversed(pieces[:-1]):
            current = node_hash(subtree(level, index), current)
        return current

    return range_hash


def range_hash_from_leaves(leaves: Sequence[bytes]) -> RangeHash:
    """A :data:`RangeHash` over a list of leaf hashes, with its perfect subtrees built once."""
    levels = subtree_levels(leaves)
    return range_hash_from_subtrees(lambda level, index: levels[level][index])


def inclusion_proof(index: int, size: int, range_hash: RangeHash) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[0:size]): the sibling hashes from the leaf up to the root."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    proof = []
    low, high = 0, size
    while high - low > 1:
        middle = low + split_point(high - low)
        if index < middle:
            proof.append(range_hash(middle, high))
            high = middle
        else:
            proof.append(range_hash(low, middle))
            low = middle
    # Collected root first; the proof is read from the leaf up.
    proof.reverse()
    return proof


def consistency_proof(old_size: int, new_size: int, range_hash: RangeHash) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(old_size, D[0:new_size]); empty when the sizes are equal or old is 0."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"a tree of {old_size} leaves cannot grow into one of {new_size}")
    if old_size in (0, new_size):
        return []
    proof = []
    low, high, remaining, whole_old_tree = 0, new_size, old_size, True
    # SUBPROOF(m, D[low:high], b) unrolled: descend until the old tree is a whole subtree.
    while remaining != high - low:
        middle = low + split_point(high - low)
        if remaining <= middle - low:
            proof.append(range_hash(middle, high))
            high = middle
        else:
            proof.append(range_hash(low, middle))
            remaining -= middle - low
            low = middle
            whole_old_tree = False
    # The old root is the reader's own; any other old subtree must be sent.
    if not whole_old_tree:
        proof.append(range_hash(low, high))
    proof.reverse()
    return proof


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for position, value in enumerate(hashes):
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ProofFailed(f"{what}: hash #{position} is not {HASH_SIZE} bytes")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 2.1.3.2: check that ``leaf`` is leaf ``index`` of the tree of ``size`` with ``root``."""
    what = f"inclusion proof of leaf {index} in a tree of {size} leaves"
    if not 0 <= index < size:
        raise ProofFailed(f"{what}: the leaf is not in the tree")
    _check_hashes(what, [leaf, root, *proof])
    fn, sn = index, size - 1
    current = leaf
    for sibling in proof:
        if sn == 0:
            raise ProofFailed(f"{what}: the proof has too many hashes ({len(proof)})")
        if fn & 1 or fn == sn:
            current = node_hash(sibling, current)
            # A right-edge node with no right sibling moves up without a hash.
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            current = node_hash(current, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofFailed(f"{what}: the proof has too few hashes ({len(proof)})")
    if current != root:
        raise ProofFailed(f"{what}: the proof does not lead to the tree's root hash")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2: check that the tree of ``new_size`` with ``new_root`` extends the old one."""
    what = f"consistency proof from {old_size} to {new_size} leaves"
    if not 0 <= old_size <= new_size:
        raise ProofFailed(f"{what}: a log never shrinks")
    _check_hashes(what, [old_root, new_root, *proof])
    if old_size == 0 or old_size == new_size:
        # Nothing to prove but what the roots already say (RFC 9162 defines 0 < m < n only).
        if proof:
            raise ProofFailed(f"{what}: the proof must be empty")
        if old_size == 0 and old_root != EMPTY_TREE_HASH:
            raise ProofFailed(f"{what}: the old root is not the empty tree's hash")
        if old_size == new_size and old_root != new_root:
            raise ProofFailed(f"{what}: the two root hashes differ")
        return
    if not proof:
        raise ProofFailed(f"{what}: the proof is empty")
    path = list(proof)
    # A power-of-two old tree is a whole subtree of the new one: its root starts the path.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_hash = new_hash = path[0]
    for sibling in path[1:]:
        if sn == 0:
            raise ProofFailed(f"{what}: the proof has too many hashes ({len(proof)})")
        if fn & 1 or fn == sn:
            old_hash = node_hash(sibling, old_hash)
            new_hash = node_hash(sibling, new_hash)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_hash = node_hash(new_hash, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofFailed(f"{what}: the proof has too few hashes ({len(proof)})")
    if old_hash != old_root:
        raise ProofFailed(f"{what}: the proof does not lead to the old root hash")
    if new_hash != new_root:
        raise ProofFailed(f"{what}: the proof does not lead to the new root hash")
