"""One worker's KV blocks: a fixed pool shared by the prefix cache and running sequences.

``total`` blocks, each ``block_size`` tokens. A block is either in the prefix cache
(``tree``: full prompt blocks, pinned while a running sequence uses them) or
private to a running sequence (its partial tail block, decode blocks not yet cached, or a
cache-less request's blocks). ``used = len(tree) + private <= total`` always: taking
blocks first evicts unpinned cached blocks, least recently used first, and fails when
even that is not enough.

A request's life here: ``admit`` pins its longest cached prefix (whole blocks, and never
the whole prompt, so at least one token is computed, as vLLM) and takes private blocks
for the rest; ``commit`` moves its computed prompt blocks into the cache; ``grow`` adds
decode blocks; ``release`` frees its private blocks and unpins the cached ones. Decoded
tokens are not cached: a conversation's next turn reuses the blocks of the previous
turn's prompt (vLLM would also reuse those of its answer; hashing and indexing every
answer would cost more CPU than the rest of the request's simulation).
Changes are published as KV events when someone listens.
"""

from __future__ import annotations

from ..events import EventBus, KVEvent
from .radix import PrefixCache
from .sequence import Seq, blocks_for


class KVCache:
    __slots__ = ("total", "block_size", "tree", "private", "caching", "evicted",
                 "_events", "_worker", "_model")

    def __init__(self, total: int, block_size: int, caching: bool = True,
                 events: EventBus | None = None, worker: int = 0, model: str = "") -> None:
        self.total = total
        self.block_size = block_size
        self.tree = PrefixCache()
        self.private = 0
        self.caching = caching
        self.evicted = 0
        self._events = events
        self._worker = worker
        self._model = model

    @property
    def used(self) -> int:
        return len(self.tree) + self.private

    @property
    def free(self) -> int:
        return self.total - self.used

    def available(self) -> int:
        """Blocks that could be taken now (free, or cached and unpinned)."""
        return self.total - self.private - self.tree.pinned

    # -- the pool ---------------------------------------------------------------------------
    def take(self, k: int) -> bool:
        """Hold ``k`` more private blocks, evicting cached ones if needed; False if impossible."""
        if k <= 0:
            return True
        short = k - self.free
        if short > 0:
            if short > self.tree.reclaimable:
                return False
            self._evict(short)
        self.private += k
        return True

    def _evict(self, n: int) -> None:
        gone = self.tree.evict(n)
        self.evicted += len(gone)
        if gone:
            self._publish("removed", gone)

    def clear(self) -> int:
        """Drop every unpinned cached block (vLLM's reset_prefix_cache); how many went."""
        gone = self.tree.clear()
        self.evicted += len(gone)
        if gone:
            self._publish("cleared" if not self.tree.blocks else "removed", gone)
        return len(gone)

    # -- sequences --------------------------------------------------------------------------
    def admit(self, seq: Seq, reserve_tokens: int, force: bool = False) -> bool:
        """Pin ``seq``'s cached prefix and take blocks for its prompt plus ``reserve_tokens``
        decoded tokens per choice. ``force`` takes what exists when the pool is too small."""
        bs = self.block_size
        context = seq.prompt + seq.emitted  # a preempted sequence recomputes what it decoded
        nodes = []
        if self.caching and seq.hashes:
            nodes = self.tree.acquire(seq.hashes, (context - 1) // bs)
        need = blocks_for(seq.prompt, seq.emitted + reserve_tokens, seq.n, bs) - len(nodes)
        if not self.take(need):
            if not force:
                self.tree.release(nodes)
                return False
            need = max(0, min(need, self.available()))
            self.take(need)
        seq.nodes = nodes
        seq.private = need
        seq.cached = len(nodes) * bs
        seq.committed = False
        return True

    def commit(self, seq: Seq) -> None:
        """``seq``'s prompt is computed: its full blocks join the cache (pinned by it)."""
        if seq.committed:
            return
        seq.committed = True
        hashes = seq.hashes
        if not self.caching or not hashes:
            return
        have = len(seq.nodes)
        rest = hashes[have:have + seq.private]  # (a request larger than the pool holds fewer)
        if not rest:
            return
        parent = seq.nodes[-1] if have else None
        blocks, created = self.tree.insert(parent, rest)
        seq.private -= len(rest)  # new blocks move from private into the cache; duplicates free
        self.private -= len(rest)
        seq.nodes.extend(blocks)
        if created:
            self._stored(seq.ids, have, rest, created, parent)

    def grow(self, seq: Seq, tokens: int, reserve: int = 0) -> bool:
        """Take the blocks ``seq`` needs to hold ``tokens`` decoded tokens per choice."""
        need = blocks_for(seq.prompt, tokens + reserve, seq.n, self.block_size) - seq.blocks
        if need <= 0:
            return True
        if not self.take(need):
            return False
        seq.private += need
        return True

    def release(self, seq: Seq) -> None:
        """Free ``seq``'s blocks: its private ones go back to the pool, its cached ones stay
        cached (unpinned, evictable) for later prompts that share them."""
        self.tree.release(seq.nodes)
        seq.nodes = []
        self.private -= seq.private
        seq.private = 0

    # -- events -----------------------------------------------------------------------------
    def _stored(self, ids, offset: int, hashes: list[int], created: list[int], parent) -> None:
        """One "stored" event per run of consecutive new blocks."""
        ev = self._events
        if ev is None or not ev.wants_kv:
            return
        bs = self.block_size
        run = [created[0]]
        for i in created[1:] + [-1]:
            if i == run[-1] + 1:
                run.append(i)
                continue
            first = run[0]
            before = hashes[first - 1] if first else (parent.hash if parent is not None else None)
            tokens = None if ids is None else list(ids[(offset + first) * bs:(offset + run[-1] + 1) * bs])
            ev.kv(KVEvent(self._worker, self._model, "stored", [hashes[j] for j in run], before, tokens, bs))
            run = [i]

    def _publish(self, kind: str, hashes: list[int]) -> None:
        ev = self._events
        if ev is not None and ev.wants_kv:
            ev.kv(KVEvent(self._worker, self._model, kind, hashes, block_size=self.block_size))
