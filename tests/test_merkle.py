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
