"""RFC 9162 tree: the CT reference tree, streaming roots, proofs round-trip."""

from __future__ import annotations

import json

import pytest

from provenance import merkle
from tests.conftest import VECTORS

REFERENCE = json.loads((VECTORS / "merkle" / "rfc6962_reference.json").read_text())
LEAVES = [bytes.fromhex(h) for h in REFERENCE["leaf_inputs_hex"]]


def test_hasher_vectors() -> None:
    hasher = REFERENCE["hasher"]
    assert merkle.EMPTY_ROOT.hex() == hasher["empty_tree"]
    assert merkle.leaf_hash(b"").hex() == hasher["leaf('')"]
    assert merkle.leaf_hash(b"L123456").hex() == hasher["leaf('L123456')"]
    assert merkle.node_hash(b"N123", b"N456").hex() == hasher["node('N123','N456')"]


@pytest.mark.parametrize("size", range(9))
def test_reference_roots(size: int) -> None:
    leaves = [merkle.leaf_hash(x) for x in LEAVES[:size]]
    assert merkle.root(leaves).hex() == REFERENCE["root_by_size_hex"][size]


def test_leaf_and_node_domains_differ() -> None:
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.leaf_hash(a + b) != merkle.node_hash(a, b)


def test_odd_sizes_do_not_collide_with_padding() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(3)]
    assert merkle.root(leaves) != merkle.root([*leaves, leaves[-1]])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 13, 64, 100])
def test_inclusion_and_consistency_round_trip(size: int) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tree_root = merkle.root(leaves)
    for index in range(size):
        proof = merkle.inclusion_proof(index, leaves)
        merkle.verify_inclusion(index, size, leaves[index], proof, tree_root)
        if size > 1:
            with pytest.raises(
                merkle.ProofError,
                match=(
                    r"leads to another root|longer than the tree allows"
                    r"|shorter than the tree requires"
                ),
            ):
                merkle.verify_inclusion((index + 1) % size, size, leaves[index], proof, tree_root)
    for size1 in range(1, size + 1):
        proof = merkle.consistency_proof(size1, leaves)
        merkle.verify_consistency(size1, size, merkle.root(leaves[:size1]), tree_root, proof)


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1's MTH, as written there (recursive), over leaf hashes."""
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


@pytest.mark.parametrize("pieces", [1, 3])
def test_level_at_a_time_paths_equal_the_plain_root(pieces: int) -> None:
    # TreeBuilder.extend and perfect_root (a level at a time) are the fast path of root()
    # (one leaf at a time): empty, one leaf, odd sizes, powers of two and their neighbours.
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(300)]
    for size in [*range(0, 35), 63, 64, 65, 127, 128, 129, 255, 256, 257, 300]:
        builder = merkle.TreeBuilder()
        cuts = [size * p // pieces for p in range(pieces + 1)]
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            builder.extend(leaves[lo:hi])
        assert builder.size == size
        assert builder.root() == merkle.root(leaves[:size]) == _mth(leaves[:size])
        if size and not size & (size - 1):
            assert merkle.perfect_root(leaves[:size]) == _mth(leaves[:size])


@pytest.mark.parametrize("size", [0, 3, 6, 100])
def test_perfect_root_refuses_a_tree_that_is_not_perfect(size: int) -> None:
    with pytest.raises(ValueError, match="do not form a perfect tree"):
        merkle.perfect_root([merkle.leaf_hash(b"x")] * size)
