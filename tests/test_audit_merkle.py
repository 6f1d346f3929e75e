"""The audit log's Merkle tree: Go tlog's vectors, RFC 9162's recursive definition, and tampering."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kitformats.audit.merkle import (
    EMPTY_TREE_HASH,
    ProofFailed,
    Subtree,
    consistency_proof,
    frontier_append,
    frontier_root,
    inclusion_proof,
    leaf_hash,
    perfect_pieces,
    range_hash_from_leaves,
    range_hash_from_subtrees,
    split_point,
    subtree_levels,
    tree_hash,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parent / "data" / "audit_vectors"
GENERATED = json.loads((VECTORS / "sumdb_tlog_generated.json").read_text())
TLOG = json.loads((VECTORS / "sumdb_tlog.json").read_text())


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# --- RFC 9162 section 2.1, written out as the RFC reads, sharing no code with kitformats.audit.merkle.

REFERENCE_SIZE = 130
REFERENCE_LEAVES = [hashlib.sha256(b"\x00" + f"leaf {i}".encode()).digest() for i in range(REFERENCE_SIZE)]


@cache
def reference_mth(start: int, end: int) -> bytes:
    n = end - start
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return REFERENCE_LEAVES[start]
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + reference_mth(start, start + k) + reference_mth(start + k, end)).digest()


def reference_path(m: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return reference_path(m, start, start + k) + [reference_mth(start + k, end)]
    return reference_path(m - k, start + k, end) + [reference_mth(start, start + k)]


def reference_subproof(m: int, start: int, end: int, whole: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if whole else [reference_mth(start, end)]
    k = 1
    while k * 2 < n:
        k *= 2
    if m <= k:
        return reference_subproof(m, start, start + k, whole) + [reference_mth(start + k, end)]
    return reference_subproof(m - k, start + k, end, False) + [reference_mth(start, start + k)]


REFERENCE_RANGE = range_hash_from_leaves(REFERENCE_LEAVES)


def flipped(value: bytes, position: int) -> bytes:
    return value[:position] + bytes([value[position] ^ 0x01]) + value[position + 1 :]


# --- Go's vectors.


def test_leaf_hash_of_go_record_hash_vector() -> None:
    vector = TLOG["record_hash"]
    assert leaf_hash(vector["data"].encode()) == b64(vector["hash"])


def test_go_leaf_and_tree_hashes_for_every_size_up_to_100() -> None:
    leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(GENERATED["leaves"])]
    assert leaves == [b64(h) for h in GENERATED["leaf_hashes"]]
    frontier: tuple[bytes, ...] = ()
    for size, expected in enumerate(GENERATED["tree_hashes"], start=1):
        frontier, _ = frontier_append(frontier, size - 1, leaves[size - 1])
        assert tree_hash(leaves[:size]) == b64(expected)
        assert frontier_root(frontier) == b64(expected)
        assert range_hash_from_leaves(leaves)(0, size) == b64(expected)


def test_go_inclusion_proofs_are_reproduced_and_verify() -> None:
    leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(GENERATED["leaves"])]
    range_hash = range_hash_from_leaves(leaves)
    for vector in GENERATED["inclusion_proofs"]:
        index, size, proof = vector["index"], vector["size"], [b64(h) for h in vector["proof"]]
        assert inclusion_proof(index, size, range_hash) == proof, vector
        verify_inclusion(leaves[index], index, size, proof, b64(GENERATED["tree_hashes"][size - 1]))


def test_go_consistency_proofs_are_reproduced_and_verify() -> None:
    leaves = [leaf_hash(f"leaf {i}".encode()) for i in range(GENERATED["leaves"])]
    range_hash = range_hash_from_leaves(leaves)
    roots = [b64(h) for h in GENERATED["tree_hashes"]]
    assert len(GENERATED["consistency_proofs"]) == 120
    for vector in GENERATED["consistency_proofs"]:
        old, new, proof = vector["old_size"], vector["new_size"], [b64(h) for h in vector["proof"]]
        assert consistency_proof(old, new, range_hash) == proof, vector
        verify_consistency(old, new, roots[old - 1], roots[new - 1], proof)


def test_go_client_fork_literal_hashes_and_proof() -> None:
    fork = TLOG["client_fork"]
    old_log = [leaf_hash(r.encode()) for r in fork["common_records"] + fork["old_log_records"]]
    new_log = [leaf_hash(r.encode()) for r in fork["common_records"] + fork["new_log_records"]]
    old_root = b64(fork["old_note"].split("\n")[2])
    new_root = b64(fork["new_note"].split("\n")[2])
    assert tree_hash(old_log[:5]) == old_root
    assert tree_hash(new_log) == new_root
    assert tree_hash(new_log[:5]) == b64(fork["new_log_hash_at_old_size"])
    proof = [b64(h) for h in fork["consistency_proof"]]
    assert consistency_proof(5, 6, range_hash_from_leaves(new_log)) == proof
    verify_consistency(5, 6, b64(fork["new_log_hash_at_old_size"]), new_root, proof)
    # The fork Go's client reports: the old checkpoint is not a prefix of the new log.
    with pytest.raises(ProofFailed, match="does not lead to the old root hash"):
        verify_consistency(5, 6, old_root, new_root, proof)


# --- Against the recursive definition, every size and index.


def test_split_point() -> None:
    assert [split_point(n) for n in range(2, 12)] == [1, 2, 2, 4, 4, 4, 4, 8, 8, 8]
    with pytest.raises(ValueError):
        split_point(1)


def test_tree_hash_matches_the_recursive_definition() -> None:
    assert tree_hash([]) == EMPTY_TREE_HASH == reference_mth(0, 0)
    frontier: tuple[bytes, ...] = ()
    for size in range(1, REFERENCE_SIZE + 1):
        frontier, _ = frontier_append(frontier, size - 1, REFERENCE_LEAVES[size - 1])
        expected = reference_mth(0, size)
        assert tree_hash(REFERENCE_LEAVES[:size]) == expected
        assert frontier_root(frontier) == expected
        assert REFERENCE_RANGE(0, size) == expected


def test_inclusion_proofs_match_the_recursive_definition_and_verify() -> None:
    for size in range(1, REFERENCE_SIZE + 1):
        root = reference_mth(0, size)
        for index in range(size):
            proof = inclusion_proof(index, size, REFERENCE_RANGE)
            assert proof == reference_path(index, 0, size), (index, size)
            verify_inclusion(REFERENCE_LEAVES[index], index, size, proof, root)


def test_consistency_proofs_match_the_recursive_definition_and_verify() -> None:
    for new in range(1, REFERENCE_SIZE + 1):
        new_root = reference_mth(0, new)
        for old in range(1, new + 1):
            proof = consistency_proof(old, new, REFERENCE_RANGE)
            expected = [] if old == new else reference_subproof(old, 0, new, True)
            assert proof == expected, (old, new)
            verify_consistency(old, new, reference_mth(0, old), new_root, proof)


# --- Tampering: every change to a proof, a hash, an index or a size is caught.

TAMPER_SIZE = 70


def test_tampered_inclusion_proofs_fail() -> None:
    for size in range(1, TAMPER_SIZE + 1):
        root = reference_mth(0, size)
        for index in range(size):
            leaf = REFERENCE_LEAVES[index]
            proof = inclusion_proof(index, size, REFERENCE_RANGE)
            bad_cases = [
                (flipped(leaf, index % 32), index, size, proof, root),
                (leaf, index, size, proof, flipped(root, size % 32)),
                (leaf, index, size, proof + [root], root),
            ]
            bad_cases += [(leaf, index, size, proof[:k] + proof[k + 1 :], root) for k in range(len(proof))]
            for k in range(len(proof)):
                for position in (0, 13, 31):
                    bad = list(proof)
                    bad[k] = flipped(bad[k], position)
                    bad_cases.append((leaf, index, size, bad, root))
            # Another index of the same tree (every one in small trees, the neighbours and the
            # mirror images in larger ones), or the same index in a neighbouring tree with its
            # own genuine root: a proof is bound to one place in one tree.
            others = range(size + 1) if size <= 32 else {index - 1, index + 1, size - 1 - index, size}
            bad_cases += [(leaf, other, size, proof, root) for other in others if 0 <= other != index]
            for other in (size - 1, size + 1):
                if index < other <= REFERENCE_SIZE:
                    bad_cases.append((leaf, index, other, proof, reference_mth(0, other)))
            for case in bad_cases:
                with pytest.raises(ProofFailed):
                    verify_inclusion(*case)


def test_tampered_consistency_proofs_fail() -> None:
    for new in range(1, TAMPER_SIZE + 1):
        new_root = reference_mth(0, new)
        for old in range(1, new + 1):
            old_root = reference_mth(0, old)
            proof = consistency_proof(old, new, REFERENCE_RANGE)
            bad_cases = [
                (old, new, flipped(old_root, old % 32), new_root, proof),
                (old, new, old_root, flipped(new_root, new % 32), proof),
                (old, new, old_root, new_root, proof + [new_root]),
            ]
            if old != new:
                bad_cases.append((old, new, new_root, old_root, proof))
            bad_cases += [
                (old, new, old_root, new_root, proof[:k] + proof[k + 1 :]) for k in range(len(proof))
            ]
            for k in range(len(proof)):
                for position in (0, 17, 31):
                    bad = list(proof)
                    bad[k] = flipped(bad[k], position)
                    bad_cases.append((old, new, old_root, new_root, bad))
            # Other sizes with their own genuine roots: the proof holds for this pair alone.
            for other_old in (old - 1, old + 1):
                if 1 <= other_old <= new:
                    bad_cases.append((other_old, new, reference_mth(0, other_old), new_root, proof))
            for other_new in (new - 1, new + 1):
                if old <= other_new <= REFERENCE_SIZE and other_new != new:
                    bad_cases.append((old, other_new, old_root, reference_mth(0, other_new), proof))
            for case in bad_cases:
                with pytest.raises(ProofFailed):
                    verify_consistency(*case)


def test_a_rewritten_entry_breaks_consistency_with_the_old_checkpoint() -> None:
    for rewritten in range(20):
        log = list(REFERENCE_LEAVES[:40])
        log[rewritten] = leaf_hash(b"edited entry")
        proof = consistency_proof(20, 40, range_hash_from_leaves(log))
        with pytest.raises(ProofFailed):
            verify_consistency(20, 40, reference_mth(0, 20), tree_hash(log), proof)


# --- Sizes the exhaustive tests do not reach.

BIG_SIZE = 5000
BIG_LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(BIG_SIZE)]
BIG_LEVELS = subtree_levels(BIG_LEAVES)
BIG_RANGE = range_hash_from_subtrees(lambda level, index: BIG_LEVELS[level][index])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_inclusion_proofs_verify_and_resist_a_flipped_byte(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, BIG_SIZE))
    index = data.draw(st.integers(0, size - 1))
    root = BIG_RANGE(0, size)
    assert root == tree_hash(BIG_LEAVES[:size])
    proof = inclusion_proof(index, size, BIG_RANGE)
    verify_inclusion(BIG_LEAVES[index], index, size, proof, root)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        proof[k] = flipped(proof[k], data.draw(st.integers(0, 31)))
        with pytest.raises(ProofFailed):
            verify_inclusion(BIG_LEAVES[index], index, size, proof, root)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_random_consistency_proofs_verify_and_resist_a_flipped_byte(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, BIG_SIZE))
    old = data.draw(st.integers(1, new))
    old_root, new_root = BIG_RANGE(0, old), BIG_RANGE(0, new)
    proof = consistency_proof(old, new, BIG_RANGE)
    verify_consistency(old, new, old_root, new_root, proof)
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        proof[k] = flipped(proof[k], data.draw(st.integers(0, 31)))
        with pytest.raises(ProofFailed):
            verify_consistency(old, new, old_root, new_root, proof)


# --- What the kit stores, and how little a proof reads.


def test_frontier_append_reports_the_perfect_subtrees_to_store() -> None:
    stored: dict[tuple[int, int], bytes] = {}
    frontier: tuple[bytes, ...] = ()
    for size, leaf in enumerate(REFERENCE_LEAVES):
        frontier, completed = frontier_append(frontier, size, leaf)
        assert completed[0] == Subtree(0, size, leaf)
        for subtree in completed:
            stored[subtree.level, subtree.index] = subtree.hash
    levels = subtree_levels(REFERENCE_LEAVES)
    assert stored == {(level, i): h for level, row in enumerate(levels) for i, h in enumerate(row)}
    from_store = range_hash_from_subtrees(lambda level, index: stored[level, index])
    assert inclusion_proof(77, 129, from_store) == reference_path(77, 0, 129)
    assert consistency_proof(33, 129, from_store) == reference_subproof(33, 0, 129, True)
    with pytest.raises(ValueError, match="frontier"):
        frontier_append(frontier[:-1], REFERENCE_SIZE, REFERENCE_LEAVES[0])


def test_proofs_in_a_100000_entry_log_read_few_subtree_hashes() -> None:
    size = 100_000
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    levels = subtree_levels(leaves)
    reads: list[tuple[int, int]] = []

    def stored(level: int, index: int) -> bytes:
        reads.append((level, index))
        return levels[level][index]

    range_hash = range_hash_from_subtrees(stored)
    root = range_hash(0, size)
    assert root == tree_hash(leaves)
    reads.clear()
    proof = inclusion_proof(54_321, size, range_hash)
    verify_inclusion(leaves[54_321], 54_321, size, proof, root)
    assert len(proof) == 17 and len(reads) <= 17 * 6
    reads.clear()
    proof = consistency_proof(70_001, size, range_hash)
    verify_consistency(70_001, size, range_hash(0, 70_001), root, proof)
    assert len(reads) <= 17 * 17


# --- Edges and errors.


def test_consistency_with_an_empty_or_equal_tree() -> None:
    root = reference_mth(0, 9)
    assert consistency_proof(0, 9, REFERENCE_RANGE) == []
    assert consistency_proof(9, 9, REFERENCE_RANGE) == []
    verify_consistency(0, 9, EMPTY_TREE_HASH, root, [])
    verify_consistency(9, 9, root, root, [])
    verify_consistency(0, 0, EMPTY_TREE_HASH, EMPTY_TREE_HASH, [])
    with pytest.raises(ProofFailed, match="empty tree"):
        verify_consistency(0, 9, root, root, [])
    with pytest.raises(ProofFailed, match="differ"):
        verify_consistency(9, 9, root, reference_mth(0, 8), [])
    with pytest.raises(ProofFailed, match="must be empty"):
        verify_consistency(9, 9, root, root, [root])
    with pytest.raises(ProofFailed, match="never shrinks"):
        verify_consistency(9, 8, root, reference_mth(0, 8), [])
    with pytest.raises(ProofFailed, match="the proof is empty"):
        verify_consistency(8, 9, reference_mth(0, 8), root, [])


def test_bad_arguments_and_bad_hashes_are_named() -> None:
    with pytest.raises(ValueError, match="leaf 5 is not in a tree of 5 leaves"):
        inclusion_proof(5, 5, REFERENCE_RANGE)
    with pytest.raises(ValueError, match="cannot grow"):
        consistency_proof(6, 5, REFERENCE_RANGE)
    with pytest.raises(ValueError, match="not a node"):
        perfect_pieces(1, 4)
    with pytest.raises(ValueError, match="no leaves"):
        perfect_pieces(4, 4)
    assert perfect_pieces(8, 13) == [(2, 2), (0, 12)]
    root = reference_mth(0, 4)
    with pytest.raises(ProofFailed) as caught:
        verify_inclusion(REFERENCE_LEAVES[0], 0, 4, [b"short", REFERENCE_LEAVES[1]], root)
    assert str(caught.value) == "inclusion proof of leaf 0 in a tree of 4 leaves: hash #2 is not 32 bytes"
    with pytest.raises(ProofFailed, match="not in the tree"):
        verify_inclusion(REFERENCE_LEAVES[0], 4, 4, [], root)
    with pytest.raises(ProofFailed, match="too few hashes"):
        verify_inclusion(REFERENCE_LEAVES[0], 0, 4, [REFERENCE_LEAVES[1]], root)
    with pytest.raises(ProofFailed, match="too many hashes"):
        verify_inclusion(REFERENCE_LEAVES[0], 0, 1, [REFERENCE_LEAVES[1]], REFERENCE_LEAVES[0])
