"""One worker's prefix cache: a trie of KV blocks keyed by their chained sequence hashes.

Because a block's sequence hash already encodes every block before it, the trie is a
dict from hash to node plus parent links; matching a prompt is a walk down its hash
list until the first miss. Each node is one KV block. Running requests pin the blocks
they use (``refs``); a block with no pins and no children is an evictable leaf, and
eviction takes the least recently used of those first (a heap ordered by last use,
with stale entries skipped, as SGLang's RadixCache does). Evicting a leaf can make its
parent a leaf, so a long unused branch goes block by block from its tip.

The cache never grows by itself: the worker's block pool (``kv.KVCache``) decides when
to insert and asks for evictions to stay within its capacity.
"""

from __future__ import annotations

import heapq
from itertools import count


class Block:
    __slots__ = ("hash", "parent", "children", "refs", "used")

    def __init__(self, h: int, parent: Block | None, used: int) -> None:
        self.hash = h
        self.parent = parent
        self.children = 0
        self.refs = 0
        self.used = used


class PrefixCache:
    __slots__ = ("blocks", "pinned", "_heap", "_clock", "_tiebreak")

    def __init__(self) -> None:
        self.blocks: dict[int, Block] = {}
        self.pinned = 0  # blocks with at least one pin
        self._heap: list[tuple[int, int, Block]] = []
        self._clock = 0
        self._tiebreak = count()

    def __len__(self) -> int:
        return len(self.blocks)

    def __contains__(self, h: int) -> bool:
        return h in self.blocks

    @property
    def reclaimable(self) -> int:
        """Blocks eviction could free: the unpinned ones (a pin always covers a whole path
        from the root, so no unpinned block has a pinned descendant)."""
        return len(self.blocks) - self.pinned

    # -- lookups --------------------------------------------------------------------------
    def match(self, hashes: list[int], limit: int | None = None) -> int:
        """How many leading ``hashes`` are cached (at most ``limit``); no side effects."""
        blocks = self.blocks
        n = 0
        for h in hashes if limit is None else hashes[:limit]:
            if h not in blocks:
                break
            n += 1
        return n

    def acquire(self, hashes: list[int], limit: int | None = None) -> list[Block]:
        """Pin the cached prefix of ``hashes`` (at most ``limit`` blocks) and return it."""
        blocks = self.blocks
        out = []
        self._clock += 1
        for h in hashes if limit is None else hashes[:limit]:
            b = blocks.get(h)
            if b is None:
                break
            self._pin(b)
            out.append(b)
        return out

    # -- changes --------------------------------------------------------------------------
    def insert(self, parent: Block | None, hashes: list[int]) -> tuple[list[Block], list[int]]:
        """Pin blocks for ``hashes`` continuing after ``parent``, creating the missing ones.

        Returns every block (pinned once more each) and the indices into ``hashes`` of the
        blocks that were created (the caller pays one free block for each of them)."""
        blocks = self.blocks
        self._clock += 1
        out, created = [], []
        for i, h in enumerate(hashes):
            b = blocks.get(h)
            if b is None:
                b = blocks[h] = Block(h, parent, self._clock)
                if parent is not None:
                    parent.children += 1
                created.append(i)
            else:
                b.used = self._clock
            if not b.refs:
                self.pinned += 1
            b.refs += 1
            out.append(b)
            parent = b
        return out, created

    def release(self, blocks: list[Block]) -> None:
        """Drop one pin from each of ``blocks``; unpinned leaves become evictable."""
        self._clock += 1
        clock = self._clock
        for b in blocks:
            b.refs -= 1
            b.used = clock
            if not b.refs:
                self.pinned -= 1
                if not b.children:
                    self._push(b)

    def evict(self, n: int) -> list[int]:
        """Remove up to ``n`` unpinned leaves, least recently used first; their hashes."""
        out: list[int] = []
        heap, blocks = self._heap, self.blocks
        while len(out) < n and heap:
            used, _, b = heapq.heappop(heap)
            if b.refs or b.children or b.used != used or blocks.get(b.hash) is not b:
                continue  # stale: pinned again, grew a child, touched since, or gone
            while True:  # b, then its parent while that is the least recently used leaf
                del blocks[b.hash]
                out.append(b.hash)
                p = b.parent
                if p is None:
                    break
                p.children -= 1
                if p.children or p.refs:
                    break
                if len(out) < n and (not heap or p.used <= heap[0][0]):
                    b = p  # (a branch released at once goes block by block, without the heap)
                    continue
                self._push(p)
                break
        return out

    def clear(self) -> list[int]:
        """Evict every unpinned block (pinned ones and their ancestors stay)."""
        return self.evict(len(self.blocks))

    # -- internals ------------------------------------------------------------------------
    def _pin(self, b: Block) -> None:
        if not b.refs:
            self.pinned += 1
        b.refs += 1
        b.used = self._clock

    def _push(self, b: Block) -> None:
        heap = self._heap
        heapq.heappush(heap, (b.used, next(self._tiebreak), b))
        if len(heap) > 2 * len(self.blocks) + 1024:  # drop stale entries: memory stays bounded
            live = [(x.used, next(self._tiebreak), x) for x in self.blocks.values()
                    if x.refs == 0 and x.children == 0]
            heapq.heapify(live)
            self._heap = live
