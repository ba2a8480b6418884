"""Dynamo-compatible KV block hashes.

A *local* block hash is XXH3-64 with seed 1337 over one full block of token ids,
each id as 4 little-endian bytes (a partial tail block is not hashed). A block's
*sequence* hash identifies its position in a sequence: block 0's is its local hash,
block i's is XXH3-64 (seed 1337) over the 16 bytes ``parent sequence hash (u64 LE) ||
local hash (u64 LE)``. This is Dynamo's ``compute_block_hash_for_seq`` and
``compute_seq_hash_for_block`` (lib/llm/src/kv_router/protocols.rs) without LoRA or
multimodal salt, so a real Dynamo router reading our KV events indexes the same blocks.
"""

from __future__ import annotations

import struct
import sys
from array import array

import xxhash

SEED = 1337

_xxh3 = xxhash.xxh3_64_intdigest
_pair = struct.Struct("<QQ").pack
if array("I").itemsize != 4:  # pragma: no cover - every supported platform has a 4-byte C int
    raise ImportError("fakeai.engine.cluster.kvhash needs a 4-byte array('I')")


def _blocks(ids: list[int], block_size: int):
    """Each full block of ``ids`` as little-endian u32 bytes (a view, no copy per block)."""
    full = len(ids) // block_size * block_size
    if not full:
        return
    buf = array("I", ids[:full] if full < len(ids) else ids)
    if sys.byteorder == "big":  # pragma: no cover
        buf.byteswap()
    view = memoryview(buf).cast("B")
    width = block_size * 4
    for i in range(0, full * 4, width):
        yield view[i:i + width]


def local_hashes(ids: list[int], block_size: int) -> list[int]:
    """The local hash of each full block of ``ids``."""
    return [_xxh3(block, seed=SEED) for block in _blocks(ids, block_size)]


def chain(local: list[int], parent: int | None = None) -> list[int]:
    """Sequence hashes of consecutive blocks with these local hashes, after ``parent``."""
    out = []
    for h in local:
        parent = h if parent is None else _xxh3(_pair(parent, h), seed=SEED)
        out.append(parent)
    return out


def sequence_hashes(ids: list[int], block_size: int, parent: int | None = None) -> list[int]:
    """The sequence hash of each full block of ``ids`` (which continue after ``parent``):
    ``chain(local_hashes(ids, block_size), parent)`` in one pass."""
    out = []
    for block in _blocks(ids, block_size):
        h = _xxh3(block, seed=SEED)
        parent = h if parent is None else _xxh3(_pair(parent, h), seed=SEED)
        out.append(parent)
    return out
