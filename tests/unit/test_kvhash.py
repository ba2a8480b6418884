"""Dynamo-compatible block hashes (fakeai.engine.cluster.kvhash) against Dynamo's definition.

Dynamo (lib/llm/src/kv_router/protocols.rs): a block's local hash is XXH3-64 with seed 1337
over its token ids as little-endian u32; block 0's sequence hash is its local hash, block i's
is XXH3-64 (seed 1337) over ``parent sequence hash || local hash`` as two little-endian u64.
The expected values here are computed independently with ``struct`` and ``xxhash``.
"""

from __future__ import annotations

import struct

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from fakeai.engine.cluster import kvhash


def ref_local(block: list[int]) -> int:
    return xxhash.xxh3_64_intdigest(struct.pack(f"<{len(block)}I", *block), seed=1337)


def ref_chain(parent: int, local: int) -> int:
    return xxhash.xxh3_64_intdigest(struct.pack("<QQ", parent, local), seed=1337)


def test_xxh3_is_the_reference_algorithm():
    # xxHash's own sanity vector: XXH3_64bits of empty input (seed 0) is 0x2D06800538D394C2
    assert xxhash.xxh3_64_intdigest(b"") == 0x2D06800538D394C2


def test_literal_vectors():
    # tokens 0..31, block size 16: two blocks
    local = kvhash.local_hashes(list(range(32)), 16)
    assert local == [15310707395893867146, 15292316782987903195]
    assert kvhash.chain(local) == [15310707395893867146, 13769157705258532664]


def test_local_hash_is_seeded_xxh3_over_little_endian_u32():
    block = [100257, 0, 1, 2**32 - 1] * 4
    assert kvhash.local_hashes(block, 16) == [ref_local(block)]
    assert ref_local(block) != xxhash.xxh3_64_intdigest(struct.pack(">16I", *block), seed=1337)


def test_partial_tail_block_is_not_hashed():
    ids = list(range(40))
    assert len(kvhash.local_hashes(ids, 16)) == 2
    assert kvhash.local_hashes(ids[:15], 16) == []
    assert kvhash.sequence_hashes(ids, 16) == kvhash.sequence_hashes(ids[:32], 16)


def test_sequence_hash_chains_from_the_parent():
    ids = list(range(7, 7 + 64))
    blocks = [ids[i:i + 16] for i in range(0, 64, 16)]
    expected, parent = [], None
    for b in blocks:
        h = ref_local(b)
        parent = h if parent is None else ref_chain(parent, h)
        expected.append(parent)
    assert kvhash.sequence_hashes(ids, 16) == expected
    # the same block content at another position has another sequence hash
    twice = blocks[0] + blocks[0]
    local = kvhash.local_hashes(twice, 16)
    assert local[0] == local[1]
    seq = kvhash.sequence_hashes(twice, 16)
    assert seq[0] != seq[1] and seq[1] == ref_chain(seq[0], local[1])


def test_continuing_after_a_parent_equals_hashing_the_whole():
    ids = list(range(1000, 1080))
    whole = kvhash.sequence_hashes(ids, 16)
    tail = kvhash.sequence_hashes(ids[32:], 16, parent=whole[1])
    assert whole[2:] == tail


@pytest.mark.parametrize("block_size", [1, 8, 16, 32, 64])
def test_block_sizes(block_size):
    ids = list(range(4 * block_size - 1))  # three full blocks and a partial one
    assert kvhash.local_hashes(ids, block_size) == [
        ref_local(ids[i:i + block_size]) for i in range(0, 3 * block_size, block_size)]


@given(st.lists(st.integers(0, 2**32 - 1), max_size=200), st.sampled_from([4, 16]))
def test_matches_the_reference_for_any_tokens(ids, bs):
    expected, parent = [], None
    for i in range(0, len(ids) // bs * bs, bs):
        h = ref_local(ids[i:i + bs])
        parent = h if parent is None else ref_chain(parent, h)
        expected.append(parent)
    assert kvhash.sequence_hashes(ids, bs) == expected
